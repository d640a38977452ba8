"""``embedlab curate dedup|sample|leakage|batches``: which rows to keep, with the evidence for each row that goes; a
balanced, weighted or representative subset; which test rows have a near duplicate in the training set; a batch
order drawn from clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
    ShardsBackendOpt,
    VerboseOpt,
    bounded_memory,
    check_output,
    data_name,
    on_invalid_policy,
    sharded_run,
)
from embedlab.curate import (
    BATCH_MODES,
    DEDUP_METHODS,
    KEEP_POLICIES,
    SAMPLE_METHODS,
    WITHIN_CLUSTER,
    Deduplication,
    Sample,
    dedup_memory,
    deduplicate,
    find_leakage,
    sample,
    stratified_batches,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io import EmbeddingSet, load
from embedlab.io.shards import ShardedSet, read_ids, write_columns
from embedlab.io.writers import write_table
from embedlab.scale import Backend, MemoryEstimate

curate_app = typer.Typer(
    name="curate",
    help="Deduplicate an embedding set (which rows to keep, and why each other row goes), sample a balanced or "
    "representative subset, find test rows that leak from a training set, and order batches by cluster.",
    no_args_is_help=True,
)


def _source(
    data: str,
    backend: str | None,
    ray_address: str | None,
    memory_budget: str | None,
    shard_rows: int | None,
    column: str | None,
    id_column: str | None,
    on_invalid: str,
    max_memory: str | None = None,
) -> tuple[EmbeddingSet | ShardedSet, str | Backend]:
    """What to curate and where: the shards of DATA and their backend under --backend, else the loaded set."""
    run = sharded_run(data, backend, ray_address, memory_budget, shard_rows, column, id_column, max_memory)
    if run is not None:
        return run
    return load(data, column=column, id_column=id_column, on_invalid=on_invalid_policy(on_invalid)), "local"


def _write_rows(
    result: Deduplication | Sample, source: EmbeddingSet | ShardedSet, runner: str | Backend, output: Path
) -> None:
    """One row per row of DATA: a Parquet file from a loaded set, a directory of one file per shard from shards."""
    if isinstance(source, EmbeddingSet):
        write_table(result.to_table(source.ids), output)
    else:
        write_columns(source, result.columns(), output, document={"method": result.method}, backend=runner)


@curate_app.command("dedup")
@handles_errors
def dedup(
    data: DataArg,
    method: Annotated[
        str,
        typer.Option(
            help=f"{', '.join(DEDUP_METHODS)}: identical rows, kNN groups, SemDeDup, or SemDeDup then pruning."
        ),
    ] = "semdedup",
    threshold: Annotated[
        float, typer.Option(help="Cosine similarity of a near duplicate (near; semdedup's default --eps is 1 - it).")
    ] = 0.98,
    relative: Annotated[
        float | None,
        typer.Option(
            help="near: a pair is a duplicate below this fraction of the median nearest-neighbour distance "
            "(Cleanlab's rule, 0.13) instead of a fixed --threshold; carries across models and modalities."
        ),
    ] = None,
    eps: Annotated[
        float | None, typer.Option(help="SemDeDup: remove rows more similar than 1 - eps to an earlier-ranked row.")
    ] = None,
    remove_fraction: Annotated[
        float | None,
        typer.Option("--remove-fraction", help="semdedup: remove exactly this fraction instead; d4: in all (0.5)."),
    ] = None,
    keep: Annotated[
        str,
        typer.Option(
            help=f"SemDeDup: which duplicate stays ({', '.join(KEEP_POLICIES)}; hard: the farthest from its centroid)."
        ),
    ] = "hard",
    n_clusters: Annotated[
        int | None, typer.Option("--n-clusters", help="SemDeDup: k-means clusters (default: one per 10,000 rows).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="near: neighbours searched per row.")] = 10,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Parquet of id, keep, reason, group, duplicate_of, similarity, weight."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", help="--backend: where SemDeDup's shuffle writes scratch files (as large as DATA)."),
    ] = None,
    backend: ShardsBackendOpt = None,
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
    """Decide for every row of DATA whether it is kept; DATA itself is never changed.

    With --backend (SemDeDup only) the shards of DATA are deduplicated out of core, and --output is a directory
    of one Parquet file per shard whose duplicate_of_row holds row numbers.
    """
    progress = setup(quiet, verbose)
    check_output(output, data)

    def estimate(n_rows: int, dim: int) -> MemoryEstimate:
        return dedup_memory(n_rows, dim, method=method, k=k)

    ways_out = (
        "Deduplicate the set in shards read from disk with SemDeDup: --backend local (this machine) or --backend ray "
        "(a Ray cluster)."
    )
    in_memory = estimate if backend is None else None
    with bounded_memory(data, max_memory, in_memory, ways_out, column=column, id_column=id_column):
        source, runner = _source(
            data, backend, ray_address, memory_budget, shard_rows, column, id_column, on_invalid, max_memory
        )
        result = deduplicate(
            source,
            method=method,
            threshold=threshold,
            relative=relative,
            k=k,
            eps=eps,
            remove_fraction=remove_fraction,
            keep=keep,
            n_clusters=n_clusters,
            random_state=seed,
            backend=runner,
            work_dir=None if work_dir is None else str(work_dir),
            progress=progress,
        )
        if output is not None:
            _write_rows(result, source, runner, output)
    document = {**result.to_dict(), "output": None if output is None else str(output)}
    if json_output:
        emit_json(document)
        return
    written = f" -> {output}" if output is not None else ""
    console = Console()
    console.print(
        f"[bold]{data_name(data)}[/]: {document['kept']:,} of {document['n']:,} rows kept, {document['removed']:,} "
        f"removed by {result.method}{written}"
    )
    if relative is not None and result.method == "near":
        console.print(
            f"near duplicates at cosine >= {result.parameters['threshold']:.6f}: {relative:g} x the median "
            "nearest-neighbour distance"
        )
    if result.removal_curve:
        curve = ", ".join(f"eps {e:g}: {f:.1%}" for e, f in result.removal_curve.items())
        console.print(f"SemDeDup would remove at other thresholds: {curve}")


@curate_app.command("leakage")
@handles_errors
def leakage(
    train: Annotated[str, typer.Argument(help="The training set (any embeddings format or store URI).")],
    test: Annotated[str, typer.Argument(help="The test set, embedded by the same model.")],
    threshold: Annotated[
        float, typer.Option(help="Cosine similarity at or above which a test row leaks from its nearest training row.")
    ] = 0.98,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Parquet of id, leaked, train_id, similarity per test row.")
    ] = None,
    backend: ShardsBackendOpt = None,
    ray_address: RayAddressOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    shard_rows: ShardRowsOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Find the rows of TEST with a near duplicate in TRAIN; neither file is changed.

    With --backend the training set is searched shard by shard, exactly, out of core.
    """
    progress = setup(quiet, verbose)
    check_output(output, train, test)
    train_set, runner = _source(train, backend, ray_address, memory_budget, shard_rows, column, id_column, "fail")
    test_set = load(test, column=column, id_column=id_column)
    found = find_leakage(train_set, test_set, threshold=threshold, random_state=seed, backend=runner, progress=progress)
    train_ids = train_set.ids if isinstance(train_set, EmbeddingSet) else read_ids(train_set, backend=runner)
    if output is not None:
        write_table(found.to_table(test_set.ids, train_ids), output)
    document = {**found.to_dict(test_set.ids, train_ids), "output": None if output is None else str(output)}
    if json_output:
        emit_json(document)
        return
    console = Console()
    search = "exact search" if found.exact else f"approximate search, recall@1 {found.recall:.3f}"
    console.print(
        f"[bold]{data_name(test)}[/]: {document['leaked']:,} of {document['n_test']:,} test rows "
        f"({document['fraction']:.1%}) have a training row at cosine >= {threshold:g} in {data_name(train)} ({search})"
        + (f" -> {output}" if output is not None else "")
    )
    for example in document["examples"]:
        console.print(f"  {example['test_id']} ~ {example['train_id']}: {example['similarity']:.4f}")


