"""How close each main command's memory estimate comes to the peak it measures.

Every command that works in memory estimates its peak resident set before it reads DATA (the process it runs in,
what it will import, what reading and its own steps hold) and refuses to start when that does not fit. This runs
each main command (inspect, knn, cluster, report, compress apply, curate dedup) as ``embedlab ... -v`` in its own
process on synthetic Parquet sets of several sizes (Gaussian clusters, string ids), reads the estimate from the log
line and the measured peak (the child's VmHWM, from ``wait4``), and prints estimate / peak. The sets are written
by another process: a child's high-water mark starts at what its parent held when it forked. Goal (issue 21):
within 30% for every command and size.

    .venv/bin/python benchmarks/bench_memory.py [--sizes 50000x128,100000x768] [--commands knn,report]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import log, markdown_table, setup_logging, write_results

COMMANDS = {
    "inspect": ["inspect", "{data}", "--json"],
    "knn": ["knn", "{data}", "-k", "10", "-o", "{out}/knn.parquet", "--json"],
    "cluster": ["cluster", "{data}", "-k", "50", "--json"],
    "report": ["report", "{data}", "-o", "{out}/report.html", "--json"],
    "compress apply": ["compress", "apply", "{data}", "--codec", "pq:32", "-o", "{out}/collection", "--json"],
    "curate dedup": ["curate", "dedup", "{data}", "--json"],
}
SIZES = "50000x128,100000x768"
ESTIMATE = re.compile(r"memory: .* \((\d+) bytes\)")
TOLERANCE = 0.30


def make_set(path: Path, n: int, dim: int, seed: int = 0) -> None:
    """``n`` rows around 50 Gaussian centres, with string ids, as one Parquet file."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 50, n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    ids = pa.array(np.char.add("doc-", np.char.zfill(np.arange(n).astype(str), 8)))
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
    pq.write_table(pa.table({"id": ids, "embedding": column}), path)


def measure(command: str, data: Path) -> dict[str, object]:
    """Run one command in its own process: its estimate (from the ``-v`` log) and its measured peak."""
    with tempfile.TemporaryDirectory() as out:
        args = [a.format(data=data, out=out) for a in COMMANDS[command]]
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "embedlab", *args, "-v"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "10000"},  # the log line unwrapped
        )
        stderr = child.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    found = ESTIMATE.search(stderr)
    if code or found is None:
        raise SystemExit(f"embedlab {' '.join(args)} failed ({code}):\n{stderr[-2000:]}")
    estimate, peak = int(found.group(1)), usage.ru_maxrss * 1024
    return {"estimate": estimate, "peak": peak, "ratio": estimate / peak, "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help="comma-separated NxDIM")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated commands")
    args = parser.parse_args()
    setup_logging()
    rows, results = [], []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            n, dim = (int(part) for part in size.split("x"))
            data = Path(folder) / f"set-{n}x{dim}.parquet"
            # In a process of its own: a child's peak is at least what its parent held when it forked (Linux
            # hands the forked copy's high-water mark to the exec'd program), so this process stays small.
            maker = f"from benchmarks.bench_memory import make_set; make_set({str(data)!r}, {n}, {dim})"
            subprocess.run([sys.executable, "-c", maker], check=True, cwd=Path(__file__).resolve().parents[1])
            for command in args.commands.split(","):
                result = {"command": command, "n": n, "dim": dim, **measure(command, data)}
                log.info("%s", result)
                results.append(result)
                within = abs(result["ratio"] - 1) <= TOLERANCE  # type: ignore[operator]
                rows.append(
                    [
                        command,
                        f"{n:,} x {dim}",
                        f"{result['estimate'] / 2**20:,.0f}",
                        f"{result['peak'] / 2**20:,.0f}",
                        f"{result['ratio']:.2f}",
                        "yes" if within else "**no**",
                        result["seconds"],
                    ]
                )
    headers = ["command", "set", "estimate MiB", "measured peak MiB", "estimate / peak", "within 30%", "s"]
    print(markdown_table(headers, rows))
    write_results("bench_memory", {"tolerance": TOLERANCE, "results": results})


if __name__ == "__main__":
    main()
