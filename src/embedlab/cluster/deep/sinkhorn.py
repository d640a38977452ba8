"""Sinkhorn-Knopp pseudo-labels: balanced (SeLa, SwAV) and partial with a relaxed cluster marginal (P2OT).

Both functions take an (n, k) matrix of scores of n samples for k clusters (log-probabilities, or similarities
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

__all__ = ["partial_sinkhorn", "sinkhorn"]


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
    mass = check_positive(mass, "mass", upper=1.0)
    weight = check_positive(marginal_weight, "marginal_weight")
    if not (log_scores <= 0).all():
        raise ConfigurationError("partial_sinkhorn needs log-probabilities (all scores <= 0).")
    torch = require_torch("Sinkhorn pseudo-labels")
    n, k = log_kernel.shape
    log_kernel = torch.cat([log_kernel, log_kernel.new_zeros(n, 1)], dim=1)
    log_cluster_mass = math.log(mass / k)
    log_virtual_mass = math.log(1.0 - mass) if mass < 1.0 else -math.inf
    exponent = weight / (weight + float(epsilon))
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
