"""``embedlab multivector plan|build|search``: late-interaction collections (one vector per token)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    BackendOpt,
    ColumnOpt,
    IdColumnOpt,
    JsonOpt,
    QuietOpt,
    RayAddressOpt,
    SeedOpt,
    VerboseOpt,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io import write_table
from embedlab.multivector import (
    DEFAULT_ENCODINGS,
    POOLING_METHODS,
    MultiVectorIndex,
    MultiVectorPlan,
    MuveraEncoder,
    build_multivector_index,
    load_multivector,
    plan_multivector,
)
from embedlab.scale import get_backend

multivector_app = typer.Typer(
    name="multivector",
    help="Multi-vector (late-interaction, one vector per token) collections: plan, build and search a MUVERA index "
    "with exact MaxSim reranking. Write token vectors with 'embedlab embed --token-embeddings'.",
    no_args_is_help=True,
)

DocumentsArg = Annotated[
    Path, typer.Argument(help="Documents' token vectors: a Parquet file or folder, or Lance dataset (column 'tokens').")
]
QueriesArg = Annotated[Path, typer.Argument(help="Queries' token vectors, in the same format.")]
KSimOpt = Annotated[int, typer.Option("--k-sim", help="SimHash hyperplanes per repetition (2^k partitions).")]
DProjOpt = Annotated[int, typer.Option("--d-proj", help="Dimension each token is projected to (0: none).")]
RepetitionsOpt = Annotated[int, typer.Option("--repetitions", help="Independent repetitions concatenated.")]
PoolOpt = Annotated[int, typer.Option("--pool-factor", help="Token pooling: keep about tokens / FACTOR (1: none).")]


def _encodings(text: str | None) -> list[tuple[int, int, int]]:
    if text is None:
        return list(DEFAULT_ENCODINGS)
    try:
        found = [tuple(int(v) for v in item.split(":")) for item in text.split(",") if item.strip()]
    except ValueError:
        found = []
    if not found or any(len(e) != 3 for e in found):
        raise ConfigurationError(f"--encodings takes K_SIM:D_PROJ:REPETITIONS items separated by commas, got {text!r}.")
    return found  # type: ignore[return-value]


def _ints(text: str, name: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigurationError(f"{name} takes integers separated by commas, got {text!r}.") from None


@multivector_app.command("plan")
@handles_errors
def plan(
    documents: DocumentsArg,
    queries: QueriesArg,
    k: Annotated[int, typer.Option("-k", help="Documents per query (recall@k of exact MaxSim).")] = 10,
    target_recall: Annotated[float, typer.Option(help="Recall@k of exact MaxSim to reach.")] = 0.9,
    encodings: Annotated[
        str | None, typer.Option(help="K_SIM:D_PROJ:REPETITIONS encodings to sweep, e.g. '4:16:20,5:32:20'.")
    ] = None,
    pool_factors: Annotated[str, typer.Option(help="Token pooling factors to sweep.")] = "1,2,3,4",
    candidates: Annotated[str, typer.Option(help="Candidate counts to sweep.")] = "10,20,50,100,200,500,1000",
    codecs: Annotated[
        str, typer.Option(help="Codec specs the encodings are searched under, e.g. 'float32,int8,pca:512+int8'.")
    ] = "float32",
    relevant_column: Annotated[
        str | None, typer.Option(help="A column of QUERIES naming each query's relevant document id.")
    ] = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Measure how many candidates each encoding, pooling factor and the single-vector token heuristic need to
    reach the target recall of exact MaxSim top-k on these documents and queries, with bytes per document and
    query time, and recommend the cheapest setting that reaches it."""
    progress = setup(quiet, verbose)
    docs = load_multivector(documents, column=column, id_column=id_column)
    query_set = load_multivector(queries, column=column)
    relevant = None
    if relevant_column is not None:
        if query_set.metadata is None or relevant_column not in query_set.metadata.column_names:
            raise ConfigurationError(f"{queries}: no column {relevant_column!r} naming relevant documents.")
        relevant = query_set.metadata.column(relevant_column).to_pylist()
    result = plan_multivector(
        docs,
        query_set,
        k=k,
        target_recall=target_recall,
        encodings=_encodings(encodings),
        pool_factors=_ints(pool_factors, "--pool-factors"),
        candidates=_ints(candidates, "--candidates"),
        codecs=[spec.strip() for spec in codecs.split(",") if spec.strip()],
        relevant=relevant,
        random_state=seed,
        progress=progress,
    )
    if json_output:
        emit_json(result.to_dict())
        return
    _render_plan(result, documents)


