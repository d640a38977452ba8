"""``embedlab knn``: the kNN graph of an embeddings file, with the search's measured recall."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedlab._progress import ProgressReporter
from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    ColumnOpt,
    DataArg,
    IdColumnOpt,
    JsonOpt,
    MaxMemoryOpt,
    MemoryBudgetOpt,
    OnInvalidOpt,
    QuietOpt,
    RayAddressOpt,
    SeedOpt,
    ShardRowsOpt,
    VerboseOpt,
    bounded_memory,
    on_invalid_policy,
    sharded_run,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io import load, write_table
from embedlab.io.shards import ShardedSet
from embedlab.neighbors import knn_graph, knn_memory, search_params
from embedlab.scale import Backend, MemoryEstimate
from embedlab.search import build_shard_graph


@handles_errors
def knn(
    data: DataArg,
    k: Annotated[int, typer.Option("-k", help="Neighbours per row.")] = 10,
    metric: Annotated[str, typer.Option(help="cosine, l2 or ip.")] = "cosine",
    method: Annotated[str, typer.Option(help="auto, exact, hnsw, ivf or ivfpq.")] = "auto",
    storage: Annotated[
        str,
        typer.Option(
            help="How an hnsw or ivf index stores vectors: sq8 (1 byte per dimension, candidates re-ranked "
            "exactly; less memory, faster) or flat (float32)."
        ),
    ] = "sq8",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the graph (id, neighbor_ids, distances) to Parquet.")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Search the shards of DATA out of core: 'local' (this process) or 'ray' (a Ray cluster); the graph "
            "is written to the --output directory, one Parquet file per shard. --method exact (or auto) searches "
            "every shard exactly; hnsw or ivf builds an index per shard first. Default: in memory.",
        ),
    ] = None,
    ray_address: RayAddressOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    shard_rows: ShardRowsOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    max_memory: MaxMemoryOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Find the k nearest neighbours of every row of DATA (itself excluded) and report the search's recall.

    'auto' searches exactly on small sets and with HNSW on large ones, measuring recall against exact search on
    a sample of 1,000 rows (drawn with --seed).
    """
    progress = setup(quiet, verbose)
    run = sharded_run(data, backend, ray_address, memory_budget, shard_rows, column, id_column, max_memory)
    if run is not None:
        with bounded_memory(data, max_memory, None, column=column, id_column=id_column):
            _sharded(*run, k, metric, method, storage, output, json_output, seed, progress)
        return

    def estimate(n_rows: int, dim: int) -> MemoryEstimate:
        return knn_memory(n_rows, dim, k, method=search_params(method, n_rows, n_rows, storage=storage).method)

    ways_out = (
        "Search the set in shards read from disk, the graph written per shard: --backend local (this machine) or "
        "--backend ray (a Ray cluster), with --output DIR."
    )
    with bounded_memory(data, max_memory, estimate, ways_out, column=column, id_column=id_column):
        emb = load(data, column=column, id_column=id_column, on_invalid=on_invalid_policy(on_invalid))
        started = time.perf_counter()
        params = search_params(method, len(emb), len(emb), storage=storage)
        result = knn_graph(emb, k, metric=metric, method=params, random_state=seed, progress=progress)
        seconds = time.perf_counter() - started
        if output is not None:
            write_table(result.to_graph_table(emb.ids), output)
    summary = {
        **result.summary(),
        "timings": {"seconds": round(seconds, 3)},
        "output": None if output is None else str(output),
        "validation": emb.validation.to_dict(),
    }
    if json_output:
        emit_json(summary)
        return
    measured = "exact" if result.method == "exact" else f"recall@{k} {result.recall:.4f} on {result.recall_sample} rows"
    written = f" -> {output}" if output else ""
    Console().print(
        f"kNN graph of {len(emb):,} rows, k={k}, {metric}, {result.method} ({measured}) in {seconds:.1f} s{written}"
    )


def _sharded(
    sharded: ShardedSet,
    backend: Backend,
    k: int,
    metric: str,
    method: str,
    storage: str,
    output: Path | None,
    json_output: bool,
    seed: int,
    progress: ProgressReporter,
) -> None:
    if output is None:
        raise ConfigurationError("--backend writes the graph per shard: give the --output directory.")
    started = time.perf_counter()
    graph = build_shard_graph(
        sharded,
        output,
        k,
        method=method,
        storage=storage,
        metric=metric,
        backend=backend,
        random_state=seed,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    summary = {
        **graph.to_dict(),
        "backend": backend.name,
        "n_shards": len(sharded),
        "timings": {"seconds": round(seconds, 3)},
    }
    if json_output:
        emit_json(summary)
        return
    shards = f"{len(sharded)} shard" + ("s" if len(sharded) != 1 else "")
    Console().print(
        f"kNN graph of {graph.n_rows:,} rows in {shards} ({backend.name}), k={k}, {metric}, "
        f"{graph.params.method} in {seconds:.1f} s -> {output}/ (one file per shard)"
    )
