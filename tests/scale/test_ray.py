"""The Ray backend on a real local cluster (``ray.init(num_cpus=2)``) and on a simulated two-node one
(``ray.cluster_utils.Cluster``): the same results as the local backend, a worker killed mid-run retried with
nothing lost or counted twice, an unreadable shard named, an unreachable cluster refused.

Needs Ray (``pip install "embedlab[scale]"``). Without it the tests are skipped with that advice, unless
``EMBEDLAB_REQUIRE_RAY`` is set (``.ci/run`` sets it), where a missing Ray is a failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.cli.app import app
from embedlab.io import describe
from embedlab.io.shards import open_shards
from embedlab.io.summary import count_shard
from embedlab.scale import LocalBackend, RayBackend

INSTALL = 'pip install "embedlab[scale]"'


def _ray():
    try:
        import ray
    except ImportError:
        if os.environ.get("EMBEDLAB_REQUIRE_RAY"):
            pytest.fail(f"the Ray tests are required here but Ray is not installed; {INSTALL}.")
        pytest.skip(f"Ray tests skipped: Ray is not installed; to run them, {INSTALL}.")
    return ray


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A Parquet folder of 4 files x 3 row groups with NaN rows, zero rows, duplicates and a repeated id."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(1200, 12)).astype(np.float32)
    X[1100:] = X[:100]
    X[7, 3], X[900] = np.nan, 0.0
    ids = [f"row-{i}" for i in range(1200)]
    ids[650] = "row-5"
    table = pa.table({"id": ids, "embedding": pa.array(list(X), type=pa.list_(pa.float32(), 12))})
    root = tmp_path_factory.mktemp("sharded")
    for i in range(4):
        pq.write_table(table.slice(300 * i, 300), root / f"part-{i}.parquet", row_group_size=100)
    return root


def test_an_unreachable_cluster_is_refused():
    ray = _ray()
    ray.shutdown()
    with pytest.raises(ConfigurationError, match=r"cannot reach a Ray cluster at 127.0.0.1:1 .*ray start --head"):
        RayBackend("127.0.0.1:1").map(len, [[1]])
    with pytest.raises(ConfigurationError, match="expected host:port"):
        RayBackend("my-cluster").map(len, [[1]])


#: For the tests of one capability each: the simulated two-node cluster is the harder case of the same code path
#: (tasks and actors placed on two nodes). Both clusters run the core tests (describe, a bad shard, the CLI, k-means,
#: hierarchical k-means, actors), which keeps the suite within its time.
TWO_NODE_ONLY = pytest.mark.parametrize("cluster", ["two-node-cluster"], indirect=True)


@pytest.fixture(scope="module", params=["local-cluster", "two-node-cluster"])
def cluster(request):
    ray = _ray()
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    ray.shutdown()
    simulated = None
    if request.param == "local-cluster":
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    else:
        from ray.cluster_utils import Cluster

        simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        simulated.add_node(num_cpus=1)
        ray.init(address=simulated.address, include_dashboard=False, log_to_driver=False)
    yield request.param
    ray.shutdown()
    if simulated is not None:
        simulated.shutdown()


def test_describe_on_ray_equals_local(folder, cluster):
    local, distributed = describe(folder), describe(folder, backend="ray")
    assert distributed == local
    assert (local.n, local.duplicate_rows, local.duplicate_ids, local.nan_inf_rows, local.zero_rows) == (
        1200,
        99,  # rows 1100-1199 copy rows 0-99, but row 7 then got a NaN
        1,
        1,
        1,
    )


def _dies_once(shard, markers: str):
    """Count a shard; the first attempt at shard 1 kills its worker process."""
    marker = Path(markers) / f"shard-{shard.number}"
    if shard.number == 1 and not marker.exists():
        marker.touch()
        os._exit(1)
    return count_shard(shard, 64)


@TWO_NODE_ONLY
def test_a_worker_killed_mid_run_is_retried_and_counted_once(folder, cluster, tmp_path):
    shards = open_shards(folder, shard_rows=200).shards
    expected = LocalBackend().map(count_shard, shards, 64)
    found = RayBackend(max_retries=2).map(_dies_once, shards, str(tmp_path))
    assert (tmp_path / "shard-1").exists()  # the worker did die
    assert len(found) == len(expected) == len(shards)
    for got, want in zip(found, expected, strict=True):
        np.testing.assert_array_equal(got.hashes, want.hashes)
        np.testing.assert_array_equal(got.norms, want.norms)
    assert sum(c.norms.size for c in found) == 1199  # every finite row once


def test_an_unreadable_shard_stops_the_job_and_is_named(folder, cluster, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in sorted(folder.iterdir()):
        (broken / file.name).write_bytes(file.read_bytes())
    sharded = open_shards(broken)
    raw = bytearray((broken / "part-2.parquet").read_bytes())
    raw[200:400] = bytes(200)
    (broken / "part-2.parquet").write_bytes(bytes(raw))
    with pytest.raises(EmbeddingDataError, match="part-2.parquet"):
        RayBackend().map(count_shard, sharded.shards, 64)


def test_the_cli_counts_on_ray(folder, cluster):
    runner = CliRunner()
    local = runner.invoke(app, ["info", str(folder), "--json"])
    distributed = runner.invoke(app, ["info", str(folder), "--json", "--backend", "ray"])
    assert local.exit_code == distributed.exit_code == 0, distributed.output
    assert json.loads(distributed.stdout) == json.loads(local.stdout)


def test_kmeans_on_ray_equals_local(folder, cluster):
    from embedlab.cluster import KMeans

    shards = open_shards(folder, shard_rows=300)
    params = dict(n_clusters=5, metric="l2", init_size=500, random_state=2)
    with pytest.raises(EmbeddingDataError, match=r"part-0.parquet \(rows 0-299\)"):  # the NaN row
        KMeans(**params, backend="ray").fit(shards)
    shards = open_shards(_clean_copy(folder, folder.parent / f"clean-{cluster}"), shard_rows=300)
    local = KMeans(**params).fit(shards)
    distributed = KMeans(**params, backend="ray").fit(shards)
    np.testing.assert_array_equal(distributed.cluster_centers_, local.cluster_centers_)
    np.testing.assert_array_equal(distributed.labels_, local.labels_)
    assert distributed.inertia_history_ == local.inertia_history_


@TWO_NODE_ONLY
def test_the_knn_graph_on_ray_equals_local(cluster, tmp_path):
    from embedlab.neighbors import knn_graph_shards

    rng = np.random.default_rng(4)
    path = tmp_path / "x.npy"
    np.save(path, rng.normal(size=(900, 8)).astype(np.float32))
    sharded = open_shards(path, shard_rows=250)
    local = knn_graph_shards(sharded, tmp_path / "local", k=5, metric="l2")
    distributed = knn_graph_shards(sharded, tmp_path / "ray", k=5, metric="l2", backend="ray")
    assert distributed.files == local.files
    for name in local.files:
        assert pq.read_table(tmp_path / "ray" / name).equals(pq.read_table(tmp_path / "local" / name))


def _clean_copy(folder: Path, target: Path) -> Path:
    """The folder's files without their NaN and zero rows."""
    target.mkdir(exist_ok=True)
    for file in sorted(folder.iterdir()):
        table = pq.read_table(file)
        vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
        keep = np.isfinite(vectors).all(axis=1) & vectors.any(axis=1)
        pq.write_table(table.filter(pa.array(keep)), target / file.name, row_group_size=100)
    return target


