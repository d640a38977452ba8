"""``embedlab labels ood|remove|loki``: what labels make possible: scoring new rows as out of a labelled set's
distribution, removing an attribute the labels give, and predictions placed in the geometry of the labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
import typer
from rich.console import Console

from embedlab.cli._console import emit_json, handles_errors, setup
from embedlab.cli._options import (
    ColumnOpt,
    DataArg,
    IdColumnOpt,
    JsonOpt,
    QuietOpt,
    SeedOpt,
    VerboseOpt,
    check_output,
    data_name,
)
from embedlab.geometry import label_positions, loki_predict, remove_attribute, score_ood
from embedlab.io import EmbeddingSet, load
from embedlab.io.writers import write_table

labels_app = typer.Typer(
    name="labels",
    help="Use labels: score new rows as in or out of a labelled set's distribution (NECO and kNN distance), "
    "remove an attribute the labels give (INLP) and measure what else it cost, or place a classifier's "
    "predictions in the geometry of its labels (Loki).",
    no_args_is_help=True,
)

MetricOpt = Annotated[str, typer.Option(help="cosine, l2 or ip, for the neighbours.")]
KOpt = Annotated[int, typer.Option("-k", help="Neighbours.")]


@labels_app.command("ood")
@handles_errors
def ood(
    reference: Annotated[str, typer.Argument(help="The labelled in-distribution set (any embeddings format).")],
    new: Annotated[str, typer.Argument(help="The rows to score, embedded by the same model.")],
    labels: Annotated[str, typer.Option(help="Metadata column of REFERENCE with each row's class.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Parquet of id, neco, neco_out, knn_distance, knn_out per row of NEW."),
    ] = None,
    n_components: Annotated[
        int | None, typer.Option(help="NECO's subspace dimension (default: the number of classes).")
    ] = None,
    k: KOpt = 10,
    false_positive_rate: Annotated[
        float, typer.Option(help="Share of held-out REFERENCE rows each threshold flags.")
    ] = 0.05,
    metric: MetricOpt = "cosine",
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Score each row of NEW as in or out of the distribution of the labelled REFERENCE; neither file is changed.

    NECO (the share of a row in the principal subspace of the classes) and the distance to the k-th nearest
    REFERENCE row, each with the threshold that flags --false-positive-rate of held-out REFERENCE rows.
    """
    setup(quiet, verbose)
    check_output(output, reference, new)
    reference_set = load(reference, column=column, id_column=id_column)
    new_set = load(new, column=column, id_column=id_column)
    scores = score_ood(
        reference_set,
        labels,
        new_set,
        n_components=n_components,
        k=k,
        metric=metric,
        false_positive_rate=false_positive_rate,
        random_state=seed,
    )
    if output is not None:
        write_table(scores.to_table(new_set.ids), output)
    document = {**scores.to_dict(new_set.ids), "output": None if output is None else str(output)}
    if json_output:
        emit_json(document)
        return
    flagged = document["flagged"]
    Console().print(
        f"[bold]{data_name(new)}[/] against {data_name(reference)}: NECO flags {flagged['neco']:,} of "
        f"{document['n_new']:,} rows (below {scores.neco_threshold:.4f}), the kNN distance {flagged['knn']:,} "
        f"(beyond {scores.knn_threshold:.4f}), both {flagged['both']:,}; each threshold flags "
        f"{scores.false_positive_rate:.0%} of held-out reference rows" + (f" -> {output}" if output else "")
    )
    for row in document["lowest_neco"]:
        Console().print(f"  {row['id']}: NECO {row['neco']:.4f}")


