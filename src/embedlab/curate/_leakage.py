"""Leakage: rows of a test set with a near duplicate in the training set, found through the search layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from embedlab._json import plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io import EmbeddingSet
from embedlab.io.shards import ShardedSet
from embedlab.neighbors import ShardedSearcher, knn
from embedlab.neighbors.params import SearchParams
from embedlab.scale import Backend

__all__ = ["Leakage", "find_leakage"]


@dataclass(frozen=True)
class Leakage:
    """Each test row's nearest training row and whether it is a near duplicate of it.

    Attributes
    ----------
    threshold : float
    leaked : ndarray of shape (n_test,), bool
        Cosine similarity to the nearest training row at or above ``threshold``.
    nearest : ndarray of shape (n_test,), int64
        Position of that training row.
    similarity : ndarray of shape (n_test,), float32
    exact : bool
        Whether the search was exact.
    recall : float or None
        An approximate search's recall@1 against exact search, measured on sampled test rows (None when exact).
    """

    threshold: float
    leaked: np.ndarray = field(repr=False)
    nearest: np.ndarray = field(repr=False)
    similarity: np.ndarray = field(repr=False)
    exact: bool = True
    recall: float | None = None

    @property
    def n_leaked(self) -> int:
        return int(self.leaked.sum())

    def to_table(self, test_ids: np.ndarray, train_ids: np.ndarray) -> pa.Table:
        """One row per test row: ``id``, ``leaked``, ``train_id`` (its nearest training row) and ``similarity``."""
        return pa.table(
            {
                "id": pa.array(np.asarray(test_ids)),
                "leaked": pa.array(self.leaked),
                "train_id": pa.array(np.asarray(train_ids)[self.nearest]),
                "similarity": pa.array(self.similarity),
            }
        )

    def to_dict(self, test_ids: np.ndarray, train_ids: np.ndarray, max_examples: int = 10) -> dict:
        """JSON-ready summary with the ``max_examples`` most similar leaked pairs."""
        order = np.flatnonzero(self.leaked)
        order = order[np.lexsort((order, -self.similarity[order]))][:max_examples]
        return {
            "threshold": self.threshold,
            "n_test": int(self.leaked.size),
            "leaked": self.n_leaked,
            "fraction": self.n_leaked / max(self.leaked.size, 1),
            "exact_search": self.exact,
            "recall": self.recall,
            "examples": [
                {
                    "test_id": plain(test_ids[i]),
                    "train_id": plain(train_ids[self.nearest[i]]),
                    "similarity": float(self.similarity[i]),
                }
                for i in order
            ],
        }


def find_leakage(
    train: EmbeddingSet | ShardedSet,
    test: EmbeddingSet,
    *,
    threshold: float = 0.98,
    method: str | SearchParams = "auto",
    random_state: int | None = 0,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> Leakage:
    """The rows of ``test`` whose nearest row of ``train`` has cosine similarity >= ``threshold``.

    Each test row is searched against the training rows (:func:`embedlab.neighbors.knn`, ``k = 1``); an
    approximate ``method`` reports its measured recall. A sharded training set is searched exactly, shard by
    shard on ``backend`` (:class:`~embedlab.neighbors.ShardedSearcher`), in bounded memory.

    Parameters
    ----------
    train : EmbeddingSet or ShardedSet
    test : EmbeddingSet
        Of the training set's dimension, and of its model when both name theirs.
    threshold : float, default=0.98
        Cosine similarity in (0, 1].
    method : {"auto", "exact", "hnsw", "ivf", "ivfpq"} or SearchParams, default="auto"
    random_state : int or None, default=0
    backend : {"local", "ray"} or Backend, default="local"
        Where the shards of a sharded training set are searched.
    progress : ProgressReporter, optional

    Returns
    -------
    Leakage

    Raises
    ------
    ConfigurationError
        If ``threshold`` is outside (0, 1].
    EmbeddingDataError
        If the sets differ in dimension or model.

    Examples
    --------
    >>> import numpy as np
    >>> train = EmbeddingSet(np.eye(3, dtype=np.float32))
    >>> test = EmbeddingSet(np.array([[1, 0.01, 0], [1, 1, 1]], dtype=np.float32))
    >>> find_leakage(train, test, threshold=0.99).leaked.tolist()
    [True, False]
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"threshold must be a cosine similarity in (0, 1], got {threshold!r}.")
    if train.dim != test.dim:
        train_name = getattr(train, "source", None) or getattr(train, "path", None) or "the training set"
        raise EmbeddingDataError(
            f"{train_name} has dimension {train.dim} and {test.source or 'the test set'} {test.dim}: leakage "
            "compares vectors of one model; embed both sets with the same model."
        )
    if isinstance(train, ShardedSet):
        found = ShardedSearcher(train, "cosine", backend=backend).search(test.vectors, 1, progress=progress)
        similarity = 1.0 - found.distances[:, 0]
        return Leakage(
            threshold=float(threshold),
            leaked=similarity >= threshold,
            nearest=found.indices[:, 0].astype(np.int64),
            similarity=similarity.astype(np.float32),
            exact=True,
            recall=None,
        )
    if train.model and test.model and train.model != test.model:
        raise EmbeddingDataError(
            f"the training set was embedded by {train.model!r} and the test set by {test.model!r}: similarities "
            "across models mean nothing; embed both sets with the same model."
        )
    found = knn(
        train.vectors,
        1,
        queries=test.vectors,
        metric="cosine",
        method=method,
        random_state=random_state,
        progress=progress,
    )
    similarity = found.scores[:, 0]
    return Leakage(
        threshold=float(threshold),
        leaked=similarity >= threshold,
        nearest=found.indices[:, 0].astype(np.int64),
        similarity=similarity.astype(np.float32),
        exact=found.method == "exact",
        recall=None if found.method == "exact" else found.recall,
    )
