"""``embedlab labels ood|remove`` on planted classes: what they print, write and refuse."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet, load
from embedlab.cli.app import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(0)
    means = 4.0 * rng.normal(size=(6, 24))
    y = rng.integers(0, 6, 1600)
    side = rng.integers(0, 2, 1600)
    X = (means[y] + np.outer(side - 0.5, 3.0 * np.eye(24)[23]) + rng.normal(size=(1600, 24))).astype(np.float32)
    ids = np.array([f"r{i}" for i in range(1600)], dtype=object)
    known = y < 4
    metadata = {"topic": y.astype(str), "side": side}
    EmbeddingSet(X, ids, metadata).take(np.flatnonzero(known)[:800]).to_parquet(folder / "reference.parquet")
    new_rows = np.r_[np.flatnonzero(known)[800:1000], np.flatnonzero(~known)[:200]]
    EmbeddingSet(X, ids, metadata).take(new_rows).to_parquet(folder / "new.parquet")
    EmbeddingSet(X, ids, metadata).to_parquet(folder / "all.parquet")
    return folder


def test_ood_flags_the_unseen_classes_and_writes_a_score_per_row(files, tmp_path):
    out = tmp_path / "scores.parquet"
    result = _run(
        "labels", "ood", files / "reference.parquet", files / "new.parquet", "--labels", "topic", "-o", out, "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n_new"] == 400 and document["output"] == str(out)
    table = pq.read_table(out)
    assert table.num_rows == 400 and table.column("id").to_pylist()[:2] == load(files / "new.parquet").ids[:2].tolist()
    flagged = np.asarray(table.column("neco_out"))
    assert flagged[200:].mean() > 0.9 and flagged[:200].mean() < 0.15  # the last 200 are of unseen classes
    human = _run("labels", "ood", files / "reference.parquet", files / "new.parquet", "--labels", "topic")
    assert human.exit_code == 0 and "NECO flags" in human.stdout


def test_remove_writes_the_set_without_the_attribute_and_says_what_it_cost(files, tmp_path):
    out = tmp_path / "removed.parquet"
    result = _run(
        "labels", "remove", files / "all.parquet", "--attribute", "side", "--check", "topic", "-o", out, "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["probe_before"] > 0.85 and document["probe_after"] < document["majority"] + 0.1
    assert document["others"]["topic"]["after"] > 0.9
    removed = load(out)
    original = load(files / "all.parquet")
    assert removed.ids.tolist() == original.ids.tolist() and removed.metadata.column_names == ["topic", "side"]
    assert not np.allclose(removed.vectors, original.vectors)
    human = _run("labels", "remove", files / "all.parquet", "--attribute", "side", "-o", tmp_path / "again.parquet")
    assert human.exit_code == 0 and "a fresh probe reads it at" in human.stdout


def test_a_missing_label_column_is_refused_naming_the_file(files, tmp_path):
    result = _run("labels", "remove", files / "all.parquet", "--attribute", "colour", "-o", tmp_path / "x.parquet")
    assert result.exit_code == 2 and "all.parquet has no column 'colour'" in " ".join(result.stderr.split())
    assert not (tmp_path / "x.parquet").exists()


def test_loki_predicts_the_label_between_two_observed_classes(tmp_path):
    line = np.arange(1.0, 6.0)[:, None]  # five labels on a line, embedded by their position
    EmbeddingSet(line.astype(np.float32), ["a", "b", "c", "d", "e"]).to_parquet(tmp_path / "labels.parquet")
    proba = np.array([[0.5, 0.5, 0.0], [0.0, 0.1, 0.9], [1.0, 0.0, 0.0]], dtype=np.float32)
    EmbeddingSet(proba, ["x", "y", "z"]).to_parquet(tmp_path / "proba.parquet")
    out = tmp_path / "loki.parquet"
    args = ["labels", "loki", tmp_path / "proba.parquet", tmp_path / "labels.parquet", "--classes", "a,c,e", "-o", out]
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pydict()
    assert table["prediction"] == ["b", "e", "a"] and table["argmax"] == ["a", "e", "a"]
    assert json.loads(result.stdout) == {"n": 3, "changed": 1, "unobserved": 1, "output": str(out)}
    unknown = _run(
        "labels",
        "loki",
        tmp_path / "proba.parquet",
        tmp_path / "labels.parquet",
        "--classes",
        "a,c,z",
        "-o",
        tmp_path / "u.parquet",
    )
    assert unknown.exit_code == 2 and "'z'" in unknown.stderr and not (tmp_path / "u.parquet").exists()
    wrong = _run(
        "labels", "loki", tmp_path / "labels.parquet", tmp_path / "labels.parquet", "-o", tmp_path / "w.parquet"
    )
    assert wrong.exit_code == 2 and "one class" in " ".join(wrong.stderr.split())
