"""Choosing an adapter between two models' embeddings by cross-validation, and measuring what it recovers.

:func:`fit_adapter` pairs the rows of OLD and NEW by id, holds out query rows, selects a method and its
hyper-parameters by K-fold cross-validation on the remaining pairs, refits the best on all of them, and
evaluates it with :func:`evaluate_alignment` on the held-out queries.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._json import json_safe
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.align._adapters import ADAPTER_TYPES, Adapter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.pairing import pair_by_id
from embedlab.io.validation import unit_rows
from embedlab.io.writers import write_json
from embedlab.neighbors import knn, recall_per_query

__all__ = [
    "DEFAULT_MIN_RECALL",
    "Alignment",
    "AlignmentEvaluation",
    "CVScore",
    "Direction",
    "default_methods",
    "evaluate_alignment",
    "fit_adapter",
]

logger = logging.getLogger(__name__)

Direction = Literal["new-to-old", "old-to-new"]
_DIRECTIONS = ("new-to-old", "old-to-new")
#: Relative ridge penalties tried by cross-validation (see RidgeAdapter).
_ALPHAS = (1e-5, 1e-3, 1e-1)
#: Shares of min(d_in, d_out) tried as ranks of the low-rank adapter.
_RANK_SHARES = (1 / 8, 1 / 4, 1 / 2)
#: A simpler method is kept when its CV score is within this of the best (recall@k).
_TIE_TOLERANCE = 2e-3
#: Most query rows of a held-out fold in the cross-validation recall.
_CV_QUERIES = 1000
#: Largest share of the pairs held out as evaluation queries.
_QUERY_SHARE = 0.2
#: Recall of full re-embedding against its own neighbours: the ground truth, so 1 by definition.
_FULL_RECALL = 1.0
#: Fewest held-out queries worth an evaluation.
_MIN_QUERIES = 10
#: Normal quantile of the two-sided 95% interval of a mean over queries.
_Z_95 = 1.959964
#: Default share of re-embedding's neighbours below which re-embedding is recommended (see fit_adapter).
DEFAULT_MIN_RECALL = 0.6


@dataclass(frozen=True)
class CVScore:
    """One candidate of the cross-validation: a method, its parameters, and its held-out score.

    Attributes
    ----------
    method : str
    params : dict
    score : float
        Mean over folds of the held-out fold's recall@k against full re-embedding (the fold's rows are the
        queries and the index; see :func:`fit_adapter`).
    std : float
        Standard deviation of the score over folds.
    """

    method: str
    params: dict
    score: float
    std: float


@dataclass(frozen=True)
class AlignmentEvaluation:
    """What an adapter recovers of full re-embedding, on held-out queries (cosine retrieval, recall@k).

    The ground truth of every recall is full re-embedding: each query's ``k`` nearest rows in the NEW
    corpus by the NEW model (itself excluded), so full re-embedding has recall 1.0 by definition. Recall is
    tie-aware (:func:`embedlab.neighbors.recall_at_k`): a returned row counts when its NEW-space distance to
    the query is within the true k-th distance.

    Attributes
    ----------
    direction : {"new-to-old", "old-to-new"}
    k, n_queries, n_index : int
        Neighbours per query, held-out queries, rows of the searched index (all pairs).
    recall_adapted : float
        ``"new-to-old"``: NEW queries mapped by the adapter, searched in the OLD index. ``"old-to-new"``: NEW
        queries searched in the OLD corpus mapped into the NEW space.
    recall_unadapted : float or None
        NEW queries searched in the OLD index as they are; None when the dimensions differ
        (``unadapted_note`` says so).
    recall_old_to_old : float
        OLD queries in the OLD index: keeping the old model for everything.
    recall_interval : tuple of float
        95% interval of ``recall_adapted`` over the queries (mean +- 1.96 standard errors, clipped to [0, 1]).
    recall_full : float
        Full re-embedding (NEW queries in the NEW corpus): 1.0.
    fraction_recovered : float
        ``recall_adapted / recall_full``.
    compatible : bool
        The criterion of BCT and of stationary representations: ``recall_adapted >= recall_old_to_old``.
    mean_pair_distance : float
        Mean cosine distance between a mapped row and its own target row (the same item).
    mean_nearest_distance : float
        Mean cosine distance between a target row and its nearest other target row.
    fraction_closer : float
        Share of queries whose mapped row is closer to its own target row than that row is to its nearest
        other target row (BCT's empirical compatibility).
    """

    direction: str
    k: int
    n_queries: int
    n_index: int
    recall_adapted: float
    recall_interval: tuple[float, float]
    recall_unadapted: float | None
    unadapted_note: str | None
    recall_old_to_old: float
    recall_full: float
    fraction_recovered: float
    compatible: bool
    mean_pair_distance: float
    mean_nearest_distance: float
    fraction_closer: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class Alignment:
    """A fitted adapter between two models' spaces, how it was chosen, and what it recovers.

    Attributes
    ----------
    adapter : Adapter
        Refitted on all sampled pairs; maps NEW rows to the OLD space (``"new-to-old"``) or OLD rows to the
        NEW space (``"old-to-new"``).
    direction : {"new-to-old", "old-to-new"}
    method : str
    params : dict
        The chosen candidate.
    cv_table : tuple of CVScore
        Every candidate with its cross-validated score, in the order tried.
    evaluation : AlignmentEvaluation or None
        None when too few pairs were left to hold out queries (``evaluation_note`` says why).
    n_pairs, n_fit_pairs : int
        Rows paired by id; pairs the returned adapter was fitted on (the held-out queries included).
    d_old, d_new : int
    min_recall : float
        The recall against full re-embedding the user asked for.
    recommendation : {"adapter", "re-embed", "unmeasured"}
        ``"re-embed"`` when the held-out recall is below ``min_recall``; ``"unmeasured"`` without an evaluation.
    expectation : str
        What to expect, in a sentence: the held-out recall with its interval, and the recommendation.
    """

    adapter: Adapter
    direction: str
    method: str
    params: dict
    cv_table: tuple[CVScore, ...]
    evaluation: AlignmentEvaluation | None
    evaluation_note: str | None
    n_pairs: int
    n_fit_pairs: int
    d_old: int
    d_new: int
    min_recall: float
    recommendation: str
    expectation: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the adapter's weights are in :meth:`save`'s file, not here)."""
        return json_safe(
            {
                "direction": self.direction,
                "method": self.method,
                "params": self.params,
                "n_pairs": self.n_pairs,
                "n_fit_pairs": self.n_fit_pairs,
                "d_old": self.d_old,
                "d_new": self.d_new,
                "cv_table": [asdict(row) for row in self.cv_table],
                "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
                "evaluation_note": self.evaluation_note,
                "min_recall": self.min_recall,
                "recommendation": self.recommendation,
                "expectation": self.expectation,
            }
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the adapter document, with this summary under ``"alignment"``, to ``path`` atomically.

        :func:`embedlab.align.load_adapter` reads the adapter back.
        """
        summary = self.to_dict()
        document = self.adapter.to_dict()
        kept = ("direction", "method", "n_pairs", "n_fit_pairs", "min_recall", "recommendation", "expectation")
        document["alignment"] = {key: summary[key] for key in kept}
        document["alignment"]["cv_score"] = next(
            row.score for row in self.cv_table if (row.method, row.params) == (self.method, self.params)
        )
        return write_json(document, path)


def default_methods() -> tuple[str, ...]:
    """The methods tried by default: all of them, ``"mlp"`` only when torch is installed."""
    names = tuple(ADAPTER_TYPES)
    return names if importlib.util.find_spec("torch") is not None else tuple(n for n in names if n != "mlp")


def _candidates(method: str, d_in: int, d_out: int, seed: int) -> list[dict[str, Any]]:
    """The hyper-parameter grid of one method (none for the identity between spaces of unequal dimension)."""
    if method == "identity":
        return [{}] if d_in == d_out else []
    if method == "procrustes":
        return [{"scale": False}, {"scale": True}]
    if method == "ridge":
        return [{"alpha": alpha} for alpha in _ALPHAS]
    if method in ("low-rank", "subspace"):
        most = min(d_in, d_out)
        ranks = sorted({max(1, int(most * share)) for share in _RANK_SHARES})
        return [{"rank": rank, "alpha": _ALPHAS[1]} for rank in ranks]
    return [{"random_state": seed}]


def _cross_validate(
    method: str,
    params: dict[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    direction: str,
    k: int,
    seed: int,
) -> CVScore:
    """Recall@k of held-out folds for one candidate (validated input assumed); X is mapped onto Y; ``seed``
    seeds the searches."""
    scores = []
    for train, test in folds:
        adapter = ADAPTER_TYPES[method](**params).fit(X[train], Y[train])
        old, new = (Y[test], X[test]) if direction == "new-to-old" else (X[test], Y[test])
        rows = np.arange(min(test.size, _CV_QUERIES))
        scores.append(_adapted_recall(adapter, old, new, rows, direction, min(k, test.size - 2), seed))
    shown = {key: value for key, value in params.items() if key != "random_state"}
    return CVScore(method, shown, float(np.mean(scores)), float(np.std(scores)))


def _choose(table: list[CVScore], order: tuple[str, ...]) -> CVScore:
    """The simplest candidate (in ``order``) scoring within ``_TIE_TOLERANCE`` of the best."""
    best = max(row.score for row in table)
    close = [row for row in table if row.score >= best - _TIE_TOLERANCE]
    return min(close, key=lambda row: (order.index(row.method), -row.score))


def fit_adapter(
    old: EmbeddingSet | object,
    new: EmbeddingSet | object,
    *,
    direction: Direction = "new-to-old",
    methods: tuple[str, ...] | list[str] | None = None,
    max_pairs: int = 10_000,
    cv: int = 3,
    k: int = 10,
    n_queries: int = 1000,
    min_recall: float = DEFAULT_MIN_RECALL,
    random_state: int | np.random.RandomState | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> Alignment:
    """Fit an adapter between an old and a new embedding model, chosen by cross-validation, and evaluate it.

    The two sets are paired by id (:func:`embedlab.io.pair_by_id`) and at most ``max_pairs`` pairs sampled.
    Up to ``n_queries`` of them (at most a fifth) are held out as evaluation queries. Every method and
    hyper-parameter of a small grid (ridge penalty, low-rank rank, Procrustes with or without scale) is scored
    by ``cv``-fold cross-validation on the other pairs by what the user gets: recall@k against full
    re-embedding within the held-out fold (up to 1,000 of its rows as queries, all of them as the index),
    exactly as :func:`evaluate_alignment` measures it. The simplest method within 0.002 of the best recall wins
    (identity, Procrustes, low-rank, ridge, MLP, in that order); it is evaluated on the held-out queries, then
    refitted on every sampled pair, queries included, so the returned adapter has seen all the pairs and its
    evaluation, made with fewer, errs low. The identity (no map) is a candidate when the two spaces have the
    same dimension.

    The result states what to expect: the held-out recall against full re-embedding with its 95% interval,
    and a recommendation to re-embed when that recall is below ``min_recall``.

    Parameters
    ----------
    old, new : EmbeddingSet or array-like of shape (n, d_old) and (m, d_new)
        The same items embedded by the old and the new model (arrays are paired by position).
    direction : {"new-to-old", "old-to-new"}, default="new-to-old"
        ``"new-to-old"`` maps new queries into the old index (keep the index); ``"old-to-new"`` maps old
        corpus rows into the new space (migrate gradually).
    methods : sequence of str, optional
        Among ``"identity"``, ``"procrustes"``, ``"low-rank"``, ``"ridge"``, ``"mlp"``; default
        :func:`default_methods` (the identity only when the dimensions match).
    max_pairs : int, default=10000
        Most pairs used for selection, evaluation and fitting. A map from the input space (every method but
        the identity) needs more fitting pairs than the input dimension.
    cv : int, default=3
        Cross-validation folds, >= 2.
    k : int, default=10
        Neighbours per query of the evaluation.
    n_queries : int, default=1000
        Most held-out evaluation queries.
    min_recall : float, default=0.6
        The recall@k against full re-embedding (the share of re-embedding's ``k`` nearest rows the adapter
        finds) below which the result recommends re-embedding, in (0, 1].
    random_state : int, RandomState instance or None, default=0
        Seeds the query hold-out, the fitting sample, the folds, the MLP and the neighbour searches.
    progress : ProgressReporter, optional
        Receives one step per candidate.

    Returns
    -------
    Alignment

    Raises
    ------
    EmbeddingDataError
        When the sets share no id or too few (at least ``max(10, 2 cv)`` pairs are needed, and more fitting
        pairs than the input dimension for a map), or hold invalid rows.
    ConfigurationError
        On an unknown direction or method, ``"identity"`` asked for between spaces of unequal dimension, or
        ``cv``, ``max_pairs`` or ``k`` out of range.
    MissingDependencyError
        When ``"mlp"`` is asked for without torch installed.

    References
    ----------
    Vejendla, V. (2025). Drift-Adapter: a practical approach to near zero-downtime embedding model upgrades in
    vector databases. EMNLP.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> new = rng.normal(size=(300, 8))
    >>> old = new @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    >>> result = fit_adapter(old, new, methods=("procrustes", "ridge"), k=5)
    >>> result.method, result.evaluation.recall_adapted > 0.99
    ('procrustes', True)
    """
    check_choice(direction, "direction", _DIRECTIONS)
    chosen_methods = default_methods() if methods is None else tuple(methods)
    unknown = [name for name in chosen_methods if name not in ADAPTER_TYPES]
    if unknown or not chosen_methods:
        raise ConfigurationError(
            f"methods must be among {', '.join(ADAPTER_TYPES)}, got {', '.join(map(repr, unknown)) or 'none'}."
        )
    cv = check_int(cv, "cv", 2)
    max_pairs = check_int(max_pairs, "max_pairs", 2 * cv)
    k = check_int(k, "k")
    min_recall = check_positive(min_recall, "min_recall", upper=1.0)
    rng = check_random_state(random_state)
    pairs = pair_by_id(old, new, min_pairs=max(10, 2 * cv), names=("OLD", "NEW"))
    source, target = (pairs.second, pairs.first) if direction == "new-to-old" else (pairs.first, pairs.second)

    sample = rng.permutation(len(pairs))[:max_pairs]
    n = sample.size
    n_held = min(n_queries, int(n * _QUERY_SHARE))
    evaluable = n_held >= _MIN_QUERIES and n - 1 > k
    queries = np.sort(sample[:n_held]) if evaluable else np.empty(0, dtype=np.int64)
    fit_rows = np.sort(sample[queries.size :])
    _check_enough_pairs(chosen_methods, fit_rows.size, source.shape[1], len(pairs), max_pairs)
    X, Y = source[fit_rows], target[fit_rows]

    folds = list(KFold(cv, shuffle=True, random_state=rng.randint(np.iinfo(np.int32).max)).split(X))
    seed = int(rng.randint(np.iinfo(np.int32).max))
    if methods is not None and "identity" in chosen_methods and X.shape[1] != Y.shape[1]:
        raise ConfigurationError(
            f"the identity adapter needs OLD and NEW of equal dimension, got {pairs.first.shape[1]} and "
            f"{pairs.second.shape[1]}; leave it out of methods."
        )
    grid = [(m, p) for m in chosen_methods for p in _candidates(m, X.shape[1], Y.shape[1], seed)]
    table = []
    with progress.task("Cross-validating adapters", len(grid)) as advance:
        for method, params in grid:
            table.append(_cross_validate(method, params, X, Y, folds, direction, k, seed))
            logger.info("%s %s: cv recall@%d %.4f", method, table[-1].params, k, table[-1].score)
            advance(1)
    best = _choose(table, tuple(ADAPTER_TYPES))
    params = dict(best.params, random_state=seed) if best.method == "mlp" else dict(best.params)
    adapter = ADAPTER_TYPES[best.method](**params).fit(X, Y)

    evaluation, note = None, None
    if evaluable:
        evaluation = _evaluate(adapter, pairs.first, pairs.second, queries, direction, k, seed)
        everything = np.sort(sample)
        adapter = ADAPTER_TYPES[best.method](**params).fit(source[everything], target[everything])
    else:
        note = (
            f"{n} pairs leave {n_held} held-out queries (at most a fifth of the pairs); an evaluation needs at "
            f"least {_MIN_QUERIES} and more than k + 1 = {k + 1} pairs."
        )
    recommendation, expectation = _expectation(evaluation, min_recall)
    return Alignment(
        adapter=adapter,
        direction=direction,
        method=best.method,
        params=best.params,
        cv_table=tuple(table),
        evaluation=evaluation,
        evaluation_note=note,
        n_pairs=len(pairs),
        n_fit_pairs=n,
        d_old=int(pairs.first.shape[1]),
        d_new=int(pairs.second.shape[1]),
        min_recall=min_recall,
        recommendation=recommendation,
        expectation=expectation,
    )


def _check_enough_pairs(methods: tuple[str, ...], n_fit: int, d_in: int, n_pairs: int, max_pairs: int) -> None:
    """Refuse a map from ``d_in`` dimensions fitted on no more pairs than it has inputs per output."""
    maps = [name for name in methods if name != "identity"]
    if not maps or n_fit > d_in:
        return
    limit = "" if n_pairs <= max_pairs else f" (a limit of {max_pairs} pairs caps them)"
    raise EmbeddingDataError(
        f"{n_fit} pairs are left to fit the adapter{limit}, but a map from {d_in} dimensions ({', '.join(maps)}) "
        f"needs more than {d_in}: with fewer, it is fixed by its penalty, not by the data. Embed more items with "
        f"both models (at least {d_in + 1} pairs to fit, and a fifth more for the held-out evaluation)"
        + (", or ask for the identity method only." if "identity" in methods else ".")
    )


def _expectation(evaluation: AlignmentEvaluation | None, min_recall: float) -> tuple[str, str]:
    """The recommendation and the sentence of what to expect, from the held-out evaluation."""
    if evaluation is None:
        return "unmeasured", "no held-out evaluation, so no expectation: give more pairs to measure the adapter."
    low, high = evaluation.recall_interval
    measured = (
        f"expect about {evaluation.recall_adapted:.1%} of full re-embedding's {evaluation.k} nearest rows "
        f"(95% interval {low:.1%}-{high:.1%}, {evaluation.n_queries} held-out queries in an index of "
        f"{evaluation.n_index} rows; a larger corpus has closer neighbours and gives less)"
    )
    if evaluation.recall_adapted < min_recall:
        return "re-embed", f"{measured}, below the {min_recall:.0%} asked for: re-embed the corpus instead."
    caution = f"; the interval reaches below {min_recall:.0%}" if low < min_recall else ""
    return "adapter", f"{measured}, at least the {min_recall:.0%} asked for{caution}: the adapter will do."


def evaluate_alignment(
    adapter: Adapter,
    old: EmbeddingSet | object,
    new: EmbeddingSet | object,
    *,
    direction: Direction = "new-to-old",
    k: int = 10,
    n_queries: int = 1000,
    random_state: int | np.random.RandomState | None = 0,
) -> AlignmentEvaluation:
    """Measure, on paired rows, how much of full re-embedding's retrieval a fitted adapter recovers.

    All paired rows form the index; ``n_queries`` of them (or all, if fewer) are the queries, each excluded
    from its own results. Use rows the adapter was not fitted on (:func:`fit_adapter` does).

    Parameters
    ----------
    adapter : Adapter
        Fitted NEW -> OLD for ``"new-to-old"``, OLD -> NEW for ``"old-to-new"``.
    old, new : EmbeddingSet or array-like
        The same items embedded by the old and the new model, paired by id.
    direction : {"new-to-old", "old-to-new"}, default="new-to-old"
    k : int, default=10
    n_queries : int, default=1000
    random_state : int, RandomState instance or None, default=0
        Seeds the choice of queries and the neighbour searches.

    Returns
    -------
    AlignmentEvaluation

    Raises
    ------
    EmbeddingDataError
        When the sets share no id, fewer than ``k + 2``, or the adapter's dimensions do not fit them.
    ConfigurationError
        On an unknown direction.

    References
    ----------
    Shen, Y., Xiong, Y., Xia, W. and Soatto, S. (2020). Towards backward-compatible representation learning.
    CVPR. Biondi, N., Pernici, F., Ricci, S. and Del Bimbo, A. (2024). Stationary representations: optimally
    approximating compatibility and implications for improved model replacements. CVPR.
    """
    check_choice(direction, "direction", _DIRECTIONS)
    pairs = pair_by_id(old, new, min_pairs=k + 2, names=("OLD", "NEW"))
    rng = check_random_state(random_state)
    n = len(pairs)
    queries = np.arange(n) if n <= n_queries else np.sort(rng.choice(n, size=n_queries, replace=False))
    seed = int(rng.randint(np.iinfo(np.int32).max))
    return _evaluate(adapter, pairs.first, pairs.second, queries, direction, k, seed)


def _search_without_self(index: np.ndarray, queries: np.ndarray, rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of the ``k`` nearest index rows (cosine) of each query, its own row ``rows[i]`` left out."""
    found = knn(index, k + 1, queries=queries, metric="cosine", exclude_self=False, random_state=seed).indices
    own = found == rows[:, None]
    # Drop the own row where it was returned, the last neighbour otherwise.
    own[~own.any(axis=1), -1] = True
    return found[~own].reshape(len(rows), k)


def _new_space_distances(new_unit: np.ndarray, rows: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Cosine distances in the NEW space between each query row and the rows found for it."""
    return 1.0 - np.einsum("qd,qkd->qk", new_unit[rows], new_unit[found])


def _recall_against_full(
    new_unit: np.ndarray, rows: np.ndarray, k: int, seed: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function of (index, queries) giving each query's recall@k, for the query ``rows`` searched in
    ``index`` (own row left out), against their ``k`` nearest rows in the NEW space (full re-embedding),
    tie-aware; ``seed`` seeds every search."""
    truth = knn(new_unit, k, query_rows=rows, metric="cosine", random_state=seed)
    true_distances = _new_space_distances(new_unit, rows, truth.indices)

    def recall(index: np.ndarray, queries: np.ndarray) -> np.ndarray:
        found = _search_without_self(index, queries, rows, k, seed)
        return recall_per_query(_new_space_distances(new_unit, rows, found), true_distances)

    return recall


def _mean_interval(values: np.ndarray) -> tuple[float, float]:
    """95% normal interval of the mean of ``values``, clipped to [0, 1]."""
    half = _Z_95 * float(np.std(values, ddof=1)) / np.sqrt(values.size) if values.size > 1 else 0.0
    mean = float(np.mean(values))
    return max(0.0, mean - half), min(1.0, mean + half)


def _adapted_search(
    adapter: Adapter, old: np.ndarray, old_unit: np.ndarray, new: np.ndarray, rows: np.ndarray, direction: str
) -> tuple[np.ndarray, np.ndarray]:
    """The (index, queries) of adapted retrieval, as unit rows: NEW queries mapped into the OLD index
    (new-to-old), or NEW queries against the OLD corpus mapped into the NEW space (old-to-new)."""
    if direction == "new-to-old":
        return old_unit, unit_rows(adapter.transform(new[rows], name="NEW queries"))
    return unit_rows(adapter.transform(old, name="OLD corpus")), unit_rows(new[rows])


def _adapted_recall(
    adapter: Adapter, old: np.ndarray, new: np.ndarray, rows: np.ndarray, direction: str, k: int, seed: int
) -> float:
    """Recall@k against full re-embedding of the query ``rows`` through the adapter (the CV score)."""
    recall = _recall_against_full(unit_rows(new), rows, k, seed)
    return float(recall(*_adapted_search(adapter, old, unit_rows(old), new, rows, direction)).mean())


def _evaluate(
    adapter: Adapter, old: np.ndarray, new: np.ndarray, rows: np.ndarray, direction: str, k: int, seed: int
) -> AlignmentEvaluation:
    """The evaluation on paired, validated rows; ``rows`` are the query positions, ``seed`` seeds the searches."""
    new_unit, old_unit = unit_rows(new), unit_rows(old)
    recall = _recall_against_full(new_unit, rows, k, seed)
    index, queries = _adapted_search(adapter, old, old_unit, new, rows, direction)
    per_query = recall(index, queries)
    recall_adapted = float(per_query.mean())
    mapped, target_unit = (queries, old_unit) if direction == "new-to-old" else (index[rows], new_unit)
    recall_old_to_old = float(recall(old_unit, old_unit[rows]).mean())
    if old.shape[1] == new.shape[1]:
        recall_unadapted, unadapted_note = float(recall(old_unit, new_unit[rows]).mean()), None
    else:
        recall_unadapted = None
        unadapted_note = (
            f"no recall without an adapter: the dimensions differ (OLD {old.shape[1]}, NEW {new.shape[1]})."
        )
    pair_distance = 1.0 - np.einsum("qd,qd->q", mapped, target_unit[rows])
    nearest = knn(target_unit, 1, query_rows=rows, metric="cosine", random_state=seed).distances[:, 0]
    return AlignmentEvaluation(
        direction=direction,
        k=k,
        n_queries=int(rows.size),
        n_index=int(old.shape[0]),
        recall_adapted=recall_adapted,
        recall_interval=_mean_interval(per_query),
        recall_unadapted=recall_unadapted,
        unadapted_note=unadapted_note,
        recall_old_to_old=recall_old_to_old,
        recall_full=_FULL_RECALL,
        fraction_recovered=recall_adapted / _FULL_RECALL,
        compatible=bool(recall_adapted >= recall_old_to_old),
        mean_pair_distance=float(pair_distance.mean()),
        mean_nearest_distance=float(nearest.mean()),
        fraction_closer=float(np.mean(pair_distance < nearest)),
    )
