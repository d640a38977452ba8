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
def data(tmp_path, rng):
    X = rng.normal(size=(300, 16)).astype(np.float32)
    X[250:260] = X[:10] + 0.001 * rng.normal(size=(10, 16)).astype(np.float32)
    return EmbeddingSet(X, [f"doc-{i}" for i in range(300)]).to_parquet(tmp_path / "data.parquet")


def test_dedup_writes_one_row_per_input_row_and_leaves_the_input_alone(data, tmp_path):
    before = data.read_bytes()
    out = tmp_path / "keep.parquet"
    result = _run("curate", "dedup", data, "--method", "near", "--threshold", 0.99, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["removed"], document["method"]) == (300, 10, "near")
    table = pq.read_table(out)
    assert table.num_rows == 300 and table.column("keep").to_pylist().count(False) == 10
    assert table.column("duplicate_of").to_pylist()[250] == "doc-0"
    assert data.read_bytes() == before


def test_semdedup_prints_its_removal_curve(data):
    result = _run("curate", "dedup", data, "--eps", 0.01, "--n-clusters", 3)
    assert result.exit_code == 0, result.output
    assert "290 of 300 rows kept, 10 removed by semdedup" in result.stdout and "eps 0.01: 3.3%" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--eps", 0), "eps must be a number in (0, 2)"),
        (("--remove-fraction", 1.5), "remove_fraction must be a number in [0, 1)"),
        (("--method", "exact", "--eps", 0.1), "SemDeDup's"),
        (("--keep", "oldest"), "keep must be one of"),
        (("-o", "{data}"), "is an input"),
    ],
)
def test_bad_requests_exit_2_and_write_nothing(data, tmp_path, args, message):
    result = _run("curate", "dedup", data, *[str(a).format(data=data) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet"]


def test_leakage_finds_test_rows_copied_from_training(data, tmp_path, rng):
    import embedlab

    train = embedlab.load(data)
    test_vectors = rng.normal(size=(40, 16)).astype(np.float32)
    test_vectors[5] = train.vectors[123]
    test = EmbeddingSet(test_vectors, [f"q{i}" for i in range(40)]).to_parquet(tmp_path / "test.parquet")
    out = tmp_path / "leaks.parquet"
    result = _run("curate", "leakage", data, test, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    example = document["examples"][0]
    assert document["leaked"] == 1 and (example["test_id"], example["train_id"]) == ("q5", "doc-123")
    assert example["similarity"] == pytest.approx(1.0, abs=1e-6)
    assert pq.read_table(out).column("leaked").to_pylist().count(True) == 1
    other = EmbeddingSet(rng.normal(size=(5, 8)).astype(np.float32)).to_parquet(tmp_path / "other.parquet")
    refused = _run("curate", "leakage", data, other)
    assert refused.exit_code == 2 and "data.parquet has dimension 16 and" in refused.output
    assert "other.parquet 8: leakage compares" in " ".join(refused.output.split())


@pytest.mark.parametrize("method", ["balanced", "sensitivity", "representatives", "random"])
def test_sample_writes_one_row_per_input_row(data, tmp_path, method):
    before = data.read_bytes()
    out = tmp_path / "sample.parquet"
    result = _run("curate", "sample", data, "--size", 30, "--method", method, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["size"], document["method"]) == (300, 30, method)
    table = pq.read_table(out)
    assert table.column_names == ["id", "keep", "reason", "group", "weight"]
    assert table.num_rows == 300 and sum(table.column("keep").to_pylist()) == 30
    assert sum(table.column("weight").to_pylist()) == pytest.approx(300, rel=0.5)
    assert data.read_bytes() == before


def test_sample_prints_the_rows_taken_per_cluster(data):
    result = _run("curate", "sample", data, "--size", 40, "--n-clusters", "12,4")
    assert result.exit_code == 0, result.output
    assert "40 of 300 rows sampled (balanced)" in result.stdout and "in the 4 clusters" in result.stdout


def test_batches_write_id_lists(data, tmp_path):
    out = tmp_path / "batches.parquet"
    result = _run("curate", "batches", data, "--batch-size", 32, "--n-clusters", 3, "-o", out)
    assert result.exit_code == 0, result.output
    assert "10 batches of 32 (cluster, 3 clusters)" in result.stdout
    ids = [i for batch in pq.read_table(out).column("ids").to_pylist() for i in batch]
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(300))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sample", "{data}", "--size", 301), "size must be an integer between 1 and 300 (the set has 300 rows)"),
        (("sample", "{data}", "--size", 10, "--n-clusters", "a,b"), "--n-clusters must be integers"),
        (("sample", "{data}", "--size", 10, "--method", "sensitivity", "--n-clusters", "4,2"), "takes one number"),
        (("sample", "{data}", "--size", 10, "--id-column", "uid"), "uid"),
        (("batches", "{data}", "--batch-size", 0), "batch_size must be an integer between 1 and 300"),
        (("batches", "{data}", "--batch-size", 8, "--mode", "mixed"), "mode must be one of"),
    ],
)
def test_bad_sample_and_batch_requests_exit_2_and_write_nothing(data, tmp_path, args, message):
    result = _run("curate", *[str(a).format(data=data) for a in args], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet"]


def test_near_duplicates_relative_to_the_spacing(data):
    result = _run("curate", "dedup", data, "--method", "near", "--relative", 0.13, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["removed"] == 10 and document["parameters"]["relative"] == 0.13
    assert 0.9 < document["parameters"]["threshold"] < 0.99  # 1 - 0.13 x the median neighbour distance (~0.34)
