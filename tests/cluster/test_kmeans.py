from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.cluster._kmeans import KMeans, MiniBatchKMeans, kmeans_plusplus_indices


def _blobs(rng, n_per=200, k=5, d=32, spread=0.3, scale=5.0):
    centres = rng.normal(size=(k, d)) * scale
    truth = np.repeat(np.arange(k), n_per)
    X = (centres[truth] + rng.normal(size=(k * n_per, d)) * spread).astype(np.float32)
    return X, truth


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_recovers_planted_clusters(rng, metric):
    X, truth = _blobs(rng)
    km = KMeans(n_clusters=5, metric=metric, n_init=3, random_state=0).fit(X)
    assert adjusted_rand_score(truth, km.labels_) == pytest.approx(1.0)
    assert km.labels_.dtype == np.int64 and km.cluster_centers_.dtype == np.float32
    assert (km.confidence_ > 0.5).mean() > 0.99 and km.confidence_.max() <= 1.0


def test_matches_scikit_learn_from_the_same_start(rng):
    X, _ = _blobs(rng, spread=3.0)  # overlapping: Lloyd needs several iterations
    start = X[rng.choice(len(X), 5, replace=False)]
    ours = KMeans(n_clusters=5, metric="l2", init=start, max_iter=300, tol=1e-8).fit(X)
    ref = SklearnKMeans(n_clusters=5, init=start, n_init=1, max_iter=300, tol=1e-8, algorithm="lloyd").fit(
        X.astype(np.float64)
    )
    assert (ours.labels_ == ref.labels_).mean() > 0.999
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-4)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    assert -ours.score(X) == pytest.approx(ours.inertia_, rel=1e-6)


def test_spherical_centres_are_unit_and_scale_free(rng):
    X, _ = _blobs(rng)
    a = KMeans(n_clusters=5, metric="cosine", random_state=3).fit(X)
    b = KMeans(n_clusters=5, metric="cosine", random_state=3).fit(X * rng.uniform(0.1, 10, size=(len(X), 1)))
    np.testing.assert_allclose(np.linalg.norm(a.cluster_centers_, axis=1), 1.0, atol=1e-5)
    assert adjusted_rand_score(a.labels_, b.labels_) == pytest.approx(1.0)


def test_kmeans_plusplus_seeds_one_row_per_separated_blob(rng):
    # D^2 sampling: once a blob holds a seed, its rows have ~0 weight next to the far blobs'
    X, truth = _blobs(rng, k=12, spread=0.01, scale=10.0)
    for seed in range(5):
        chosen = kmeans_plusplus_indices(X, 12, np.random.RandomState(seed))
        assert sorted(truth[chosen].tolist()) == list(range(12))
    np.testing.assert_array_equal(
        kmeans_plusplus_indices(X, 12, np.random.RandomState(3)),
        kmeans_plusplus_indices(X, 12, np.random.RandomState(3)),
    )


def test_kmeans_plusplus_potential_matches_scikit_learn_on_average(rng):
    # same greedy rule as sklearn.cluster.kmeans_plusplus: the seeding potentials agree within sampling noise
    from sklearn.cluster import kmeans_plusplus

    X, _ = _blobs(rng, n_per=100, k=20, spread=2.0, scale=3.0)

    def potential(centres):
        return float((((X[:, None, :] - centres[None]) ** 2).sum(axis=2)).min(axis=1).sum())

    ours = np.mean([potential(X[kmeans_plusplus_indices(X, 20, np.random.RandomState(s))]) for s in range(20)])
    ref = np.mean([potential(kmeans_plusplus(X, 20, random_state=s)[0]) for s in range(20)])
    assert ours == pytest.approx(ref, rel=0.05)


def test_seed_reproducible_and_restarts_keep_the_best(rng):
    X, _ = _blobs(rng, spread=4.0)
    first = KMeans(n_clusters=8, metric="l2", random_state=11).fit(X)
    again = KMeans(n_clusters=8, metric="l2", random_state=11).fit(X)
    np.testing.assert_array_equal(first.labels_, again.labels_)
    several = KMeans(n_clusters=8, metric="l2", n_init=5, random_state=11).fit(X)
    assert several.inertia_ <= first.inertia_ * (1 + 1e-6)


