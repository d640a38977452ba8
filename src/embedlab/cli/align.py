"""``embedlab align fit|apply``: map one embedding model's space onto another's instead of re-embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from embedlab.align import DEFAULT_MIN_RECALL, Alignment, apply_adapter, default_methods, fit_adapter
from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    ColumnOpt,
    DataArg,
    IdColumnOpt,
    JsonOpt,
    OnInvalidOpt,
    QuietOpt,
    SeedOpt,
    VerboseOpt,
    data_name,
    on_invalid_policy,
)
from embedlab.io import load

align_app = typer.Typer(
    name="align",
    help="Fit an adapter from a new embedding model's space to an old one's (or back), and apply it.",
    no_args_is_help=True,
)


@align_app.command("fit")
@handles_errors
def fit(
    old: Annotated[
        str, typer.Argument(help="The corpus embedded by the OLD model (any embeddings format, or a store URI).")
    ],
    new: Annotated[str, typer.Argument(help="The same items embedded by the NEW model, with the same ids.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Adapter JSON to write (atomically).")],
    pairs: Annotated[int, typer.Option("--pairs", help="Most id-matched pairs used to select and fit.")] = 10_000,
    direction: Annotated[
        str,
        typer.Option(help="new-to-old: new queries into the old index; old-to-new: old rows into the new space."),
    ] = "new-to-old",
    methods: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated methods to compare (default: {', '.join(default_methods())})."),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Neighbours per query of the recall@k evaluation.")] = 10,
    cv: Annotated[int, typer.Option(help="Cross-validation folds.")] = 3,
    n_queries: Annotated[int, typer.Option(help="Most held-out evaluation queries.")] = 1000,
    min_recall: Annotated[
        float,
        typer.Option(
            help="Recall@k against full re-embedding (share of its k nearest rows found) below which the output "
            "recommends re-embedding instead."
        ),
    ] = DEFAULT_MIN_RECALL,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Pair OLD and NEW by id, choose an adapter by cross-validation, evaluate it on held-out queries, save it."""
    progress = setup(quiet, verbose)
    policy = on_invalid_policy(on_invalid)
    old_set = load(old, column=column, id_column=id_column, on_invalid=policy)
    new_set = load(new, column=column, id_column=id_column, on_invalid=policy)
    result = fit_adapter(
        old_set,
        new_set,
        direction=direction,
        methods=None if methods is None else tuple(name.strip() for name in methods.split(",") if name.strip()),
        max_pairs=pairs,
        cv=cv,
        k=k,
        n_queries=n_queries,
        min_recall=min_recall,
        random_state=seed,
        progress=progress,
    )
    result.save(output)
    if json_output:
        emit_json({**result.to_dict(), "output": str(output)})
        return
    _render_fit(result, output, k)


def _render_fit(result: Alignment, output: Path, k: int) -> None:
    console = Console()
    console.print(
        f"{result.n_pairs:,} pairs (OLD {result.d_old}-d, NEW {result.d_new}-d), {result.n_fit_pairs:,} used to "
        f"select and fit the {result.direction} adapter"
    )
    table = Table(
        title=f"Cross-validation: recall@{k} against full re-embedding in held-out folds",
        title_justify="left",
    )
    for header in ("method", "params", "score", "std", ""):
        table.add_column(header, justify="left" if header in ("method", "params", "") else "right")
    for row in result.cv_table:
        chosen = "chosen" if (row.method, row.params) == (result.method, result.params) else ""
        params = ", ".join(f"{key}={value}" for key, value in row.params.items())
        table.add_row(row.method, params, f"{row.score:.4f}", f"{row.std:.4f}", chosen)
    console.print(table)
    evaluation = result.evaluation
    if evaluation is None:
        console.print(f"[yellow]no evaluation[/]: {result.evaluation_note}")
    else:
        adapted = "NEW queries mapped, OLD index" if evaluation.direction == "new-to-old" else "NEW queries, OLD mapped"
        report = Table(
            title=f"Recall@{evaluation.k} of {evaluation.n_queries:,} held-out queries in {evaluation.n_index:,} rows "
            "(truth: NEW queries in the NEW corpus)",
            title_justify="left",
        )
        report.add_column("search")
        report.add_column(f"recall@{evaluation.k}", justify="right")
        unadapted = "n/a" if evaluation.recall_unadapted is None else f"{evaluation.recall_unadapted:.4f}"
        for label, value in (
            (f"adapted ({adapted})", f"{evaluation.recall_adapted:.4f}"),
            ("no adapter (NEW queries, OLD index)", unadapted),
            ("old model only (OLD queries, OLD index)", f"{evaluation.recall_old_to_old:.4f}"),
            ("full re-embedding (NEW queries, NEW corpus)", f"{evaluation.recall_full:.4f}"),
        ):
            report.add_row(label, value)
        console.print(report)
        if evaluation.unadapted_note:
            console.print(evaluation.unadapted_note)
        verdict = "[green]compatible[/]" if evaluation.compatible else "[red]not compatible[/]"
        console.print(
            f"fraction of full re-embedding recall recovered: {evaluation.fraction_recovered:.4f}; {verdict} "
            f"(adapted {evaluation.recall_adapted:.4f} vs old model {evaluation.recall_old_to_old:.4f}); "
            f"{evaluation.fraction_closer:.1%} of mapped rows are closer to their own row "
            f"(mean {evaluation.mean_pair_distance:.4f}) than it is to its nearest neighbour "
            f"(mean {evaluation.mean_nearest_distance:.4f})"
        )
    colour = {"adapter": "green", "re-embed": "red"}.get(result.recommendation, "yellow")
    console.print(f"[bold {colour}]{result.recommendation}[/]: {result.expectation}")
    console.print(f"adapter: [bold]{result.method}[/] -> {output}")


@align_app.command("apply")
@handles_errors
def apply(
    adapter_path: Annotated[Path, typer.Argument(help="An adapter written by 'embedlab align fit'.")],
    data: DataArg,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Mapped embeddings: a Parquet file (written atomically) or a NEW store collection (a store URI; "
            "the mapped vectors never overwrite a collection).",
        ),
    ],
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Map every row of DATA with the adapter and write them, with the same ids and columns, to --output."""
    progress = setup(quiet, verbose)
    applied = apply_adapter(
        adapter_path,
        data,
        output,
        column=column,
        id_column=id_column,
        on_invalid=on_invalid_policy(on_invalid),
        progress=progress,
    )
    if json_output:
        emit_json(applied.to_dict())
        return
    Console().print(
        f"{applied.n:,} rows of {data_name(data)} mapped by the {applied.method} adapter "
        f"({applied.dim_in} -> {applied.dim_out} dimensions) -> {output}"
    )
