"""IDEstimate: a point estimate with its bootstrap interval, the fixed return type of the geometry estimators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["IDEstimate", "bootstrap_interval"]


@dataclass(frozen=True)
class IDEstimate:
    """An estimate with a bootstrap 95% interval.

    Attributes
    ----------
    value : float
        The estimate on all the data.
    ci_low, ci_high : float
        2.5th and 97.5th percentiles of the estimate over bootstrap resamples (equal to ``value`` when the
        estimator has no sampling variability to bootstrap).
    n : int
        Points the estimate used (after excluding duplicates and discarded points).
    scale : dict
        The estimate's sensitivity to its neighbourhood size: neighbourhood size -> estimate.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    scale: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "scale": {str(k): v for k, v in self.scale.items()},
        }


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    samples: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic`` over rows of ``samples`` resampled with replacement.

    The percentile interval is shifted so that the bootstrap median sits on the full-data estimate:
    resampling with replacement repeats rows, which biases some statistics (a PCA component count drops
    when rows repeat), and an interval that excludes its own estimate would mislead.
    """
    value = statistic(samples)
    if n_boot < 1 or len(samples) < 2:
        return value, value
    n = len(samples)
    values = np.array([statistic(samples[rng.integers(0, n, n)]) for _ in range(n_boot)])
    tail = (1.0 - level) / 2.0
    low, median, high = np.quantile(values, [tail, 0.5, 1.0 - tail])
    shift = value - median
    return float(low + shift), float(high + shift)
