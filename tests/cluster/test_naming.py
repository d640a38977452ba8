from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from embedlab.cluster import naming
from embedlab.cluster.naming import closest_members, ctfidf_keywords, medoids
from embedlab.exceptions import ConfigurationError, EmbeddingDataError

OWN_WORDS = {0: ["cat", "kitten", "purr"], 1: ["rocket", "orbit", "launch"]}
FILLER = ["report", "table", "weather", "morning"]


def _corpus(seed: int, n_per: int = 40) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in OWN_WORDS.items():
        for _ in range(n_per):
            tokens = list(rng.choice(words, size=3)) + list(rng.choice(FILLER, size=3))
            texts.append(" ".join(rng.permutation(tokens)))
            labels.append(label)
    return texts, np.array(labels)


def _reference_ctfidf(texts: list[str], labels: list[int]) -> dict[int, dict[str, float]]:
    """The formula written out with dictionaries: tf L1-normalised per class times log(1 + A / f_t)."""
    classes = sorted(set(labels))
    counts = {
        c: Counter(" ".join(t for t, lab in zip(texts, labels, strict=True) if lab == c).split()) for c in classes
    }
    frequency = sum(counts.values(), Counter())
    average_words = sum(frequency.values()) / len(classes)
    return {
        c: {
            term: count / sum(counts[c].values()) * math.log(1 + average_words / frequency[term])
            for term, count in counts[c].items()
        }
        for c in classes
    }


# ---- c-TF-IDF ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ctfidf_ranks_each_clusters_own_words_first(seed):
    texts, labels = _corpus(seed)
    keywords = ctfidf_keywords(texts, labels, top_n=7)
    assert list(keywords) == [0, 1]
    for label, words in OWN_WORDS.items():
        terms = [term for term, _ in keywords[label]]
        assert set(terms[:3]) == set(words)
        assert set(terms[3:]) <= set(FILLER)  # shared words rank below every own word
        weights = [weight for _, weight in keywords[label]]
        assert weights == sorted(weights, reverse=True)


def test_ctfidf_matches_reference_formula():
    texts = ["apple apple banana", "banana cherry", "cherry cherry date apple"]
    labels = [0, 0, 1]
    keywords = ctfidf_keywords(texts, labels, top_n=10, stop_words=None)
    reference = _reference_ctfidf(texts, labels)
    assert set(keywords) == set(reference)
    for label, terms in keywords.items():
        assert len(terms) == len(reference[label])
        for term, weight in terms:
            assert weight == pytest.approx(reference[label][term], abs=1e-9)


def test_ctfidf_ties_break_alphabetically_and_do_not_depend_on_row_order():
    texts = ["zebra mango", "apple", "kiwi fig", "fig"]
    labels = np.array([0, 0, 1, 1])
    keywords = ctfidf_keywords(texts, labels, stop_words=None)
    assert [term for term, _ in keywords[0]] == ["apple", "mango", "zebra"]  # equal weights
    assert [term for term, _ in keywords[1]] == ["fig", "kiwi"]
    order = np.random.default_rng(3).permutation(len(texts))
    assert ctfidf_keywords([texts[i] for i in order], labels[order], stop_words=None) == keywords


def test_ctfidf_top_n_truncates_after_ordering():
    texts, labels = _corpus(0)
    full = ctfidf_keywords(texts, labels, top_n=100)
    short = ctfidf_keywords(texts, labels, top_n=2)
    assert all(short[label] == full[label][:2] for label in full)


def test_ctfidf_skips_noise_rows():
    texts, labels = _corpus(4)
    noisy_texts = [*texts, "quasar nebula", "quasar"]
    noisy_labels = np.r_[labels, -1, -1]
    keywords = ctfidf_keywords(noisy_texts, noisy_labels, top_n=50)
    assert -1 not in keywords
    assert keywords == ctfidf_keywords(texts, labels, top_n=50)


def test_ctfidf_string_labels_and_ngrams():
    # bigrams: us {new york: 2, york pizza: 1, york bagel: 1}, fr {paris croissant: 1}, so A = 5 / 2
    keywords = ctfidf_keywords(
        ["new york pizza", "new york bagel", "paris croissant"], ["us", "us", "fr"], top_n=1, ngram_range=(2, 2)
    )
    assert keywords == {
        "fr": [("paris croissant", pytest.approx(math.log(1 + 2.5 / 1), abs=1e-12))],
        "us": [("new york", pytest.approx(0.5 * math.log(1 + 2.5 / 2), abs=1e-12))],
    }


