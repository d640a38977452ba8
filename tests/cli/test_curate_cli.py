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
        (("-o", "{data}"), "is the input"),
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
    assert refused.exit_code == 2 and "dimension 16 and the test set 8" in refused.output