@curate_app.command("sample")
@handles_errors
def sample_command(
    data: DataArg,
    size: Annotated[int, typer.Option("--size", "-n", help="Rows to choose (at most the rows of DATA).")],
    method: Annotated[
        str,
        typer.Option(
            help=f"{', '.join(SAMPLE_METHODS)}: balanced over a hierarchical k-means tree, weighted by sensitivity, "
            "k-medoids, or uniform."
        ),
    ] = "balanced",
    n_clusters: Annotated[
        str | None,
        typer.Option(
            "--n-clusters",
            help="balanced: clusters per level, bottom first, e.g. '300,30' (default about sqrt(n), then tenths); "
            "sensitivity: k of the k-means (default size / 10).",
        ),
    ] = None,
    within: Annotated[
        str, typer.Option(help=f"balanced: rows taken inside a bottom cluster ({', '.join(WITHIN_CLUSTER)}).")
    ] = "random",
    resamples: Annotated[
        int, typer.Option("--resamples", help="balanced: resampling steps per level of the tree (the paper: 10).")
    ] = 3,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Parquet of id, keep, reason, group, weight per row.")
    ] = None,
    backend: ShardsBackendOpt = None,
    ray_address: RayAddressOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    shard_rows: ShardRowsOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Choose --size rows of DATA, each with the number of rows it stands for; DATA itself is never changed.

    With --backend (balanced, sensitivity, random) the shards of DATA are sampled out of core, and --output is a
    directory of one Parquet file per shard.
    """
    progress = setup(quiet, verbose)
    check_output(output, data)
    levels = _levels(n_clusters)
    if levels is not None and method == "sensitivity" and len(levels) > 1:
        raise ConfigurationError("--n-clusters takes one number for sensitivity sampling (k of its k-means).")
    source, runner = _source(data, backend, ray_address, memory_budget, shard_rows, column, id_column, on_invalid)
    result = sample(
        source,
        size,
        method=method,
        n_clusters=levels if levels is None or method == "balanced" else levels[0],
        within=within,
        n_resamples=resamples,
        random_state=seed,
        backend=runner,
        progress=progress,
    )
    if output is not None:
        _write_rows(result, source, runner, output)
    document = {**result.to_dict(), "output": None if output is None else str(output)}
    if json_output:
        emit_json(document)
        return
    console = Console()
    written = f" -> {output}" if output is not None else ""
    console.print(
        f"[bold]{data_name(data)}[/]: {result.size:,} of {result.n:,} rows sampled ({result.method}){written}"
    )
    clusters = document["clusters"]
    if clusters:
        shown = ", ".join(f"{c['sampled']}/{c['rows']}" for c in clusters[:10])
        more = f" and {len(clusters) - 10} more" if len(clusters) > 10 else ""
        console.print(f"sampled/rows in the {len(clusters)} clusters, largest first: {shown}{more}")


def _levels(text: str | None) -> tuple[int, ...] | None:
    """``"300,30"`` as (300, 30)."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigurationError(f"--n-clusters must be integers separated by commas, got {text!r}.") from None


