"""``embedlab demo``: the main job on the bundled WordNet corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import JsonOpt, QuietOpt, SeedOpt, VerboseOpt
from embedlab.demo import run_demo


@handles_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's outputs.")] = Path("embedlab-demo"),
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Embed the bundled WordNet corpus (20,000 synsets, offline), build its kNN graph and summarise it."""
    progress = setup(quiet, verbose)
    result = run_demo(out, seed=seed, progress=progress)
    if json_output:
        emit_json(result.to_dict())
        return
    found = result.description
    console = Console()
    embedded = f"embedded in {result.embed_seconds:.0f} s" if result.embed_seconds else "reused from an earlier run"
    console.print(
        f"[bold]WordNet demo[/]: {found.n:,} synsets x {found.dim} dims ({found.model}), {embedded} -> "
        f"{result.embeddings}"
    )
    console.print(
        f"norms {found.norm_min:.3f}-{found.norm_max:.3f}; {found.duplicate_rows} duplicate vectors; "
        f"kNN graph (k=10, {result.knn_method}, recall {result.knn_recall:.3f}) in {result.knn_seconds:.1f} s"
    )
    table = Table(title="Nearest neighbours", title_justify="left")
    table.add_column("synset", style="bold", max_width=40)
    table.add_column("5 nearest synsets")
    for query, hits in result.neighbours.items():
        table.add_row(query, "\n".join(hits))
    console.print(table)
    console.print("Next: the HTML report of this set (see README).")