def test_ctfidf_length_mismatch_names_both_lengths():
    with pytest.raises(EmbeddingDataError, match=r"3 texts but 2 labels"):
        ctfidf_keywords(["a", "b", "c"], [0, 1])


@pytest.mark.parametrize(
    "texts",
    [[None, "", "   "], ["the and of", "it is", None]],
    ids=["empty", "stop-words-only"],
)
def test_ctfidf_empty_vocabulary_gives_empty_lists(texts):
    assert ctfidf_keywords(texts, [0, 0, 1]) == {0: [], 1: []}


def test_ctfidf_missing_texts_count_as_empty_and_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="embedlab.cluster.naming"):
        keywords = ctfidf_keywords(["rocket launch", None, float("nan"), ""], [0, 0, 1, 1], stop_words=None)
    assert [term for term, _ in keywords[0]] == ["launch", "rocket"] and keywords[1] == []
    assert "3 of 4 texts are missing or empty" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"top_n": 0}, ConfigurationError),
        ({"ngram_range": (2, 1)}, ConfigurationError),
        ({"min_df": -1}, ConfigurationError),
    ],
)
def test_ctfidf_rejects_bad_settings(kwargs, error):
    with pytest.raises(error):
        ctfidf_keywords(["cat purr", "rocket launch"], [0, 1], **kwargs)


def test_ctfidf_rejects_non_string_text():
    with pytest.raises(EmbeddingDataError, match="entry 1 is a int"):
        ctfidf_keywords(["cat", 3], [0, 1])


# ---- closest members and medoids: oracles on the full distance matrix -------------------------------------------


def _data(seed: int, n: int = 90, d: int = 6, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(-1, k, size=n)  # about a fifth noise
    labels[:k] = np.arange(k)  # every cluster present
    centers = rng.normal(size=(k, d)).astype(np.float32)
    return X, labels, centers


def _cdist(A: np.ndarray, B: np.ndarray, metric: str) -> np.ndarray:
    return cdist(A.astype(np.float64), B.astype(np.float64), "cosine" if metric == "cosine" else "euclidean")


def _brute_closest(X, labels, centers, n, metric) -> dict[int, np.ndarray]:
    distances = _cdist(X, centers, metric)
    result = {}
    for label in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == label)
        result[int(label)] = rows[np.lexsort((rows, distances[rows, label]))][:n]
    return result


def _brute_medoids(X, labels, metric) -> dict[int, int]:
    distances = _cdist(X, X, metric)
    result = {}
    for label in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == label)
        result[int(label)] = int(rows[np.argmin(distances[np.ix_(rows, rows)].sum(axis=1))])
    return result


def _assert_same_members(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for label in expected:
        np.testing.assert_array_equal(got[label], expected[label])


# Random Gaussian data has no near ties: the orders and argmins must equal the float64 oracle exactly.
@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 5, 100])
def test_closest_members_equal_brute_force(metric, seed, n):
    X, labels, centers = _data(seed)
    got = closest_members(X, labels, centers, n=n, metric=metric)
    _assert_same_members(got, _brute_closest(X, labels, centers, n, metric))
    assert all(got[label].dtype == np.int64 for label in got)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_closest_members_blocked_equal_unblocked(metric, monkeypatch):
    X, labels, centers = _data(5, n=300)
    expected = closest_members(X, labels, centers, n=7, metric=metric)
    monkeypatch.setattr(naming, "_BLOCK_VALUES", 20)  # 3 rows per block
    _assert_same_members(closest_members(X, labels, centers, n=7, metric=metric), expected)


def test_closest_members_small_clusters_and_noise():
    X, _, centers = _data(6, n=6)
    labels = np.array([-1, 0, 0, 1, -1, 2])
    got = closest_members(X, labels, centers[:3], n=5, metric="l2")
    assert list(got) == [0, 1, 2]
    assert sorted(got[0].tolist()) == [1, 2]  # fewer than n members
    assert got[1].tolist() == [3] and got[2].tolist() == [5]


