"""``embedlab index build|show`` and ``embedlab search``: an index tuned to a target recall, its card, and
queries answered from an index or a compressed collection alike."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from embedlab._progress import ProgressReporter
from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    ColumnOpt,
    DataArg,
    IdColumnOpt,
    JsonOpt,
    OnInvalidOpt,
    QuietOpt,
    RayAddressOpt,
    SeedOpt,
    ShardRowsOpt,
    VerboseOpt,
    on_invalid_policy,
    parse_bytes,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io import load, write_table
from embedlab.io.shards import ShardedSet, open_shards
from embedlab.scale import Backend, get_backend
from embedlab.search import Index, OperatingCard, build_index, build_shard_indexes, open_searcher

index_app = typer.Typer(
    name="index",
    help="Build a faiss index tuned to the recall you need, with its operating-point card; serve it with 'search'.",
    no_args_is_help=True,
)


def _card_tables(card: OperatingCard) -> list[Table]:
    summary = Table(title="Operating point", show_header=False)
    rows = [
        ("parameters", ", ".join(f"{key}={value}" for key, value in card.params.items())),
        (f"recall@{card.k}", f"{card.recall:.4f}  [{card.ci_low:.4f}, {card.ci_high:.4f}] 95% interval"),
        ("target", "none" if card.target_recall is None else f"{card.target_recall:g}"),
        ("queries", f"{card.n_tuning_queries} to tune, {card.n_validation_queries} to validate: {card.queries}"),
        ("work per query", f"{card.multiply_adds:,.0f} multiply-adds"),
        ("queries per second", f"{card.qps:,.0f}"),
        (
            "memory",
            f"{card.memory_bytes / 2**20:,.1f} MiB"
            + (f", {card.disk_bytes / 2**20:,.1f} MiB read from disk" if card.disk_bytes else ""),
        ),
        ("build / tuning", f"{card.build_s:.1f} s / {card.tune_s:.1f} s"),
        ("intrinsic dimension", f"{card.intrinsic_dimension:.1f} (TwoNN; started the grid)"),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    strata = Table(title="Recall by stratum of the validation queries (worst first)")
    for header in ("stratum", "queries", "recall", "95% interval"):
        strata.add_column(header)
    for stratum in sorted(card.by_cluster + card.by_lid, key=lambda s: s.recall)[:8]:
        strata.add_row(
            stratum.name,
            str(stratum.n_queries),
            f"{stratum.recall:.4f}",
            f"[{stratum.ci_low:.4f}, {stratum.ci_high:.4f}]",
        )
    return [summary, strata]


@index_app.command("build")
@handles_errors
def build(
    data: DataArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Index directory to write (atomically).")],
    k: Annotated[int, typer.Option("-k", "--k", help="Neighbours per query the recall is tuned for.")] = 10,
    target_recall: Annotated[
        float, typer.Option(help="Recall@k to deliver (0 < target <= 1), judged by a lower 95% bound.")
    ] = 0.95,
    method: Annotated[
        str, typer.Option(help="auto (HNSW, or what fits --memory-budget), hnsw, ivf or ivfpq.")
    ] = "auto",
    codec: Annotated[
        str | None, typer.Option(help="Scan the codes of this codec spec (e.g. 'pca:128+int8') instead.")
    ] = None,
    memory_budget: Annotated[
        str | None, typer.Option(help="Bytes the index may hold in memory, e.g. '512MiB' or '2GB'.")
    ] = None,
    queries: Annotated[
        Path | None, typer.Option(help="Representative queries (any embeddings format); held out of DATA if omitted.")
    ] = None,
    n_queries: Annotated[int, typer.Option(help="Tuning queries, and as many validation queries.")] = 1000,
    metric: Annotated[str, typer.Option(help="cosine, l2 or ip.")] = "cosine",
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Build an index per shard of DATA out of core: 'local' (this process) or 'ray' (a Ray cluster), "
            "tuned once on the first shard. Default: one index in memory.",
        ),
    ] = None,
    ray_address: RayAddressOpt = None,
    shard_rows: ShardRowsOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Build an index of DATA tuned to --target-recall at k, and write it with its operating-point card.

    Exact ground truth on held-out (or given) queries; a small grid of configurations started from the data's
    intrinsic dimension; the setting of least work per query (counted multiply-adds, so the same data and --seed
    give the same index) whose lower 95% bound on recall@k meets the target, confirmed on
    validation queries it was not tuned on; its recall there, per cluster and per local-intrinsic-dimension
    decile. With --backend, the same tuning on the first shard, then an index per shard (docs/scale.md).
    """
    progress = setup(quiet, verbose)
    if backend is not None:
        if codec is not None or memory_budget is not None or queries is not None or method != "auto":
            raise ConfigurationError(
                "--backend tunes HNSW on the first shard: leave out --codec, --memory-budget, --queries and --method."
            )
        sharded = open_shards(data, column=column, id_column=id_column, shard_rows=shard_rows)
        runner = get_backend(backend, address=ray_address)
        _build_sharded(sharded, output, k, target_recall, metric, n_queries, runner, json_output, seed, progress)
        return
    if ray_address is not None or shard_rows is not None:
        raise ConfigurationError("--ray-address and --shard-rows need --backend local or ray.")
    emb = load(data, column=column, id_column=id_column, on_invalid=on_invalid_policy(on_invalid))
    sample = None if queries is None else load(queries, column=column).vectors
    index = build_index(
        emb,
        k=k,
        target_recall=target_recall,
        method=method,
        codec=codec,
        memory_budget=parse_bytes(memory_budget),
        queries=sample,
        metric=metric,
        n_queries=n_queries,
        random_state=seed,
        progress=progress,
    )
    index.save(output)
    if json_output:
        emit_json({"output": str(output), "card": index.card.to_dict()})
        return
    console = Console()
    for table in _card_tables(index.card):
        console.print(table)
    console.print(f"{index.card.summary()} -> {output}")


