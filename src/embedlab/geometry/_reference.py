"""Finite-sample references: what an intrinsic-dimension estimator reads on n points of a known d-manifold.

Every kNN estimator underestimates once n is small against the dimension (the neighbours of a point are no
longer local). The correction inverts the estimator's expected reading on a reference manifold of dimension d
sampled with as many points as the data: the d giving the observed reading is the corrected estimate. This is
the calibration of MiND and DANCo (Rozza et al. 2012; Ceruti et al. 2014), with two references:

- ``"sphere"``: the unit d-sphere, closed and homogeneous. Its neighbour distances are exact and cheap: the
  normalised areas of the caps reaching the other n - 1 points are n - 1 uniform draws, so the k nearest are
  their k smallest order statistics mapped through the inverse cap area (a regularised incomplete beta
  function). No points are drawn and no search is run.
- ``"cube"``: the unit d-cube, flat with a boundary on every side, simulated and searched exactly.

In high dimension the sphere corrects least (no boundary) and the cube most, so the two bracket the correction
a manifold needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import betaincinv

from embedlab.neighbors import knn

__all__ = ["Reference", "cube_distances", "sphere_distances"]

#: Reference points whose neighbour distances a reading is averaged over: exact draws on the sphere, searched
#: queries in the simulated cube.
REFERENCE_QUERIES = 10_000
CUBE_QUERIES = 5000
#: Dimensions a correction may reach, and the ratio of the sphere's grid of dimensions.
_LOWEST, _HIGHEST = 0.2, 5000.0
_GRID_RATIO = 1.1
_CUBE_LINEAR, _CUBE_RATIO = 16, 1.06


def _order_uniforms(n_points: int, ranks: tuple[int, ...], m: int, rng: np.random.Generator) -> np.ndarray:
    """The order statistics of the given 1-based ranks among n - 1 independent uniforms, for m independent
    queries: the r-th smallest is S_r / S_n for S the partial sums of n standard exponentials."""
    shapes = np.diff(np.r_[0, ranks]).astype(np.float64)
    sums = np.cumsum(rng.gamma(shapes, size=(m, len(ranks))), axis=1)
    rest = rng.gamma(max(n_points - ranks[-1], 1), size=(m, 1))
    return sums / (sums[:, -1:] + rest)


def _cap_chords(areas: np.ndarray, d: float) -> np.ndarray:
    """Chord radius of the cap of the unit d-sphere whose normalised area is ``areas``.

    The cap of polar angle t <= pi/2 covers I_{sin^2 t}(d/2, 1/2) / 2 of the sphere.
    """
    half = np.minimum(areas, 1.0 - areas)
    angle = np.arcsin(np.sqrt(betaincinv(d / 2.0, 0.5, 2.0 * half)))
    angle = np.where(areas <= 0.5, angle, np.pi - angle)
    return 2.0 * np.sin(angle / 2.0)


def sphere_distances(
    n_points: int, ranks: tuple[int, ...], d: float, *, m: int = REFERENCE_QUERIES, seed: int = 0
) -> np.ndarray:
    """Distances from m of n points uniform on the unit d-sphere to their neighbours of the given 1-based
    ranks, exactly distributed; ``d`` may be fractional. One seed gives common random numbers across d, so
    readings are smooth in d."""
    return _cap_chords(_order_uniforms(n_points, ranks, m, np.random.default_rng(seed)), d)


def cube_distances(
    n_points: int, ranks: tuple[int, ...], d: int, *, m: int = REFERENCE_QUERIES, seed: int = 0
) -> np.ndarray:
    """Distances from m of n points uniform in the unit d-cube to their neighbours of the given ranks."""
    rng = np.random.default_rng([seed, d])
    points = rng.uniform(size=(n_points, d)).astype(np.float32)
    queries = np.sort(rng.choice(n_points, min(m, n_points), replace=False))
    found = knn(points, ranks[-1], query_rows=queries, metric="l2", method="exact", recall_sample=0)
    return found.distances.astype(np.float64)[:, np.asarray(ranks) - 1]


class Reference:
    """An estimator's reading on a reference manifold, as a function of its dimension, and its inverse.

    Parameters
    ----------
    statistic : callable
        Maps an (m, len(ranks)) array of neighbour distances, a column per rank, to the estimator's reading.
    ranks : tuple of int
        The 1-based neighbour ranks whose distances the statistic reads.
    n_points : int
        Points of the data (those the neighbours were searched among).
    shape : {"sphere", "cube"}
    seed : int, default=0
    ratios : int, optional
        Ratios a reading averages over on the sphere (default 10,000; a statistic reading r ranks reads r - 1
        ratios per query). The cube always searches 5,000 queries at most.
    """

    def __init__(
        self,
        statistic: Callable[[np.ndarray], float],
        ranks: tuple[int, ...],
        n_points: int,
        shape: str,
        *,
        seed: int = 0,
        ratios: int = REFERENCE_QUERIES,
    ) -> None:
        self.statistic, self.ranks, self.n_points, self.shape, self.seed = statistic, ranks, n_points, shape, seed
        self.ratios = ratios
        self._readings: dict[float, float] = {}

    @property
    def queries(self) -> int:
        """Reference queries a reading averages over: on the sphere, fewer the more ratios each reads."""
        if self.shape == "sphere":
            return max(1, self.ratios // max(1, len(self.ranks) - 1))
        return min(CUBE_QUERIES, self.n_points)

    @property
    def relative_error(self) -> float:
        """Relative standard error of a reading from its Monte-Carlo sample (that of a Hill estimator over as
        many ratios, an upper bound for the estimators here)."""
        return float(1.0 / np.sqrt(self.queries * max(1, len(self.ranks) - 1)))

    def _dimension(self, step: int) -> float:
        """The dimensions readings are taken at, shared by every inversion so that an interval's ends reuse the
        value's readings: on the sphere a geometric grid (ratio 1.1); in the cube the integers up to 16, then
        integers about 6% apart (each cube reading is a search)."""
        if self.shape == "sphere":
            return float(_GRID_RATIO**step)
        return float(step if step <= _CUBE_LINEAR else round(_CUBE_LINEAR * _CUBE_RATIO ** (step - _CUBE_LINEAR)))

    def _step_below(self, d: float, lowest: int) -> int:
        """The grid step at or just below dimension d."""
        if self.shape == "cube":
            if d <= _CUBE_LINEAR:
                return max(lowest, int(d))
            step = _CUBE_LINEAR + int(np.floor(np.log(d / _CUBE_LINEAR) / np.log(_CUBE_RATIO)))
            while self._dimension(step) > d:  # rounding can put a grid point just above d
                step -= 1
            while self._dimension(step + 1) <= d:
                step += 1
            return step
        return max(lowest, int(np.floor(np.log(max(d, _LOWEST)) / np.log(_GRID_RATIO))))

    def reading(self, d: float) -> float:
        """The estimator's reading on the reference of dimension d (integer d for the cube)."""
        if d not in self._readings:
            if self.shape == "sphere":
                distances = sphere_distances(self.n_points, self.ranks, d, m=self.queries, seed=self.seed)
            else:
                distances = cube_distances(self.n_points, self.ranks, int(d), m=self.queries, seed=self.seed)
            self._readings[d] = float(self.statistic(distances))
        return self._readings[d]

    def invert(self, observed: float, *, start: float | None = None) -> float:
        """The dimension whose reference reads ``observed``, interpolated between the grid dimensions whose
        readings bracket it (linearly in log d on the sphere), clipped to [0.2, 5000].

        The walk along the grid starts at ``start`` (default ``observed``: every reference reads less than
        its dimension, so the answer lies above).
        """
        if not np.isfinite(observed):
            return float(observed)
        origin = observed if start is None else start
        lowest = 1 if self.shape == "cube" else int(np.ceil(np.log(_LOWEST) / np.log(_GRID_RATIO)))
        step = self._step_below(origin, lowest)
        first = self.reading(self._dimension(step))
        if 0 < first < observed:  # readings grow about in proportion to d: jump to where this one would cross
            step = self._step_below(min(self._dimension(step) * observed / first, _HIGHEST), lowest)
        while step > lowest and self.reading(self._dimension(step)) > observed:
            step -= 1
        if self.reading(self._dimension(step)) > observed:
            return float(self._dimension(step) * observed / self.reading(self._dimension(step)))
        while self.reading(self._dimension(step + 1)) <= observed:
            step += 1
            if self._dimension(step) >= _HIGHEST:
                return _HIGHEST
        below, above = self._dimension(step), self._dimension(step + 1)
        w = (observed - self.reading(below)) / (self.reading(above) - self.reading(below))
        return float(below * (above / below) ** w)