def test_hierarchical_kmeans_on_ray_equals_local(folder, cluster):
    from embedlab.cluster import HierarchicalKMeans

    shards = open_shards(_clean_copy(folder, folder.parent / f"tree-{cluster}"), shard_rows=300)
    params = dict(n_clusters=(20, 4), metric="cosine", n_resamples=2, max_iter=15, random_state=3)
    local = HierarchicalKMeans(**params).fit(shards)
    distributed = HierarchicalKMeans(**params, backend="ray").fit(shards)
    np.testing.assert_array_equal(distributed.labels_per_level_, local.labels_per_level_)
    for got, want in zip(distributed.levels_, local.levels_, strict=True):
        np.testing.assert_array_equal(got.centers, want.centers)


def _dies_once_in_lloyd(shard, centers, metric, keep, mask, markers: str):
    """A Lloyd partial; the first attempt at shard 2 in the second iteration kills its actor's process."""
    from embedlab.cluster._sharded import _lloyd_shard

    calls = Path(markers) / f"calls-{shard.number}"
    calls.write_text(str(int(calls.read_text() or 0) + 1) if calls.exists() else "1")
    if shard.number == 2 and calls.read_text() == "2":
        os._exit(1)
    return _lloyd_shard(shard, centers, metric, keep, mask)