def _render_plan(result: MultiVectorPlan, documents: Path) -> None:
    console = Console()
    console.print(
        f"[bold]{documents}[/]: {result.n_documents:,} documents ({result.n_tokens:,} tokens), {result.n_queries:,} "
        f"queries; exact MaxSim takes {result.exact_query_ms:.1f} ms a query"
    )
    table = Table(title=f"Candidates needed for recall@{result.k} >= {result.target_recall}", title_justify="left")
    for header in ("configuration", "candidates"):
        table.add_column(header, justify="left" if header == "configuration" else "right")
    for label, needed in result.candidates_needed.items():
        table.add_row(label, "not reached" if needed is None else f"{needed:,.0f}")
    console.print(table)
    best = result.recommended
    if best is None:
        console.print("[yellow]no configuration swept reaches the target[/]: sweep more candidates or encodings.")
        return
    console.print(
        f"recommended: [bold]{best.method}[/] pool factor {best.pool_factor}"
        + (
            f", k_sim {best.k_sim}, d_proj {best.d_proj}, {best.repetitions} repetitions, codec {best.codec}"
            if best.method == "muvera"
            else ""
        )
        + f", {best.candidates:,.0f} candidates: recall {best.maxsim_recall:.3f}, {best.bytes_per_document:,.0f} bytes "
        f"a document, {best.query_ms:.2f} ms a query"
    )


@multivector_app.command("build")
@handles_errors
def build(
    documents: DocumentsArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The index folder to write (atomically).")],
    k_sim: KSimOpt = 5,
    d_proj: DProjOpt = 16,
    repetitions: RepetitionsOpt = 20,
    final_dim: Annotated[
        int | None, typer.Option(help="Reduce each encoding to this dimension (count sketch).")
    ] = None,
    pool_factor: PoolOpt = 1,
    pool_method: Annotated[str, typer.Option(help=f"Token pooling: {' or '.join(POOLING_METHODS)}.")] = "hierarchical",
    candidates: Annotated[int, typer.Option(help="Candidates a search reranks by default.")] = 100,
    codec: Annotated[
        str | None, typer.Option(help="Compress the encodings with this codec spec (e.g. 'int8'); default: float32.")
    ] = None,
    batch_rows: Annotated[int, typer.Option(help="Documents read, pooled and encoded at a time.")] = 4096,
    shard_rows: Annotated[int, typer.Option(help="Documents a shard holds (a task of --backend).")] = 65_536,
    backend: BackendOpt = "local",
    ray_address: RayAddressOpt = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Pool and encode DOCUMENTS shard by shard (on --backend) into an index folder: the (pooled) token vectors
    and one MUVERA encoding per document (encodings/, an ordinary embedding set)."""
    progress = setup(quiet, verbose)
    encoder = MuveraEncoder(k_sim, d_proj or None, repetitions, final_dim=final_dim, random_state=seed)
    manifest = build_multivector_index(
        documents,
        output,
        encoder=encoder,
        pool_factor=pool_factor,
        pool_method=pool_method,
        candidates=candidates,
        codec=codec,
        column=column,
        id_column=id_column,
        batch_rows=batch_rows,
        shard_rows=shard_rows,
        backend=get_backend(backend, address=ray_address),
        progress=progress,
    )
    if json_output:
        emit_json({"output": str(output), **manifest})
        return
    Console().print(
        f"{manifest['n_documents']:,} documents ({manifest['n_tokens']:,} tokens after pooling) -> {output}: "
        f"encodings of {manifest['encoding_dim']:,} dimensions"
    )


@multivector_app.command("search")
@handles_errors
def search(
    index_path: Annotated[Path, typer.Argument(metavar="INDEX", help="A folder 'embedlab multivector build' wrote.")],
    queries: QueriesArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results: query, rank, id, score (Parquet).")],
    k: Annotated[int, typer.Option("-k", help="Documents per query.")] = 10,
    candidates: Annotated[int | None, typer.Option(help="Candidates reranked (default: the index's).")] = None,
    column: ColumnOpt = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Search INDEX with the queries' token vectors: encoding candidates, reranked by exact MaxSim."""
    setup(quiet, verbose)
    index = MultiVectorIndex.open(index_path, candidates=candidates)
    query_set = load_multivector(queries, column=column)
    result = index.search(query_set, k)
    write_table(result.to_table(query_set.ids), output)
    if json_output:
        emit_json({"output": str(output), "queries": len(query_set), "k": k, "candidates": index.searcher.candidates})
        return
    Console().print(
        f"{len(query_set):,} queries, top {k} of {len(index):,} documents ({index.searcher.candidates} candidates "
        f"reranked each) -> {output}"
    )
