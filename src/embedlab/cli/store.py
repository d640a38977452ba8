"""``embedlab store export|import|write-back``: collections of vector stores to and from files, and per-row
columns written back by id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console

from embedlab.cli._console import emit_json, handles_errors, setup, stderr_console
from embedlab.cli._options import ColumnOpt, DataArg, IdColumnOpt, JsonOpt, QuietOpt, SeedOpt, VerboseOpt
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.stores import METRICS, MODES, PARTS_SUFFIX, Verification, export_store, import_store, write_back

store_app = typer.Typer(
    name="store",
    help="Move collections between files and vector stores (LanceDB, Qdrant, Milvus, Chroma, pgvector), and write "
    "per-row results (cluster labels, duplicate flags, sample weights) back to a collection by id.",
    no_args_is_help=True,
)

UriArg = Annotated[
    str,
    typer.Argument(
        metavar="URI",
        help="A store collection: lancedb://DIR/TABLE, qdrant://DIR/COLLECTION, qdrant+http://HOST:PORT/COLLECTION, "
        "milvus://FILE.db/COLLECTION, chroma://DIR/COLLECTION, postgresql://USER@HOST:PORT/DB?table=T.",
    ),
]
CredentialsOpt = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        help="A file whose first line is the store's password, API key or token (default: the store's environment "
        "variable, PGPASSWORD, QDRANT_API_KEY, MILVUS_TOKEN or CHROMA_API_KEY). Never put a secret in the URI.",
    ),
]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Rows per request (default: the store's limit).")]
INTERRUPTED = 130


def _verified(verification: Verification) -> str:
    error = f", max error {verification.max_abs_error:.1e}" if verification.max_abs_error else ""
    return (
        f"verified: {verification.rows:,} rows, ids {'match' if verification.ids_match else 'DIFFER'}, "
        f"{verification.sampled} sampled vectors equal{error}"
    )


@store_app.command("export")
@handles_errors
def export(
    uri: UriArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write (atomically).")],
    column: Annotated[str | None, typer.Option("--column", help="The vector field, when there are several.")] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="A payload field holding the ids (default: the store's ids).")
    ] = None,
    credentials: CredentialsOpt = None,
    batch_size: BatchOpt = None,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Discard the work folder of an export that does not match and start again."),
    ] = False,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Stream the collection URI into one Parquet file (id, embedding, payload columns), verified against the
    store (row count before and after, unique ids, sampled vectors read again) before it appears. The batches
    read are kept in OUTPUT.parts until then: interrupted, the same command resumes where it stopped."""
    progress = setup(quiet, verbose)
    try:
        result = export_store(
            uri,
            output,
            column=column,
            id_column=id_column,
            credentials=credentials,
            batch_size=batch_size,
            restart=restart,
            random_state=seed,
            progress=progress,
        )
    except KeyboardInterrupt:
        stderr_console().print(
            f"[bold yellow]interrupted:[/] the rows read so far are kept in {output}{PARTS_SUFFIX}; run the same "
            "command again to resume (or delete that folder).",
            highlight=False,
        )
        raise typer.Exit(INTERRUPTED) from None
    if json_output:
        emit_json(result.to_dict())
        return
    columns = f" and {', '.join(result.metadata_columns)}" if result.metadata_columns else ""
    resumed = f" (resumed after {result.resumed_from:,})" if result.resumed_from else ""
    Console().print(
        f"{result.n_rows:,} rows{resumed} of dimension {result.dim}{columns} -> {output} in {result.seconds:.1f} s "
        f"({result.n_rows / max(result.seconds, 1e-9):,.0f} rows/s); {_verified(result.verification)}"
    )