def test_actors_keep_their_shards_between_lloyd_iterations_and_survive_a_kill(folder, cluster, tmp_path):
    from embedlab.cluster import KMeans, _sharded

    shards = open_shards(_clean_copy(folder, folder.parent / f"actors-{cluster}"), shard_rows=300)
    params = dict(n_clusters=5, metric="l2", init_size=500, random_state=2, max_iter=6, tol=0.0)
    local = KMeans(**params).fit(shards)
    actors = RayBackend(actors=2, max_retries=2)
    try:
        on_actors = KMeans(**params, backend=actors).fit(shards)
        np.testing.assert_array_equal(on_actors.cluster_centers_, local.cluster_centers_)
        np.testing.assert_array_equal(on_actors.labels_, local.labels_)
        stats = actors.cache_stats()
        hits, misses = sum(s[0] for s in stats), sum(s[1] for s in stats)
        assert misses == len(shards) and hits >= 3 * len(shards)  # each shard read once, by its actor
    finally:
        actors.close()
    step, original = _sharded._lloyd_shard, _sharded._lloyd_shard
    killed = RayBackend(actors=2, max_retries=2)
    try:
        _sharded._lloyd_shard = lambda *a: _dies_once_in_lloyd(*a, str(tmp_path))
        survived = KMeans(**params, backend=killed).fit(shards)
    finally:
        _sharded._lloyd_shard = original
        killed.close()
    assert step is original and int((tmp_path / "calls-2").read_text()) > 2  # the actor died; its call was retried
    np.testing.assert_array_equal(survived.cluster_centers_, local.cluster_centers_)
    np.testing.assert_array_equal(survived.labels_, local.labels_)


def test_the_cli_clusters_shards_on_ray_as_locally(folder, cluster, tmp_path):
    data = _clean_copy(folder, folder.parent / f"cli-{cluster}")
    runner = CliRunner()
    common = ["cluster", str(data), "--k", "4", "--shard-rows", "300", "--json"]
    local = runner.invoke(app, [*common, "--backend", "local", "-o", str(tmp_path / "local")])
    distributed = runner.invoke(app, [*common, "--backend", "ray", "-o", str(tmp_path / "ray")])
    assert local.exit_code == distributed.exit_code == 0, distributed.output
    found, expected = json.loads(distributed.stdout), json.loads(local.stdout)
    assert found["backend"] == "ray" and expected["backend"] == "local"
    assert {**found, "backend": None, "output": None} == {**expected, "backend": None, "output": None}
    assert pq.read_table(tmp_path / "ray").equals(pq.read_table(tmp_path / "local"))


