"""Similarity scores between two paired embedding spaces: CKA (linear, debiased, RBF), mutual kNN alignment,
CKNNA, SVCCA, Procrustes distance, retrieval overlap and the rank correlation of pairwise similarities.

Each public function validates and pairs its inputs, builds a private scorer and evaluates it once. The
scorers (``_LinearCKA``, ...) hold everything that does not change when the pairing is shuffled, and
``score(perm)`` pairs row ``i`` of X with row ``perm[i]`` of Y, so :func:`compare_spaces` computes a
permutation null without redoing the expensive parts (Gram statistics, SVDs, kNN searches).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from embedlab._checks import check_int, check_positive
from embedlab.exceptions import EmbeddingDataError
from embedlab.io import EmbeddingSet, pair_by_id
from embedlab.io.validation import check_k, unit_rows
from embedlab.neighbors import knn

__all__ = [
    "cknna",
    "linear_cka",
    "mutual_knn_alignment",
    "procrustes_distance",
    "rbf_cka",
    "retrieval_overlap",
    "similarity_rank_correlation",
    "svcca",
]

#: Fewest paired rows a score is computed on (the debiased HSIC divides by n - 3).
MIN_ROWS = 4
#: Query rows per block when intersecting neighbour lists or gathering row pairs.
_BLOCK = 4096


# ---------------------------------------------------------------------------------------------- helpers


def _paired(X: EmbeddingSet | object, Y: EmbeddingSet | object) -> tuple[np.ndarray, np.ndarray]:
    pairs = pair_by_id(X, Y, min_pairs=MIN_ROWS, names=("X", "Y"))
    return pairs.first, pairs.second


def _centred(X: np.ndarray) -> np.ndarray:
    """``X`` minus its column means, as a new float64 array."""
    X = np.array(X, dtype=np.float64)
    X -= X.mean(axis=0)
    return X


def _sample_rows(n: int, sample: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``sample`` random rows (all rows when ``sample`` is None or at least ``n``)."""
    if sample is not None:
        sample = check_int(sample, "sample", MIN_ROWS)
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=sample, replace=False))


def _permuted_neighbours(indices: np.ndarray, perm: np.ndarray | None) -> np.ndarray:
    """Neighbour lists of ``Y[perm]`` from those of ``Y``: row ``i`` is item ``perm[i]``, whose neighbour
    ``j`` now sits at position ``inverse[j]``. Missing neighbours (-1) stay missing."""
    if perm is None:
        return indices
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    rows = indices[perm]
    return np.where(rows >= 0, inverse[rows], -1)


