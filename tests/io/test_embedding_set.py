from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet


def test_defaults_and_metadata(vectors):
    emb = EmbeddingSet(vectors, metadata={"label": np.arange(len(vectors))})
    assert len(emb) == 300 and emb.dim == 16 and emb.columns == ["label"]
    np.testing.assert_array_equal(emb.ids, np.arange(300))
    assert "EmbeddingSet(n=300, dim=16" in repr(emb)


def test_metadata_length_mismatch(vectors):
    with pytest.raises(EmbeddingDataError, match="300 vectors but the metadata has 2 rows"):
        EmbeddingSet(vectors, metadata={"label": [1, 2]})


def test_drop_keeps_ids_and_metadata_aligned(vectors):
    bad = vectors.copy()
    bad[[2, 5]] = np.nan
    emb = EmbeddingSet(bad, metadata={"label": np.arange(300)}, on_invalid="drop")
    assert len(emb) == 298
    np.testing.assert_array_equal(emb.ids, emb.column("label"))
    assert 2 not in emb.ids and 5 not in emb.ids
    assert emb.validation.to_dict()["dropped"][0]["ids"] == [2, 5]


def test_one_repeated_vector_is_a_valid_set(degenerate):
    emb = EmbeddingSet(degenerate["one_vector_repeated"])
    assert len(emb) == 10


def test_zero_vector_fails_by_default(degenerate):
    with pytest.raises(EmbeddingDataError, match="all-zero"):
        EmbeddingSet(degenerate["zero_row"])


def test_sample_is_reproducible_ordered_and_bounded(labelled_set):
    a, b = labelled_set.sample(50, random_state=3), labelled_set.sample(50, random_state=3)
    assert a.ids.tolist() == b.ids.tolist() and len(a) == 50
    assert labelled_set.sample(50, random_state=4).ids.tolist() != a.ids.tolist()
    positions = [int(i.split("-")[1]) for i in a.ids]
    assert positions == sorted(positions)
    np.testing.assert_array_equal(a.vectors, labelled_set.vectors[positions])
    assert a.column("text").tolist() == [f"text {p}" for p in positions]
    assert labelled_set.sample(10_000) is labelled_set
    with pytest.raises(ConfigurationError):
        labelled_set.sample(0)


def test_column_error_lists_columns(labelled_set):
    with pytest.raises(EmbeddingDataError, match="no column 'lab'.*label, text"):
        labelled_set.column("lab")


def test_reserved_metadata_name(vectors):
    emb = EmbeddingSet(vectors, metadata={"embedding": np.arange(300)})
    with pytest.raises(ConfigurationError, match="reserved"):
        emb.to_table()
