"""S³ on planted topics: documents mixed from independent, heavy-tailed latent directions, terms embedded along
them. The recovered axes must be the planted directions and their top terms the planted words."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.cli.app import app
from embedlab.cluster.naming import s3_keywords, semantic_axes
from embedlab.exceptions import ConfigurationError, EmbeddingDataError

TOPICS = [["cat", "kitten", "purr"], ["rocket", "orbit", "launch"], ["bread", "oven", "flour"]]
FILLER = ["report", "table", "weather", "morning"]
DIM = 16


def _directions(seed: int) -> np.ndarray:
    """Orthonormal rows: one per topic, then one per filler word."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(DIM, DIM)))
    return q[: len(TOPICS) + len(FILLER)]


class PlantedEncoder:
    """A sentence-transformers stand-in: a topic word lies along its topic's direction, a filler word along its
    own direction orthogonal to every topic."""

    def __init__(self, seed: int = 0, dim: int = DIM) -> None:
        directions = _directions(seed)
        rng = np.random.default_rng(seed + 100)
        self.vectors = {word: directions[t] + 0.05 * rng.normal(size=DIM) for t, ws in enumerate(TOPICS) for word in ws}
        self.vectors |= {word: directions[len(TOPICS) + i] for i, word in enumerate(FILLER)}
        self.dim = dim

    def encode(self, texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False):
        return np.stack([self.vectors[t][: self.dim] for t in texts]).astype(np.float32)


def _corpus(seed: int, n: int = 600) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, embeddings and the planted sources: each document a sparse, heavy-tailed mix of the topics."""
    rng = np.random.default_rng(seed)
    directions = _directions(0)[: len(TOPICS)]
    sources = rng.exponential(size=(n, len(TOPICS))) * (rng.random((n, len(TOPICS))) < 0.4)
    X = sources @ directions + 0.05 * rng.normal(size=(n, DIM))
    texts = []
    for row in sources:
        words = [w for t in np.flatnonzero(row > 0.5) for w in rng.choice(TOPICS[t], size=2)]
        texts.append(" ".join(words + list(rng.choice(FILLER, size=3))))
    return texts, X.astype(np.float32), sources


def _topic_of(terms: list[tuple[str, float]]) -> int | None:
    """The planted topic whose words are exactly ``terms``, or None."""
    found = {word for word, _ in terms}
    return next((t for t, words in enumerate(TOPICS) if found == set(words)), None)


@pytest.mark.parametrize("importance", ["axial", "angular", "combined"])
def test_the_axes_are_the_planted_directions_named_by_the_planted_words(importance):
    texts, X, sources = _corpus(0)
    axes = semantic_axes(texts, X, n_components=3, top_n=3, importance=importance, encoder=PlantedEncoder())
    topics = [_topic_of(axes.keywords[axis]) for axis in range(3)]
    assert sorted(topics) == [0, 1, 2], axes.keywords
    for axis, topic in enumerate(topics):  # the positive side of each axis is its topic's documents
        assert np.corrcoef(axes.scores[:, axis], sources[:, topic])[0, 1] > 0.95
    assert axes.scores.shape == (600, 3) and axes.scores.dtype == np.float32
    assert np.allclose(axes.scores.std(axis=0), 1.0, atol=1e-3)
    assert np.allclose((X - axes.mean) @ axes.components.T, axes.scores, atol=1e-4)


def test_the_combined_importance_is_the_squared_position_times_the_cosine():
    texts, X, _ = _corpus(1)
    encoder = PlantedEncoder()
    axes = semantic_axes(texts, X, n_components=3, top_n=20, importance="combined", encoder=encoder)
    for axis, terms in axes.keywords.items():
        for word, weight in terms:
            beta = (encoder.vectors[word] - axes.mean) @ axes.components.T
            assert weight == pytest.approx(beta[axis] ** 3 / np.linalg.norm(beta), rel=1e-4)
        assert [w for _, w in terms] == sorted((w for _, w in terms), reverse=True)


def test_a_seed_gives_the_same_axes_and_terms():
    texts, X, _ = _corpus(2)
    first, second = (semantic_axes(texts, X, n_components=3, encoder=PlantedEncoder(), random_state=7) for _ in "ab")
    assert first.keywords == second.keywords
    assert np.array_equal(first.scores, second.scores)


def test_clusters_take_the_terms_of_the_axis_their_members_lie_along():
    texts, X, sources = _corpus(3)
    labels = np.argmax(sources, axis=1)
    labels[sources.max(axis=1) == 0] = -1  # documents of no topic are noise
    keywords = s3_keywords(texts, X, labels, top_n=3, encoder=PlantedEncoder())
    assert list(keywords) == [0, 1, 2]
    assert {label: _topic_of(terms) for label, terms in keywords.items()} == {0: 0, 1: 1, 2: 2}
    assert s3_keywords(texts, X, np.full(len(texts), -1), encoder=PlantedEncoder()) == {}


def test_empty_vocabulary_gives_empty_keyword_lists():
    _, X, _ = _corpus(4, n=50)
    axes = semantic_axes(["the and of"] * 50, X, n_components=2, encoder=PlantedEncoder())
    assert axes.keywords == {0: [], 1: []} and axes.scores.shape == (50, 2)


def test_bad_requests_are_refused():
    texts, X, _ = _corpus(5, n=60)
    with pytest.raises(EmbeddingDataError, match="59 texts but 60 rows of X"):
        semantic_axes(texts[:-1], X, encoder=PlantedEncoder())
    with pytest.raises(ConfigurationError, match=r"n_components must be an integer between 1 and 16"):
        semantic_axes(texts, X, n_components=17, encoder=PlantedEncoder())
    with pytest.raises(ConfigurationError, match="importance must be one of"):
        semantic_axes(texts, X, importance="radial", encoder=PlantedEncoder())
    with pytest.raises(ConfigurationError, match="terms in 8 dimensions but X has 16; give the encoder"):
        semantic_axes(texts, X, n_components=2, encoder=PlantedEncoder(dim=8))
    with pytest.raises(ConfigurationError, match="labels must be integers"):
        s3_keywords(texts, X, np.array(["a"] * 60), encoder=PlantedEncoder())


def test_the_cluster_command_names_clusters_by_s3(tmp_path, monkeypatch):
    texts, X, sources = _corpus(6, n=300)
    keep = sources.max(axis=1) > 0
    path = EmbeddingSet(X[keep], None, {"text": np.array(texts)[keep]}).to_parquet(tmp_path / "docs.parquet")
    encoder = PlantedEncoder()
    monkeypatch.setattr("embedlab.embed.encoder.load_encoder", lambda model=None: encoder)
    runner = CliRunner()
    result = runner.invoke(app, ["cluster", str(path), "--k", "3", "--metric", "l2", "--naming", "s3", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["params"]["naming"] == "s3"
    # three clusters, three axes matched one to one: each cluster's first three words are a different topic
    leading = [_topic_of([(word, 0.0) for word in entry["keywords"][:3]]) for entry in document["clusters"]]
    assert sorted(leading) == [0, 1, 2], document["clusters"]
    refused = runner.invoke(app, ["cluster", str(path), "--k", "3", "--naming", "lda"])
    assert refused.exit_code == 2 and "naming must be one of" in refused.stderr
    no_texts = EmbeddingSet(X[keep]).to_parquet(tmp_path / "bare.parquet")
    refused = runner.invoke(app, ["cluster", str(no_texts), "--k", "3", "--naming", "s3"])
    assert refused.exit_code == 2 and "bare.parquet has no 'text' column" in " ".join(refused.stderr.split())
