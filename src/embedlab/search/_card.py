"""The operating-point card of a tuned index: its recall with an interval, by stratum, its work per query, its
speed and its size. What was counted is the card's body; what a clock measured (queries per second, build and
tuning seconds) sits in its ``timings`` block, so that the same data and seed give the same card outside it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from embedlab._json import json_safe, split_timings

__all__ = [
    "OperatingCard",
    "OperatingPoint",
    "Stratum",
    "per_query_recall",
    "prediction_bound",
    "recall_interval",
    "strata",
    "worst_strata",
]

#: One-sided 95% normal quantile.
_Z95 = 1.6448536269514722
#: Two-sided 95% normal quantile.
_Z975 = 1.959963984540054


def per_query_recall(found_distances: np.ndarray, true_distances: np.ndarray) -> np.ndarray:
    """Recall@k of each query, tie-aware as :func:`embedlab.neighbors.recall_at_k` (which is its mean).

    A returned neighbour counts when its exact distance is within tolerance of the true k-th distance.
    """
    kth = true_distances[:, -1:].astype(np.float64)
    correct = found_distances.astype(np.float64) <= kth + 1e-6 + 1e-5 * np.abs(kth)
    return correct.mean(axis=1)


def recall_interval(per_query: np.ndarray) -> tuple[float, float, float]:
    """Mean recall and its two-sided 95% normal interval over the queries, clipped to [0, 1].

    Queries are independent draws, so the mean of their recalls is asymptotically normal with the standard
    error of the per-query values.

    Examples
    --------
    >>> recall_interval(np.array([1.0, 1.0, 0.9, 0.8]))[0]
    0.925
    """
    mean = float(per_query.mean())
    se = float(per_query.std(ddof=1) / math.sqrt(per_query.size)) if per_query.size > 1 else 0.0
    return mean, max(0.0, mean - _Z975 * se), min(1.0, mean + _Z975 * se)


def prediction_bound(per_query: np.ndarray) -> float:
    """One-sided 95% lower bound on the mean recall of as many *fresh* queries as were measured.

    The difference between the measured mean and a fresh sample's mean has twice the variance of one mean,
    so the bound is ``mean - 1.645 sqrt(2) se``: a configuration chosen by it delivers the target on fresh
    queries in about 95% of draws, where a plain confidence bound on the mean would in about 88%.
    """
    if per_query.size < 2:
        return float(per_query.mean())
    se = per_query.std(ddof=1) / math.sqrt(per_query.size)
    return float(per_query.mean() - _Z95 * math.sqrt(2.0) * se)


@dataclass(frozen=True)
class OperatingPoint:
    """One measured configuration: its search parameters, recall@k on the tuning queries, its work per query
    (``multiply_adds``, counted: see :func:`embedlab.search._tune.multiply_adds`) and its speed (``qps``, timed;
    :meth:`to_dict` leaves it out, the card's ``timings`` block holds it)."""

    params: dict[str, Any]
    recall: float
    recall_bound: float
    qps: float
    meets_target: bool
    multiply_adds: float = math.nan  # nan in cards written before it was counted

    def to_dict(self) -> dict[str, Any]:
        return split_timings([json_safe(asdict(self))], "qps")[0][0]


@dataclass(frozen=True)
class Stratum:
    """Recall of the validation queries of one stratum (a cluster, or a decile of local intrinsic dimension)."""

    name: str
    n_queries: int
    recall: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


#: The fields of an :class:`OperatingCard` a clock measured.
_CARD_TIMED = ("qps", "build_s", "tune_s")


@dataclass(frozen=True)
class OperatingCard:
    """What a tuned index delivers, measured on validation queries it was not tuned on.

    Attributes
    ----------
    params : dict
        The chosen search parameters (``method`` first).
    k : int
    target_recall : float or None
    recall, ci_low, ci_high : float
        Recall@k on the validation queries and its 95% interval.
    qps : float
        Validation queries per second, searched in one batch on this machine (timed).
    n_rows, dim : int
    metric : str
    n_tuning_queries, n_validation_queries : int
    queries : str
        Where the queries came from (held out of the data, or given).
    by_cluster, by_lid : list of Stratum
        Recall per k-means cluster of the queries and per decile of their local intrinsic dimension.
    worst : list of str
        The strata whose recall is lowest, worst first, with their recall.
    intrinsic_dimension : float
        TwoNN estimate of the data, which started the parameter grid.
    build_s, tune_s : float
        Seconds to build the chosen index, and to tune (every other build, the sweeps, the ground truth).
    multiply_adds : float
        Work per query of the chosen setting on the validation queries, counted: what tuning minimised.
    memory_bytes, disk_bytes : int
        Bytes the index holds in memory; bytes read from disk while searching (full vectors for re-ranking).
    sweep : list of OperatingPoint
        Every configuration measured while tuning.
    validation_rows : list of int
        Positions of the validation queries: in the given queries, or rows of the data when held out, so
        that the card can be checked by anyone.
    """

    params: dict[str, Any]
    k: int
    target_recall: float | None
    recall: float
    ci_low: float
    ci_high: float
    qps: float
    n_rows: int
    dim: int
    metric: str
    n_tuning_queries: int
    n_validation_queries: int
    queries: str
    intrinsic_dimension: float
    build_s: float
    tune_s: float
    memory_bytes: int
    disk_bytes: int
    by_cluster: list[Stratum] = field(default_factory=list)
    by_lid: list[Stratum] = field(default_factory=list)
    worst: list[str] = field(default_factory=list)
    sweep: list[OperatingPoint] = field(default_factory=list)
    validation_rows: list[int] = field(default_factory=list)
    multiply_adds: float = math.nan  # nan in cards written before it was counted

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON: what was counted, then a ``timings`` block with what was timed (``qps``,
        ``build_s``, ``tune_s``, and each sweep point's ``qps`` in the order of ``sweep``)."""
        document = {name: value for name, value in asdict(self).items() if name not in _CARD_TIMED}
        document["by_cluster"] = [s.to_dict() for s in self.by_cluster]
        document["by_lid"] = [s.to_dict() for s in self.by_lid]
        document["sweep"] = [p.to_dict() for p in self.sweep]
        document["timings"] = {
            **{name: getattr(self, name) for name in _CARD_TIMED},
            "sweep": [{"qps": p.qps} for p in self.sweep],
        }
        return json_safe(document)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> OperatingCard:
        """The card saved by :meth:`to_dict` (or by a version that kept its timings among its fields)."""
        fields = dict(document)
        timings = fields.pop("timings", None) or {}
        sweep_timings = timings.get("sweep") or [{}] * len(document.get("sweep", []))
        fields.update({name: timings[name] for name in _CARD_TIMED if name in timings})
        fields["by_cluster"] = [Stratum(**s) for s in document.get("by_cluster", [])]
        fields["by_lid"] = [Stratum(**s) for s in document.get("by_lid", [])]
        points = zip(document.get("sweep", []), sweep_timings, strict=True)
        fields["sweep"] = [OperatingPoint(**{**point, **timed}) for point, timed in points]
        return cls(**fields)

    def summary(self) -> str:
        """Two plain sentences: what the index delivers and where it is weakest."""
        target = "" if self.target_recall is None else f" (target {self.target_recall:g})"
        first = (
            f"{self.params['method']} index of {self.n_rows:,} rows: recall@{self.k} {self.recall:.4f} "
            f"[{self.ci_low:.4f}, {self.ci_high:.4f}]{target} on {self.n_validation_queries} validation queries, "
            f"{self.qps:,.0f} queries/s, {self.memory_bytes / 2**20:,.1f} MiB in memory."
        )
        return first + ("" if not self.worst else f" Weakest: {'; '.join(self.worst)}.")


def strata(name: str, labels: np.ndarray, per_query: np.ndarray, *, order: list[object] | None = None) -> list[Stratum]:
    """Recall of the queries grouped by ``labels`` (in ``order`` when given, else sorted)."""
    groups = sorted(set(labels.tolist())) if order is None else order
    found = []
    for group in groups:
        mask = labels == group
        if mask.any():
            recall, low, high = recall_interval(per_query[mask])
            found.append(Stratum(f"{name} {group}", int(mask.sum()), recall, low, high))
    return found


def worst_strata(groups: list[Stratum], *, count: int = 3, min_queries: int = 10) -> list[str]:
    """The ``count`` strata of lowest recall among those with at least ``min_queries`` queries."""
    eligible = sorted((s for s in groups if s.n_queries >= min_queries), key=lambda s: s.recall)
    return [f"{s.name} at {s.recall:.3f} ({s.n_queries} queries)" for s in eligible[:count]]