def test_zero_rows_are_refused_under_cosine_only():
    X = np.array([[0, 0], [1, 0.1], [-1, 0]], dtype=np.float32)
    labels, centers = np.zeros(3, dtype=int), np.array([[1.0, 0.0]])
    with pytest.raises(EmbeddingDataError, match=r"X: 1 of 3 rows have all-zero vectors \(ids 0\)"):
        closest_members(X, labels, centers, n=3)
    with pytest.raises(EmbeddingDataError, match=r"X: 1 of 3 rows have all-zero vectors \(ids 0\)"):
        medoids(X, labels)
    with pytest.raises(EmbeddingDataError, match="centers: 1 of 1 rows have all-zero vectors"):
        closest_members(X[1:], labels[1:], np.zeros((1, 2)), n=2)
    assert closest_members(X, labels, centers, n=3, metric="l2")[0].tolist() == [1, 0, 2]  # distances 0.1, 1, 2
    assert medoids(X, labels, metric="l2") == {0: 0}  # sums of distances 2.005, 3.008 and 3.003


@pytest.mark.parametrize(
    ("labels", "centers", "kwargs", "match"),
    [
        (np.zeros(5, dtype=int), np.zeros((1, 3)), {}, r"5 labels of shape \(5,\) for 4 rows"),
        (np.array([0, 1, 2, 3]), np.zeros((3, 3)), {}, r"labels go up to 3 but centers has 3 rows"),
        (np.array([0, 0, 1, 1]), np.zeros((2, 4)), {}, r"shape \(k, 3\)"),
        (np.array([0.0, 0.0, 1.0, 1.0]), np.zeros((2, 3)), {}, "must be integers"),
        (np.array([0, -2, 1, 1]), np.zeros((2, 3)), {}, ">= -1"),
        (np.array([0, 0, 1, 1]), np.zeros((2, 3)), {"n": 0}, "n must be an integer >= 1"),
        (np.array([0, 0, 1, 1]), np.zeros((2, 3)), {"metric": "ip"}, "metric must be one of"),
    ],
)
def test_closest_members_rejects_inconsistent_inputs(labels, centers, kwargs, match):
    X = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ConfigurationError, match=match):
        closest_members(X, labels, centers, **kwargs)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_medoids_equal_brute_force(metric, seed):
    X, labels, _ = _data(seed)
    assert medoids(X, labels, metric=metric) == _brute_medoids(X, labels, metric)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_medoids_blocked_equal_brute_force(metric, monkeypatch):
    X, labels, _ = _data(7, n=300)
    monkeypatch.setattr(naming, "_BLOCK_VALUES", 200)  # a few candidate rows per block
    assert medoids(X, labels, metric=metric) == _brute_medoids(X, labels, metric)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_sampled_medoids_are_seeded_and_exact_on_their_sample(metric):
    X, labels, _ = _data(8, n=400, k=2)
    sample = 50
    first = medoids(X, labels, metric=metric, sample=sample, random_state=11)
    assert medoids(X, labels, metric=metric, sample=sample, random_state=11) == first
    rng = np.random.default_rng(11)  # the documented draw: per cluster, ascending labels, without replacement
    for label in (0, 1):
        rows = np.sort(rng.choice(np.flatnonzero(labels == label), size=sample, replace=False))
        expected = rows[np.argmin(_cdist(X[rows], X[rows], metric).sum(axis=1))]
        assert first[label] == expected


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_sample_at_least_cluster_size_is_exact(metric):
    X, labels, _ = _data(9, n=200, k=2)
    largest = int(np.bincount(labels[labels >= 0]).max())
    exact = _brute_medoids(X, labels, metric)
    assert medoids(X, labels, metric=metric, sample=largest, random_state=123) == exact
    assert medoids(X, labels, metric=metric, sample=largest + 1000, random_state=None) == exact


def test_medoids_singletons_noise_and_empty():
    X, _, _ = _data(10, n=5)
    assert medoids(X, np.array([-1, 0, 1, 1, 2]), metric="l2")[0] == 1
    assert set(medoids(X, np.array([-1, 0, 1, 1, 2]))) == {0, 1, 2}
    assert medoids(X, np.full(5, -1)) == {}
    assert medoids(np.zeros((0, 3), dtype=np.float32), np.zeros(0, dtype=int)) == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"sample": 0}, "sample must be an integer"), ({"metric": "dot"}, "metric must be one of")],
)
def test_medoids_rejects_bad_settings(kwargs, match):
    X, labels, _ = _data(11, n=10)
    with pytest.raises(ConfigurationError, match=match):
        medoids(X, labels, **kwargs)
