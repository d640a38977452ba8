"""``embedlab demo``: the main job on the bundled WordNet corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import JsonOpt, OpenOpt, QuietOpt, SeedOpt, VerboseOpt
from embedlab.cli.report import open_in_browser
from embedlab.demo import run_demo


@handles_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's outputs.")] = Path("embedlab-demo"),
    open_report: OpenOpt = False,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Embed the bundled WordNet corpus (19,980 synsets, offline) and write its interactive HTML report."""
    progress = setup(quiet, verbose)
    result = run_demo(out, random_state=seed, progress=progress)
    if open_report:
        open_in_browser(Path(result.report))
    if json_output:
        emit_json(result.to_dict())
        return
    console = Console(soft_wrap=True)  # paths and URLs stay whole, ready to copy
    embedded = f"embedded in {result.embed_seconds:.0f} s" if result.embed_seconds else "reused from an earlier run"
    console.print(f"[bold]WordNet demo[/]: {result.n:,} synsets x {result.dim} dims, {embedded} -> {result.embeddings}")
    for line in result.recommendations:
        console.print(f"- {line}")
    table = Table(title="Nearest neighbours", title_justify="left")
    table.add_column("synset", style="bold", max_width=40)
    table.add_column("5 nearest synsets")
    for query, hits in result.neighbours.items():
        table.add_row(query, "\n".join(hits))
    console.print(table)
    console.print(
        f"Report ({result.report_bytes / 1e6:.1f} MB, {result.report_seconds:.0f} s): "
        f"[bold]{Path(result.report).resolve().as_uri()}[/] (open it in any browser; it works offline)"
    )