@TWO_NODE_ONLY
def test_shard_indexes_on_ray_actors_search_as_locally(cluster, tmp_path):
    from embedlab.neighbors import HNSWParams, ShardedSearcher
    from embedlab.search import build_shard_indexes

    rng = np.random.default_rng(6)
    path = tmp_path / "x.npy"
    np.save(path, rng.normal(size=(1200, 8)).astype(np.float32))
    sharded = open_shards(path, shard_rows=300)
    queries = rng.normal(size=(50, 8)).astype(np.float32)
    indexes = build_shard_indexes(sharded, tmp_path / "idx", params=HNSWParams(M=8), metric="l2", backend="ray")
    local = ShardedSearcher(sharded, "l2", searchers=indexes).search(queries, 5)
    actors = RayBackend(actors=2)
    try:
        searcher = ShardedSearcher(sharded, "l2", backend=actors, searchers=indexes)
        for _ in range(2):  # the second search finds the indexes and rows loaded
            found = searcher.search(queries, 5)
            np.testing.assert_array_equal(found.indices, local.indices)
            np.testing.assert_array_equal(found.distances, local.distances)
        assert sum(s[0] for s in actors.cache_stats()) >= 2 * len(sharded)
    finally:
        actors.close()


def _embeds_after_dying_once(item, *args):
    """Embed a shard of texts; the first attempt at shard 1 kills its worker process."""
    from embedlab.embed import pipeline

    marker = Path(args[-1]).parent / "died-once"
    if item[0] == 1 and not marker.exists():
        marker.touch()
        os._exit(1)
    return pipeline._embed_shard(item, *args)  # the worker's own module: the original


@TWO_NODE_ONLY
def test_texts_are_embedded_per_shard_on_ray_as_locally_even_when_a_worker_dies(cluster, tmp_path, monkeypatch):
    import embedlab
    from embedlab.embed import embed_file, pipeline

    src = tmp_path / "in.txt"
    src.write_text("".join(f"sentence number {i} about {['cats', 'cars', 'rain'][i % 3]}\n" for i in range(24)))
    local = embed_file(src, tmp_path / "local.parquet", shard_size=5)
    monkeypatch.setattr(pipeline, "_embed_shard", _embeds_after_dying_once)
    actors = RayBackend(actors=2, max_retries=2)
    try:
        distributed = embed_file(src, tmp_path / "ray.parquet", shard_size=5, backend=actors)
    finally:
        actors.close()
    assert (tmp_path / "died-once").exists()  # the worker did die; its shard was embedded again
    assert (distributed.n, distributed.shards, distributed.dim) == (local.n, local.shards, local.dim) == (24, 5, 384)
    found, expected = embedlab.load(tmp_path / "ray.parquet"), embedlab.load(tmp_path / "local.parquet")
    assert found.ids.tolist() == expected.ids.tolist() == list(range(24))
    # another process, another thread count: the same vectors to float32 rounding
    np.testing.assert_allclose(found.vectors, expected.vectors, atol=1e-5)


@TWO_NODE_ONLY
def test_a_collection_compressed_on_ray_equals_the_local_one(folder, cluster, tmp_path):
    from embedlab.compress import compress_shards

    data = _clean_copy(folder, folder.parent / f"compress-{cluster}")
    local = compress_shards(data, "pca:6+int8+rescore:2", tmp_path / "local", metric="ip", random_state=4)
    distributed = compress_shards(
        data, "pca:6+int8+rescore:2", tmp_path / "ray", metric="ip", backend="ray", random_state=4
    )
    np.testing.assert_array_equal(distributed.codes, local.codes)
    np.testing.assert_array_equal(distributed.vectors, local.vectors)
    assert distributed.ids.tolist() == local.ids.tolist() and len(local) == 1198  # the NaN and zero rows gone


@TWO_NODE_ONLY
def test_intrinsic_dimension_on_ray_equals_local(cluster, tmp_path):
    from embedlab.geometry import mle_shards, twonn_shards
    from embedlab.io.synthetic import make_subspace

    path = tmp_path / "x.npy"
    np.save(path, make_subspace(3000, 3, 12, random_state=8).astype(np.float32))
    sharded = open_shards(path, shard_rows=800)
    for estimate in (twonn_shards, mle_shards):
        local = estimate(sharded, n_queries=500, random_state=2)
        distributed = estimate(sharded, n_queries=500, backend="ray", random_state=2)
        assert distributed == local and local.value == pytest.approx(3.0, abs=0.5)


