"""``embedlab compress plan|apply``: choose a codec, build a compressed collection (``embedlab search`` queries it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
    data_name,
    on_invalid_policy,
    sharded_run,
)
from embedlab.compress import (
    CompressedCollection,
    CompressionPlan,
    compress_shards,
    compression_memory,
    plan_compression,
)
from embedlab.compress._spec import QUANTIZERS, TRANSFORMS
from embedlab.exceptions import ConfigurationError
from embedlab.io import load
from embedlab.scale import MemoryEstimate

compress_app = typer.Typer(
    name="compress",
    help="Find the fewest bytes per vector that keep the recall you need, and build the compressed collection.",
    no_args_is_help=True,
)

QueriesOpt = Annotated[
    Path | None,
    typer.Option(help="Sample queries (any embeddings format, same dimension); held out of DATA when omitted."),
]
MetricOpt = Annotated[str, typer.Option(help="cosine (rows and queries unit-normalised) or ip (inner product).")]
_SPEC_HELP = (
    "Codec spec: transforms then one quantizer joined by '+', e.g. 'pca:256+int8' or 'binary+rescore:10'. "
    f"Transforms: {', '.join(TRANSFORMS)}. Quantizers: {', '.join(QUANTIZERS)}."
)


@compress_app.command("plan")
@handles_errors
def plan(
    data: DataArg,
    queries: QueriesOpt = None,
    k: Annotated[int, typer.Option("-k", help="Neighbours per query; recall@k is against exact search.")] = 10,
    budget_bytes: Annotated[
        int | None, typer.Option(help="Recommend the highest recall within this many code bytes per vector.")
    ] = None,
    target_recall: Annotated[
        float | None, typer.Option(help="Recommend the fewest bytes per vector reaching this recall@k.")
    ] = None,
    rescore_max: Annotated[
        int, typer.Option(help="Largest rescoring multiplier M tried (M x k candidates re-ranked exactly); 0: none.")
    ] = 10,
    codecs: Annotated[
        str | None, typer.Option(help="Comma-separated codec specs to sweep instead of the default grid.")
    ] = None,
    anchors: Annotated[
        str | None,
        typer.Option(help="Comma-separated faiss index_factory strings measured beside, e.g. 'SQ8,PQ48,LSH'."),
    ] = None,
    n_queries: Annotated[int, typer.Option(help="Queries evaluated (held out, or drawn from --queries).")] = 1000,
    metric: MetricOpt = "cosine",
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Measure recall@k, bytes per vector and query time of many codecs on DATA, and recommend one.

    Prints the Pareto frontier (no other point has fewer bytes and higher recall) and, under --budget-bytes or
    --target-recall, the recommended codec spec to pass to 'embedlab compress apply'.
    """
    progress = setup(quiet, verbose)
    emb = load(data, column=column, id_column=id_column, on_invalid=on_invalid_policy(on_invalid))
    sample = None if queries is None else load(queries, column=column).vectors
    result = plan_compression(
        emb,
        sample,
        k=k,
        budget_bytes=budget_bytes,
        target_recall=target_recall,
        rescore_max=rescore_max,
        codecs=None if codecs is None else _comma_list(codecs),
        anchors=() if anchors is None else _comma_list(anchors),
        n_queries=n_queries,
        metric=metric,
        random_state=seed,
        progress=progress,
    )
    if json_output:
        emit_json(result.to_dict())
        return
    _render_plan(result, str(data))


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _render_plan(result: CompressionPlan, name: str) -> None:
    console = Console()
    console.print(
        f"[bold]{name}[/]: {result.n_rows:,} rows x {result.dim}, {result.queries}, recall@{result.k} against exact "
        f"{result.metric} search ({result.seconds:.0f} s)"
    )
    table = Table(
        title="Pareto frontiers: fewest bytes for each recall, codes alone then rescored", title_justify="left"
    )
    for header in ("codec", "bytes/vector", f"recall@{result.k}", "ms/query", "encode s"):
        table.add_column(header, justify="left" if header == "codec" else "right")
    for point in result.frontier:
        table.add_row(
            point.codec,
            str(point.bytes_per_vector),
            f"{point.recall_at_k:.4f}",
            f"{point.query_ms:.2f}",
            f"{point.encode_s:.1f}",
        )
    console.print(table)
    if result.anchors:
        anchors = Table(title="Anchors (faiss, codes alone, same queries)", title_justify="left")
        for header in ("index", "bytes/vector", f"recall@{result.k}", "ms/query"):
            anchors.add_column(header, justify="left" if header == "index" else "right")
        for point in result.anchors:
            anchors.add_row(
                point.codec, str(point.bytes_per_vector), f"{point.recall_at_k:.4f}", f"{point.query_ms:.2f}"
            )
        console.print(anchors)
    for spec, reason in result.failures.items():
        console.print(f"[yellow]skipped {spec}[/]: {reason}")
    if result.recommended is not None:
        best = result.recommended
        console.print(
            f"recommended: [bold]{best.codec}[/] ({best.bytes_per_vector} bytes per vector, recall "
            f"{best.recall_at_k:.4f}); build it with: embedlab compress apply {name} --codec '{best.codec}' -o DIR"
        )


