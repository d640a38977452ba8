from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.cluster.deep import knn_affinity, partial_sinkhorn, progressive_mass, semantic_sinkhorn, sinkhorn

torch = pytest.importorskip("torch")


def _log_probs(n: int, k: int, seed: int = 0) -> torch.Tensor:
    logits = np.random.default_rng(seed).normal(size=(n, k)) * 2
    return torch.from_numpy(logits).log_softmax(dim=1)


def _sinkhorn_reference(scores: np.ndarray, n_iter: int, epsilon: float) -> np.ndarray:
    """SwAV's dense Sinkhorn-Knopp: alternately normalise prototypes (to 1/k) and samples (to 1/n)."""
    q = np.exp(scores / epsilon).T
    q /= q.sum()
    k, n = q.shape
    for _ in range(n_iter):
        q /= q.sum(axis=1, keepdims=True) * k
        q /= q.sum(axis=0, keepdims=True) * n
    return (q * n).T


def _partial_reference(scores: np.ndarray, mass: float, weight: float, n_iter: int, epsilon: float) -> np.ndarray:
    """Dense generalised Sinkhorn (Chizat et al. 2018) on the plan extended by a virtual cluster of score 0."""
    n, k = scores.shape
    kernel = np.c_[np.exp(scores / epsilon), np.ones(n)]
    v = np.r_[np.ones(k), 1.0 - mass]
    for _ in range(n_iter):
        u = 1.0 / n / (kernel @ v)
        columns = kernel.T @ u
        v = np.r_[(mass / k / columns[:k]) ** (weight / (weight + epsilon)), (1.0 - mass) / columns[k]]
    u = 1.0 / n / (kernel @ v)
    return n * (u[:, None] * kernel * v)[:, :k]


@pytest.mark.parametrize(("n", "k", "n_iter", "epsilon"), [(50, 4, 3, 0.05), (200, 7, 100, 0.1), (30, 30, 20, 0.5)])
def test_sinkhorn_matches_the_dense_reference(n, k, n_iter, epsilon):
    scores = _log_probs(n, k)
    q = sinkhorn(scores, n_iter=n_iter, epsilon=epsilon)
    assert q.shape == (n, k) and q.dtype == torch.float64
    np.testing.assert_allclose(q.numpy(), _sinkhorn_reference(scores.numpy(), n_iter, epsilon), rtol=1e-9, atol=1e-12)


def test_sinkhorn_marginals():
    scores = _log_probs(300, 6, seed=1)
    q = sinkhorn(scores, n_iter=200, epsilon=0.1).numpy()
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-9)  # the last scaling is over the rows: exact
    np.testing.assert_allclose(q.sum(axis=0) / 300, 1 / 6, atol=1e-3)
    assert (q >= 0).all()


def _skewed(n_first: int = 80, n_second: int = 20, seed: int = 0) -> torch.Tensor:
    """Log-probabilities of two clusters whose argmax sizes are ``n_first`` and ``n_second``, all rows distinct."""
    rng = np.random.default_rng(seed)
    first = np.r_[rng.uniform(0.55, 0.95, n_first), rng.uniform(0.05, 0.45, n_second)]
    return torch.log(torch.from_numpy(np.c_[first, 1 - first]))


def test_sinkhorn_balances_a_skewed_assignment():
    scores = _skewed()
    assert scores.argmax(dim=1).bincount().tolist() == [80, 20]
    sizes = sinkhorn(scores, n_iter=500, epsilon=0.05).argmax(dim=1).bincount()
    assert abs(sizes - 50).max() <= 1


@pytest.mark.parametrize(("mass", "weight"), [(1.0, 1.0), (0.6, 0.5), (0.3, 10.0)])
def test_partial_matches_the_dense_reference_and_keeps_its_mass(mass, weight):
    scores = _log_probs(120, 5, seed=2)
    q = partial_sinkhorn(scores, mass=mass, marginal_weight=weight, n_iter=300, epsilon=0.1).numpy()
    np.testing.assert_allclose(q, _partial_reference(scores.numpy(), mass, weight, 300, 0.1), rtol=1e-8, atol=1e-12)
    q = partial_sinkhorn(scores, mass=mass, marginal_weight=weight, n_iter=3000, epsilon=0.1).numpy()
    assert q.sum() == pytest.approx(mass * 120, abs=1e-3)  # the total is exact at convergence only
    assert (q >= 0).all() and (q.sum(axis=1) <= 1 + 1e-9).all()


