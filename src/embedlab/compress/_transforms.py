"""Linear transforms that run before a quantizer: PCA, Matryoshka truncation, random rotation, LeanVec-ID,
LeanVec-OOD and the learnt TLDR reducer.

Every transform maps database rows and query rows so that the inner product of the mapped pair approximates
the inner product of the originals (up to a per-query constant, ``query_offset``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from embedlab._torch import batches, require_torch, seeded_torch
from embedlab.exceptions import ConfigurationError
from embedlab.neighbors import knn

if TYPE_CHECKING:
    import torch

__all__ = ["TRANSFORM_TYPES", "Transform"]

#: Ridge added to second-moment matrices before their inverse square roots, relative to their mean eigenvalue.
_RIDGE = 1e-6


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
        prefix = np.ascontiguousarray(X[:, : self.dims])
        norms = np.linalg.norm(prefix, axis=1, keepdims=True)
        return np.divide(prefix, norms, out=np.zeros_like(prefix), where=norms > 0)


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


def _barlow_twins_loss(first: torch.Tensor, second: torch.Tensor, off_diagonal_weight: float) -> torch.Tensor:
    """Barlow Twins: the cross-correlation of the two batch-standardised outputs should be the identity."""
    first = (first - first.mean(dim=0)) / (first.std(dim=0) + 1e-6)
    second = (second - second.mean(dim=0)) / (second.std(dim=0) + 1e-6)
    correlation = first.T @ second / first.shape[0]
    on_diagonal = ((correlation.diagonal() - 1) ** 2).sum()
    off_diagonal = (correlation**2).sum() - (correlation.diagonal() ** 2).sum()
    return on_diagonal + off_diagonal_weight * off_diagonal


class TLDR(_ReducingTransform):
    """TLDR: a linear reducer trained so that each row and its nearest neighbours map to matching outputs.

    A linear encoder ``d -> dims`` followed by a projector (``dims -> 512 -> 512`` with batch norm, used only
    in training) is trained with the Barlow Twins loss on pairs of a row and one of its 3 nearest neighbours
    (drawn anew each epoch): the cross-correlation of the two projected batches is pushed to the identity
    (off-diagonal weight 5e-3). Rows and queries are then encoded by the linear map and unit-normalised.
    Needs torch (the ``deep`` extra); 10 epochs of batches of 512 on the training sample, Adam at 1e-3.

    References
    ----------
    Kalantidis, Lassance, Almazán and Larlus (2022), "TLDR: twin learning for dimensionality reduction",
    Transactions on Machine Learning Research.
    Zbontar, Jing, Misra, LeCun and Deny (2021), "Barlow twins: self-supervised learning via redundancy
    reduction", ICML.
    """

    name = "tldr"
    state = ("weight_", "bias_")
    n_neighbors = 3
    epochs = 10
    batch_size = 512
    projector_width = 512
    off_diagonal_weight = 5e-3
    learning_rate = 1e-3

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        torch = require_torch("the tldr codec")
        if X.shape[0] <= self.n_neighbors:
            raise ConfigurationError(f"tldr needs more than {self.n_neighbors} training rows, got {X.shape[0]}.")
        neighbours = knn(X, self.n_neighbors, metric="ip", random_state=int(rng.randint(2**31 - 1))).indices
        with seeded_torch(rng):
            encoder = torch.nn.Linear(self.dim_in, self.dims)
            width = self.projector_width
            projector = torch.nn.Sequential(
                torch.nn.Linear(self.dims, width),
                torch.nn.BatchNorm1d(width),
                torch.nn.ReLU(),
                torch.nn.Linear(width, width),
            )
            parameters = [*encoder.parameters(), *projector.parameters()]
            optimiser = torch.optim.Adam(parameters, lr=self.learning_rate)
            data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            for _ in range(self.epochs):
                for anchors in batches(X.shape[0], self.batch_size, rng):
                    if anchors.size < 2:
                        continue
                    pairs = neighbours[anchors, rng.randint(self.n_neighbors, size=anchors.size)]
                    loss = _barlow_twins_loss(
                        projector(encoder(data[anchors])), projector(encoder(data[pairs])), self.off_diagonal_weight
                    )
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
        self.weight_ = encoder.weight.detach().numpy().T.astype(np.float32).copy()
        self.bias_ = encoder.bias.detach().numpy().astype(np.float32).copy()

    def database(self, X: np.ndarray) -> np.ndarray:
        encoded = X @ self.weight_ + self.bias_
        norms = np.linalg.norm(encoded, axis=1, keepdims=True)
        return np.divide(encoded, norms, out=np.zeros_like(encoded), where=norms > 0)


TRANSFORM_TYPES: dict[str, type[Transform]] = {
    cls.name: cls for cls in (PCA, Matryoshka, RandomRotation, LeanVecID, LeanVecOOD, TLDR)
}
