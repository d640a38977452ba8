"""``embedlab embed``: texts in a file -> an embeddings Parquet file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    BackendOpt,
    IdColumnOpt,
    JsonOpt,
    OnInvalidOpt,
    QuietOpt,
    RayAddressOpt,
    SeedOpt,
    VerboseOpt,
    on_invalid_policy,
)
from embedlab.embed import embed_file
from embedlab.scale import get_backend


@handles_errors
def embed(
    input_path: Annotated[Path, typer.Argument(help="Texts: .txt (one per line), .jsonl, .csv or .parquet.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The embeddings .parquet file to write.")],
    text_column: Annotated[str | None, typer.Option(help="Column with the texts; 'text' when present.")] = None,
    id_column: IdColumnOpt = None,
    model: Annotated[
        Path | None,
        typer.Option(help="A sentence-transformers model folder; default: bundled all-MiniLM-L6-v2."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 64,
    shard_size: Annotated[int, typer.Option(help="Rows per resumable shard.")] = 4096,
    token_embeddings: Annotated[
        bool,
        typer.Option(
            "--token-embeddings",
            help="Write each text's token vectors (last layer, unit-normalised): a multi-vector file for "
            "'embedlab multivector'.",
        ),
    ] = False,
    keep_special: Annotated[
        bool, typer.Option("--keep-special", help="With --token-embeddings, keep [CLS], [SEP] and the like.")
    ] = False,
    backend: BackendOpt = "local",
    ray_address: RayAddressOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Embed every text of INPUT_PATH into OUTPUT (ids, texts, vectors and the other columns).

    Work is saved in shards beside OUTPUT; re-running the same command resumes an interrupted run.
    With --backend ray the shards are encoded by Ray workers, each loading the model once (the model folder
    and OUTPUT must be on a file system every node sees). Nothing is downloaded: the model is read from a
    local folder. --seed is accepted for uniformity; embedding is deterministic.
    """
    progress = setup(quiet, verbose)
    report = embed_file(
        input_path,
        output,
        text_column=text_column,
        id_column=id_column,
        model=model,
        batch_size=batch_size,
        shard_size=shard_size,
        on_invalid=on_invalid_policy(on_invalid),
        token_embeddings=token_embeddings,
        keep_special=keep_special,
        backend=get_backend(backend, address=ray_address),
        progress=progress,
    )
    if json_output:
        emit_json(report.to_dict())
        return
    console = Console()
    reused = f", {report.shards_reused} of {report.shards} shards reused" if report.shards_reused else ""
    what = "the tokens of " if token_embeddings else ""
    console.print(
        f"Embedded {what}{report.n:,} texts ({report.dim}-d, {report.model}) into {report.output} "
        f"in {report.seconds:.1f} s{reused}."
    )
    for dropped in report.validation["dropped"]:
        console.print(f"[yellow]dropped {dropped['count']} row(s) with {dropped['reason']}:[/] {dropped['ids']}")