def overlap_counts(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row, how many neighbours two ``(n, k)`` neighbour lists share (assumes distinct entries per row;
    -1 marks a missing neighbour and never matches)."""
    counts = np.empty(first.shape[0], dtype=np.int64)
    for start in range(0, first.shape[0], _BLOCK):
        a, b = first[start : start + _BLOCK], second[start : start + _BLOCK]
        same = (a[:, :, None] == b[:, None, :]) & (a[:, :, None] >= 0)
        counts[start : start + _BLOCK] = same.any(axis=2).sum(axis=1)
    return counts


def cosine_neighbours(
    X: np.ndarray, Y: np.ndarray, k: int, *, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` cosine nearest neighbours of every row within X and within Y (self excluded), searched once
    each, seeded by ``random_state``, so that every neighbour-based score and its null share them. Assumes
    validated, paired input."""
    check_k(k, X.shape[0])
    return (
        knn(X, k, metric="cosine", random_state=random_state).indices,
        knn(Y, k, metric="cosine", random_state=random_state).indices,
    )


def _unbiased_hsic_dense(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC of two ``(m, m)`` kernels (times ``m (m - 3)``), diagonals ignored."""
    m = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    trace = float(np.sum(K * L.T))
    return trace + K.sum() * L.sum() / ((m - 1) * (m - 2)) - 2.0 * float(K.sum(axis=0) @ L.sum(axis=1)) / (m - 2)


def _centre_gram(K: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11^T / m``."""
    return K - K.mean(axis=0) - K.mean(axis=1)[:, None] + K.mean()


def _rbf_gram(X: np.ndarray, sigma_fraction: float, name: str) -> np.ndarray:
    X = _centred(X)
    sq = np.einsum("ij,ij->i", X, X)
    distances = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (X @ X.T), 0.0)
    median = float(np.median(distances[np.triu_indices(X.shape[0], 1)]))
    if median <= 0.0:
        raise EmbeddingDataError(
            f"{name}: most sampled rows are identical (median pairwise distance 0), so the RBF bandwidth is 0. "
            "Remove duplicate rows or use linear CKA."
        )
    return np.exp(-distances / (2.0 * sigma_fraction**2 * median))


# ---------------------------------------------------------------------------------------------- scorers


class _LinearCKA:
    """Linear CKA in feature space, O(n d^2): no n x n matrix is formed.

    With ``K = X X^T``, ``L = Y Y^T`` on centred rows, ``C = X^T Y`` and row norms ``kx_i = |x_i|^2``:

    * biased: ``HSIC ~ tr(K H L H) = |C|_F^2`` (centred rows make ``H`` redundant);
    * unbiased (Song et al. 2012), with ``K~``, ``L~`` the kernels with zeroed diagonals,
      ``n (n-3) HSIC_1 = tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2 / (n-2) (K~ 1).(L~ 1)``,
      where ``tr(K~ L~) = |C|_F^2 - kx.ky``, ``1^T K~ 1 = |X^T 1|^2 - sum(kx) = -sum(kx)`` and
      ``K~ 1 = X (X^T 1) - kx = -kx`` (column sums vanish after centring). HSIC_1 is translation invariant, so
      centring changes nothing but the rounding.
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray, *, debiased: bool) -> None:
        self.x, self.y = _centred(X), _centred(Y)
        self.debiased = debiased
        self.rows_x = np.einsum("ij,ij->i", self.x, self.x)
        self.rows_y = np.einsum("ij,ij->i", self.y, self.y)
        self_x = self._hsic(float(np.sum((self.x.T @ self.x) ** 2)), self.rows_x, self.rows_x)
        self_y = self._hsic(float(np.sum((self.y.T @ self.y) ** 2)), self.rows_y, self.rows_y)
        if self_x <= 0.0 or self_y <= 0.0:
            raise EmbeddingDataError(
                "linear CKA is undefined: one set has no variance after centring (every row the same)."
            )
        self.norm = np.sqrt(self_x * self_y)

    def _hsic(self, cross: float, rows_x: np.ndarray, rows_y: np.ndarray) -> float:
        if not self.debiased:
            return cross
        n = rows_x.size
        return cross - n / (n - 2.0) * float(rows_x @ rows_y) + rows_x.sum() * rows_y.sum() / ((n - 1.0) * (n - 2.0))

    def score(self, perm: np.ndarray | None = None) -> float:
        y = self.y if perm is None else self.y[perm]
        rows_y = self.rows_y if perm is None else self.rows_y[perm]
        return float(self._hsic(float(np.sum((self.x.T @ y) ** 2)), self.rows_x, rows_y) / self.norm)


class _RbfCKA:
    """Kernel CKA with RBF kernels on explicit centred ``(m, m)`` Gram matrices; a permutation of the
    pairing permutes the rows and columns of the centred ``L`` (centring commutes with permutations)."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, *, sigma_fraction: float) -> None:
        sigma_fraction = check_positive(sigma_fraction, "sigma_fraction")
        self.k = _centre_gram(_rbf_gram(X, sigma_fraction, "X"))
        self.l = _centre_gram(_rbf_gram(Y, sigma_fraction, "Y"))
        self.norm = float(np.linalg.norm(self.k) * np.linalg.norm(self.l))

    def score(self, perm: np.ndarray | None = None) -> float:
        l = self.l if perm is None else self.l[np.ix_(perm, perm)]  # noqa: E741
        return float(np.sum(self.k * l)) / self.norm


class _NeighbourOverlap:
    """Mean per-row overlap of the two spaces' neighbour lists: ``|N_X ∩ N_Y| / k`` or the Jaccard index."""

    def __init__(self, neighbours_x: np.ndarray, neighbours_y: np.ndarray, *, jaccard: bool) -> None:
        self.x, self.y, self.jaccard = neighbours_x, neighbours_y, jaccard

    def score(self, perm: np.ndarray | None = None) -> float:
        counts = overlap_counts(self.x, _permuted_neighbours(self.y, perm))
        k = self.x.shape[1]
        return float(np.mean(counts / (2 * k - counts) if self.jaccard else counts / k))


class _CKNNA:
    """CKNNA on explicit cosine kernels of ``m`` rows; neighbours are searched within those rows."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, *, k: int, random_state: int | None = 0) -> None:
        check_k(k, X.shape[0], name="k (CKNNA sample)")
        ux, uy = unit_rows(X).astype(np.float64), unit_rows(Y).astype(np.float64)
        self.kx, self.ky = ux @ ux.T, uy @ uy.T
        self.nx, self.ny = cosine_neighbours(X, Y, k, random_state=random_state)
        self.mask_x = self._mask(self.nx)
        self_x = _unbiased_hsic_dense(self.mask_x * self.kx, self.mask_x * self.kx)
        mask_y = self._mask(self.ny)
        self_y = _unbiased_hsic_dense(mask_y * self.ky, mask_y * self.ky)
        self.norm = np.sqrt(self_x * self_y) if self_x > 0 and self_y > 0 else np.nan

    @staticmethod
    def _mask(neighbours: np.ndarray) -> np.ndarray:
        mask = np.zeros((neighbours.shape[0],) * 2)
        np.put_along_axis(mask, neighbours, 1.0, axis=1)
        return mask

    def score(self, perm: np.ndarray | None = None) -> float:
        ky = self.ky if perm is None else self.ky[np.ix_(perm, perm)]
        mask = self.mask_x * self._mask(_permuted_neighbours(self.ny, perm))
        return float(_unbiased_hsic_dense(mask * self.kx, mask * ky) / self.norm)


class _SVCCA:
    """SVCCA: the left singular vectors kept by the SVD are an orthonormal, centred basis of each reduced
    set, so the canonical correlations are the singular values of ``U_x^T U_y`` (QR-based CCA without the
    QR)."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, *, keep: float) -> None:
        keep = check_positive(keep, "keep", upper=1.0)
        self.ux, self.uy = self._basis(X, keep, "X"), self._basis(Y, keep, "Y")

    @staticmethod
    def _basis(X: np.ndarray, keep: float, name: str) -> np.ndarray:
        U, S, _ = np.linalg.svd(_centred(X), full_matrices=False)
        variance = S**2
        if variance[0] <= 0:
            raise EmbeddingDataError(f"SVCCA: {name} has no variance after centring (every row the same).")
        rank = int(np.sum(S > S[0] * 1e-10))
        kept = int(np.searchsorted(np.cumsum(variance) / variance.sum(), keep - 1e-12)) + 1
        return U[:, : min(kept, rank)]

    def score(self, perm: np.ndarray | None = None) -> float:
        uy = self.uy if perm is None else self.uy[perm]
        correlations = np.linalg.svd(self.ux.T @ uy, compute_uv=False)
        return float(np.mean(np.clip(correlations, 0.0, 1.0)))


class _Procrustes:
    """Orthogonal Procrustes distance ``sqrt(2 - 2 |X^T Y|_*)`` of centred, unit-Frobenius sets. The nuclear
    norm of the ``(d1, d2)`` cross product equals that of the zero-padded square one, so no padding is formed."""

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.x, self.y = _centred(X), _centred(Y)
        norm_x, norm_y = np.linalg.norm(self.x), np.linalg.norm(self.y)
        if norm_x <= 0 or norm_y <= 0:
            raise EmbeddingDataError("Procrustes distance: one set has no variance after centring.")
        self.x /= norm_x
        self.y /= norm_y

    def score(self, perm: np.ndarray | None = None) -> float:
        y = self.y if perm is None else self.y[perm]
        nuclear = float(np.linalg.svd(self.x.T @ y, compute_uv=False).sum())
        return float(np.sqrt(max(2.0 - 2.0 * nuclear, 0.0)))


class _SimilarityRank:
    """Spearman correlation of the cosine similarities of the same random row pairs in both spaces."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, *, n_pairs: int, rng: np.random.Generator) -> None:
        n_pairs = check_int(n_pairs, "n_pairs", 3)
        n = X.shape[0]
        self.first = rng.integers(0, n, size=n_pairs)
        self.second = (self.first + rng.integers(1, n, size=n_pairs)) % n  # never the same row
        self.ux, self.uy = unit_rows(X), unit_rows(Y)
        self.sims_x = self._cosines(self.ux, self.first, self.second)

    @staticmethod
    def _cosines(rows: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        out = np.empty(first.size)
        for start in range(0, first.size, _BLOCK):
            stop = start + _BLOCK
            out[start:stop] = np.einsum("ij,ij->i", rows[first[start:stop]], rows[second[start:stop]])
        return out

    def score(self, perm: np.ndarray | None = None) -> float:
        a, b = (self.first, self.second) if perm is None else (perm[self.first], perm[self.second])
        return float(spearmanr(self.sims_x, self._cosines(self.uy, a, b)).statistic)


# ---------------------------------------------------------------------------------------------- public scores


def linear_cka(X: EmbeddingSet | object, Y: EmbeddingSet | object, *, debiased: bool = False) -> float:
    """Linear centred kernel alignment between two paired sets.

    Invariant to orthogonal transforms and isotropic scaling of either side, not to arbitrary linear maps.
    Computed in feature space in O(n d^2) time, so 100,000 x 384 takes a few seconds.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows (sets by id, arrays by position); the dimensions may differ.
    debiased : bool, default=False
        Use the unbiased HSIC estimator of Song et al. (2012), as Nguyen et al. (2021) do, instead of the
        biased one; it removes the upward bias of CKA when the dimension is large relative to n.

    Returns
    -------
    float
        1 for identical geometry up to rotation and scale; near 0 for independent sets (biased CKA stays
        above 0 on small samples, debiased CKA centres on 0).

    Raises
    ------
    EmbeddingDataError
        On invalid or unpaired rows, fewer than 4 pairs, or a set without variance.

    References
    ----------
    Kornblith, Norouzi, Lee and Hinton (2019), "Similarity of neural network representations revisited", ICML.
    Song, Smola, Gretton, Bedo and Borgwardt (2012), "Feature selection via dependence maximization", JMLR 13.
    Nguyen, Raghu and Kornblith (2021), "Do wide and deep networks learn the same things? Uncovering how
    neural network representations vary with width and depth", ICLR.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8))
    >>> rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    >>> round(linear_cka(X, 3 * X @ rotation), 6)
    1.0
    """
    x, y = _paired(X, Y)
    return _LinearCKA(x, y, debiased=debiased).score()


def rbf_cka(
    X: EmbeddingSet | object,
    Y: EmbeddingSet | object,
    *,
    sigma_fraction: float = 0.8,
    sample: int | None = 2000,
    random_state: int | None = 0,
) -> float:
    """Kernel CKA with RBF kernels whose bandwidth is a fraction of the median pairwise distance.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.
    sigma_fraction : float, default=0.8
        Bandwidth of each side's kernel as a fraction of its median pairwise Euclidean distance; small values
        emphasise local structure.
    sample : int or None, default=2000
        Rows the O(m^2) Gram matrices are built on (all rows when None).
    random_state : int or None, default=0
        Seed of the row sample.

    Returns
    -------
    float
        In [0, 1]; 1 for identical geometry up to rotation, translation and scale.

    References
    ----------
    Kornblith, Norouzi, Lee and Hinton (2019), "Similarity of neural network representations revisited", ICML.
    """
    x, y = _paired(X, Y)
    rows = _sample_rows(x.shape[0], sample, np.random.default_rng(random_state))
    return _RbfCKA(x[rows], y[rows], sigma_fraction=sigma_fraction).score()


def mutual_knn_alignment(
    X: EmbeddingSet | object, Y: EmbeddingSet | object, *, k: int = 10, random_state: int | None = 0
) -> float:
    """Mutual k-nearest-neighbour alignment: the mean over rows of ``|kNN_X(i) ∩ kNN_Y(i)| / k``.

    Neighbours are cosine neighbours from :func:`embedlab.neighbors.knn`, each row excluded from its own list.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.
    k : int, default=10
        Neighbours per row.
    random_state : int or None, default=0
        Seed of the neighbour searches, approximate on large sets (see :func:`embedlab.neighbors.knn`).

    Returns
    -------
    float
        In [0, 1]; about ``k / (n - 1)`` for unrelated sets, 1 when every neighbourhood is the same.

    References
    ----------
    Huh, Cheung, Wang and Isola (2024), "The Platonic representation hypothesis", ICML.
    """
    x, y = _paired(X, Y)
    return _NeighbourOverlap(*cosine_neighbours(x, y, k, random_state=random_state), jaccard=False).score()


def cknna(
    X: EmbeddingSet | object,
    Y: EmbeddingSet | object,
    *,
    k: int = 10,
    sample: int | None = 1024,
    random_state: int | None = 0,
) -> float:
    """Centred kernel nearest-neighbour alignment (CKNNA): CKA restricted to mutual neighbours.

    On ``m`` sampled rows, cosine kernels ``K`` and ``L`` are masked to the entries ``(i, j)`` where ``j`` is
    among the ``k`` nearest neighbours of ``i`` in both spaces (searched within the sample), and the unbiased
    HSIC of the masked kernels is normalised by the HSIC of each kernel masked by its own neighbours, as in the
    authors' code.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.
    k : int, default=10
        Neighbours per row within the sample.
    sample : int or None, default=1024
        Rows the explicit ``(m, m)`` kernels are built on (the batch size of Huh et al.); all when None.
    random_state : int or None, default=0
        Seed of the row sample and of the neighbour searches.

    Returns
    -------
    float
        1 when the spaces agree on every neighbourhood; near 0 for unrelated sets. NaN when a space has no
        neighbourhood structure to normalise by.

    References
    ----------
    Huh, Cheung, Wang and Isola (2024), "The Platonic representation hypothesis", ICML.
    """
    x, y = _paired(X, Y)
    rows = _sample_rows(x.shape[0], sample, np.random.default_rng(random_state))
    return _CKNNA(x[rows], y[rows], k=k, random_state=random_state).score()


def svcca(X: EmbeddingSet | object, Y: EmbeddingSet | object, *, keep: float = 0.99) -> float:
    """Singular vector canonical correlation analysis: the mean canonical correlation of the SVD-reduced sets.

    Each centred set is reduced to its leading singular directions that keep ``keep`` of its variance (at
    most ``min(n, d)``, fewer when the set has lower rank); CCA then finds the most correlated directions of
    the two reductions.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.
    keep : float, default=0.99
        Fraction of each set's variance kept by its SVD.

    Returns
    -------
    float
        In [0, 1]; 1 when one reduced set is an invertible linear map of the other. CCA fits ``n`` rows with
        up to ``d1 + d2`` directions, so unrelated sets score above 0 when ``n`` is not much larger than the
        dimensions (compare with the permutation null of :func:`compare_spaces`).

    References
    ----------
    Raghu, Gilmer, Yosinski and Sohl-Dickstein (2017), "SVCCA: singular vector canonical correlation analysis
    for deep learning dynamics and interpretability", NeurIPS.
    """
    x, y = _paired(X, Y)
    return _SVCCA(x, y, keep=keep).score()


def procrustes_distance(X: EmbeddingSet | object, Y: EmbeddingSet | object) -> float:
    """Orthogonal Procrustes shape distance between the centred, unit-Frobenius-norm sets.

    ``d = sqrt(2 - 2 |X^T Y|_*)``: the Euclidean distance left after the best rotation of one set onto the
    other (the smaller dimension zero-padded).

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.

    Returns
    -------
    float
        In [0, sqrt(2)]; 0 when the sets are equal up to translation, rotation and isotropic scaling.

    References
    ----------
    Williams, Kunz, Kornblith and Linderman (2021), "Generalized shape metrics on neural representations",
    NeurIPS.
    """
    x, y = _paired(X, Y)
    return _Procrustes(x, y).score()


def retrieval_overlap(
    X: EmbeddingSet | object, Y: EmbeddingSet | object, *, k: int = 10, random_state: int | None = 0
) -> float:
    """Mean Jaccard index of each row's top-k cosine neighbours in X and in Y (self excluded).

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.
    k : int, default=10
        Retrieved neighbours per row.
    random_state : int or None, default=0
        Seed of the neighbour searches, approximate on large sets (see :func:`embedlab.neighbors.knn`).

    Returns
    -------
    float
        In [0, 1]; 1 when both models retrieve the same top-k for every row.

    References
    ----------
    Caspari, Dutta, Wagner and Wagner (2024), "Beyond benchmarks: evaluating embedding model similarity for
    retrieval augmented generation systems", IR-RAG workshop at SIGIR.
    """
    x, y = _paired(X, Y)
    return _NeighbourOverlap(*cosine_neighbours(x, y, k, random_state=random_state), jaccard=True).score()


def similarity_rank_correlation(
    X: EmbeddingSet | object,
    Y: EmbeddingSet | object,
    *,
    n_pairs: int = 100_000,
    random_state: int | None = 0,
) -> float:
    """Spearman correlation of the cosine similarities of the same random row pairs in both spaces.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows; the dimensions may differ.
    n_pairs : int, default=100000
        Random pairs of distinct rows (drawn with replacement).
    random_state : int or None, default=0
        Seed of the pairs.

    Returns
    -------
    float
        In [-1, 1]; 1 when both spaces rank all pairs alike.

    References
    ----------
    Kriegeskorte, Mur and Bandettini (2008), "Representational similarity analysis: connecting the branches
    of systems neuroscience", Frontiers in Systems Neuroscience 2 (comparing spaces by the rank correlation
    of their pairwise similarities).
    """
    x, y = _paired(X, Y)
    return _SimilarityRank(x, y, n_pairs=n_pairs, rng=np.random.default_rng(random_state)).score()
