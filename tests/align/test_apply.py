"""``apply_adapter``: a whole set mapped into the other space, with its ids, columns and provenance."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet, load
from embedlab.align import RidgeAdapter, apply_adapter


@pytest.fixture
def fitted(tmp_path):
    rng = np.random.default_rng(0)
    old = rng.normal(size=(200, 8)).astype(np.float32)
    adapter = RidgeAdapter().fit(old, old @ rng.normal(size=(8, 5)))
    adapter.save(tmp_path / "adapter.json")
    ids = [f"r{i}" for i in range(200)]
    path = EmbeddingSet(old, ids, {"label": np.arange(200) % 3}, model="old-model").to_parquet(tmp_path / "old.parquet")
    return adapter, path


def test_a_file_is_mapped_row_for_row_with_its_ids_columns_and_provenance(fitted, tmp_path):
    adapter, path = fitted
    applied = apply_adapter(tmp_path / "adapter.json", path, tmp_path / "mapped.parquet")
    mapped, original = load(tmp_path / "mapped.parquet"), load(path)
    assert (applied.n, applied.dim_in, applied.dim_out, applied.method) == (200, 8, 5, "ridge")
    np.testing.assert_allclose(mapped.vectors, adapter.transform(original.vectors), rtol=1e-6)
    assert mapped.ids.tolist() == original.ids.tolist() and mapped.metadata.column_names == ["label"]
    assert mapped.model == "old-model via adapter.json"


def test_rows_of_another_space_or_dropping_into_a_store_are_refused(fitted, tmp_path):
    adapter, _ = fitted
    other = EmbeddingSet(np.ones((4, 6), np.float32)).to_parquet(tmp_path / "six.parquet")
    with pytest.raises(EmbeddingDataError, match="six.parquet has 6 features, but RidgeAdapter is expecting 8"):
        apply_adapter(adapter, other, tmp_path / "out.parquet")
    with pytest.raises(ConfigurationError, match="cannot be dropped when the output is a store"):
        apply_adapter(adapter, other, f"lancedb://{tmp_path}/db/t", on_invalid="drop")
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "db").exists()
