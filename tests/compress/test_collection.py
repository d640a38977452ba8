from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet
from embedlab.compress import Codec, CodecSearcher, CompressedCollection
from embedlab.neighbors import Searcher


@pytest.fixture
def corpus(rng):
    X = rng.normal(size=(1500, 32)).astype(np.float32)
    ids = np.array([f"doc-{i}" for i in range(len(X))], dtype=object)
    return EmbeddingSet(X, ids)


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_rescoring_the_whole_set_is_exact_search(corpus, rng):
    Q = _unit(rng.normal(size=(20, 32)).astype(np.float32))
    X = _unit(corpus.vectors)
    codec = Codec("binary").fit(X)
    codes = codec.encode(X)
    result = CodecSearcher(codec, codes, vectors=X, rescore=150).search(Q, 10)
    truth = np.argsort(-(Q @ X.T), axis=1)[:, :10]
    np.testing.assert_array_equal(result.indices, truth)
    np.testing.assert_allclose(result.scores, np.take_along_axis(Q @ X.T, truth, axis=1), atol=1e-5)
    assert result.exact_distances and not CodecSearcher(codec, codes).search(Q, 10).exact_distances
    assert result.params.to_dict() == {"method": "codec", "spec": "binary", "rescore": 150}


def test_rescoring_raises_recall_of_coarse_codes(corpus, rng):
    Q = corpus.vectors[:50] + 0.3 * rng.normal(size=(50, 32)).astype(np.float32)
    collection = CompressedCollection.build(corpus, "binary+rescore:10")
    truth = np.argsort(-(_unit(Q) @ _unit(corpus.vectors).T), axis=1)[:, :10]

    def recall(result):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(result.indices, truth, strict=True)])

    coarse, rescored = recall(collection.search(Q, 10, rescore=None)), recall(collection.search(Q, 10))
    assert rescored > coarse + 0.2 and rescored > 0.85


def test_save_and_open_give_the_same_answers(corpus, rng, tmp_path):
    Q = rng.normal(size=(5, 32)).astype(np.float32)
    built = CompressedCollection.build(corpus, "pca:16+int8+rescore:4")
    path = built.save(tmp_path / "coll")
    opened = CompressedCollection.open(path)
    assert isinstance(opened.vectors, np.memmap)
    before, after = built.search(Q, 7), opened.search(Q, 7)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.scores, after.scores)
    assert after.ids[0, 0].startswith("doc-")
    table = after.to_table(np.array(["q0", "q1", "q2", "q3", "q4"]))
    assert table.num_rows == 35 and table.column_names == ["query", "rank", "id", "score", "distance"]
    assert table.column("id").to_pylist()[:7] == after.ids[0].tolist()
    assert isinstance(opened, Searcher) and opened.metric == "cosine" and opened.dim == 32
    # codes alone: no vectors stored
    small = CompressedCollection.build(corpus, "int4").save(tmp_path / "small")
    assert not (small / "vectors.npy").exists()
    with pytest.raises(ConfigurationError, match="full-precision vectors"):
        CompressedCollection.open(small).search(Q, 5, rescore=3)


def test_saving_replaces_an_earlier_collection_but_never_another_folder(corpus, tmp_path):
    target = tmp_path / "coll"
    CompressedCollection.build(corpus, "int8").save(target)
    CompressedCollection.build(corpus, "int4").save(target)
    assert CompressedCollection.open(target).spec.quantizer_stage.name == "int4"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an earlier output"):
        CompressedCollection.build(corpus, "int8").save(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_corrupt_collections_get_errors_naming_the_file(corpus, tmp_path):
    path = CompressedCollection.build(corpus, "int8+rescore:2").save(tmp_path / "coll")
    with pytest.raises(EmbeddingDataError, match="not an embedlab compressed collection"):
        CompressedCollection.open(tmp_path)
    (path / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(EmbeddingDataError, match="vectors.npy: not a readable .npy file"):
        CompressedCollection.open(path)
    np.save(path / "vectors.npy", np.zeros((3, 32), dtype=np.float32))
    with pytest.raises(EmbeddingDataError, match=r"vectors.npy holds float32 \(3, 32\)"):
        CompressedCollection.open(path)
    (path / "codes.npy").unlink()
    with pytest.raises(EmbeddingDataError, match="codes.npy is missing"):
        CompressedCollection.open(path)
    manifest = path / "collection.json"
    manifest.write_text("{not json")
    with pytest.raises(EmbeddingDataError, match="collection.json is not a readable collection manifest"):
        CompressedCollection.open(path)
    manifest.write_text(json.dumps({"n": 3}))
    with pytest.raises(EmbeddingDataError, match=r"collection.json is not a valid collection manifest \(KeyError"):
        CompressedCollection.open(path)


def test_search_validates_queries_and_k(corpus, rng):
    collection = CompressedCollection.build(corpus, "int8")
    with pytest.raises(EmbeddingDataError, match="queries has 8 features, but it is expecting 32"):
        collection.search(rng.normal(size=(2, 8)), 5)
    with pytest.raises(ConfigurationError, match="k=1501 but only 1500 neighbour"):
        collection.search(corpus.vectors[:2], 1501)
    with pytest.raises(ConfigurationError, match="rescore must be an integer >= 1, got 0"):
        collection.search(corpus.vectors[:2], 5, rescore=0)
