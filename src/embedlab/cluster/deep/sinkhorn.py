"""Sinkhorn-Knopp pseudo-labels: balanced (SeLa, SwAV), partial with a relaxed cluster marginal (P2OT), and partial
with neighbours pulled to the same clusters (SP2OT).

The functions take an (n, k) matrix of scores of n samples for k clusters (log-probabilities, or similarities
as in SwAV) and return the entropic optimal transport plan scaled by n, so that row i holds sample i's share of
each cluster. They run in the log domain (no overflow at small ``epsilon``), in float64, without gradients.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from embedlab._checks import check_int, check_positive
from embedlab.cluster.deep._torch import require_torch
from embedlab.exceptions import ConfigurationError, EmbeddingDataError

if TYPE_CHECKING:
    import torch

__all__ = ["knn_affinity", "partial_sinkhorn", "progressive_mass", "semantic_sinkhorn", "sinkhorn"]


def _log_kernel(log_scores: torch.Tensor, epsilon: object, n_iter: object) -> tuple[torch.Tensor, int]:
    """Checked ``log_scores / epsilon`` in float64 (detached) and the iteration count."""
    torch = require_torch("Sinkhorn pseudo-labels")
    if not isinstance(log_scores, torch.Tensor) or log_scores.ndim != 2 or 0 in log_scores.shape:
        raise EmbeddingDataError("log_scores must be a non-empty 2-D torch tensor of shape (n_samples, n_clusters).")
    if not torch.isfinite(log_scores).all():
        raise EmbeddingDataError("log_scores holds NaN or infinite values; pass finite scores.")
    return log_scores.detach().to(torch.float64) / check_positive(epsilon, "epsilon"), check_int(n_iter, "n_iter")


def sinkhorn(log_scores: torch.Tensor, *, n_iter: int = 3, epsilon: float = 0.05) -> torch.Tensor:
    """Balanced pseudo-labels: assign n samples to k clusters of equal size by entropic optimal transport.

    Finds the plan Q of shape (n, k) maximising ``<Q, S> + epsilon H(Q)`` with every row summing to 1/n and
    every column to 1/k (``S = log_scores``), by alternately rescaling the columns and the rows of
    ``exp(S / epsilon)`` (Sinkhorn-Knopp). The last step rescales the rows, so the rows of the result are
    exact and the column sums approach n/k as ``n_iter`` grows; SwAV's three iterations give roughly
    balanced clusters, which is all a training target needs.

    Parameters
    ----------
    log_scores : torch.Tensor of shape (n, k)
        Scores of each sample for each cluster: log-probabilities (SeLa) or prototype similarities (SwAV).
    n_iter : int, default=3
        Column-then-row rescalings (SwAV's default).
    epsilon : float, default=0.05
        Entropic regularisation (SwAV's default): smaller gives harder assignments.

    Returns
    -------
    torch.Tensor of shape (n, k), float64
        ``n Q``: each row a distribution over the clusters, each column summing to about n/k.

    Raises
    ------
    EmbeddingDataError
        When ``log_scores`` is not a finite, non-empty 2-D tensor.
    ConfigurationError
        On ``n_iter < 1`` or ``epsilon <= 0``.
    MissingDependencyError
        When torch is not installed.

    References
    ----------
    Cuturi (2013), "Sinkhorn distances: lightspeed computation of optimal transport", NeurIPS.
    Asano, Rupprecht and Vedaldi (2020), "Self-labelling via simultaneous clustering and representation
    learning", ICLR (SeLa).
    Caron, Misra, Mairal, Goyal, Bojanowski and Joulin (2020), "Unsupervised learning of visual features by
    contrasting cluster assignments", NeurIPS (SwAV).

    Examples
    --------
    >>> import torch
    >>> scores = torch.log(torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]))
    >>> q = sinkhorn(scores, n_iter=200, epsilon=1.0)
    >>> q.sum(dim=0).round(decimals=3).tolist(), q.argmax(dim=1).tolist()
    ([2.0, 2.0], [0, 0, 1, 1])
    """
    log_q, n_iter = _log_kernel(log_scores, epsilon, n_iter)
    n, k = log_q.shape
    for _ in range(n_iter):
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True) - math.log(k)
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True) - math.log(n)
    return log_q.exp() * n


def partial_sinkhorn(
    log_scores: torch.Tensor,
    *,
    mass: float = 1.0,
    marginal_weight: float = 1.0,
    n_iter: int = 10,
    epsilon: float = 0.05,
) -> torch.Tensor:
    """Imbalance-aware pseudo-labels: partial optimal transport with a KL-relaxed uniform cluster marginal.

    Solves the entropic form of the progressive partial optimal transport problem of P2OT (Zhang, Ren and He
    2024) for ``C = -log_scores``::

        min_Q  <Q, C> + epsilon (<Q, log Q> + <xi, log xi>) + marginal_weight KL(Q^T 1 || mass / k 1)
        subject to  Q >= 0,  xi = 1/n 1 - Q 1 >= 0,  1^T Q 1 = mass

    where ``xi`` is the mass of each sample left untransported and KL is the generalised Kullback-Leibler
    divergence.

    Relative to :func:`sinkhorn` two constraints are relaxed:

    - the column (cluster) marginal is no longer fixed to 1/k: a KL divergence from the uniform marginal of
      the transported mass is penalised with weight ``marginal_weight`` (Chizat, Peyré, Schmitzer and
      Vialard 2018), so clusters may differ in size (``marginal_weight -> inf`` restores equal sizes,
      ``-> 0`` lets each sample follow its own scores);
    - only ``mass`` of the total mass 1 is transported (each row sums to at most 1/n): the rest goes to a
      virtual cluster of cost 0 with total mass exactly ``1 - mass``, which takes the least confident
      samples (P2OT's reformulation). ``mass=1`` keeps every sample.

    The row marginal of the plan extended by the virtual cluster stays exact (1/n each). The scaling
    iterations are those of Chizat et al. for this augmented problem: an exact rescaling of the rows, the
    KL proximal step ``v = (b / K^T u)^(w / (w + epsilon))`` for the real clusters and an exact rescaling
    of the virtual one; the last step rescales the rows.

    Parameters
    ----------
    log_scores : torch.Tensor of shape (n, k)
        Log-probabilities of each sample for each cluster (scores <= 0: the virtual cluster scores 0).
    mass : float, default=1.0
        Share of the samples' mass to transport, in (0, 1]; P2OT raises it from 0.1 to 1 during training.
    marginal_weight : float, default=1.0
        Weight of the KL penalty on the cluster marginal.
    n_iter : int, default=10
        Scaling iterations; the relaxed update converges more slowly than the balanced one.
    epsilon : float, default=0.05
        Entropic regularisation.

    Returns
    -------
    torch.Tensor of shape (n, k), float64
        ``n Q``: row i sums to the share of sample i that is kept (at most 1), all rows to ``mass * n``.

    Raises
    ------
    EmbeddingDataError, ConfigurationError, MissingDependencyError
        As for :func:`sinkhorn`, and on ``mass`` outside (0, 1] or ``marginal_weight <= 0``.

    References
    ----------
    Zhang, Ren and He (2024), "P2OT: Progressive partial optimal transport for deep imbalanced clustering",
    ICLR.
    Chizat, Peyré, Schmitzer and Vialard (2018), "Scaling algorithms for unbalanced optimal transport
    problems", Mathematics of Computation 87(314).

    Examples
    --------
    >>> import torch
    >>> scores = torch.log(torch.tensor([[0.95, 0.05], [0.05, 0.95], [0.9, 0.1], [0.5, 0.5]]))
    >>> q = partial_sinkhorn(scores, mass=0.75, n_iter=500, epsilon=0.1)
    >>> round(float(q.sum()), 3), q.sum(dim=1).round(decimals=2).tolist()
    (3.0, [0.9, 1.0, 0.83, 0.27])
    """
    log_kernel, n_iter = _log_kernel(log_scores, epsilon, n_iter)
    mass, weight = _check_partial(mass, marginal_weight)
    if not (log_scores <= 0).all():
        raise ConfigurationError("partial_sinkhorn needs log-probabilities (all scores <= 0).")
    return _partial_plan(log_kernel, mass, weight, float(epsilon), n_iter)


def _check_partial(mass: object, marginal_weight: object) -> tuple[float, float]:
    return check_positive(mass, "mass", upper=1.0), check_positive(marginal_weight, "marginal_weight")


def _partial_plan(log_kernel: torch.Tensor, mass: float, weight: float, epsilon: float, n_iter: int) -> torch.Tensor:
    """``n Q`` of the entropic partial problem for ``log_kernel = -C / epsilon`` (see :func:`partial_sinkhorn`)."""
    torch = require_torch("Sinkhorn pseudo-labels")
    n, k = log_kernel.shape
    log_kernel = torch.cat([log_kernel, log_kernel.new_zeros(n, 1)], dim=1)
    log_cluster_mass = math.log(mass / k)
    log_virtual_mass = math.log(1.0 - mass) if mass < 1.0 else -math.inf
    exponent = weight / (weight + epsilon)
    log_v = log_kernel.new_zeros(k + 1)
    log_v[k] = log_virtual_mass

    def row_scaling(log_v: torch.Tensor) -> torch.Tensor:
        return -math.log(n) - (log_kernel + log_v).logsumexp(dim=1)

    for _ in range(n_iter):
        log_u = row_scaling(log_v)
        log_columns = (log_kernel + log_u[:, None]).logsumexp(dim=0)
        log_v = torch.cat([exponent * (log_cluster_mass - log_columns[:k]), (log_virtual_mass - log_columns[k:])])
    plan = (log_kernel + log_v + row_scaling(log_v)[:, None]).exp()
    return plan[:, :k] * n


def semantic_sinkhorn(
    log_scores: torch.Tensor,
    affinity: torch.Tensor,
    *,
    semantic_weight: float = 1.0,
    mm_iter: int = 3,
    mass: float = 1.0,
    marginal_weight: float = 1.0,
    n_iter: int = 10,
    epsilon: float = 0.05,
) -> torch.Tensor:
    """Pseudo-labels that neighbours share: P2OT with SP2OT's semantic regularisation, by majorisation-minimisation.

    Adds to the objective of :func:`partial_sinkhorn` a term rewarding samples related by ``affinity`` (a
    symmetric, non-negative (n, n) matrix ``A``, such as :func:`knn_affinity`) for sending their mass to the
    same clusters. In terms of ``P = n Q`` (each row a sample's share of each cluster)::

        - (semantic_weight / 4n) sum_ij A_ij ||P_i + P_j||^2  =  - (semantic_weight / 2n) tr(P^T (D + A) P)

    with ``D = diag(A 1)``. ``D + A`` is positive semi-definite (a signless Laplacian), so the term is concave
    and its tangent at the current plan bounds it from above: each majorisation step solves the P2OT problem
    whose cost is the linearisation, ``C - semantic_weight (D + A) P_t``, so the regularised objective never
    increases from one step to the next (given converged inner solves). The first plan is the unregularised
    one; ``mm_iter`` steps follow. ``semantic_weight=0`` gives :func:`partial_sinkhorn`.

    This is the form used here of the semantic relation constraint of SP2OT (Zhang, Ren and He 2024), who build
    the graph from the k nearest neighbours of the samples' features and majorise the semantic term so that each
    step is a P2OT problem solved by the same scaling algorithm; the concave quadratic above is embedlab's
    choice of that term.

    Parameters
    ----------
    log_scores : torch.Tensor of shape (n, k)
        Log-probabilities of each sample for each cluster.
    affinity : torch.Tensor of shape (n, n)
        Symmetric non-negative weights between samples, dense or sparse (COO or CSR).
    semantic_weight : float, default=1.0
        Weight of the semantic term (>= 0).
    mm_iter : int, default=3
        Majorisation steps after the unregularised plan.
    mass, marginal_weight, n_iter, epsilon
        As for :func:`partial_sinkhorn`, for every inner solve.

    Returns
    -------
    torch.Tensor of shape (n, k), float64
        ``n Q`` as for :func:`partial_sinkhorn`.

    Raises
    ------
    EmbeddingDataError
        When ``log_scores`` is not finite, or ``affinity`` is not an (n, n) tensor of finite, non-negative,
        symmetric weights.
    ConfigurationError, MissingDependencyError
        As for :func:`partial_sinkhorn`, and on a negative ``semantic_weight`` or ``mm_iter < 0``.

    References
    ----------
    Zhang, Ren and He (2024), "SP2OT: Semantic-regularized progressive partial optimal transport for
    imbalanced clustering", arXiv:2404.03446.
    Hunter and Lange (2004), "A tutorial on MM algorithms", The American Statistician 58(1).

    Examples
    --------
    Samples 4 and 5 are undecided; 4's neighbour is sure of cluster 0, 5's of cluster 1:

    >>> import torch
    >>> p = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.05, 0.95], [0.1, 0.9], [0.5, 0.5], [0.5, 0.5]])
    >>> graph = knn_affinity(torch.tensor([[4], [0], [5], [2], [0], [2]]))
    >>> plain = partial_sinkhorn(p.log(), n_iter=500, epsilon=0.1)
    >>> shared = semantic_sinkhorn(p.log(), graph, semantic_weight=2.0, n_iter=500, epsilon=0.1)
    >>> plain[4:, 0].round(decimals=2).tolist(), shared[4:, 0].round(decimals=2).tolist()
    ([0.5, 0.5], [1.0, 0.0])
    """
    log_kernel, n_iter = _log_kernel(log_scores, epsilon, n_iter)
    mass, weight = _check_partial(mass, marginal_weight)
    mm_iter = check_int(mm_iter, "mm_iter", minimum=0)
    semantic_weight = float(semantic_weight)
    if not (math.isfinite(semantic_weight) and semantic_weight >= 0):
        raise ConfigurationError(f"semantic_weight must be a finite number >= 0, got {semantic_weight!r}.")
    graph = _check_affinity(affinity, log_kernel.shape[0])
    degree = graph @ log_kernel.new_ones(log_kernel.shape[0], 1)
    plan = _partial_plan(log_kernel, mass, weight, float(epsilon), n_iter)
    for _ in range(mm_iter if semantic_weight > 0 else 0):
        pull = degree * plan + graph @ plan
        plan = _partial_plan(log_kernel + semantic_weight * pull / float(epsilon), mass, weight, float(epsilon), n_iter)
    return plan


def _check_affinity(affinity: object, n: int) -> torch.Tensor:
    """``affinity`` as a float64 tensor (dense or sparse COO) after checking its shape, values and symmetry."""
    torch = require_torch("Sinkhorn pseudo-labels")
    if (
        not isinstance(affinity, torch.Tensor)
        or affinity.layout not in (torch.strided, torch.sparse_coo)
        or tuple(affinity.shape) != (n, n)
    ):
        raise EmbeddingDataError(f"affinity must be a dense or sparse COO torch tensor of shape ({n}, {n}).")
    graph = affinity.detach().to(torch.float64)
    if graph.is_sparse:
        graph = graph.coalesce()
        values, asymmetry = graph.values(), (graph - graph.t()).coalesce().values()
    else:
        values, asymmetry = graph, graph - graph.T
    if not torch.isfinite(values).all() or (values < 0).any():
        raise EmbeddingDataError("affinity holds negative, NaN or infinite weights; pass finite weights >= 0.")
    if asymmetry.numel() and float(asymmetry.abs().max()) > 1e-9 * max(float(values.abs().max()), 1.0):
        raise EmbeddingDataError("affinity is not symmetric; pass (A + A.T) / 2 or build it with knn_affinity.")
    return graph


def knn_affinity(neighbors: object) -> torch.Tensor:
    """The symmetric k-nearest-neighbour graph ``(N + N^T) / 2k`` of an (n, k) array of neighbour indices, sparse.

    ``N_ij = 1`` when j is among i's k neighbours; each row of the result sums to between 1/2 and about 1.

    Raises
    ------
    EmbeddingDataError
        When ``neighbors`` is not a 2-D integer array of indices below n (its number of rows).
    """
    torch = require_torch("Sinkhorn pseudo-labels")
    indices = torch.as_tensor(neighbors)
    if indices.ndim != 2 or 0 in indices.shape or indices.dtype.is_floating_point:
        raise EmbeddingDataError("neighbors must be a non-empty 2-D integer array of shape (n_samples, k).")
    n, k = indices.shape
    if int(indices.min()) < 0 or int(indices.max()) >= n:
        raise EmbeddingDataError(f"neighbors holds indices outside 0..{n - 1}.")
    rows = torch.arange(n).repeat_interleave(k)
    columns = indices.reshape(-1).to(torch.int64)
    pairs = torch.stack([torch.cat([rows, columns]), torch.cat([columns, rows])])
    values = torch.full((2 * n * k,), 1.0 / (2 * k), dtype=torch.float64)
    return torch.sparse_coo_tensor(pairs, values, (n, n), check_invariants=True).coalesce()


def progressive_mass(step: int, n_steps: int, *, start: float = 0.1) -> float:
    """P2OT's transported mass at ``step`` of ``n_steps`` (counted from 0): linear from ``start`` to 1.

    >>> [round(progressive_mass(step, 4), 2) for step in range(4)]
    [0.1, 0.4, 0.7, 1.0]

    Raises
    ------
    ConfigurationError
        On ``step`` outside ``0..n_steps - 1`` or ``start`` outside (0, 1].
    """
    check_positive(start, "start", upper=1.0)
    if not 0 <= step < check_int(n_steps, "n_steps"):
        raise ConfigurationError(f"step must be in 0..{n_steps - 1}, got {step}.")
    return start + (1.0 - start) * step / max(n_steps - 1, 1)
