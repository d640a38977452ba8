"""``embedlab cluster``: cluster an embedding set, choose k, score and name the clusters, write per-row labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from embedlab._checks import check_choice
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
    ParamOpt,
    QuietOpt,
    RayAddressOpt,
    SeedOpt,
    ShardRowsOpt,
    VerboseOpt,
    bounded_memory,
    on_invalid_policy,
    parse_params,
    sharded_run,
)
from embedlab.cluster import (
    METHODS,
    NAMINGS,
    SHARDED_METHODS,
    cluster_shards,
    clustering_memory,
    find_clusters,
    kmeans_stream,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io import load, write_table
from embedlab.io.shards import ShardedSet
from embedlab.scale import Backend, MemoryEstimate


def _parse_k(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"must be a positive integer or 'auto', not {value!r}.", param_hint="--k") from None


def _parse_k_values(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"must be comma-separated integers, not {value!r}.", param_hint="--k-values") from None


@handles_errors
def cluster(
    data: DataArg,
    method: Annotated[str, typer.Option(help=f"One of: {', '.join(sorted(METHODS))}.")] = "kmeans",
    k: Annotated[str, typer.Option("--k", "-k", help="Number of clusters, or 'auto' to choose it.")] = "auto",
    metric: Annotated[str, typer.Option(help="cosine or l2.")] = "cosine",
    labels: Annotated[
        str | None, typer.Option(help="Metadata column of true labels, used only to score the result.")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="Texts for cluster keywords (default: the 'text' column if any).")
    ] = None,
    naming: Annotated[
        str,
        typer.Option(
            help="How clusters with texts get keywords: ctfidf (class-based TF-IDF), or s3 (the terms of the S³ "
            "topic axis each cluster lies along, embedded by the bundled MiniLM: DATA must be MiniLM embeddings)."
        ),
    ] = "ctfidf",
    k_values: Annotated[
        str | None,
        typer.Option(help="Candidates for --k auto, comma-separated (default 2..100, refined around the choice)."),
    ] = None,
    criterion: Annotated[
        str,
        typer.Option(
            help="How --k auto chooses: auto (stability, silhouette, gap and BIC combined; it can answer 'no clear "
            "k'), or one of stability, silhouette, gap, bic."
        ),
    ] = "auto",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write id, cluster, confidence per row to Parquet.")
    ] = None,
    proba: Annotated[bool, typer.Option(help="Add each row's cluster probabilities (soft methods).")] = False,
    stream: Annotated[
        bool,
        typer.Option(
            help="Read DATA in batches for files larger than memory: mini-batch k-means with a fixed --k, "
            "sizes and inertia only (no scores or names)."
        ),
    ] = False,
    epochs: Annotated[int, typer.Option(help="With --stream: passes of mini-batch updates over the file.")] = 1,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Cluster the shards of DATA out of core: 'local' (this process, one shard at a time) or 'ray' (a "
            "Ray cluster, the scale extra). k-means or hierarchical with a fixed --k; --output is then a directory "
            "of labels, one Parquet file per shard. Default: in memory.",
        ),
    ] = None,
    ray_address: RayAddressOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    shard_rows: ShardRowsOpt = None,
    param: ParamOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    max_memory: MaxMemoryOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Cluster DATA, choose the number of clusters if asked, and report sizes, scores and names.

    Labels (--labels) only score the result, never train or choose anything; docs/cluster.md has the rest.
    """
    progress = setup(quiet, verbose)
    check_choice(naming, "naming", NAMINGS)
    if naming != "ctfidf" and (stream or backend is not None):
        raise ConfigurationError(f"--naming {naming} names the clusters of an in-memory run: drop --stream/--backend.")
    if proba and output is None:
        raise ConfigurationError("--proba adds a column to the --output file; give --output too.")
    if backend is not None and stream:
        raise ConfigurationError("give --stream or --backend, not both: --backend local streams shard by shard.")
    params = parse_params(param)
    if params and (stream or backend is not None):
        raise ConfigurationError("--param sets the estimator of an in-memory run: drop --stream/--backend.")
    run = sharded_run(data, backend, ray_address, memory_budget, shard_rows, column, id_column, max_memory)
    if run is not None:
        with bounded_memory(data, max_memory, None, column=column, id_column=id_column):
            _sharded(*run, method, k, metric, output, json_output, seed, progress)
        return
    if stream:
        with bounded_memory(data, max_memory, None, column=column, id_column=id_column):
            _stream(data, method, k, metric, output, epochs, column, id_column, on_invalid, json_output, seed, progress)
        return
    n_clusters = _parse_k(k)

    def estimate(n_rows: int, dim: int) -> MemoryEstimate:
        return clustering_memory(n_rows, dim, method=method, n_clusters=n_clusters)

    ways_out = (
        "Cluster the set in shards read from disk with a fixed --k: --backend local (this machine) or --backend ray "
        "(a Ray cluster), or --stream (mini-batch k-means)."
    )
    with bounded_memory(data, max_memory, estimate, ways_out, column=column, id_column=id_column):
        emb = load(data, column=column, id_column=id_column, on_invalid=on_invalid_policy(on_invalid))
        report = find_clusters(
            emb,
            method=method,
            n_clusters=n_clusters,
            metric=metric,
            labels=labels,
            text_column=text_column,
            naming=naming,
            k_values=_parse_k_values(k_values),
            criterion=criterion,
            random_state=seed,
            progress=progress,
            **params,
        )
        if output is not None:
            write_table(report.to_table(emb.ids, proba=proba), output)
    document = {**report.to_dict(), "output": None if output is None else str(output)}
    if json_output:
        emit_json(document)
        return
    _render(document, str(data), output)


