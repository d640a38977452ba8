"""``open_searcher``: an index or a compressed collection told apart by its manifest, anything else refused."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import EmbeddingDataError, EmbeddingSet
from embedlab.compress import CompressedCollection
from embedlab.neighbors import ExactSearcher
from embedlab.search import Index, build_index, open_searcher


@pytest.fixture(scope="module")
def emb():
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(12, 16))[rng.integers(0, 12, 1500)] + 0.3 * rng.normal(size=(1500, 16))).astype(np.float32)
    return EmbeddingSet(X, np.array([f"r{i}" for i in range(len(X))], dtype=object))


def test_an_index_and_a_collection_open_as_what_they_are(emb, tmp_path):
    index = build_index(emb, k=5, target_recall=0.9, n_queries=100).save(tmp_path / "idx")
    collection = CompressedCollection.build(emb, "int8").save(tmp_path / "coll")
    opened_index, opened_collection = open_searcher(index), open_searcher(collection)
    assert isinstance(opened_index, Index) and isinstance(opened_collection, CompressedCollection)
    truth = ExactSearcher(emb.vectors, "cosine").search(emb.vectors[:5], 5)
    for opened in (opened_index, opened_collection):
        found = opened.search(emb.vectors[:5], 5)
        assert found.ids[:, 0].tolist() == emb.ids[truth.indices[:, 0]].tolist()  # each row finds itself


def test_a_folder_that_is_neither(tmp_path):
    with pytest.raises(EmbeddingDataError, match="is neither an embedlab index"):
        open_searcher(tmp_path)
    (tmp_path / "notes.txt").write_text("not an index")
    with pytest.raises(EmbeddingDataError, match="embedlab index build"):
        open_searcher(tmp_path)
