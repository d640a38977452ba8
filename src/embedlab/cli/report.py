"""``embedlab report``: one self-contained interactive HTML report of an embedding set."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedlab.cli._console import emit_json, handles_errors, setup, stderr_console
from embedlab.cli._options import (
    ColumnOpt,
    DataArg,
    IdColumnOpt,
    JsonOpt,
    MaxMemoryOpt,
    OnInvalidOpt,
    OpenOpt,
    QuietOpt,
    SeedOpt,
    VerboseOpt,
    bounded_memory,
    data_name,
    on_invalid_policy,
)
from embedlab.io import load
from embedlab.report import build_report, report_memory, write_html
from embedlab.scale import MemoryEstimate


def open_in_browser(path: Path) -> None:
    """Open ``path`` in the default browser, or say where it is when no browser can be started."""
    if not webbrowser.open(path.resolve().as_uri()):
        stderr_console().print(f"No web browser could be started here; open {path.resolve()} yourself.")


@handles_errors
def report(
    data: DataArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write (atomically).")] = Path(
        "report.html"
    ),
    labels: Annotated[
        str | None, typer.Option(help="Metadata column of labels: colours the map, scores the clusters.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Metadata column of texts shown on hover ('text' when present).")
    ] = None,
    max_points: Annotated[int, typer.Option(help="Most points on the map; a uniform sample beyond.")] = 50_000,
    sample: Annotated[
        int | None,
        typer.Option(
            help="Report on a seeded uniform sample of this many rows, read in a stream (the whole set is "
            "never in memory)."
        ),
    ] = None,
    compression: Annotated[
        bool, typer.Option("--compression/--no-compression", help="Run the quick compression plan.")
    ] = True,
    metric: Annotated[str, typer.Option(help="cosine or l2.")] = "cosine",
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    max_memory: MaxMemoryOpt = None,
    open_report: OpenOpt = False,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Inspect DATA, cluster it (k chosen automatically), plan its compression and map it in 2-D, and write
    everything as ONE self-contained HTML file that works offline in any browser.

    With --json, prints the report's figures (without the map's points) and the path written.
    """
    progress = setup(quiet, verbose)
    policy = on_invalid_policy(on_invalid)

    def estimate(n_rows: int, dim: int) -> MemoryEstimate:
        return report_memory(n_rows if sample is None else min(sample, n_rows), dim, max_map_points=max_points)

    ways_out = "Report on a uniform sample, read in a stream: --sample {rows} fits."
    with bounded_memory(data, max_memory, estimate, ways_out, column=column, id_column=id_column) as n_rows:
        emb = load(data, column=column, id_column=id_column, on_invalid=policy, sample=sample, random_state=seed)
        sampled = f" (a sample of {len(emb):,} of {n_rows:,} rows)" if len(emb) < n_rows and sample else ""
        result = build_report(
            emb,
            name=data_name(data) + sampled,
            labels=labels,
            text_column=text,
            metric=metric,
            compression=compression,
            max_map_points=max_points,
            random_state=seed,
            progress=progress,
        )
        path = write_html(result, output)
    if open_report:
        open_in_browser(path)
    if json_output:
        emit_json({**result.to_dict(), "output": str(path), "bytes": path.stat().st_size})
        return
    console = Console(soft_wrap=True)  # paths and URLs stay whole, ready to copy
    console.print(f"[bold]{data}[/]: {result.n:,} x {result.dim} in {result.seconds['total']:.0f} s")
    for line in result.recommendations:
        console.print(f"- {line}")
    console.print(f"Report ({path.stat().st_size / 1e6:.1f} MB): [bold]{path.resolve().as_uri()}[/]")