@compress_app.command("apply")
@handles_errors
def apply(
    data: DataArg,
    codec: Annotated[str, typer.Option("--codec", help=_SPEC_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Collection directory to write (atomically).")],
    queries: Annotated[
        Path | None, typer.Option(help="Sample queries, needed by query-aware codecs (leanvec-ood).")
    ] = None,
    keep_vectors: Annotated[
        bool | None,
        typer.Option(
            "--keep-vectors/--no-keep-vectors",
            help="Store the full vectors for rescoring (default: when the spec ends in +rescore:M).",
        ),
    ] = None,
    metric: MetricOpt = "cosine",
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Encode the shards of DATA out of core: 'local' (this process, one shard at a time) or 'ray' (a "
            "Ray cluster, the scale extra); the same collection as in memory. Default: in memory.",
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
    """Fit the codec on DATA, encode every row, and write a compressed collection to --output."""
    progress = setup(quiet, verbose)
    run = sharded_run(data, backend, ray_address, memory_budget, shard_rows, column, id_column, max_memory)
    if run is not None and on_invalid != "fail":
        raise ConfigurationError("--backend encodes every row: invalid rows fail the job (--on-invalid fail).")

    def estimate(n_rows: int, dim: int) -> MemoryEstimate:
        return compression_memory(n_rows, dim, codec)

    ways_out = (
        "Encode the set in shards read from disk: --backend local (this machine) or --backend ray (a Ray cluster)."
    )
    with bounded_memory(data, max_memory, None if run else estimate, ways_out, column=column, id_column=id_column):
        sample = None if queries is None else load(queries, column=column).vectors
        if run is not None:
            sharded, runner = run
            collection = compress_shards(
                sharded,
                codec,
                output,
                metric=metric,
                keep_vectors=keep_vectors,
                queries=sample,
                backend=runner,
                random_state=seed,
                progress=progress,
            )
        else:
            emb = load(data, column=column, id_column=id_column, on_invalid=on_invalid_policy(on_invalid))
            collection = CompressedCollection.build(
                emb,
                codec,
                metric=metric,
                keep_vectors=keep_vectors,
                queries=sample,
                random_state=seed,
                progress=progress,
            )
            collection.save(output)
    document = {
        "output": str(output),
        "n": len(collection),
        "codec": str(collection.spec),
        "bytes_per_vector": collection.codec.bytes_per_vector,
        "code_bytes": int(collection.codes.nbytes),
        "full_vectors_kept": collection.vectors is not None,
    }
    if json_output:
        emit_json(document)
        return
    kept = " and the full vectors for rescoring" if collection.vectors is not None else ""
    Console().print(
        f"{len(collection):,} rows of {data_name(data)} encoded as {collection.spec} "
        f"({collection.codec.bytes_per_vector} bytes per vector, {collection.codes.nbytes / 2**20:.1f} MiB of codes"
        f"{kept}) -> {output}"
    )