def test_partial_solves_the_stated_problem():
    """Against a generic constrained solver on the primal objective of the docstring (virtual column last)."""
    n, k, mass, weight, epsilon = 6, 3, 0.7, 0.8, 0.3
    scores = _log_probs(n, k, seed=3).numpy()
    cost = np.c_[-scores, np.zeros(n)]

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        plan = flat.reshape(n, k + 1)
        columns = plan[:, :k].sum(axis=0)
        value = (plan * cost).sum() + epsilon * (plan * np.log(plan)).sum()
        value += weight * (columns * np.log(columns / (mass / k))).sum()
        gradient = cost + epsilon * (np.log(plan) + 1)
        gradient[:, :k] += weight * (np.log(columns / (mass / k)) + 1)
        return value, gradient.ravel()

    constraints = [
        {"type": "eq", "fun": lambda flat: flat.reshape(n, k + 1).sum(axis=1) - 1 / n},
        {"type": "eq", "fun": lambda flat: flat.reshape(n, k + 1)[:, k].sum() - (1 - mass)},
    ]
    start = np.full(n * (k + 1), 1 / (n * (k + 1)))
    solved = minimize(
        objective,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(1e-12, 1)] * start.size,
        constraints=constraints,
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert solved.success
    expected = n * solved.x.reshape(n, k + 1)[:, :k]
    ours = partial_sinkhorn(torch.from_numpy(scores), mass=mass, marginal_weight=weight, n_iter=3000, epsilon=epsilon)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-4)


def test_partial_limits_of_the_marginal_weight():
    scores = _log_probs(80, 4, seed=4)
    balanced = sinkhorn(scores, n_iter=500, epsilon=0.2)
    strict = partial_sinkhorn(scores, marginal_weight=1e6, n_iter=500, epsilon=0.2)
    np.testing.assert_allclose(strict.numpy(), balanced.numpy(), atol=1e-3)
    free = partial_sinkhorn(scores, marginal_weight=1e-6, n_iter=50, epsilon=0.2)
    np.testing.assert_allclose(free.numpy(), (scores.double() / 0.2).softmax(dim=1).numpy(), atol=1e-3)


def test_partial_drops_the_least_confident_samples_first():
    confident = np.log(np.array([[0.97, 0.03], [0.03, 0.97]] * 20))
    unsure = np.log(np.array([[0.55, 0.45]] * 10))
    q = partial_sinkhorn(torch.from_numpy(np.r_[confident, unsure]), mass=0.8, n_iter=500, epsilon=0.1).numpy()
    kept = q.sum(axis=1)
    assert kept[:40].min() > kept[40:].max()


def test_relaxing_the_cluster_marginal_keeps_imbalanced_clusters():
    scores = _skewed()
    sizes = [
        partial_sinkhorn(scores, marginal_weight=weight, n_iter=500, epsilon=0.05).argmax(dim=1).bincount()[0]
        for weight in (0.1, 1.0, 10.0)
    ]
    assert sizes[0] == 80 and 80 > sizes[1] > sizes[2] >= 50


