"""Options shared by every command, declared once."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from embedlab.exceptions import ConfigurationError
from embedlab.io.readers import open_source
from embedlab.io.shards import ShardedSet, open_shards
from embedlab.io.stores import is_store_uri, parse_uri
from embedlab.io.validation import OnInvalid
from embedlab.scale import (
    Backend,
    MemoryEstimate,
    check_memory,
    get_backend,
    memory_limit,
    memory_room,
    process_memory,
    rows_that_fit,
)

logger = logging.getLogger("embedlab")

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
ShardsBackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Process the shards of DATA out of core: 'local' (this process, one shard at a time) or 'ray' (a Ray "
        "cluster, the scale extra); --output is then a directory of one Parquet file per shard. Default: in memory.",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", help="Ray cluster for --backend ray ('auto', host:6379); default: a new local one."),
]
MemoryBudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--memory-budget",
        help="Bytes one task may hold, e.g. '2GiB': shards are sized so two fit; a set whose indivisible parts "
        "(row groups, files) do not fit is refused.",
    ),
]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="Most memory this command may take, e.g. '8GiB': refused before it starts when it is estimated to need "
        "more, stopped if it grows past it. Default: the memory this machine has available.",
    ),
]
ShardRowsOpt = Annotated[int | None, typer.Option("--shard-rows", help="Rows per shard (default: 256 MiB of vectors).")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A parameter of the method's estimator, KEY=VALUE (repeatable): numbers, true/false, none, JSON lists, "
        "else text. Example: --method swav --param codes=sp2ot --param epochs=10.",
    ),
]
DataArg = Annotated[
    str,
    typer.Argument(
        metavar="DATA",
        help="Embeddings: .npy, .npz, .parquet, .arrow/.feather, a Lance dataset, or a vector store's URI "
        "(lancedb://DIR/TABLE, qdrant://DIR/COLLECTION, milvus://FILE.db/COLLECTION, chroma://DIR/COLLECTION, "
        "postgresql://USER@HOST/DB?table=T; secrets from the store's environment variable, see docs/stores.md).",
    ),
]


def data_name(data: str) -> str:
    """How messages call DATA: a file's name, or a store's collection.

    Examples
    --------
    >>> data_name("runs/x.parquet"), data_name("qdrant://db/docs")
    ('x.parquet', 'docs')
    """
    if is_store_uri(data):
        return parse_uri(data).collection
    return Path(data).name


def check_output(output: Path | None, *inputs: str) -> None:
    """Refuse an output path that is one of the inputs, before any work (a store URI is never a path)."""
    files = {Path(path).resolve() for path in inputs if not is_store_uri(path)}
    if output is not None and output.resolve() in files:
        raise ConfigurationError(f"--output {output} is an input: embedlab never overwrites its input.")


def parse_params(values: list[str] | None) -> dict[str, object]:
    """``KEY=VALUE`` strings as keyword arguments: JSON values (numbers, lists, true/false), ``none``, else text.

    >>> parse_params(["codes=sp2ot", "epochs=10", "learning_rate=1e-3", "hidden_dims=[64, 64]", "epsilon=none"])
    {'codes': 'sp2ot', 'epochs': 10, 'learning_rate': 0.001, 'hidden_dims': [64, 64], 'epsilon': None}
    """
    params: dict[str, object] = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key.strip().isidentifier():
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}.", param_hint="--param")
        if text.strip().lower() in ("none", "null"):
            params[key.strip()] = None
            continue
        try:
            params[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[key.strip()] = text
    return params


def on_invalid_policy(value: str) -> OnInvalid:
    """Map the CLI's ``fail|drop`` to the API's ``raise|drop``."""
    if value not in ("fail", "drop"):
        raise typer.BadParameter(f"must be 'fail' or 'drop', not {value!r}.", param_hint="--on-invalid")
    return "raise" if value == "fail" else "drop"


OpenOpt = Annotated[bool, typer.Option("--open", help="Open the report in the default web browser when written.")]


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(text: str | None, option: str = "--memory-budget") -> int | None:
    """``"512MiB"``, ``"2GB"``, ``"1500000"`` as a number of bytes (None stays None).

    Examples
    --------
    >>> parse_bytes("1.5GiB"), parse_bytes("200mb"), parse_bytes("4096")
    (1610612736, 200000000, 4096)
    """
    if text is None:
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise typer.BadParameter(
            f"{text!r} is not a size; write bytes, or a number with KB, MB, GB, KiB, MiB or GiB.",
            param_hint=option,
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def sharded_run(
    data: str,
    backend: str | None,
    ray_address: str | None,
    memory_budget: str | None,
    shard_rows: int | None,
    column: str | None,
    id_column: str | None,
    max_memory: str | None = None,
) -> tuple[ShardedSet, Backend] | None:
    """The shards of DATA and the backend to process them on when ``--backend`` is given, else None (the
    command runs in memory, and the options that only shards take are refused). Without ``--memory-budget``,
    a ``--max-memory`` bounds the shards: what this process does not hold yet is the budget."""
    if backend is None:
        if ray_address is not None or memory_budget is not None or shard_rows is not None:
            raise ConfigurationError("--ray-address, --memory-budget and --shard-rows need --backend local or ray.")
        return None
    runner = get_backend(backend, address=ray_address)
    budget = parse_bytes(memory_budget)
    bound = parse_bytes(max_memory, "--max-memory")
    if budget is None and bound is not None:
        budget = bound - process_memory()
        if budget <= 0:
            raise ConfigurationError(
                f"--max-memory {max_memory} is less than this process already holds ({process_memory():,} bytes)."
            )
    sharded = open_shards(data, column=column, id_column=id_column, shard_rows=shard_rows, memory_budget=budget)
    return sharded, runner


@contextmanager
def bounded_memory(
    data: str,
    max_memory: str | None,
    estimate: Callable[[int, int], MemoryEstimate] | None,
    ways_out: str = "",
    *,
    column: str | None = None,
    id_column: str | None = None,
) -> Iterator[int]:
    """Run the ``with`` block within the memory it may take; it is given the rows of DATA (from its header).

    ``estimate(n_rows, dim)`` is checked first against ``--max-memory`` or what the machine has, and the
    command refused with the estimate and ``ways_out`` when it does not fit (``{rows}`` in it becomes the most
    rows that would); pass None when the command works in shards. The block is then stopped if the process
    grows past ``--max-memory``.
    """
    bound = parse_bytes(max_memory, "--max-memory")
    info = open_source(data, column=column, id_column=id_column).info
    if estimate is not None:
        needed = estimate(info.n_rows, info.dim)
        room, _ = memory_room(bound)
        if needed.total > room:
            rows = rows_that_fit(lambda n: estimate(n, info.dim), info.n_rows, room)
            ways_out = ways_out.format(rows=f"{rows:,}")
        check_memory(needed, max_memory=bound, ways_out=ways_out)
        logger.info("memory: %s needs %s (%d bytes)", needed.job, needed.describe(), needed.total)
    with memory_limit(bound):
        yield info.n_rows
