"""Kill embedlab's writers with SIGKILL at random moments and count what the target holds afterwards.

For each output kind (Parquet, compressed collection, index, report, adapter, curation table, a store import's
checkpoint) a forked child writes two versions to one target in turn and is killed after a random delay of up to
three writes (the import: ``embedlab store import`` in its own process, killed within one run; see
tests/io/killed_writes.py); the target must then be byte for byte the previous complete output, the new one, or
absent (a checkpoint: absent or a whole document), never a partial file or folder. Two writers of one target at
once must leave one whole version. Goal (issue 21): >= 200 trials per kind, 0 partial outputs. Temporary files a
killed writer leaves beside the target ("litter") are counted too, right after the kill and again after the next
write of the same target, which removes what killed writers on this machine left (goal: 0 then).

    .venv/bin/python benchmarks/killed_writes.py [--trials 200] [--concurrent 20] [--kinds parquet,index]

Not part of ``make bench``'s timing runs: it measures robustness, not speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in tests/io

from benchmarks._common import log, markdown_table, setup_logging, write_results
from tests.io.killed_writes import KINDS, Harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="kills per kind")
    parser.add_argument("--concurrent", type=int, default=20, help="two-writer trials per kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args()
    setup_logging()
    rows, results = [], {}
    for name in args.kinds.split(","):
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            harness = Harness(name, Path(folder) / "writes")
            delay = harness.max_delay()
            for seed in range(args.trials):
                harness.trial(seed, delay)
            for seed in range(args.concurrent if name != "checkpoint" else 0):
                harness.concurrent(seed)
        counts = harness.counts
        seconds = time.perf_counter() - started
        log.info("%s: %s in %.0f s", name, counts.to_dict(), seconds)
        rows.append(
            [
                name,
                counts.trials,
                counts.previous,
                counts.new,
                f"{counts.nothing} ({counts.previous_gone})",
                counts.partial,
                f"{counts.concurrent} / {counts.concurrent_partial}",
                f"{counts.litter} / {counts.litter_after_next_write}",
                f"{delay * 1000:.0f}",
            ]
        )
        results[name] = {**counts.to_dict(), "max_delay_seconds": delay, "seconds": seconds}
    headers = [
        "kind",
        "kills",
        "previous output",
        "new output",
        "nothing (of which a previous output existed)",
        "partial",
        "two writers / mixed",
        "litter after the kill / after the next write",
        "longest wait before the kill (ms)",
    ]
    print(markdown_table(headers, rows))
    write_results("killed_writes", {"trials": args.trials, "concurrent": args.concurrent, "kinds": results})


if __name__ == "__main__":
    main()
