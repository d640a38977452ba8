from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.cli.app import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path, rng):
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    X = (rng.normal(size=(1200, 32)) * np.r_[np.full(6, 3.0), np.full(26, 0.3)] @ basis.T).astype(np.float32)
    data = EmbeddingSet(X, [f"doc-{i}" for i in range(len(X))]).to_parquet(tmp_path / "data.parquet")
    Q = X[:6] + 0.05 * rng.normal(size=(6, 32)).astype(np.float32)
    queries = EmbeddingSet(Q, [f"q{i}" for i in range(6)]).to_parquet(tmp_path / "queries.parquet")
    return data, queries


def test_plan_json_has_the_frontier_and_recommendation(files):
    data, _ = files
    result = _run(
        "compress",
        "plan",
        data,
        "--codecs",
        "int8,int4,binary",
        "--n-queries",
        50,
        "-k",
        5,
        "--target-recall",
        0.9,
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["recommended"]["recall_at_k"] >= 0.9
    point = document["frontier"][0]
    assert {"codec", "bytes_per_vector", "recall_at_k", "rescore"} <= set(point) and "query_ms" not in point
    assert len(document["timings"]["points"]) == len(document["points"])
    assert {"query_ms", "encode_s"} == set(document["timings"]["points"][0])
    human = _run("compress", "plan", data, "--codecs", "int8,binary", "--n-queries", 50, "--budget-bytes", 8)
    assert human.exit_code == 0, human.output
    assert "Pareto frontiers" in human.stdout and "recommended:" in human.stdout


def test_plan_impossible_target_exits_2_naming_the_nearest(files):
    data, _ = files
    result = _run(
        "compress",
        "plan",
        data,
        "--codecs",
        "binary",
        "--rescore-max",
        0,
        "--n-queries",
        50,
        "--target-recall",
        1.0,
        "--budget-bytes",
        4,
    )
    assert result.exit_code == 2
    assert "The nearest is binary" in result.output


def test_apply_then_search_round_trip(files, tmp_path):
    data, queries = files
    out = tmp_path / "coll"
    applied = _run("compress", "apply", data, "--codec", "pca:16+int8+rescore:5", "-o", out, "--json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["full_vectors_kept"] is True
    found = _run("search", out, "--queries", queries, "-k", 3, "-o", tmp_path / "hits.parquet", "--json")
    assert found.exit_code == 0, found.output
    document = json.loads(found.stdout)
    assert document["exact_distances"] is True and document["params"]["rescore"] == 5
    assert [r["ids"][0] for r in document["results"]] == [f"doc-{i}" for i in range(6)]
    table = pq.read_table(tmp_path / "hits.parquet")
    assert table.num_rows == 18 and table.column("query").to_pylist()[:3] == ["q0", "q0", "q0"]
    codes_only = _run("search", out, "--queries", queries, "-k", 3, "--rescore", 0)
    assert codes_only.exit_code == 0 and "codes only" in codes_only.stdout


def test_apply_on_shards_writes_the_collection_apply_writes_in_memory(files, tmp_path):
    from embedlab.compress import CompressedCollection

    data, _ = files
    common = ["compress", "apply", data, "--codec", "pca:16+int8+rescore:5", "--json"]
    in_memory = _run(*common, "-o", tmp_path / "memory")
    sharded = _run(*common, "-o", tmp_path / "sharded", "--backend", "local", "--shard-rows", 250)
    assert in_memory.exit_code == sharded.exit_code == 0, sharded.output
    assert {**json.loads(sharded.stdout), "output": None} == {**json.loads(in_memory.stdout), "output": None}
    found, expected = CompressedCollection.open(tmp_path / "sharded"), CompressedCollection.open(tmp_path / "memory")
    np.testing.assert_array_equal(found.codes, expected.codes)
    np.testing.assert_array_equal(found.ids, expected.ids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compress", "apply", "{data}", "--codec", "int9", "-o", "{tmp}/c"), "unknown stage 'int9'"),
        (
            (
                "compress",
                "apply",
                "{data}",
                "--codec",
                "int8",
                "-o",
                "{tmp}/c",
                "--backend",
                "local",
                "--on-invalid",
                "drop",
            ),
            "invalid rows fail the job",
        ),
        (("compress", "apply", "{data}", "--codec", "int8", "-o", "{tmp}/c", "--shard-rows", 5), "need --backend"),
        (("search", "{tmp}", "--queries", "{queries}"), "is neither an embedlab index"),
        (("compress", "plan", "{data}", "--target-recall", 2), "target_recall must be positive and at most 1"),
    ],
)
def test_bad_requests_exit_2(files, tmp_path, args, message):
    data, queries = files
    result = _run(*[str(a).format(data=data, queries=queries, tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message in result.output
