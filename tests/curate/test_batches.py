from __future__ import annotations

import numpy as np
import pytest

from embedlab.curate import stratified_batches
from embedlab.exceptions import ConfigurationError


@pytest.fixture
def clustered(rng):
    """Four well-separated clusters of 500, 300, 150 and 50 rows, and each row's cluster."""
    sizes = [500, 300, 150, 50]
    X = np.concatenate([6 * rng.normal(size=(1, 16)) + rng.normal(size=(s, 16)) for s in sizes]).astype(np.float32)
    return X, np.repeat(np.arange(4), sizes)


def _covers_every_row_once(found, n):
    np.testing.assert_array_equal(np.sort(np.concatenate(found.batches)), np.arange(n))


def test_cluster_batches_come_from_one_cluster(clustered):
    X, _ = clustered
    found = stratified_batches(X, 32, mode="cluster", n_clusters=4, random_state=0)
    _covers_every_row_once(found, 1000)
    counts = np.bincount(found.cluster, minlength=4)
    full = int((counts // 32).sum())  # each cluster's full batches; its leftovers pooled after them
    single = found.batch_cluster >= 0
    assert len(found.batches) == 32 and full <= single.sum() <= full + 1
    for batch, cluster in zip(found.batches, found.batch_cluster, strict=True):
        assert (found.cluster[batch] == cluster).all() if cluster >= 0 else np.unique(found.cluster[batch]).size > 1
    assert [b.size for b in found.batches].count(32) == 31  # 1000 = 31 x 32 + 8


def test_balanced_batches_hold_every_cluster_in_proportion(clustered):
    X, _ = clustered
    found = stratified_batches(X, 40, mode="balanced", n_clusters=4, random_state=0)
    _covers_every_row_once(found, 1000)
    counts = np.bincount(found.cluster, minlength=4)
    per_batch = np.array([np.bincount(found.cluster[b], minlength=4) for b in found.batches])
    # each cluster's share of 40 in every batch, give or take one row
    assert (np.abs(per_batch - 40 * counts / 1000) < 1 + 1e-9).all()
    assert (found.batch_cluster == -1).all()


def test_drop_last_and_the_table(clustered):
    X, _ = clustered
    found = stratified_batches(X, 64, n_clusters=4, drop_last=True, random_state=1)
    assert all(b.size == 64 for b in found.batches) and len(found.batches) == 15
    ids = np.array([f"r{i}" for i in range(1000)])
    table = found.to_table(ids)
    assert table.column_names == ["batch", "cluster", "size", "ids"]
    assert table.column("ids").to_pylist()[0] == ids[found.batches[0]].tolist()
    assert found.to_dict()["rows"] == 960


def test_the_seed_reaches_the_order(clustered):
    X, _ = clustered
    a, b, c = (stratified_batches(X, 50, n_clusters=4, random_state=s) for s in (3, 3, 4))
    assert all(np.array_equal(x, y) for x, y in zip(a.batches, b.batches, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches, c.batches, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 1001}, "batch_size must be an integer between 1 and 1000"),
        ({"batch_size": 10, "mode": "mixed"}, "mode must be one of"),
        ({"batch_size": 10, "n_clusters": 0}, "n_clusters must be an integer between 1 and 1000"),
    ],
)
def test_bad_requests_are_refused(clustered, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        stratified_batches(clustered[0], **kwargs)
