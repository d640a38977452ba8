from __future__ import annotations

import numpy as np
import pyarrow as pa

from embedlab.io import describe, row_hashes


def test_counts_bad_values_instead_of_failing(table_with):
    rows = [[1.0, 0.0], [0.0, 0.0], [float("nan"), 1.0], [3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [1.0, 0.0]]
    path = table_with({"id": ["a", "b", "c", "d", "e", "a", "g"], "embedding": pa.array(rows)})
    found = describe(path, batch_size=2)
    assert (found.n, found.dim, found.dtype) == (7, 2, "float64")
    assert found.nan_inf_rows == 1 and found.zero_rows == 1
    assert found.duplicate_rows == 3 and found.duplicate_groups == 2
    assert found.duplicate_ids == 1
    finite = np.linalg.norm(np.array([r for r in rows if np.isfinite(r).all()]), axis=1)
    assert np.isclose(found.norm_mean, finite.mean()) and found.norm_max == 5.0
    assert found.to_dict()["id_column"] == "id"


def test_row_hashes_match_exact_equality(rng):
    X = rng.normal(size=(2000, 24)).astype(np.float32)
    X[1500:] = X[:500]
    hashes = row_hashes(X)
    assert np.unique(hashes).size == 1500
    assert (hashes[1500:] == hashes[:500]).all()


def test_a_folder_described_shard_by_shard_counts_across_shards(tmp_path, rng):
    import pyarrow.parquet as pq

    X = rng.normal(size=(90, 5)).astype(np.float32)
    X[80:] = X[:10]  # duplicates in another file
    X[20, 1] = np.nan
    ids = [f"r{i}" for i in range(90)]
    ids[45] = "r2"  # an id repeated across files
    table = pa.table({"id": ids, "embedding": pa.array(list(X), type=pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "whole.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, 90, 30)):
        pq.write_table(table.slice(start, 30), folder / f"part-{i}.parquet", row_group_size=10)
    whole, parts = describe(tmp_path / "whole.parquet"), describe(folder, batch_size=4)
    assert (parts.duplicate_rows, parts.duplicate_groups, parts.duplicate_ids, parts.nan_inf_rows) == (10, 10, 1, 1)
    for field in ("n", "dim", "norm_min", "norm_mean", "norm_median", "norm_max", "duplicate_rows", "zero_rows"):
        assert getattr(parts, field) == getattr(whole, field), field
