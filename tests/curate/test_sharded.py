"""Curate on a sharded set, on the local backend: the in-memory results, row for row (Ray: tests/scale)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.cli.app import app
from embedlab.curate import SemDeDup, deduplicate, sample, stratified_batches
from embedlab.curate._semdedup import _buckets
from embedlab.io import load
from embedlab.io.shards import open_shards


@pytest.fixture
def planted(tmp_path, rng):
    """6,000 rows in 12 clusters, rows 5,000 on near copies of rows 0 to 999, as a .npy file."""
    centers = 3 * rng.normal(size=(12, 24))
    X = (centers[rng.integers(0, 12, 6000)] + rng.normal(size=(6000, 24))).astype(np.float32)
    X[5000:] = X[:1000] + 0.02 * rng.normal(size=(1000, 24)).astype(np.float32)
    path = tmp_path / "planted.npy"
    np.save(path, X)
    return X, path


@pytest.mark.parametrize("keep", ["hard", "easy", "random"])
def test_semdedup_on_shards_equals_in_memory(planted, keep, tmp_path):
    X, path = planted
    expected = SemDeDup(12, keep=keep, random_state=2).fit(X)
    # small buckets: the 12 clusters fall into several, each read back from every one of the 7 shards
    found = SemDeDup(12, keep=keep, random_state=2, bucket_bytes=120_000, work_dir=str(tmp_path)).fit(
        open_shards(path, shard_rows=900)
    )
    np.testing.assert_array_equal(found.labels_, expected.labels_)
    np.testing.assert_array_equal(found.max_similarity_, expected.max_similarity_)
    np.testing.assert_array_equal(found.duplicate_of_, expected.duplicate_of_)
    assert (~found.keep_mask(eps=0.01)).sum() == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planted.npy"]  # the scratch files are gone


def test_buckets_join_clusters_up_to_the_budget():
    assert _buckets(np.array([5, 5, 5, 20, 1, 1]), 10).tolist() == [0, 0, 1, 2, 3, 3]


def test_deduplicate_on_shards(planted):
    X, path = planted
    expected = deduplicate(X, eps=0.01, n_clusters=12)
    found = deduplicate(open_shards(path, shard_rows=1000), eps=0.01, n_clusters=12)
    np.testing.assert_array_equal(found.keep, expected.keep)
    np.testing.assert_array_equal(found.duplicate_of, expected.duplicate_of)
    assert found.removal_curve == expected.removal_curve
    with pytest.raises(ConfigurationError, match="on shards deduplicate runs method='semdedup'"):
        deduplicate(open_shards(path), method="near")


@pytest.mark.parametrize("method", ["balanced", "sensitivity", "random"])
def test_samples_on_shards_equal_in_memory(planted, method):
    X, path = planted
    options = {"n_clusters": (60, 12)} if method == "balanced" else {}
    expected = sample(X, 300, method=method, random_state=1, **options)
    found = sample(open_shards(path, shard_rows=1000), 300, method=method, random_state=1, **options)
    np.testing.assert_array_equal(found.rows, expected.rows)
    np.testing.assert_allclose(found.weight, expected.weight, rtol=1e-5)  # float32 distances, blocked otherwise
    with pytest.raises(ConfigurationError, match="representatives need the rows in memory"):
        sample(open_shards(path), 10, method="representatives")


def test_batches_on_shards_equal_in_memory(planted):
    X, path = planted
    expected = stratified_batches(X, 64, n_clusters=12, random_state=5)
    found = stratified_batches(open_shards(path, shard_rows=1000), 64, n_clusters=12, random_state=5)
    assert all(np.array_equal(a, b) for a, b in zip(found.batches, expected.batches, strict=True))


def test_an_invalid_row_in_a_shard_is_named(planted):
    X, path = planted
    X[4321] = np.nan
    np.save(path, X)
    with pytest.raises(EmbeddingDataError, match=r"planted.npy \(rows 4000-4999\)"):
        SemDeDup(12).fit(open_shards(path, shard_rows=1000))


def test_the_cli_writes_one_file_per_shard(planted, tmp_path):
    _, path = planted
    out = tmp_path / "keep"
    args = ["curate", "dedup", str(path), "--backend", "local", "--shard-rows", "2000", "--eps", "0.01"]
    result = CliRunner().invoke(app, [*args, "--n-clusters", "12", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["_columns.json"] + [f"part-0000{i}.parquet" for i in range(3)]
    table = pq.read_table(out)
    expected = deduplicate(load(path), eps=0.01, n_clusters=12)
    assert table.column("keep").to_pylist() == expected.keep.tolist()
    assert table.column("duplicate_of_row").to_pylist() == expected.duplicate_of.tolist()
    sampled = CliRunner().invoke(
        app, ["curate", "sample", str(path), "--size", "50", "--backend", "local", "-o", str(tmp_path / "s")]
    )
    assert sampled.exit_code == 0, sampled.output
    assert sum(pq.read_table(tmp_path / "s").column("keep").to_pylist()) == 50
    refused = CliRunner().invoke(app, ["curate", "dedup", str(path), "--backend", "local", "--method", "exact"])
    assert refused.exit_code == 2 and "leave out --backend" in refused.output


def test_leakage_from_a_sharded_training_set(planted, rng):
    from embedlab import EmbeddingSet
    from embedlab.curate import find_leakage

    X, path = planted
    test = EmbeddingSet(np.r_[X[[10, 2500, 5999]] + 1e-4, rng.normal(size=(5, 24))].astype(np.float32))
    expected = find_leakage(EmbeddingSet(X), test, method="exact")
    found = find_leakage(open_shards(path, shard_rows=1000), test)
    assert found.leaked.tolist() == [True] * 3 + [False] * 5 and found.exact
    np.testing.assert_array_equal(found.nearest, expected.nearest)
    np.testing.assert_allclose(found.similarity, expected.similarity, atol=1e-6)
    test_path = path.with_name("test.npy")
    np.save(test_path, test.vectors)
    result = CliRunner().invoke(app, ["curate", "leakage", str(path), str(test_path), "--backend", "local", "--json"])
    assert result.exit_code == 0, result.output
    assert '"leaked": 3' in result.stdout
