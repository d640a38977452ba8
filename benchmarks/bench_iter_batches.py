"""Peak resident memory of ``embedlab.iter_batches`` streaming a ~2 GB embeddings file (target: < 500 MB).

Three files of the same ~1.4 M x 384 float32 random vectors are generated piece by piece into
``benchmarks/.cache/`` (never whole in memory) and deleted at the end unless ``--keep`` is given:

* Parquet with row groups of ~64 MB, the layout embedlab's own writer produces
  (``embedlab.io.writers.write_table``: 64 MiB / bytes per row);
* Parquet with pyarrow's default row group size (1,048,576 rows, ~1.5 GB: the worst case);
* ``.npy`` written through ``numpy.lib.format.open_memmap``.

Each file is read by a fresh child process that iterates it with ``iter_batches(path, batch_size=65536)``
and sums every vector, so every batch is really touched. The child reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``, cross-checked against ``VmHWM`` in ``/proc/self/status``) after
importing embedlab, after the first batch and at the end, and its throughput.

Two reference readers run on the Parquet files, to separate what Arrow needs from what embedlab adds:
plain ``pyarrow.parquet.ParquetFile(path).iter_batches(65536)`` with pyarrow's defaults, and a streaming
prototype (``streaming_batches`` below: ``pre_buffer=False``, 1 MiB buffered page reads of 8,192 rows,
copied into preallocated 65,536-row float32 batches, wrapped in validated ``EmbeddingSet`` objects), which
shows what a fixed Parquet reader in embedlab could reach.

On Linux ``ru_maxrss`` survives ``exec``: a child's figure starts at the high-water mark of the process it
was spawned from. So this parent process never imports numpy or pyarrow and never holds data; files are
generated and inspected in child processes too.

Run from the repository root::

    .venv/bin/python benchmarks/bench_iter_batches.py [--keep] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import CACHE_DIR, library_version, log, markdown_table, setup_logging, warn_if_busy, write_results

NAME = "bench_iter_batches"
TARGET_MB = 500
DIM = 384
ROWS = 1_400_000
BATCH_SIZE = 65_536
SEED = 0
#: As ``embedlab.io.writers.write_table``: row groups of about 64 MiB of Arrow data.
EMBEDLAB_ROW_GROUP_BYTES = 64 * 2**20
#: pyarrow's default (and, without an explicit size, maximum) rows per row group.
PYARROW_DEFAULT_ROW_GROUP = 1024 * 1024
#: Rows generated per piece for the .npy file.
PIECE_ROWS = 65_536


def embedlab_row_group_rows() -> int:
    """Rows per row group embedlab's writer picks for an (int64 id, 384 x float32) table."""
    row_bytes = 8 + DIM * 4  # table.nbytes / num_rows in write_table
    return max(1024, EMBEDLAB_ROW_GROUP_BYTES // row_bytes)


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB from getrusage (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_hwm_mb() -> float | None:
    """This process image's peak RSS (VmHWM) in MiB, or None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ------------------------------------------------------------------------------------ child: generation


def _random_vectors(rng, rows: int):
    import numpy as np

    return rng.standard_normal((rows, DIM), dtype=np.float32)


def generate_parquet(path: Path, n_rows: int, row_group_rows: int) -> None:
    """Write ``n_rows`` random vectors in row groups of ``row_group_rows``, one write_table per row group.

    pyarrow's ParquetWriter ends a row group with every ``write_table`` call, so each call gets exactly one
    row group's rows: this process holds one row group (~64 MB, or ~1.5 GB for pyarrow's default size) and
    its encoded copy, never the whole file. zstd and default encodings, as embedlab's writer.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("embedding", pa.list_(pa.float32(), DIM))])
    rng = np.random.default_rng(SEED)
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for start in range(0, n_rows, row_group_rows):
            rows = min(row_group_rows, n_rows - start)
            flat = pa.array(_random_vectors(rng, rows).reshape(-1))
            table = pa.Table.from_arrays(
                [
                    pa.array(np.arange(start, start + rows, dtype=np.int64)),
                    pa.FixedSizeListArray.from_arrays(flat, DIM),
                ],
                schema=schema,
            )
            writer.write_table(table, row_group_size=rows)
            del flat, table
    tmp.replace(path)


def generate_npy(path: Path, n_rows: int) -> None:
    """Write ``n_rows`` random float32 vectors into a .npy file through a memory map, piece by piece."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    tmp = path.with_name(path.name + ".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_rows, DIM))
    for start in range(0, n_rows, PIECE_ROWS):
        rows = min(PIECE_ROWS, n_rows - start)
        out[start : start + rows] = _random_vectors(rng, rows)
        out.flush()
    del out
    tmp.replace(path)


def describe_file(path: Path) -> dict:
    """Rows, row groups and the largest row group of a file (``rows`` is None when it is unreadable)."""
    import numpy as np
    import pyarrow.parquet as pq

    if not path.exists():
        return {"rows": None}
    try:
        if path.suffix == ".npy":
            shape = np.load(path, mmap_mode="r").shape
            return {
                "rows": int(shape[0]),
                "dim": int(shape[1]),
                "row_groups": None,
                "first_row_group_rows": None,
                "largest_row_group_mb": None,
            }
        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
        return {
            "rows": meta.num_rows,
            "dim": DIM,
            "row_groups": meta.num_row_groups,
            "first_row_group_rows": meta.row_group(0).num_rows,
            "largest_row_group_mb": round(max(sizes) / 2**20, 1),
        }
    except (OSError, ValueError) as err:
        return {"rows": None, "error": str(err)}


# ---------------------------------------------------------------------------------------- child: reading


READERS = {
    "embedlab": "`embedlab.iter_batches`",
    "pyarrow-default": "ref: pyarrow `ParquetFile.iter_batches` (defaults)",
    "pyarrow-streaming": "ref: streaming prototype",
}


def streaming_batches(path: str, batch_size: int, read_rows: int = 8192):
    """Reference reader: what a streaming Parquet reader in embedlab could do (validated EmbeddingSets).

    ``pre_buffer=False`` and a 1 MiB ``buffer_size`` make Arrow read pages as it decodes instead of whole
    column chunks or files; 8,192-row reads keep Arrow's list decoding small; each batch is assembled by
    copying into one preallocated float32 array.
    """
    import numpy as np
    import pyarrow.parquet as pq

    import embedlab

    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=2**20)
    dim = parquet.schema_arrow.field("embedding").type.list_size

    def fresh():
        return np.empty((batch_size, dim), dtype=np.float32), np.empty(batch_size, dtype=np.int64)

    vectors, ids = fresh()
    filled = 0
    for batch in parquet.iter_batches(batch_size=read_rows, columns=["id", "embedding"]):
        values = batch.column("embedding").flatten().to_numpy().reshape(-1, dim)
        row_ids = batch.column("id").to_numpy()
        pos = 0
        while pos < len(values):
            take = min(batch_size - filled, len(values) - pos)
            vectors[filled : filled + take] = values[pos : pos + take]
            ids[filled : filled + take] = row_ids[pos : pos + take]
            filled, pos = filled + take, pos + take
            if filled == batch_size:
                yield embedlab.EmbeddingSet(vectors, ids, source=path)
                vectors, ids = fresh()
                filled = 0
    if filled:
        yield embedlab.EmbeddingSet(vectors[:filled], ids[:filled], source=path)


def read_file(path: str, batch_size: int, reader: str) -> dict:
    """Iterate ``path`` once, sum every vector; return the figures."""
    at_start = peak_rss_mb()
    import numpy as np

    if reader == "embedlab":
        import embedlab

        def batches():
            for emb in embedlab.iter_batches(path, batch_size=batch_size):
                yield emb.vectors

    elif reader == "pyarrow-default":
        import pyarrow.parquet as pq

        def batches():
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["id", "embedding"]):
                yield batch.column("embedding").flatten().to_numpy().reshape(-1, DIM)

    else:
        import embedlab  # imported before the baseline, as for the embedlab reader

        def batches():
            for emb in streaming_batches(path, batch_size):
                yield emb.vectors

    after_import = peak_rss_mb()
    total = np.zeros(DIM, dtype=np.float64)
    rows, n_batches, after_first = 0, 0, None
    start = time.perf_counter()
    for vectors in batches():
        total += vectors.sum(axis=0, dtype=np.float64)
        rows += vectors.shape[0]
        n_batches += 1
        if after_first is None:
            after_first = peak_rss_mb()
    seconds = time.perf_counter() - start
    return {
        "rows": rows,
        "batches": n_batches,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb_at_start": round(at_start, 1),
        "peak_rss_mb_after_import": round(after_import, 1),
        "peak_rss_mb_after_first_batch": round(after_first, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "vm_hwm_mb": None if vm_hwm_mb() is None else round(vm_hwm_mb(), 1),
        "checksum": float(total.sum()),
    }


# ---------------------------------------------------------------------------------------- parent (light)


def run_child(*args: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    mode, path = argv[0], Path(argv[1])
    if mode == "parquet":
        generate_parquet(path, int(argv[2]), int(argv[3]))
        out = {"written": str(path)}
    elif mode == "npy":
        generate_npy(path, int(argv[2]))
        out = {"written": str(path)}
    elif mode == "describe":
        out = describe_file(path)
    else:
        out = read_file(str(path), int(argv[2]), mode)
    print(json.dumps(out))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows per file (default 1,400,000: ~2.1 GB)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--keep", action="store_true", help="keep the generated files in benchmarks/.cache/")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference readers")
    args = parser.parse_args()
    setup_logging()
    load_at_start = warn_if_busy()
    version_at_start = library_version()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    n = args.rows
    layouts = [
        (
            "parquet, ~64 MB row groups (embedlab's writer)",
            CACHE_DIR / f"iter_rg64mb_{n}.parquet",
            embedlab_row_group_rows(),
        ),
        (
            "parquet, 1,048,576-row row groups (pyarrow default)",
            CACHE_DIR / f"iter_rg1m_{n}.parquet",
            PYARROW_DEFAULT_ROW_GROUP,
        ),
        (".npy float32", CACHE_DIR / f"iter_{n}.npy", None),
    ]
    described = {}
    for _, path, rg in layouts:
        info = run_child("describe", str(path))
        if info["rows"] == n and (rg is None or info["first_row_group_rows"] == min(rg, n)):
            log.info("reusing %s", path)
        else:
            log.info("writing %s (%d rows)", path, n)
            started = time.perf_counter()
            run_child("npy", str(path), str(n)) if rg is None else run_child("parquet", str(path), str(n), str(rg))
            log.info("  written in %.1f s", time.perf_counter() - started)
            info = run_child("describe", str(path))
        described[path] = info

    results = []
    for label, path, rg in layouts:
        readers = ["embedlab"] if rg is None or args.no_reference else list(READERS)
        for reader in readers:
            log.info("reading %s with %s", path.name, reader)
            figures = run_child(reader, str(path), str(args.batch_size))
            info = described[path]
            results.append(
                {
                    "layout": label,
                    "reader": reader,
                    "file": path.name,
                    "file_mb": round(path.stat().st_size / 2**20),
                    "row_groups": info["row_groups"],
                    "rows_per_row_group": rg,
                    "largest_row_group_mb": info["largest_row_group_mb"],
                    "batch_size": args.batch_size,
                    **figures,
                    "under_target": figures["peak_rss_mb"] < TARGET_MB,
                }
            )
            log.info(
                "  peak RSS %.0f MB (VmHWM %s MB), %s rows/s in %.1f s",
                figures["peak_rss_mb"],
                figures["vm_hwm_mb"],
                f"{figures['rows_per_s']:,}",
                figures["seconds"],
            )

    headers = [
        "layout",
        "reader",
        "file MB",
        "row groups (largest, MB)",
        "peak RSS MB after import",
        "after 1st batch",
        "whole run",
        "rows/s",
        f"< {TARGET_MB} MB",
    ]
    rows = [
        [
            r["layout"],
            READERS[r["reader"]],
            f"{r['file_mb']:,}",
            "-" if r["row_groups"] is None else f"{r['row_groups']} ({r['largest_row_group_mb']:.0f})",
            f"{r['peak_rss_mb_after_import']:.0f}",
            f"{r['peak_rss_mb_after_first_batch']:.0f}",
            f"**{r['peak_rss_mb']:.0f}**",
            f"{r['rows_per_s']:,}",
            ("yes" if r["under_target"] else "**NO**") if r["reader"] == "embedlab" else "(reference)",
        ]
        for r in results
    ]
    checks = [r["checksum"] for r in results]
    agree = max(checks) - min(checks) <= 1e-6 * max(1.0, max(abs(c) for c in checks))
    print(f"\n### `iter_batches` over {n:,} x {DIM} float32 (batch_size={args.batch_size:,})\n")
    print(markdown_table(headers, rows))
    print(f"\nEvery run summed the same {n:,} vectors (checksums agree: {'yes' if agree else 'NO'}).")
    if not args.no_reference:
        print(
            "Streaming prototype: `ParquetFile(path, pre_buffer=False, buffer_size=1 MiB).iter_batches(8192)` "
            f"copied into preallocated {args.batch_size:,}-row float32 batches, each a validated EmbeddingSet."
        )
    out = write_results(
        NAME,
        {
            "rows": n,
            "dim": DIM,
            "load_average_at_start": load_at_start,
            "embedlab_at_start": version_at_start,
            "batch_size": args.batch_size,
            "target_peak_rss_mb": TARGET_MB,
            "rss_measure": "getrusage(RUSAGE_SELF).ru_maxrss in a fresh child (VmHWM as a cross-check)",
            "page_cache": "warm (files read right after being written or reused)",
            "checksums_agree": agree,
            "results": results,
        },
    )
    log.info("wrote %s", out)
    if not args.keep:
        for _, path, _ in layouts:
            path.unlink(missing_ok=True)
            log.info("deleted %s", path)


if __name__ == "__main__":
    main()
