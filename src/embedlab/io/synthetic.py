"""Synthetic embedding sets with a known answer, for tests and benchmarks of the estimators.

Each generator returns a float32 ``(n, ambient_dim)`` array whose intrinsic dimension is known, embedded by a
random rotation so that no coordinate system gives the answer away.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_product", "make_sphere", "make_subspace", "make_swiss_roll", "random_rotation"]


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random ``(dim, dim)`` orthogonal matrix (QR of a Gaussian matrix, sign-corrected)."""
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def _embed(points: np.ndarray, ambient_dim: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    n, d = points.shape
    padded = np.zeros((n, ambient_dim))
    padded[:, :d] = points
    rotated = padded @ random_rotation(ambient_dim, rng).T
    if noise:
        rotated += noise * rng.normal(size=rotated.shape)
    return rotated.astype(np.float32)


def make_subspace(
    n: int, intrinsic_dim: int, ambient_dim: int = 384, *, noise: float = 0.0, random_state: int = 0
) -> np.ndarray:
    """Points uniform in a ``intrinsic_dim``-dimensional unit cube, rotated into ``ambient_dim`` dimensions.

    Examples
    --------
    >>> make_subspace(100, 3, 16).shape
    (100, 16)
    """
    rng = np.random.default_rng(random_state)
    return _embed(rng.uniform(size=(n, intrinsic_dim)), ambient_dim, noise, rng)


def make_sphere(
    n: int, intrinsic_dim: int, ambient_dim: int = 384, *, noise: float = 0.0, random_state: int = 0
) -> np.ndarray:
    """Points uniform on the unit sphere S^d (a d-manifold in R^(d+1)), rotated into ``ambient_dim`` dimensions."""
    rng = np.random.default_rng(random_state)
    points = rng.normal(size=(n, intrinsic_dim + 1))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return _embed(points, ambient_dim, noise, rng)


def make_swiss_roll(n: int, ambient_dim: int = 384, *, noise: float = 0.0, random_state: int = 0) -> np.ndarray:
    """The swiss roll (a 2-manifold rolled in R^3), rotated into ``ambient_dim`` dimensions."""
    rng = np.random.default_rng(random_state)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    height = 21 * rng.uniform(size=n)
    points = np.column_stack([t * np.cos(t), height, t * np.sin(t)])
    return _embed(points, ambient_dim, noise, rng)


def make_product(parts: list[np.ndarray], ambient_dim: int = 384, *, random_state: int = 0) -> np.ndarray:
    """The product manifold of several point sets (row i pairs row i of each): dimensions add up.

    Each part is given in its own coordinates (for example from another generator with a small ambient
    dimension); the concatenation is rotated into ``ambient_dim`` dimensions.
    """
    rng = np.random.default_rng(random_state)
    return _embed(np.hstack(parts).astype(np.float64), ambient_dim, 0.0, rng)