def _build_sharded(
    sharded: ShardedSet,
    output: Path,
    k: int,
    target_recall: float,
    metric: str,
    n_queries: int,
    backend: Backend,
    json_output: bool,
    seed: int,
    progress: ProgressReporter,
) -> None:
    indexes = build_shard_indexes(
        sharded,
        output,
        k=k,
        target_recall=target_recall,
        metric=metric,
        n_queries=n_queries,
        backend=backend,
        random_state=seed,
        progress=progress,
    )
    if json_output:
        emit_json({"output": str(output), "sharded": True, "params": indexes.params.to_dict(), "card": indexes.card})
        return
    card = OperatingCard.from_dict(indexes.card)
    console = Console()
    for table in _card_tables(card):
        console.print(table)
    console.print(f"Tuned on the first shard: {card.summary()}")
    console.print(f"{len(sharded)} shard indexes -> {output}")


@index_app.command("show")
@handles_errors
def show(
    index_dir: Annotated[Path, typer.Argument(help="An index written by 'embedlab index build'.")],
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Print the operating-point card of an index (its files are checked first)."""
    setup(quiet, verbose)
    index = Index.open(index_dir)
    if json_output:
        emit_json({"index": str(index_dir), "card": index.card.to_dict(), "provenance": index.provenance})
        return
    console = Console()
    for table in _card_tables(index.card):
        console.print(table)


@handles_errors
def search(
    searcher_dir: Annotated[
        Path, typer.Argument(help="An index ('embedlab index build') or a collection ('embedlab compress apply').")
    ],
    queries: Annotated[Path, typer.Option(help="Query embeddings (any embeddings format).")],
    k: Annotated[
        int | None, typer.Option("-k", help="Results per query (default: an index's tuned k, else 10).")
    ] = None,
    ef: Annotated[int | None, typer.Option("--ef", help="HNSW beam width for this search (an index only).")] = None,
    nprobe: Annotated[int | None, typer.Option(help="IVF lists scanned per query (an index only).")] = None,
    rescore: Annotated[
        int | None,
        typer.Option(
            help="Re-rank M x k candidates exactly (default: the tuned or the collection's M; 0: codes only)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write query, rank, id, score, distance rows to Parquet.")
    ] = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Answer queries from an index or a compressed collection: the k nearest ids and scores of each query."""
    progress = setup(quiet, verbose)
    served = open_searcher(searcher_dir)
    query_set = load(queries, column=column, id_column=id_column)
    if isinstance(served, Index):
        result = served.search(query_set, k, ef_search=ef, nprobe=nprobe, rescore=rescore, progress=progress)
    else:
        if ef is not None or nprobe is not None:
            raise typer.BadParameter("--ef and --nprobe apply to an index, not a compressed collection.")
        factor: int | str | None = "spec" if rescore is None else (None if rescore == 0 else rescore)
        result = served.search(query_set, 10 if k is None else k, rescore=factor)
    table = result.to_table(query_set.ids)
    if output is not None:
        write_table(table, output)
    if json_output:
        emit_json(
            {"searched": str(searcher_dir), "output": None if output is None else str(output)}
            | result.to_dict(query_set.ids)
        )
        return
    console = Console()
    how = "exact distances" if result.exact_distances else "codes only"
    shown = Table(title=f"Top {result.k} ({how})", caption=f"{len(query_set):,} queries, {result.method} search")
    for header in ("query", "rank", "id", "score"):
        shown.add_column(header)
    for row in table.slice(0, min(table.num_rows, 5 * result.k)).to_pylist():
        shown.add_row(str(row["query"]), str(row["rank"]), str(row["id"]), f"{row['score']:.4f}")
    console.print(shown)
    if output is not None:
        console.print(f"{table.num_rows:,} results written to {output}")
