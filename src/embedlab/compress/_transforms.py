"""Linear transforms that run before a quantizer: PCA, Matryoshka truncation, random rotation, LeanVec-ID and
LeanVec-OOD (the learnt ones, which need torch, are in ``_learnt``).

Every transform maps database rows and query rows so that the inner product of the mapped pair approximates
the inner product of the originals (up to a per-query constant, ``query_offset``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from embedlab.exceptions import ConfigurationError

__all__ = ["TRANSFORM_TYPES", "Transform"]

#: Ridge added to second-moment matrices before their inverse square roots, relative to their mean eigenvalue.
_RIDGE = 1e-6


def unit_or_zero_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, rows of zeros left as they are (a truncation can zero a row)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def _top_eigenvectors(moment: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the ``dims`` largest eigenvalues."""
    values, vectors = np.linalg.eigh(moment)
    order = np.argsort(values)[::-1][:dims]
    return values[order], vectors[:, order]


def _second_moment(X: np.ndarray) -> np.ndarray:
    return (X.T.astype(np.float64) @ X.astype(np.float64)) / X.shape[0]


def _matrix_powers(moment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``K^(1/2)`` and ``K^(-1/2)`` of a symmetric positive semi-definite matrix, with a small ridge."""
    values, vectors = np.linalg.eigh(moment)
    values = np.maximum(values, 0.0) + _RIDGE * max(float(values.mean()), 1e-30)
    return (vectors * np.sqrt(values)) @ vectors.T, (vectors / np.sqrt(values)) @ vectors.T


class Transform(ABC):
    """A fitted linear map of database rows (and of query rows, by default the same map)."""

    name: ClassVar[str]
    #: Names of the array attributes that make up the fitted state (serialised with the codec).
    state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, argument: str | None, dim_in: int) -> None:
        self.argument = argument
        self.dim_in = dim_in

    @property
    @abstractmethod
    def dim_out(self) -> int:
        """Dimension of the mapped rows."""

    @abstractmethod
    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        """Learn the map from training rows (and sample queries, for query-aware maps)."""

    @abstractmethod
    def database(self, X: np.ndarray) -> np.ndarray:
        """Mapped database rows, float32."""

    def queries(self, Q: np.ndarray) -> np.ndarray:
        """Mapped query rows, float32."""
        return self.database(Q)

    def query_offset(self, Q: np.ndarray) -> np.ndarray:
        """The part of each query's inner products the mapped pair leaves out (the same for every row)."""
        return np.zeros(Q.shape[0], dtype=np.float32)


class _ReducingTransform(Transform):
    """A transform whose argument is the number of dimensions kept."""

    def __init__(self, argument: str | None, dim_in: int) -> None:
        super().__init__(argument, dim_in)
        dims = int(argument or 0)
        if not 1 <= dims <= dim_in:
            raise ConfigurationError(f"'{self.name}:{argument}': keep between 1 and {dim_in} dimensions.")
        self.dims = dims

    @property
    def dim_out(self) -> int:
        return self.dims


class PCA(_ReducingTransform):
    """Projection of centred rows on their top principal axes; queries are projected uncentred.

    ``q . x = q . mean + q . (x - mean)``; the first term is the same for every row (``query_offset``) and
    the second is approximated by the projections.

    References
    ----------
    Jolliffe (2002), *Principal Component Analysis*, Springer.
    """

    name = "pca"
    state = ("mean_", "components_")

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = X - self.mean_
        _, vectors = _top_eigenvectors(_second_moment(centred), self.dims)
        self.components_ = vectors.astype(np.float32)

    def database(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_

    def queries(self, Q: np.ndarray) -> np.ndarray:
        return Q @ self.components_

    def query_offset(self, Q: np.ndarray) -> np.ndarray:
        return Q @ self.mean_


class Matryoshka(_ReducingTransform):
    """The first ``dims`` coordinates, renormalised to unit length (for models trained with the MRL loss).

    References
    ----------
    Kusupati et al. (2022), "Matryoshka representation learning", NeurIPS.
    """

    name = "matryoshka"

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        pass

    def database(self, X: np.ndarray) -> np.ndarray:
        return unit_or_zero_rows(np.ascontiguousarray(X[:, : self.dims]))


class RandomRotation(Transform):
    """A random orthogonal rotation (Haar-distributed), which spreads variance evenly over the coordinates.

    References
    ----------
    Mezzadri (2007), "How to generate random matrices from the classical compact groups", Notices of the AMS.
    """

    name = "rotate"
    state = ("rotation_",)

    @property
    def dim_out(self) -> int:
        return self.dim_in

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        q, r = np.linalg.qr(rng.normal(size=(self.dim_in, self.dim_in)))
        self.rotation_ = (q * np.sign(np.diag(r))).astype(np.float32)

    def database(self, X: np.ndarray) -> np.ndarray:
        return X @ self.rotation_


class LeanVecID(_ReducingTransform):
    """LeanVec for in-distribution queries: projection on the top eigenvectors of the rows' second moment.

    Uncentred, as inner products are: the projection keeps the directions that carry most of ``||x||^2``.

    References
    ----------
    Tepper, Bhati, Aguerrebere, Hildebrand and Willke (2024), "LeanVec: searching vectors faster by making
    them fit", Transactions on Machine Learning Research.
    """

    name = "leanvec"
    state = ("components_",)

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        _, vectors = _top_eigenvectors(_second_moment(X), self.dims)
        self.components_ = vectors.astype(np.float32)

    def database(self, X: np.ndarray) -> np.ndarray:
        return X @ self.components_


class LeanVecOOD(_ReducingTransform):
    """LeanVec for out-of-distribution queries: separate query and database projections learnt from sample
    queries, minimising the expected error of ``q . x`` over queries and rows.

    With second moments ``K_Q`` (queries) and ``K_X`` (rows), the error is
    ``|| K_Q^(1/2) (I - A^T B) K_X^(1/2) ||_F^2``; its minimum over rank-``dims`` maps is the truncated SVD
    ``U_D S_D V_D^T`` of ``K_Q^(1/2) K_X^(1/2)``, so ``A = S_D^(1/2) U_D^T K_Q^(-1/2)`` maps queries and
    ``B = S_D^(1/2) V_D^T K_X^(-1/2)`` maps rows. This closed form (the "sphering" solution of Tepper et al.
    2024b) replaces the Frank-Wolfe iterations of the LeanVec paper and reaches the exact optimum.

    References
    ----------
    Tepper et al. (2024), "LeanVec: searching vectors faster by making them fit", TMLR.
    Tepper, Bhati, Aguerrebere and Willke (2024b), "GleanVec: accelerating vector search with minimalist
    nonlinear dimensionality reduction", arXiv:2410.22347 (LeanVec-Sphering).
    """

    name = "leanvec-ood"
    state = ("query_map_", "database_map_")

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        if queries is None or queries.shape[0] < 2:
            raise ConfigurationError(
                "leanvec-ood learns its projections from sample queries: pass queries (at least 2 rows, ideally "
                "a few thousand like the ones you will search with)."
            )
        query_root, query_inverse_root = _matrix_powers(_second_moment(queries))
        row_root, row_inverse_root = _matrix_powers(_second_moment(X))
        u, s, vt = np.linalg.svd(query_root @ row_root)
        scale = np.sqrt(s[: self.dims])
        self.query_map_ = ((scale[:, None] * u[:, : self.dims].T) @ query_inverse_root).T.astype(np.float32)
        self.database_map_ = ((scale[:, None] * vt[: self.dims]) @ row_inverse_root).T.astype(np.float32)

    def database(self, X: np.ndarray) -> np.ndarray:
        return X @ self.database_map_

    def queries(self, Q: np.ndarray) -> np.ndarray:
        return Q @ self.query_map_


TRANSFORM_TYPES: dict[str, type[Transform]] = {
    cls.name: cls for cls in (PCA, Matryoshka, RandomRotation, LeanVecID, LeanVecOOD)
}
