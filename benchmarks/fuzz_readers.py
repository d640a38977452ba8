"""Fuzz every reader embedlab has with damaged and hostile inputs, and count the crashes per format.

Each format's valid input (tests/fuzz/harness.py) is damaged in many ways (random bytes, truncation, bit flips,
overwritten ranges, spliced copies, deleted files, valid containers with hostile content, damaged JSON) and read
back through the public API in a worker process. A crash is an exception that is not embedlab's own error with a
message, a RuntimeWarning, a hang, a peak-memory jump past 1 GiB, or a worker that dies (a native library's
segmentation fault). Goal (issue 21): >= 10,000 inputs per format, 0 crashes.

    .venv/bin/python benchmarks/fuzz_readers.py [--inputs 10000] [--formats npy,npz]

Not part of ``make bench``'s timing runs: it measures robustness, not speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in tests/fuzz

from benchmarks._common import log, markdown_table, setup_logging, write_results
from tests.fuzz.harness import FORMATS, campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per format")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats")
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    rows, results = [], {}
    seeds = range(args.first_seed, args.first_seed + args.inputs)
    for name in args.formats.split(","):
        with tempfile.TemporaryDirectory() as folder:
            result = campaign(name, seeds, Path(folder))
        log.info("%s: %s in %.0f s", name, result.counts, result.seconds)
        signatures = result.signatures()
        rows.append(
            [
                name,
                f"{result.inputs:,}",
                f"{result.counts['read']:,}",
                f"{result.counts['refused']:,}",
                result.counts["crash"],
                "; ".join(f"{count} x {signature}" for signature, count in signatures.items()) or "-",
                f"{result.seconds:.0f}",
            ]
        )
        results[name] = {
            "inputs": result.inputs,
            **result.counts,
            "seconds": result.seconds,
            "crashes": [
                {"seed": crash.seed, "damage": crash.damage, "detail": crash.detail[:2000]} for crash in result.crashes
            ],
        }
    headers = ["format", "inputs", "read", "refused (embedlab's error)", "crashes", "distinct crashes", "seconds"]
    print(markdown_table(headers, rows))
    inputs, crashes = sum(r["inputs"] for r in results.values()), sum(r["crash"] for r in results.values())
    print(f"\n{inputs:,} inputs, {crashes} crashes; seeds {seeds.start} to {seeds.stop - 1}")
    write_results("fuzz_readers", {"seeds": [seeds.start, seeds.stop], "formats": results})


if __name__ == "__main__":
    main()
