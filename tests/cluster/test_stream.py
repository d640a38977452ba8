from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingSet
from embedlab.cluster import KMeans, kmeans_stream


@pytest.fixture
def blob_file(tmp_path, rng):
    centres = rng.normal(size=(4, 16)) * 6
    truth = rng.integers(0, 4, 3000)
    X = (centres[truth] + rng.normal(size=(truth.size, 16))).astype(np.float32)
    ids = np.array([f"r{i}" for i in range(truth.size)], dtype=object)
    return EmbeddingSet(X, ids).to_parquet(tmp_path / "blobs.parquet"), X, truth


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_streamed_clusters_match_the_planted_ones(tmp_path, blob_file, metric):
    path, X, truth = blob_file
    out = tmp_path / "labels.parquet"
    result = kmeans_stream(path, 4, metric=metric, batch_size=500, epochs=2, output=out, random_state=0)
    table = pq.read_table(out)
    assert table.column_names == ["id", "cluster", "confidence"] and table.num_rows == 3000
    assert table.column("id").to_pylist() == [f"r{i}" for i in range(3000)]
    labels = table.column("cluster").to_numpy()
    assert adjusted_rand_score(truth, labels) > 0.99
    assert result.n == 3000 and sum(result.sizes) == 3000 and result.to_dict()["streamed"] is True
    in_memory = KMeans(4, metric=metric, random_state=0).fit(X)
    assert result.inertia == pytest.approx(in_memory.inertia_, rel=0.02)


def test_stream_without_output_and_bad_requests(blob_file):
    path, _, _ = blob_file
    assert kmeans_stream(path, 3, batch_size=1000).output is None
    with pytest.raises(ConfigurationError, match="batch_size=2 is smaller than n_clusters=3"):
        kmeans_stream(path, 3, batch_size=2)
    with pytest.raises(ConfigurationError, match="epochs"):
        kmeans_stream(path, 3, epochs=0)
