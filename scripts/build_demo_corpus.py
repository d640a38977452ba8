"""Build the bundled demo corpus: a stratified, per-class-capped sample of WordNet 3.0 synsets.

Run from the repository root: ``python scripts/build_demo_corpus.py``. It reads
``../shared/data/wordnet/synsets.jsonl.gz`` and writes ``src/embedlab/datasets/wordnet_demo.jsonl.gz`` and the
WordNet licence beside it. The sample is reproducible (seed 0): every lexname keeps
``min(count, cap)`` synsets, with ``cap`` the largest value that keeps the total at or under 20,000, so rare
classes are kept whole and frequent ones are sampled down uniformly.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

SOURCE = Path("../shared/data/wordnet")
TARGET = Path("src/embedlab/datasets")
TOTAL = 20_000
SEED = 0


def class_cap(counts: list[int], total: int) -> int:
    """Largest cap c with sum(min(count, c)) <= total."""
    low, high = 0, max(counts)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(c, mid) for c in counts) <= total:
            low = mid
        else:
            high = mid - 1
    return low


def main() -> None:
    by_class: dict[str, list[dict]] = defaultdict(list)
    with gzip.open(SOURCE / "synsets.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            by_class[row["lexname"]].append(row)
    cap = class_cap([len(rows) for rows in by_class.values()], TOTAL)
    rng = np.random.default_rng(SEED)
    chosen = []
    for lexname in sorted(by_class):
        rows = by_class[lexname]
        keep = np.sort(rng.choice(len(rows), size=min(cap, len(rows)), replace=False))
        chosen.extend(rows[i] for i in keep)
    TARGET.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(TARGET / "wordnet_demo.jsonl.gz", "wb", mtime=0) as raw:
        for row in chosen:
            record = {
                "id": row["id"],
                "text": f"{row['words'][0]}: {row['definition']}",
                "label": row["lexname"],
            }
            raw.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    shutil.copyfile(SOURCE / "COPYRIGHT", TARGET / "WORDNET_LICENSE.txt")
    print(f"{len(chosen)} synsets over {len(by_class)} lexnames (cap {cap} per lexname)")


if __name__ == "__main__":
    main()