def test_predict_assigns_to_the_nearest_centre(rng):
    X, _ = _blobs(rng)
    km = KMeans(n_clusters=5, metric="l2", random_state=0).fit(X)
    queries = rng.normal(size=(50, 32)).astype(np.float32) * 5
    brute = np.argmin(((queries[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(km.predict(queries), brute)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    with pytest.raises(EmbeddingDataError, match="X has 3 features, but KMeans is expecting 32"):
        km.predict(queries[:, :3])


def test_single_cluster_and_training_sample(rng):
    X, _ = _blobs(rng)
    one = KMeans(n_clusters=1, metric="l2").fit(X)
    np.testing.assert_allclose(one.cluster_centers_[0], X.mean(axis=0), atol=1e-4)
    assert (one.labels_ == 0).all() and (one.confidence_ == 1.0).all()
    sub = KMeans(n_clusters=5, metric="l2", max_points_per_centroid=40, random_state=0).fit(X)
    assert sub.n_training_points_ == 200 and sub.labels_.shape == (1000,)
    assert KMeans(n_clusters=5, metric="l2").fit(X).n_training_points_ == 1000


@pytest.mark.parametrize(
    ("X_kind", "kwargs", "error", "message"),
    [
        ("tiny", {"n_clusters": 30}, ConfigurationError, "only 20 rows"),
        ("identical", {"n_clusters": 2}, ConfigurationError, "only 1 distinct rows"),
        ("nan", {"n_clusters": 2}, EmbeddingDataError, "NaN"),
        ("tiny", {"n_clusters": 0}, ConfigurationError, "n_clusters must be an integer >= 1, got 0"),
        ("tiny", {"n_clusters": 2, "metric": "manhattan"}, ConfigurationError, "metric"),
        ("tiny", {"n_clusters": 2, "init": "nope"}, ConfigurationError, "init must be"),
        ("tiny", {"n_clusters": 2, "init": np.zeros((3, 8))}, ConfigurationError, "expected \\(2, 8\\)"),
    ],
)
def test_bad_inputs(degenerate, X_kind, kwargs, error, message):
    X = {
        "tiny": degenerate["constant_dim"],
        "identical": degenerate["one_vector_repeated"],
        "nan": np.where(np.arange(20)[:, None] == 4, np.nan, degenerate["constant_dim"]),
    }[X_kind]
    with pytest.raises(error, match=message):
        KMeans(**{"metric": "l2", **kwargs}).fit(X)


def test_an_identical_set_has_one_cluster(degenerate):
    km = KMeans(n_clusters=1, metric="l2").fit(degenerate["one_vector_repeated"])
    assert km.inertia_ == pytest.approx(0.0, abs=1e-6)


def test_estimator_conventions(rng):
    X, _ = _blobs(rng, n_per=20)
    km = KMeans(n_clusters=3, random_state=0)
    assert clone(km).get_params() == km.get_params()
    np.testing.assert_array_equal(km.fit_predict(X), km.labels_)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_mini_batch_recovers_planted_clusters(rng, metric):
    X, truth = _blobs(rng, n_per=400)
    km = MiniBatchKMeans(n_clusters=5, metric=metric, batch_size=256, max_epochs=3, random_state=0).fit(X)
    assert adjusted_rand_score(truth, km.labels_) > 0.99
    assert km.n_seen_ == 3 * len(X) and km.counts_.sum() == 3 * len(X)


def test_mini_batch_streaming_and_errors(rng):
    X, truth = _blobs(rng, n_per=400)
    km = MiniBatchKMeans(n_clusters=5, metric="l2", random_state=0)
    order = rng.permutation(len(X))
    for start in range(0, len(X), 500):
        km.partial_fit(X[order[start : start + 500]])
    assert adjusted_rand_score(truth, km.predict(X)) > 0.99
    with pytest.raises(EmbeddingDataError, match="X has 4 features, but MiniBatchKMeans is expecting 32"):
        km.partial_fit(X[:10, :4])
    with pytest.raises(EmbeddingDataError, match="fewer than n_clusters=5"):
        MiniBatchKMeans(n_clusters=5).partial_fit(X[:3])


def test_inertia_history_falls_to_the_final_inertia(rng):
    X, _ = _blobs(rng, spread=3.0)
    km = KMeans(n_clusters=6, metric="l2", max_iter=50, random_state=0).fit(X)
    history = np.asarray(km.inertia_history_)
    assert history.size == km.n_iter_ and (np.diff(history) <= 1e-3 * history[0]).all()
    assert km.inertia_ <= history[-1] * (1 + 1e-6)


def _many_clusters(rng, k=300, n=24_000, d=32, noise=0.6):
    centres = rng.normal(size=(k, d)).astype(np.float32)
    return (centres[rng.integers(0, k, n)] + noise * rng.normal(size=(n, d))).astype(np.float32)


def test_centre_neighbours_are_the_exact_nearest_centres(rng):
    from embedlab.cluster._kmeans import _center_neighbours

    centres = rng.normal(size=(500, 16))
    found = _center_neighbours(centres, 7)
    distances = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distances, -1.0)
    assert np.array_equal(found, np.argsort(distances, axis=1, kind="stable")[:, :7])


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_candidate_assignment_ends_at_a_fixed_point_of_exact_lloyd(rng, metric):
    X = _many_clusters(rng)
    graph = KMeans(300, metric=metric, n_candidates=16, random_state=0).fit(X)
    exact = KMeans(300, metric=metric, n_candidates=None, random_state=0).fit(X)
    # the centres are the means of the rows exactly nearest to them: one more exact Lloyd step barely moves them
    rows = X / np.linalg.norm(X, axis=1, keepdims=True) if metric == "cosine" else X
    means = np.stack([rows[graph.labels_ == c].mean(axis=0) for c in range(300)])
    if metric == "cosine":
        means /= np.linalg.norm(means, axis=1, keepdims=True)
    assert np.abs(means - graph.cluster_centers_).max() < 1e-2
    assert graph.inertia_ <= 1.01 * exact.inertia_  # as good as exact assignments (here, different local optima)


def test_lloyd_iterations_stop_when_settled(rng):
    from embedlab.cluster._kmeans import lloyd_iterations

    X = rng.normal(size=(200, 4)).astype(np.float32)
    steps = []

    def step(centers):
        steps.append(1)
        labels = np.argmin(((X[:, None, :] - centers) ** 2).sum(2), axis=1)
        sums = np.stack([X[labels == c].sum(0) for c in range(len(centers))])
        return 0.0, sums, np.bincount(labels, minlength=len(centers)), lambda m: X[:m]

    lloyd_iterations(
        step,
        X[:5].astype(np.float64),
        spherical=False,
        max_iter=50,
        tol=0.0,
        advance=lambda n: None,
        settled=lambda: len(steps) == 3,
    )
    assert len(steps) == 3


def test_graph_phase_ends_at_exact_assignments(rng):
    # tol=0: the graph phase ends on the moved-rows rule, the exact phase only when no row moves
    X = _many_clusters(rng)
    model = KMeans(300, metric="l2", n_candidates=8, tol=0.0, max_iter=300, random_state=0).fit(X)
    assert model.n_iter_ < 300
    assert np.array_equal(model.labels_, np.argmin(((X[:, None, :] - model.cluster_centers_) ** 2).sum(2), axis=1))


def test_auto_candidates_only_from_256_clusters(rng):
    X = _many_clusters(rng, k=40, n=4_000)
    a = KMeans(40, metric="l2", random_state=1).fit(X)
    b = KMeans(40, metric="l2", n_candidates=None, random_state=1).fit(X)
    assert np.array_equal(a.labels_, b.labels_) and a.inertia_history_ == b.inertia_history_
    with pytest.raises(ConfigurationError, match="n_candidates"):
        KMeans(40, n_candidates=1).fit(X)
