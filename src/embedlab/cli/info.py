"""``embedlab info``: what an embeddings file holds, bad values included."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    BackendOpt,
    ColumnOpt,
    DataArg,
    IdColumnOpt,
    JsonOpt,
    MemoryBudgetOpt,
    QuietOpt,
    RayAddressOpt,
    SeedOpt,
    ShardRowsOpt,
    VerboseOpt,
    parse_bytes,
)
from embedlab.io import describe
from embedlab.io.shards import open_shards
from embedlab.scale import get_backend


@handles_errors
def info(
    data: DataArg,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    backend: BackendOpt = "local",
    ray_address: RayAddressOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    shard_rows: ShardRowsOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Show N, D, dtype, norm statistics, NaN/Inf, zero and duplicate counts of DATA (one streaming pass, shard by
    shard; --backend ray counts the shards on a Ray cluster).

    --seed is accepted for uniformity; this command has no randomness.
    """
    progress = setup(quiet, verbose)
    runner = get_backend(backend, address=ray_address)
    sharded = open_shards(
        data,
        column=column,
        id_column=id_column,
        shard_rows=shard_rows,
        memory_budget=parse_bytes(memory_budget),
        allow_empty=True,
    )
    found = describe(sharded, backend=runner, progress=progress)
    if json_output:
        emit_json(found.to_dict())
        return
    table = Table(title=str(data), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        (
            "format",
            f"{found.format} (vectors: {found.vector_column or 'array'}, ids: {found.id_column or 'row numbers'})",
        ),
        ("rows x dim", f"{found.n:,} x {found.dim} ({found.dtype} on disk)"),
        ("model", found.model or "unknown"),
        (
            "norm min / mean / median / max",
            f"{found.norm_min:.4g} / {found.norm_mean:.4g} / {found.norm_median:.4g} / {found.norm_max:.4g}",
        ),
        ("rows with NaN or Inf", _flag(found.nan_inf_rows)),
        ("all-zero rows", _flag(found.zero_rows)),
        ("duplicate vectors", _flag(found.duplicate_rows, f" in {found.duplicate_groups:,} groups")),
        ("duplicate ids", _flag(found.duplicate_ids)),
        ("metadata columns", ", ".join(found.metadata_columns) or "none"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def _flag(count: int, suffix: str = "") -> str:
    return "0" if count == 0 else f"[yellow]{count:,}{suffix}[/]"
