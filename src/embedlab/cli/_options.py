"""Options shared by every command, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab.io.validation import OnInvalid

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed, for commands with any randomness.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Show errors only: no progress, no notes.")]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr (-vv: debug).")]
ColumnOpt = Annotated[
    str | None,
    typer.Option("--column", help="Vector column (Parquet, Arrow, Lance) or array (npz); auto-detected."),
]
IdColumnOpt = Annotated[str | None, typer.Option("--id-column", help="Id column; 'id' when present, else row numbers.")]
OnInvalidOpt = Annotated[
    str,
    typer.Option(
        "--on-invalid",
        help="'fail' on invalid rows (NaN/Inf, zero vectors, empty texts, repeated ids) or 'drop' them and list them.",
    ),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Where the shards are processed: 'local' (this process, one shard at a time) or 'ray' (the scale extra).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", help="Ray cluster for --backend ray ('auto', host:6379); default: a new local one."),
]
DataArg = Annotated[Path, typer.Argument(help="Embeddings: .npy, .npz, .parquet, .arrow/.feather or a Lance dataset.")]


def on_invalid_policy(value: str) -> OnInvalid:
    """Map the CLI's ``fail|drop`` to the API's ``raise|drop``."""
    if value not in ("fail", "drop"):
        raise typer.BadParameter(f"must be 'fail' or 'drop', not {value!r}.", param_hint="--on-invalid")
    return "raise" if value == "fail" else "drop"


OpenOpt = Annotated[bool, typer.Option("--open", help="Open the report in the default web browser when written.")]