@labels_app.command("remove")
@handles_errors
def remove(
    data: DataArg,
    attribute: Annotated[str, typer.Option(help="Metadata column of the attribute to remove.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Parquet to write: DATA's rows with the attribute removed.")
    ],
    check: Annotated[
        str | None, typer.Option(help="Comma-separated metadata columns whose kNN accuracy should survive.")
    ] = None,
    k: KOpt = 10,
    metric: MetricOpt = "cosine",
    max_iter: Annotated[int, typer.Option(help="INLP rounds at most.")] = 20,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Remove what linear classifiers can read of --attribute from DATA (INLP) and write the result; DATA is never
    changed.

    Reports a fresh probe's accuracy on held-out rows before and after (against always answering the most common
    value), the kNN accuracy of each --check column before and after, and how many of each row's k neighbours
    survive.
    """
    setup(quiet, verbose)
    check_output(output, data)
    embeddings = load(data, column=column, id_column=id_column)
    others = [name.strip() for name in (check or "").split(",") if name.strip()]
    removal = remove_attribute(
        embeddings, attribute, others=others, k=k, metric=metric, max_iter=max_iter, random_state=seed
    )
    EmbeddingSet(
        removal.vectors, embeddings.ids, embeddings.metadata, source=str(data), model=embeddings.model
    ).to_parquet(output)
    document = {**removal.to_dict(), "attribute": attribute, "output": str(output)}
    if json_output:
        emit_json(document)
        return
    console = Console()
    console.print(
        f"[bold]{data_name(data)}[/]: removed {removal.n_directions} direction(s) of {attribute!r}; a fresh probe "
        f"reads it at {removal.probe_before:.3f} before and {removal.probe_after:.3f} after (always answering the "
        f"most common value: {removal.majority:.3f}); {removal.neighbours_kept:.1%} of each row's {removal.k} "
        f"neighbours kept -> {output}"
    )
    for name, (before, after) in removal.others.items():
        console.print(f"  kNN accuracy of {name!r}: {before:.3f} -> {after:.3f}")


@labels_app.command("loki")
@handles_errors
def loki(
    proba: Annotated[
        str, typer.Argument(help="Class probabilities, one row per item (any embeddings format; ids kept).")
    ],
    label_space: Annotated[
        str,
        typer.Argument(
            help="One row per label, its id the label's name: label embeddings, or with --metric precomputed the "
            "distances to every label (a square matrix)."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Parquet of id, prediction, argmax, changed per row of PROBA.")
    ],
    metric: Annotated[
        str, typer.Option(help="precomputed, l2 or cosine: how LABEL_SPACE gives the distance between labels.")
    ] = "l2",
    classes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated label names of PROBA's columns, in order (default: every label of LABEL_SPACE)."
        ),
    ] = None,
    column: ColumnOpt = None,
    id_column: IdColumnOpt = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Replace each row's argmax over PROBA by the label of LABEL_SPACE closest on average to its classes (Loki):
    a prediction can be a label the classifier was never trained on. Neither file is changed."""
    setup(quiet, verbose)
    check_output(output, proba, label_space)
    probabilities = load(proba, column=column, id_column=id_column)
    labels = load(label_space, column=column, id_column=id_column)
    names = np.asarray(labels.ids).astype(str)
    observed = None if classes is None else label_positions(names, classes.split(","))
    predicted = loki_predict(probabilities.vectors, labels.vectors, metric=metric, observed=observed)
    columns = np.arange(len(names)) if observed is None else observed
    argmax = columns[np.argmax(probabilities.vectors, axis=1)]
    write_table(
        pa.table(
            {
                "id": pa.array(probabilities.ids.tolist()),
                "prediction": names[predicted],
                "argmax": names[argmax],
                "changed": predicted != argmax,
            }
        ),
        output,
    )
    document = {
        "n": len(probabilities),
        "changed": int((predicted != argmax).sum()),
        "unobserved": int((~np.isin(predicted, columns)).sum()),
        "output": str(output),
    }
    if json_output:
        emit_json(document)
        return
    Console().print(
        f"[bold]{data_name(proba)}[/]: Loki changed {document['changed']:,} of {document['n']:,} predictions, "
        f"{document['unobserved']:,} to a label outside PROBA's classes -> {output}"
    )