@store_app.command("import")
@handles_errors
def import_(
    data: DataArg,
    uri: UriArg,
    mode: Annotated[
        str, typer.Option("--mode", help="'create' a new collection, 'append' to one, or 'overwrite' it.")
    ] = "create",
    metric: Annotated[str, typer.Option("--metric", help="Distance of a created collection: cosine, l2 or ip.")] = (
        "cosine"
    ),
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    credentials: CredentialsOpt = None,
    batch_size: BatchOpt = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Progress file (default: under ~/.cache/embedlab/imports)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard a checkpoint that does not match and start again.")
    ] = False,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Write DATA (a file or another store's collection) into the collection URI, in batches the store accepts,
    then verify it (row count, id set, sampled vectors). Interrupted, the same command resumes from its
    checkpoint without writing a row twice."""
    progress = setup(quiet, verbose)
    if mode not in MODES or metric not in METRICS:
        raise ConfigurationError(f"--mode must be one of {', '.join(MODES)}; --metric one of {', '.join(METRICS)}.")
    try:
        result = import_store(
            data,
            uri,
            mode=mode,
            metric=metric,
            column=column,
            id_column=id_column,
            credentials=credentials,
            batch_size=batch_size,
            checkpoint=checkpoint,
            restart=restart,
            random_state=seed,
            progress=progress,
        )
    except KeyboardInterrupt:
        stderr_console().print(
            "[bold yellow]interrupted:[/] the rows written so far are recorded in the checkpoint; run the same "
            "command again to resume.",
            highlight=False,
        )
        raise typer.Exit(INTERRUPTED) from None
    if json_output:
        emit_json(result.to_dict())
        return
    resumed = f" (resumed after {result.resumed_from:,})" if result.resumed_from else ""
    Console().print(
        f"{result.written:,} rows{resumed} -> {uri} ({result.mode}) in {result.seconds:.1f} s "
        f"({result.written / max(result.seconds, 1e-9):,.0f} rows/s); {_verified(result.verification)}"
    )


@store_app.command("write-back")
@handles_errors
def write_back_(
    uri: UriArg,
    table_path: Annotated[
        Path,
        typer.Argument(
            metavar="TABLE",
            help="Parquet file or folder of per-row results keyed by id (what 'embedlab cluster -o', 'curate dedup "
            "-o' or 'curate sample -o' wrote).",
        ),
    ],
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns to write (default: all but the ids).")
    ] = None,
    key: Annotated[str, typer.Option("--key", help="The id column of TABLE.")] = "id",
    prefix: Annotated[
        str, typer.Option("--prefix", help="Prefix for the written names, e.g. 'dedup_' (keeps runs apart).")
    ] = "",
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="The collection's payload field holding the ids.")
    ] = None,
    credentials: CredentialsOpt = None,
    batch_size: BatchOpt = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Set TABLE's columns on the rows of URI with the same ids (payload, metadata or table columns), without
    touching the vectors. TABLE's ids must be unique and all in the collection, or nothing is written."""
    progress = setup(quiet, verbose)
    table = _read_table(table_path)
    chosen = None if columns is None else [name.strip() for name in columns.split(",") if name.strip()]
    if chosen is not None and key not in table.column_names:
        raise ConfigurationError(f"{table_path}: no id column {key!r} (columns: {', '.join(table.column_names)}).")
    if chosen is not None:
        table = table.select([key, *chosen])
    if prefix:
        table = table.rename_columns([c if c == key else prefix + c for c in table.column_names])
    result = write_back(
        uri, table, key=key, id_column=id_column, credentials=credentials, batch_size=batch_size, progress=progress
    )
    if json_output:
        emit_json(result.to_dict())
        return
    unchanged = "vectors unchanged" if result.vectors_unchanged else "VECTORS CHANGED"
    Console().print(
        f"{', '.join(result.columns)} set on {result.updated:,} of {result.n_rows:,} rows of {uri} ({unchanged})"
    )


def _read_table(path: Path) -> pa.Table:
    if not path.exists():
        raise EmbeddingDataError(f"{path}: no such file or directory.")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise EmbeddingDataError(f"{path}: not a readable Parquet file or folder ({err}).") from err
