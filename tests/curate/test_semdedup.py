"""SemDeDup against a brute-force implementation of the authors' rule, and on planted duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.curate import SemDeDup, max_similarity_to_earlier


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _planted(rng, n_base=600, n_copies=150, d=24, noise=0.002):
    """Clustered unit rows, the last ``n_copies`` near copies (cosine > 0.999) of distinct earlier rows."""
    centres = _unit(rng.normal(size=(6, d)))
    base = _unit(centres[rng.integers(0, 6, n_base)] + 0.35 * rng.normal(size=(n_base, d)))
    sources = rng.choice(n_base, n_copies, replace=False)
    copies = _unit(base[sources] + noise * rng.normal(size=(n_copies, d)))
    return np.vstack([base, copies]), sources


def _brute_force(X, labels, centers, keep):
    """Each row's largest similarity to a row ranked before it in its cluster, written the obvious way."""
    centers = _unit(centers)
    similarity = np.full(len(X), -np.inf)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        distance = [1 - float(X[i] @ centers[c]) for i in members]
        ranked = sorted(zip(distance, members, strict=True), key=lambda t: (-t[0] if keep == "hard" else t[0], t[1]))
        order = [i for _, i in ranked]
        for position, j in enumerate(order):
            for i in order[:position]:
                similarity[j] = max(similarity[j], float(X[i] @ X[j]))
    return similarity


@pytest.mark.parametrize("keep", ["hard", "easy"])
def test_the_similarity_to_earlier_rows_equals_a_brute_force_pass(rng, keep):
    X = _unit(rng.normal(size=(160, 8)))
    model = SemDeDup(n_clusters=5, keep=keep, random_state=1).fit(X)
    expected = _brute_force(X, model.labels_, model.cluster_centers_, keep)
    np.testing.assert_allclose(model.max_similarity_, expected, atol=1e-6)
    has_earlier = model.duplicate_of_ >= 0
    assert (np.isinf(expected) == ~has_earlier).all()
    witnessed = np.einsum("ij,ij->i", X[has_earlier], X[model.duplicate_of_[has_earlier]])
    np.testing.assert_allclose(witnessed, model.max_similarity_[has_earlier], atol=1e-6)
    assert (model.labels_[has_earlier] == model.labels_[model.duplicate_of_[has_earlier]]).all()


def test_blocks_give_the_whole_matrix_answer(rng, monkeypatch):
    from embedlab.curate import _semdedup

    X = _unit(rng.normal(size=(300, 6)))
    whole = max_similarity_to_earlier(X)
    monkeypatch.setattr(_semdedup, "_BLOCK_ENTRIES", 700)  # blocks of 2 rows
    blocked = max_similarity_to_earlier(X)
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-6)  # BLAS may sum a block in another order
    np.testing.assert_array_equal(blocked[1], whole[1])
    S = X @ X.T
    j = 123
    assert whole[1][j] == int(np.argmax(S[j, :j])) and np.isclose(whole[0][j], S[j, :j].max())


def test_planted_near_copies_are_exactly_what_goes_and_one_of_each_pair_stays(rng):
    X, sources = _planted(rng)
    model = SemDeDup(n_clusters=6, random_state=0).fit(X)
    keep = model.keep_mask(eps=0.001)
    gone = np.flatnonzero(~keep)
    assert gone.size == sources.size
    pairs = {frozenset((int(s), 600 + i)) for i, s in enumerate(sources)}
    assert all(any(int(g) in pair for pair in pairs) for g in gone)
    for i, s in enumerate(sources):  # exactly one row of each pair stays
        assert keep[s] != keep[600 + i]
    # the row that stays is the one farther from the centroid (hard)
    centers = _unit(model.cluster_centers_)
    for i, s in enumerate(sources[:20]):
        a, b = int(s), 600 + i
        far = max((a, b), key=lambda r: 1 - float(X[r] @ centers[model.labels_[r]]))
        assert keep[far]


def test_easy_keeps_the_row_closer_to_the_centroid(rng):
    X, sources = _planted(rng)
    hard = SemDeDup(n_clusters=6, keep="hard", random_state=0).fit(X).keep_mask(eps=0.001)
    easy = SemDeDup(n_clusters=6, keep="easy", random_state=0).fit(X).keep_mask(eps=0.001)
    assert (~hard).sum() == (~easy).sum() == sources.size
    pair_rows = np.r_[sources, 600 + np.arange(sources.size)]
    assert (hard[pair_rows] != easy[pair_rows]).all()  # each pair keeps its other row


def test_random_keeps_one_of_each_pair_depending_on_the_seed(rng):
    X, sources = _planted(rng)
    first = SemDeDup(n_clusters=6, keep="random", random_state=3).fit(X).keep_mask(eps=0.001)
    again = SemDeDup(n_clusters=6, keep="random", random_state=3).fit(X).keep_mask(eps=0.001)
    other = SemDeDup(n_clusters=6, keep="random", random_state=4).fit(X).keep_mask(eps=0.001)
    np.testing.assert_array_equal(first, again)
    assert (~first).sum() == (~other).sum() == sources.size
    assert not np.array_equal(first, other)


def test_a_fraction_removes_exactly_that_many_and_the_curve_agrees_with_the_masks(rng):
    X, _ = _planted(rng)
    model = SemDeDup(n_clusters=6, random_state=0).fit(X)
    n = len(X)
    for fraction in (0.0, 0.1, 0.25, 0.5):
        assert (~model.keep_mask(remove_fraction=fraction)).sum() == int(fraction * n)
        eps = model.eps_for_fraction(fraction)
        assert 0 < eps < 2 and (~model.keep_mask(eps=eps)).sum() <= int(fraction * n) + 1  # rounding of 1 - (1 - s)
    eps_values = [0.001, 0.01, 0.05, 0.2, 0.5, 1.0, 1.9]
    curve = model.removal_curve(eps_values)
    assert (np.diff(curve) >= 0).all()
    for eps, removed in zip(eps_values, curve, strict=True):
        assert removed == pytest.approx((~model.keep_mask(eps=eps)).mean())
    assert curve[-1] == pytest.approx(1 - 6 / n, abs=1e-12)  # only each cluster's first row stays at eps near 2


@pytest.mark.parametrize("eps", [0, 2, -0.5, 3, "0.1", True])
def test_eps_outside_the_open_interval_is_refused(rng, eps):
    model = SemDeDup(n_clusters=2).fit(_unit(rng.normal(size=(20, 4))))
    with pytest.raises(ConfigurationError, match=r"eps must be a number in \(0, 2\)"):
        model.keep_mask(eps=eps)


def test_bad_fractions_policies_and_sizes_are_refused(rng):
    X = _unit(rng.normal(size=(20, 4)))
    model = SemDeDup(n_clusters=2).fit(X)
    with pytest.raises(ConfigurationError, match=r"remove_fraction must be a number in \[0, 1\)"):
        model.keep_mask(remove_fraction=1.0)
    with pytest.raises(ConfigurationError, match="not both"):
        model.keep_mask(eps=0.1, remove_fraction=0.1)
    with pytest.raises(ConfigurationError, match="not both and not neither"):
        model.keep_mask()
    with pytest.raises(ConfigurationError, match="keep"):
        SemDeDup(n_clusters=2, keep="oldest").fit(X)
    with pytest.raises(ConfigurationError, match="only 20 rows"):
        SemDeDup(n_clusters=30).fit(X)