@TWO_NODE_ONLY
def test_curation_on_ray_equals_local(cluster, tmp_path):
    from embedlab.curate import SemDeDup, sample

    rng = np.random.default_rng(3)
    X = (3 * rng.normal(size=(8, 12))[rng.integers(0, 8, 3000)] + rng.normal(size=(3000, 12))).astype(np.float32)
    X[2500:] = X[:500] + 0.01 * rng.normal(size=(500, 12)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, X)
    sharded = open_shards(path, shard_rows=700)
    local = SemDeDup(8, random_state=1, bucket_bytes=50_000).fit(sharded)
    distributed = SemDeDup(8, random_state=1, bucket_bytes=50_000, backend="ray", work_dir=str(tmp_path)).fit(sharded)
    np.testing.assert_array_equal(distributed.max_similarity_, local.max_similarity_)
    np.testing.assert_array_equal(distributed.duplicate_of_, local.duplicate_of_)
    assert (~distributed.keep_mask(eps=0.001)).sum() == 500
    balanced = sample(sharded, 100, n_clusters=(30, 8), random_state=2)
    assert np.array_equal(sample(sharded, 100, n_clusters=(30, 8), random_state=2, backend="ray").rows, balanced.rows)


@TWO_NODE_ONLY
def test_a_store_is_read_in_shards_on_ray(cluster, tmp_path):
    """A LanceDB table read by Ray workers as row ranges, each opening the store by its URI: the same summary as
    the local read, every row once."""
    from tests.io.stores.conformance import require

    require("lancedb", "lancedb")
    from embedlab.io.stores import import_store

    rng = np.random.default_rng(5)
    X = rng.normal(size=(900, 12)).astype(np.float32)
    X[800:] = X[:100]
    table = pa.table({"id": np.arange(900) * 3, "embedding": pa.array(list(X), type=pa.list_(pa.float32(), 12))})
    pq.write_table(table, tmp_path / "rows.parquet")
    uri = f"lancedb://{tmp_path}/db/rows"
    import_store(tmp_path / "rows.parquet", uri, metric="l2", checkpoint=tmp_path / "c.json")
    sharded = open_shards(uri, shard_rows=200)
    assert len(sharded.shards) == 5
    local, distributed = describe(sharded), describe(sharded, backend="ray")
    assert distributed == local
    assert (local.n, local.duplicate_rows, local.duplicate_ids) == (900, 100, 0)


@TWO_NODE_ONLY
def test_a_multivector_index_built_on_ray_equals_the_local_one(cluster, tmp_path):
    """Each shard pooled and encoded by a Ray task drawing the same random matrices from the seed."""
    from embedlab.multivector import MultiVectorIndex, MultiVectorSet, MuveraEncoder, build_multivector_index

    rng = np.random.default_rng(2)
    docs = MultiVectorSet.from_matrices([rng.normal(size=(int(rng.integers(2, 9)), 16)) for _ in range(120)])
    pq.write_table(docs.to_table(), tmp_path / "docs.parquet", row_group_size=20)
    built = {}
    for backend in ("local", "ray"):
        built[backend] = build_multivector_index(
            tmp_path / "docs.parquet",
            tmp_path / backend,
            encoder=MuveraEncoder(3, 8, 4, random_state=1),
            pool_factor=2,
            shard_rows=40,
            backend=backend,
        )
    local, remote = (MultiVectorIndex.open(tmp_path / b) for b in ("local", "ray"))
    assert len(list((tmp_path / "ray" / "encodings").iterdir())) == 3
    np.testing.assert_array_equal(local.searcher.documents.vectors, remote.searcher.documents.vectors)
    queries = docs.take(np.arange(10))
    np.testing.assert_array_equal(local.search(queries, 3).indices, remote.search(queries, 3).indices)
    assert built["ray"]["n_tokens"] == built["local"]["n_tokens"]