def _stream(
    data: str,
    method: str,
    k: str,
    metric: str,
    output: Path | None,
    epochs: int,
    column: str | None,
    id_column: str | None,
    on_invalid: str,
    json_output: bool,
    seed: int,
    progress: ProgressReporter,
) -> None:
    n_clusters = _parse_k(k)
    if method not in ("kmeans", "minibatch") or n_clusters == "auto":
        raise ConfigurationError("--stream runs mini-batch k-means with a fixed --k: use --method minibatch --k K.")
    result = kmeans_stream(
        data,
        n_clusters,
        metric=metric,
        epochs=epochs,
        output=output,
        column=column,
        id_column=id_column,
        on_invalid=on_invalid_policy(on_invalid),
        random_state=seed,
        progress=progress,
    )
    if json_output:
        emit_json(result.to_dict())
        return
    written = f"; labels written to {output}" if output else ""
    Console().print(
        f"[bold]{data}[/]: {result.n:,} rows streamed -> {result.k} clusters by mini-batch k-means "
        f"({result.epochs} epoch(s)), sizes {min(result.sizes):,}-{max(result.sizes):,}{written}"
    )


def _sharded(
    sharded: ShardedSet,
    backend: Backend,
    method: str,
    k: str,
    metric: str,
    output: Path | None,
    json_output: bool,
    seed: int,
    progress: ProgressReporter,
) -> None:
    n_clusters = _parse_k(k)
    if method not in SHARDED_METHODS or n_clusters == "auto":
        raise ConfigurationError(
            f"--backend runs {' or '.join(SHARDED_METHODS)} with a fixed --k: use --method kmeans --k K."
        )
    result = cluster_shards(
        sharded,
        n_clusters,
        method=method,
        metric=metric,
        output=output,
        backend=backend,
        random_state=seed,
        progress=progress,
    )
    if json_output:
        emit_json(result.to_dict())
        return
    written = f"; labels written to {output}/ (one file per shard)" if output else ""
    inertia = f", inertia {result.inertia:.6g} after {result.n_iter} iterations" if result.inertia is not None else ""
    shards = f"{result.n_shards} shard" + ("s" if result.n_shards != 1 else "")
    Console().print(
        f"[bold]{sharded.path}[/]: {result.n:,} rows in {shards} ({result.backend}) -> {result.k} "
        f"clusters by {result.method} (levels {result.levels}){inertia}, sizes {min(result.sizes):,}-"
        f"{max(result.sizes):,}{written}"
    )


def _render(doc: dict, name: str, output: Path | None) -> None:
    console = Console()
    noise = f", {doc['n_noise']:,} noise rows" if doc["n_noise"] else ""
    console.print(f"[bold]{name}[/]: {doc['n']:,} rows -> {doc['k']} clusters by {doc['method']}{noise}")
    selection = doc["k_selection"]
    if selection:
        style = "green" if selection["clear"] else "yellow"
        console.print(f"[{style}]{selection['reason']}[/]")
    internal = doc["metrics"]["internal"]
    scores = [f"silhouette {_fmt(internal['silhouette'])} (sample of {internal['n_sampled']:,})"]
    scores.append(f"Davies-Bouldin {_fmt(internal['davies_bouldin'])}")
    external = doc["metrics"]["external"]
    if external:
        scores += [f"{key} {_fmt(external[key])}" for key in ("accuracy", "nmi", "ari")]
    console.print("; ".join(scores))
    table = Table(title="Clusters (largest first)", title_justify="left")
    for header in ("cluster", "size", "keywords / examples", "medoid"):
        table.add_column(header)
    for entry in sorted(doc["clusters"], key=lambda c: -c["size"])[:20]:
        words = entry.get("keywords") or [str(e.get("text", e["id"])) for e in entry["examples"][:3]]
        table.add_row(str(entry["cluster"]), f"{entry['size']:,}", ", ".join(words)[:80], str(entry["medoid_id"]))
    console.print(table)
    if output is not None:
        console.print(f"labels written to {output}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
