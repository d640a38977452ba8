"""``embedlab index build|show`` and ``embedlab search`` on an index, as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.cli._options import parse_bytes
from embedlab.cli.app import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path, rng):
    centres = rng.normal(size=(20, 24)) * 3
    X = (centres[rng.integers(0, 20, 3000)] + rng.normal(size=(3000, 24))).astype(np.float32)
    data = EmbeddingSet(X, [f"doc-{i}" for i in range(len(X))]).to_parquet(tmp_path / "data.parquet")
    queries = EmbeddingSet(X[:5] + 0.01, [f"q{i}" for i in range(5)]).to_parquet(tmp_path / "queries.parquet")
    return data, queries


def test_build_show_and_search(files, tmp_path):
    data, queries = files
    out = tmp_path / "idx"
    built = _run("index", "build", data, "-o", out, "--target-recall", 0.9, "--n-queries", 200, "--json")
    assert built.exit_code == 0, built.output
    card = json.loads(built.stdout)["card"]
    assert card["recall"] >= 0.88 and card["params"]["method"] == "hnsw" and card["target_recall"] == 0.9
    shown = _run("index", "show", out)
    assert shown.exit_code == 0 and "Operating point" in shown.stdout and "recall@10" in shown.stdout
    found = _run("search", out, "--queries", queries, "-k", 3, "-o", tmp_path / "hits.parquet", "--json")
    assert found.exit_code == 0, found.output
    document = json.loads(found.stdout)
    assert [r["ids"][0] for r in document["results"]] == [f"doc-{i}" for i in range(5)]
    assert document["params"]["method"] == "hnsw" and document["k"] == 3
    table = pq.read_table(tmp_path / "hits.parquet")
    assert table.column_names == ["query", "rank", "id", "score", "distance"] and table.num_rows == 15
    wide = json.loads(_run("search", out, "--queries", queries, "--ef", 200, "--json").stdout)
    assert wide["params"]["ef_search"] == 200 and wide["k"] == 10  # the tuned k by default


def test_build_an_index_per_shard(files, tmp_path):
    data, _ = files
    data_npy = tmp_path / "data.npy"
    np.save(data_npy, np.stack(pq.read_table(data).column("embedding").to_numpy(zero_copy_only=False)).astype("f4"))
    out = tmp_path / "shards"
    args = ("index", "build", data_npy, "-o", out, "--backend", "local", "--shard-rows", 1000, "--n-queries", 150)
    built = _run(*args, "--target-recall", 0.9, "--json")
    assert built.exit_code == 0, built.output
    document = json.loads(built.stdout)
    assert document["sharded"] and document["card"]["target_recall"] == 0.9 and document["params"]["method"] == "hnsw"
    assert sorted(p.name for p in out.iterdir()) == ["_indexes.json", *(f"part-0000{i}.faiss" for i in range(3))]
    shown = _run(*args)
    words = " ".join(shown.stdout.split())
    assert shown.exit_code == 0 and "Tuned on the first shard" in words and "3 shard indexes ->" in words
    refused = _run(*args, "--codec", "int8")
    assert refused.exit_code == 2 and "--backend tunes HNSW on the first shard" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "build", "{data}", "-o", "{tmp}/i", "--target-recall", 1.5), "target_recall must be positive"),
        (("index", "build", "{data}", "-o", "{tmp}/i", "--method", "lsh"), "method must be one of"),
        (("index", "build", "{data}", "-o", "{tmp}/i", "-k", 5000), "k must be an integer between 1 and"),
        (("index", "build", "{data}", "-o", "{tmp}/i", "--memory-budget", "1KB"), "fits a memory budget"),
        (("index", "build", "{data}", "-o", "{tmp}/i", "--memory-budget", "lots"), "is not a size"),
        (("index", "show", "{tmp}"), "is not an embedlab index"),
        (("search", "{tmp}", "--queries", "{queries}"), "is neither an embedlab index"),
    ],
)
def test_bad_requests_exit_2_with_one_paragraph(files, tmp_path, args, message):
    data, queries = files
    result = _run(*[str(a).format(data=data, queries=queries, tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_tampered_index_is_refused_by_search(files, tmp_path):
    data, queries = files
    out = tmp_path / "idx"
    assert _run("index", "build", data, "-o", out, "--target-recall", 0.9, "--n-queries", 100, "-q").exit_code == 0
    (out / "ids.parquet").write_bytes(b"not parquet")
    result = _run("search", out, "--queries", queries)
    assert result.exit_code == 2 and "ids.parquet is not the file the index was saved with" in result.output


def test_sizes_parse_with_units():
    assert parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("2GB") == 2 * 10**9 and parse_bytes(None) is None
