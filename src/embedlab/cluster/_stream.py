"""Clustering a file larger than memory: mini-batch k-means over streamed batches, then a labelling pass."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric, MiniBatchKMeans, assign_with_margin
from embedlab.exceptions import ConfigurationError
from embedlab.io import atomic_path, iter_batches, open_source
from embedlab.io.embedding_set import ID_COLUMN, EmbeddingSet
from embedlab.io.validation import OnInvalid, prepare

__all__ = ["StreamedClusters", "kmeans_stream"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamedClusters:
    """What :func:`kmeans_stream` found: sizes, inertia and centres, without holding the rows.

    Attributes
    ----------
    n : int
        Rows labelled.
    k : int
    epochs : int
        Passes of mini-batch updates over the file.
    sizes : list of int
        Rows per cluster.
    inertia : float
        Sum of squared Euclidean distances of the rows to their centres (unit rows for cosine).
    centers : ndarray of shape (k, d), float32
    output : str or None
    n_dropped : int
        Invalid rows dropped with ``on_invalid="drop"``.
    """

    n: int
    k: int
    epochs: int
    sizes: list[int]
    inertia: float
    centers: np.ndarray = field(repr=False)
    output: str | None
    n_dropped: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without the centres)."""
        return {
            "method": "minibatch",
            "streamed": True,
            "n": self.n,
            "k": self.k,
            "epochs": self.epochs,
            "sizes": self.sizes,
            "inertia": self.inertia,
            "output": self.output,
            "n_dropped": self.n_dropped,
        }


def _label_pass(
    batches: Iterator[EmbeddingSet],
    model: MiniBatchKMeans,
    metric: ClusterMetric,
    target: Path | None,
    progress: ProgressReporter,
    n_rows: int,
) -> tuple[np.ndarray, float, int, int]:
    """Label each batch, writing ``id, cluster, confidence`` to ``target`` when given; sizes and inertia."""
    k = model.cluster_centers_.shape[0]
    sizes, inertia, n, dropped = np.zeros(k, dtype=np.int64), 0.0, 0, 0
    writer = None
    try:
        with progress.task("Labelling rows", n_rows) as advance:
            for batch in batches:
                rows = prepare(batch.vectors, metric, name="batch").vectors
                labels, margin, batch_inertia = assign_with_margin(rows, model.cluster_centers_)
                sizes += np.bincount(labels, minlength=k)
                inertia += batch_inertia
                n += labels.size
                dropped += batch.validation.n_dropped
                if target is not None:
                    table = pa.table(
                        {
                            ID_COLUMN: pa.array(batch.ids),
                            "cluster": pa.array(labels, pa.int64()),
                            "confidence": pa.array(margin, pa.float32()),
                        }
                    )
                    writer = writer or pq.ParquetWriter(target, table.schema, compression="zstd")
                    writer.write_table(table.cast(writer.schema))
                advance(batch.validation.n_input)
    finally:
        if writer is not None:
            writer.close()
    return sizes, inertia, n, dropped


def kmeans_stream(
    path: str | os.PathLike,
    n_clusters: int,
    *,
    metric: ClusterMetric = "cosine",
    batch_size: int = 65_536,
    epochs: int = 1,
    output: str | os.PathLike | None = None,
    column: str | None = None,
    id_column: str | None = None,
    on_invalid: OnInvalid = "raise",
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> StreamedClusters:
    """Cluster a file batch by batch with :class:`MiniBatchKMeans`, then label every row in a second pass.

    Memory stays near one batch plus the centres. The first batch seeds the centres (k-means++), so it must
    hold at least ``n_clusters`` rows. Batches come in file order: if the file is sorted (by source, by topic),
    use several ``epochs`` or shuffle it first, as mini-batch updates assume roughly random batches.

    Parameters
    ----------
    path : path-like
        Any format :func:`embedlab.io.iter_batches` reads.
    n_clusters : int
    metric : {"cosine", "l2"}, default="cosine"
    batch_size : int, default=65536
    epochs : int, default=1
    output : path-like, optional
        Parquet with ``id``, ``cluster``, ``confidence`` (centre margin, as :class:`KMeans`), written
        atomically as the labelling pass goes.
    column, id_column, on_invalid
        As for :func:`embedlab.io.iter_batches`.
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    StreamedClusters

    Raises
    ------
    ConfigurationError
        If ``batch_size`` is smaller than ``n_clusters`` or ``epochs`` < 1.

    References
    ----------
    Sculley (2010), "Web-scale k-means clustering", WWW.
    """
    epochs = check_int(epochs, "epochs")
    if batch_size < n_clusters:
        raise ConfigurationError(
            f"batch_size={batch_size} is smaller than n_clusters={n_clusters}: the first batch seeds the centres."
        )
    n_rows = open_source(path, column=column, id_column=id_column).info.n_rows
    model = MiniBatchKMeans(n_clusters, metric=metric, random_state=random_state)
    batches = lambda: iter_batches(path, batch_size, column=column, id_column=id_column, on_invalid=on_invalid)  # noqa: E731
    with progress.task(f"mini-batch k-means, k={n_clusters}", epochs * n_rows) as advance:
        for _ in range(epochs):
            for batch in batches():
                model.partial_fit(batch.vectors)
                advance(batch.validation.n_input)
    with atomic_path(output) if output is not None else contextlib.nullcontext() as target:
        sizes, inertia, n, dropped = _label_pass(batches(), model, metric, target, progress, n_rows)
    logger.info("streamed k-means: %d rows in %d clusters, inertia %.6g", n, n_clusters, inertia)
    return StreamedClusters(
        n=n,
        k=n_clusters,
        epochs=epochs,
        sizes=sizes.tolist(),
        inertia=inertia,
        centers=model.cluster_centers_,
        output=None if output is None else str(output),
        n_dropped=dropped,
    )