@pytest.mark.parametrize("function", [sinkhorn, partial_sinkhorn])
def test_bad_inputs(function):
    with pytest.raises(EmbeddingDataError, match="NaN"):
        function(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(EmbeddingDataError, match="2-D"):
        function(torch.zeros(3))
    with pytest.raises(EmbeddingDataError, match="2-D"):
        function(np.zeros((3, 2)))
    with pytest.raises(ConfigurationError, match="epsilon"):
        function(torch.zeros(3, 2), epsilon=0.0)
    with pytest.raises(ConfigurationError, match="n_iter"):
        function(torch.zeros(3, 2), n_iter=0)


def test_partial_bad_parameters():
    with pytest.raises(ConfigurationError, match="mass"):
        partial_sinkhorn(torch.zeros(3, 2) - 1, mass=1.5)
    with pytest.raises(ConfigurationError, match="marginal_weight"):
        partial_sinkhorn(torch.zeros(3, 2) - 1, marginal_weight=0)
    with pytest.raises(ConfigurationError, match="log-probabilities"):
        partial_sinkhorn(torch.ones(3, 2))


def _dense(affinity: torch.Tensor) -> np.ndarray:
    return affinity.to_dense().numpy() if affinity.is_sparse else affinity.numpy()


def _semantic_objective(q: np.ndarray, scores: np.ndarray, affinity: np.ndarray, params: dict) -> float:
    """SP2OT's objective as :func:`semantic_sinkhorn` states it, for ``q = n Q``."""
    n, k = q.shape
    plan, kept = q / n, q.sum(axis=1) / n
    left = 1.0 / n - kept
    columns, target = plan.sum(axis=0), params["mass"] / k
    entropy = (plan * np.log(plan)).sum() + (left * np.log(np.maximum(left, 1e-300))).sum()
    marginal = (columns * np.log(columns / target) - columns + target).sum()
    pull = np.trace(q.T @ (np.diag(affinity.sum(axis=1)) + affinity) @ q)
    return float(
        (plan * -scores).sum()
        + params["epsilon"] * entropy
        + params["marginal_weight"] * marginal
        - params["semantic_weight"] / (2 * n) * pull
    )


def test_knn_affinity_is_the_symmetrised_graph():
    neighbours = np.array([[1, 2], [0, 2], [0, 1], [2, 0]])
    dense = _dense(knn_affinity(neighbours))
    expected = np.zeros((4, 4))
    for i, row in enumerate(neighbours):
        expected[i, row] += 1 / 4
        expected[row, i] += 1 / 4
    np.testing.assert_allclose(dense, expected)
    np.testing.assert_allclose(dense, dense.T)


def test_semantic_sinkhorn_without_weight_is_partial_sinkhorn():
    scores = _log_probs(60, 4, seed=3)
    graph = knn_affinity(np.random.default_rng(0).integers(0, 60, size=(60, 5)))
    expected = partial_sinkhorn(scores, mass=0.7, n_iter=50, epsilon=0.1)
    found = semantic_sinkhorn(scores, graph, semantic_weight=0.0, mass=0.7, n_iter=50, epsilon=0.1)
    np.testing.assert_array_equal(found.numpy(), expected.numpy())


@pytest.mark.parametrize("sparse", [True, False])
def test_semantic_sinkhorn_steps_never_raise_the_objective(sparse):
    """Each majorisation step solves a P2OT problem whose cost is the tangent of the concave semantic term: with
    converged inner solves the regularised objective does not increase (Hunter and Lange 2004)."""
    rng = np.random.default_rng(4)
    scores = _log_probs(80, 4, seed=4)
    graph = knn_affinity(rng.integers(0, 80, size=(80, 6)))
    affinity = graph if sparse else graph.to_dense()
    params = {"mass": 0.8, "marginal_weight": 1.0, "epsilon": 0.2, "semantic_weight": 1.5}
    values = [
        _semantic_objective(
            semantic_sinkhorn(scores, affinity, mm_iter=steps, n_iter=3000, **params).numpy(),
            scores.numpy(),
            _dense(graph),
            params,
        )
        for steps in range(5)
    ]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(values))
    assert values[-1] < values[0] - 1e-3


def test_semantic_pull_follows_the_graph():
    """Rows with flat scores take the cluster of the confident rows they are linked to."""
    rng = np.random.default_rng(5)
    sure = np.repeat([[0.9, 0.1], [0.1, 0.9]], 20, axis=0)
    scores = torch.log(torch.from_numpy(np.r_[sure, np.full((20, 2), 0.5)]))
    partner = np.r_[np.arange(40), rng.permutation(40)[:20]]  # flat row 40 + i linked to a random sure row
    neighbours = np.c_[np.r_[np.arange(40) ^ 1, partner[40:]]]
    neighbours[40:, 0] = partner[40:]
    shared = semantic_sinkhorn(scores, knn_affinity(neighbours), semantic_weight=2.0, n_iter=500, epsilon=0.1)
    chosen = shared[40:].argmax(dim=1).numpy()
    np.testing.assert_array_equal(chosen, (partner[40:] >= 20).astype(int))


@pytest.mark.parametrize(
    ("affinity", "match"),
    [
        (torch.ones(3, 3), r"shape \(4, 4\)"),
        (-torch.eye(4), "negative"),
        (torch.triu(torch.ones(4, 4)), "not symmetric"),
        (torch.full((4, 4), float("nan")), "NaN"),
        (np.eye(4), "torch tensor"),
    ],
)
def test_semantic_sinkhorn_refuses_bad_graphs(affinity, match):
    with pytest.raises(EmbeddingDataError, match=match):
        semantic_sinkhorn(_log_probs(4, 2), affinity)


@pytest.mark.parametrize(
    ("params", "match"), [({"semantic_weight": -1.0}, "semantic_weight"), ({"mm_iter": -1}, "mm_iter")]
)
def test_semantic_sinkhorn_refuses_bad_parameters(params, match):
    with pytest.raises(ConfigurationError, match=match):
        semantic_sinkhorn(_log_probs(4, 2), torch.eye(4), **params)


@pytest.mark.parametrize(("neighbours", "match"), [(np.array([[0], [5]]), "outside"), (np.zeros((2, 1)), "integer")])
def test_knn_affinity_refuses_bad_indices(neighbours, match):
    with pytest.raises(EmbeddingDataError, match=match):
        knn_affinity(neighbours)


def test_progressive_mass_refuses_steps_past_the_end():
    assert progressive_mass(0, 1) == pytest.approx(0.1)
    with pytest.raises(ConfigurationError, match="step must be in 0..3"):
        progressive_mass(4, 4)