@curate_app.command("batches")
@handles_errors
def batches(
    data: DataArg,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Rows per batch.")],
    mode: Annotated[
        str,
        typer.Option(help=f"{', '.join(BATCH_MODES)}: each batch from one cluster, or every batch over all clusters."),
    ] = "cluster",
    n_clusters: Annotated[
        int | None,
        typer.Option(
            "--n-clusters", help="k-means clusters (default: ten batches per cluster; balanced: --batch-size)."
        ),
    ] = None,
    drop_last: Annotated[bool, typer.Option("--drop-last", help="Leave out the last batch when it is short.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Parquet of batch, cluster, size, ids (a list) per batch.")
    ] = None,
    backend: ShardsBackendOpt = None,
    ray_address: RayAddressOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    shard_rows: ShardRowsOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Order the rows of DATA into training batches drawn from its k-means clusters; DATA is never changed.

    With --backend the k-means runs over the shards of DATA out of core; the batches' id lists are one file.
    """
    progress = setup(quiet, verbose)
    check_output(output, data)
    source, runner = _source(data, backend, ray_address, memory_budget, shard_rows, column, id_column, on_invalid)
    result = stratified_batches(
        source,
        batch_size,
        mode=mode,
        n_clusters=n_clusters,
        drop_last=drop_last,
        random_state=seed,
        backend=runner,
        progress=progress,
    )
    if output is not None:
        ids = source.ids if isinstance(source, EmbeddingSet) else read_ids(source, backend=runner)
        write_table(result.to_table(ids), output)
    document = {**result.to_dict(), "output": None if output is None else str(output)}
    if json_output:
        emit_json(document)
        return
    written = f" -> {output}" if output is not None else ""
    Console().print(
        f"[bold]{data_name(data)}[/]: {document['n_batches']:,} batches of {batch_size} ({result.mode}, "
        f"{result.parameters['n_clusters']} clusters), {document['single_cluster_batches']:,} from a single "
        f"cluster, {document['clusters_per_batch']['mean']:.1f} clusters per batch on average{written}"
    )
