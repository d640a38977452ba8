"""Pairing two embedding sets row by row: the same items embedded by two models, matched by id.

Every capability that relates two spaces (compare, align) takes its paired rows from :func:`pair_by_id`, so
the checks for no overlap, too few pairs and partial overlap live here once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from embedlab.exceptions import EmbeddingDataError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.validation import check_vectors

__all__ = ["PairedSets", "pair_by_id"]

logger = logging.getLogger(__name__)

#: Ids quoted in an error message.
_SHOWN_IDS = 3


@dataclass(frozen=True)
class PairedSets:
    """Rows of two sets matched by id, in the order of the first set.

    Attributes
    ----------
    ids : numpy.ndarray of shape (n,)
    first, second : numpy.ndarray of shapes (n, d1) and (n, d2), float32
        Row ``i`` of each is the item ``ids[i]``; the dimensions may differ.
    n_only_first, n_only_second : int
        Rows of each set whose id the other set lacks (left out of the pairs).
    """

    ids: np.ndarray
    first: np.ndarray
    second: np.ndarray
    n_only_first: int = 0
    n_only_second: int = 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def _as_set(data: EmbeddingSet | object, name: str) -> EmbeddingSet:
    return data if isinstance(data, EmbeddingSet) else EmbeddingSet(data, name=name)


def _examples(ids: np.ndarray) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOWN_IDS].tolist())
    return shown + (", ..." if ids.size > _SHOWN_IDS else "")


def pair_by_id(
    first: EmbeddingSet | object,
    second: EmbeddingSet | object,
    *,
    min_pairs: int = 2,
    names: tuple[str, str] = ("A", "B"),
) -> PairedSets:
    """Match the rows of two embedding sets by id.

    Arrays (or sets without explicit ids) are paired by position and must have the same number of rows.
    Rows whose id only one set has are left out and counted, with a logged warning; the pairs keep the first
    set's order.

    Parameters
    ----------
    first, second : EmbeddingSet or array-like of shape (n, d)
        The two sets. Arrays are validated (no NaN, Inf or all-zero rows).
    min_pairs : int, default=2
        Fewest pairs the caller can work with.
    names : tuple of two str, default=("A", "B")
        How to call the sets in messages when they have no source path.

    Raises
    ------
    EmbeddingDataError
        When the sets share no id (quoting a few ids of each), share fewer than ``min_pairs``, or are arrays
        of different lengths.

    Examples
    --------
    >>> a = EmbeddingSet(np.eye(3), ids=["x", "y", "z"])
    >>> b = EmbeddingSet(np.ones((2, 5)) * [[1], [2]], ids=["z", "x"])
    >>> pairs = pair_by_id(a, b)
    >>> pairs.ids.tolist(), pairs.second[:, 0].tolist(), pairs.n_only_first
    (['x', 'z'], [2.0, 1.0], 1)
    """
    label_first = getattr(first, "source", None) or names[0]
    label_second = getattr(second, "source", None) or names[1]
    if not isinstance(first, EmbeddingSet) and not isinstance(second, EmbeddingSet):
        a, _, _ = check_vectors(first, name=label_first)
        b, _, _ = check_vectors(second, name=label_second)
        if a.shape[0] != b.shape[0]:
            raise EmbeddingDataError(
                f"{label_first} has {a.shape[0]} rows and {label_second} {b.shape[0]}: arrays are paired by "
                "position and need the same number of rows (give EmbeddingSets with ids to pair by id)."
            )
        pairs = PairedSets(np.arange(a.shape[0]), a, b)
    else:
        set_first, set_second = _as_set(first, label_first), _as_set(second, label_second)
        ids_first, ids_second = set_first.ids, set_second.ids
        if ids_first.dtype.kind != ids_second.dtype.kind and {ids_first.dtype.kind, ids_second.dtype.kind} & {"U", "O"}:
            ids_first, ids_second = ids_first.astype(str), ids_second.astype(str)
        shared, in_first, in_second = np.intersect1d(ids_first, ids_second, assume_unique=True, return_indices=True)
        if shared.size == 0:
            raise EmbeddingDataError(
                f"{label_first} and {label_second} share no id (for example {_examples(ids_first)} against "
                f"{_examples(ids_second)}): pairs are matched by id, so both sets must embed the same items "
                "under the same ids."
            )
        order = np.argsort(in_first)
        in_first, in_second = in_first[order], in_second[order]
        pairs = PairedSets(
            ids=set_first.ids[in_first],
            first=np.ascontiguousarray(set_first.vectors[in_first]),
            second=np.ascontiguousarray(set_second.vectors[in_second]),
            n_only_first=len(set_first) - shared.size,
            n_only_second=len(set_second) - shared.size,
        )
        if pairs.n_only_first or pairs.n_only_second:
            logger.warning(
                "%d id(s) of %s and %d of %s have no partner and are left out; %d pairs remain",
                pairs.n_only_first,
                label_first,
                pairs.n_only_second,
                label_second,
                len(pairs),
            )
    if len(pairs) < min_pairs:
        raise EmbeddingDataError(
            f"{label_first} and {label_second} give {len(pairs)} pair(s), but this needs at least {min_pairs}."
        )
    return pairs
