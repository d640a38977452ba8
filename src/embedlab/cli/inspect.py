"""``embedlab inspect``: a geometry health check of an embedding set."""

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
    MaxMemoryOpt,
    OnInvalidOpt,
    QuietOpt,
    SeedOpt,
    VerboseOpt,
    bounded_memory,
    on_invalid_policy,
)
from embedlab.geometry import GeometryReport, inspect_geometry, inspect_memory
from embedlab.io import load
from embedlab.scale import MemoryEstimate


@handles_errors
def inspect(
    data: DataArg,
    labels: Annotated[str | None, typer.Option(help="Metadata column with a label per row.")] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            help="Inspect a seeded uniform sample of this many rows, read in a stream (the whole set is "
            "never in memory)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Neighbours of the shared kNN graph.")] = 10,
    metric: Annotated[str, typer.Option(help="cosine, l2 or ip (intrinsic dimension always uses l2).")] = "cosine",
    near_threshold: Annotated[float, typer.Option(help="Cosine similarity of near duplicates.")] = 0.98,
    danco: Annotated[
        bool,
        typer.Option(
            "--danco",
            help="Also run DANCo (Ceruti et al. 2014), which calibrates against simulated balls as large as the "
            "set: seconds on 10,000 rows, about a minute on 100,000.",
        ),
    ] = False,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    on_invalid: OnInvalidOpt = "fail",
    max_memory: MaxMemoryOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Intrinsic dimension (the recommended estimate, TwoNN, MLE, GRIDE, TLE, PCA; DANCo with --danco) with
    intervals, spectrum, anisotropy, hubness, duplicates, outliers and, with --labels, label structure of DATA.

    Every figure states its sample size; see docs/inspect.md for each key of --json.
    """
    progress = setup(quiet, verbose)
    policy = on_invalid_policy(on_invalid)

    def estimate(n_rows: int, dim: int) -> MemoryEstimate:
        return inspect_memory(n_rows if sample is None else min(sample, n_rows), dim, k=k)

    ways_out = "Inspect a uniform sample, read in a stream: --sample {rows} fits."
    with bounded_memory(data, max_memory, estimate, ways_out, column=column, id_column=id_column) as n_rows:
        emb = load(data, column=column, id_column=id_column, on_invalid=policy, sample=sample, random_state=seed)
        sampled_from = n_rows if sample is not None and sample < n_rows else None
        report = inspect_geometry(
            emb,
            labels=labels,
            n_total=sampled_from,
            k=k,
            metric=metric,
            near_duplicate_threshold=near_threshold,
            danco=danco,
            random_state=seed,
            progress=progress,
        )
    if json_output:
        emit_json(report.to_dict())
        return
    _render(report, str(data))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _render(report: GeometryReport, name: str) -> None:
    doc = report.to_dict()
    console = Console()
    sampled = f" (sample of {doc['n']:,} of {doc['n_total']:,})" if doc["sampled"] else ""
    console.print(f"[bold]{name}[/]: {doc['n']:,} x {doc['dim']}{sampled}")
    ids = doc["intrinsic_dimension"]
    table = Table(
        title=f"Intrinsic dimension ({ids['n_queries']:,} query points, "
        f"{ids['duplicates_excluded']:,} duplicates excluded)",
        title_justify="left",
    )
    for column in ("estimator", "value", "95% interval", "by scale"):
        table.add_column(column)
    recommended = ids["recommended"]
    agreement = {True: "estimators agree", False: "estimators disagree", None: ""}[recommended["agree"]]
    table.add_row(
        "[bold]recommended[/]",
        f"[bold]{_fmt(recommended['value'])}[/]",
        f"{_fmt(recommended['ci_low'])} - {_fmt(recommended['ci_high'])}",
        ", ".join([agreement, *(f"{k}: {_fmt(v, 1)}" for k, v in recommended["estimates"].items())]).strip(", "),
    )
    for key, label in (
        ("twonn", "TwoNN"),
        ("mle", "MLE"),
        ("gride", "GRIDE"),
        ("tle", "TLE"),
        ("danco", "DANCo"),
        ("pca90", "PCA 90%"),
        ("pca95", "PCA 95%"),
        ("pca99", "PCA 99%"),
    ):
        est = ids[key]
        if key == "danco":
            if est["value"] is not None:
                best = min(est["scale"], key=est["scale"].get)
                table.add_row(label, _fmt(est["value"]), "n/a", f"divergence {_fmt(est['scale'][best])} at {best}")
            continue
        scale = ", ".join(f"{k}: {_fmt(v, 1)}" for k, v in est["scale"].items())
        table.add_row(label, _fmt(est["value"]), f"{_fmt(est['ci_low'])} - {_fmt(est['ci_high'])}", scale)
    console.print(table)
    console.print(recommended["note"])
    lid, spread, hubs, dups = doc["lid"], doc["anisotropy"], doc["hubness"], doc["duplicates"]
    facts = Table(show_header=False, title="Geometry", title_justify="left")
    facts.add_column(style="bold")
    facts.add_column()
    rows = [
        (
            "local ID (median, IQR)",
            "n/a"
            if lid is None
            else f"{_fmt(lid['median'], 1)} ({_fmt(lid['q25'], 1)} - {_fmt(lid['q75'], 1)}), k={lid['k']}",
        ),
        ("effective rank", _fmt(doc["effective_rank"], 1)),
        ("spectrum power-law slope", _fmt(doc["spectrum"]["power_law_slope"])),
        ("mean cosine / 1st PC variance", f"{_fmt(spread['mean_cosine'], 3)} / {_fmt(spread['first_pc_variance'], 3)}"),
        ("IsoScore / spectral entropy", f"{_fmt(spread['isoscore'], 3)} / {_fmt(spread['spectral_entropy'], 3)}"),
        ("alignment / uniformity", f"{_fmt(spread['alignment'], 3)} / {_fmt(spread['uniformity'], 3)}"),
        (
            f"hubness (k={hubs['k']}): skewness, Robin Hood",
            f"{_fmt(hubs['skewness'])}, {_fmt(hubs['robin_hood'], 3)}; {hubs['antihubs']:,} anti-hubs",
        ),
        ("exact duplicates", f"{dups['exact_pairs']:,} pairs in {dups['exact_groups']:,} groups"),
        (f"near duplicates (cos >= {dups['near_threshold']})", f"{dups['near_pairs']:,} pairs"),
        ("outliers (kNN distance)", f"{doc['outliers']['count']:,}: {doc['outliers']['ids'][:5]}"),
        ("search risk", f"{doc['search_risk']['level']}: {doc['search_risk']['note']}"),
    ]
    if doc["labels"] is not None:
        labels = doc["labels"]
        rows += [
            ("kNN label accuracy", _fmt(labels["knn_accuracy"], 3)),
            ("silhouette by label", _fmt(labels["silhouette"], 3)),
            ("NC1 / NCC agreement", f"{_fmt(labels['nc1'], 3)} / {_fmt(labels['ncc_agreement'], 3)}"),
        ]
    for key, value in rows:
        facts.add_row(key, value)
    console.print(facts)
