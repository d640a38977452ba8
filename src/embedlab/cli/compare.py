"""``embedlab compare A B``: is model B's space like model A's on the same items?"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
from embedlab.compare import Comparison, StitchingResult, compare_spaces, zero_shot_stitching
from embedlab.io import load


@handles_errors
def compare(
    a: DataArg,
    b: Annotated[str, typer.Argument(help="The same items embedded by the other model, paired with A by id.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Neighbours per row (cosine) for the neighbour scores.")] = 10,
    permutations: Annotated[
        int, typer.Option("--permutations", help="Random re-pairings of the rows for the null (0: none).")
    ] = 20,
    sample: Annotated[
        int, typer.Option("--sample", help="Rows for CKA, SVCCA and Procrustes and their nulls (0: all rows).")
    ] = 5000,
    clusters: Annotated[
        int | None, typer.Option("--clusters", help="k-means clusters of A for the breakdown (default min(10, n/50)).")
    ] = None,
    stitch_labels: Annotated[
        str | None,
        typer.Option(
            "--stitch-labels",
            help="Metadata column of A with a class per row: also train a probe on A's relative representation "
            "and test it, unchanged, on B's (zero-shot stitching).",
        ),
    ] = None,
    anchors: Annotated[int, typer.Option("--anchors", help="Anchors of the relative representation.")] = 300,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    column_b: Annotated[str | None, typer.Option("--column-b", help="Vector column of B (default: --column).")] = None,
    id_column_b: Annotated[
        str | None, typer.Option("--id-column-b", help="Id column of B (default: --id-column).")
    ] = None,
    on_invalid: OnInvalidOpt = "fail",
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Compare two embeddings of the same items: CKA, mutual kNN, CKNNA, SVCCA, Procrustes, retrieval overlap
    and similarity rank correlation, each against a random re-pairing, and the clusters where they disagree."""
    progress = setup(quiet, verbose)
    policy = on_invalid_policy(on_invalid)
    first = load(a, column=column, id_column=id_column, on_invalid=policy)
    second = load(
        b,
        column=column if column_b is None else column_b,
        id_column=id_column if id_column_b is None else id_column_b,
        on_invalid=policy,
    )
    result = compare_spaces(
        first,
        second,
        k=k,
        n_permutations=permutations,
        sample=None if sample == 0 else sample,
        clusters=clusters,
        random_state=seed,
        progress=progress,
    )
    stitching = None
    if stitch_labels is not None:
        stitching = zero_shot_stitching(first, second, stitch_labels, n_anchors=anchors, random_state=seed)
    if json_output:
        emit_json({**result.to_dict(), "stitching": None if stitching is None else stitching.to_dict()})
        return
    _render(result, data_name(a), data_name(b))
    if stitching is not None:
        _render_stitching(stitching, stitch_labels)


def _render(result: Comparison, name_a: str, name_b: str) -> None:
    console = Console()
    left_out = (
        f" ({result.n_only_a:,} only in A, {result.n_only_b:,} only in B)" if result.n_only_a or result.n_only_b else ""
    )
    console.print(
        f"[bold]{name_a}[/] ({result.dim_a} dims) vs [bold]{name_b}[/] ({result.dim_b} dims): "
        f"{result.n_pairs:,} pairs{left_out}, {result.parameters['n_permutations']} permutations "
        f"({result.seconds:.1f} s)"
    )
    table = Table(title="Similarity scores against a random re-pairing of the rows", title_justify="left")
    for header in ("score", "value", "null mean ± std", "p-value", "rows", "reading"):
        table.add_column(header, justify="left" if header in ("score", "reading") else "right")
    for score in result.scores:
        table.add_row(
            score.name + ("" if score.higher_is_similar else " (distance)"),
            f"{score.value:.4f}",
            f"{score.null_mean:.4f} ± {score.null_std:.4f}",
            f"{score.p_value:.3f}",
            f"{score.n_rows:,}",
            score.reading,
        )
    console.print(table)
    if result.clusters:
        k = result.parameters["k"]
        clusters = Table(
            title=f"Clusters of A, least agreement first (neighbours among all {result.n_pairs:,} pairs)",
            title_justify="left",
        )
        for header in ("cluster", "size", f"mutual {k}-NN", f"top-{k} Jaccard"):
            clusters.add_column(header, justify="right")
        for row in result.clusters:
            clusters.add_row(str(row.cluster), f"{row.size:,}", f"{row.mutual_knn:.3f}", f"{row.retrieval_overlap:.3f}")
        console.print(clusters)


def _render_stitching(result: StitchingResult, column: str) -> None:
    table = Table(
        title=f"Probe of {column!r} ({result.n_train:,} training rows, {result.n_test:,} test rows, "
        f"{result.n_anchors} {result.method} anchors)",
        title_justify="left",
    )
    table.add_column("trained on A, tested on")
    table.add_column("accuracy", justify="right")
    for label, value in (
        ("A, absolute coordinates", result.absolute_accuracy),
        ("A, relative representation", result.within_accuracy),
        ("B, relative representation (zero-shot stitching)", result.stitched_accuracy),
        ("chance (most frequent class)", result.chance_accuracy),
    ):
        table.add_row(label, f"{value:.4f}")
    Console().print(table)
