"""``embedlab multivector plan|build|search`` on planted token vectors, and the errors a user meets (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import embedlab
from embedlab.cli.app import app
from embedlab.multivector import MultiVectorIndex, MultiVectorSet, maxsim_scores
from tests.multivector.test_search import _planted

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    docs, queries, relevant = _planted(150, 20)
    docs.to_parquet(tmp_path / "docs.parquet")
    MultiVectorSet(queries.vectors, queries.offsets, [f"q{i}" for i in range(20)], {"relevant": relevant}).to_parquet(
        tmp_path / "queries.parquet"
    )
    return tmp_path, docs, queries


def test_build_then_search(files):
    tmp_path, docs, queries = files
    built = runner.invoke(
        app,
        [
            "multivector",
            "build",
            str(tmp_path / "docs.parquet"),
            "-o",
            str(tmp_path / "idx"),
            "--k-sim",
            "4",
            "--repetitions",
            "10",
            "--batch-rows",
            "40",
            "--candidates",
            "150",
            "--json",
        ],
    )
    assert built.exit_code == 0, built.output
    manifest = json.loads(built.stdout)
    assert manifest["n_documents"] == 150 and manifest["encoding_dim"] == 10 * 16 * 16
    encodings = embedlab.load(tmp_path / "idx" / "encodings")  # an ordinary embedding set (a Parquet folder)
    assert encodings.ids.tolist() == docs.ids.tolist()
    out = tmp_path / "found.parquet"
    found = runner.invoke(
        app,
        ["multivector", "search", str(tmp_path / "idx"), str(tmp_path / "queries.parquet"), "-o", str(out), "-k", "3"],
    )
    assert found.exit_code == 0, found.output
    table = pq.read_table(out)
    truth = np.argsort(-maxsim_scores(queries, docs), axis=1, kind="stable")[:, :3]
    assert table.column("id").to_pylist() == docs.ids[truth.ravel()].tolist()  # all 150 reranked: exact
    assert table.column("query").to_pylist()[:3] == ["q0"] * 3
    pooled = runner.invoke(
        app,
        [
            "multivector",
            "build",
            str(tmp_path / "docs.parquet"),
            "-o",
            str(tmp_path / "idx"),
            "--pool-factor",
            "2",
            "--quiet",
        ],
    )
    assert pooled.exit_code == 0, pooled.output
    assert len(MultiVectorIndex.open(tmp_path / "idx").searcher.documents.vectors) < docs.n_tokens
    coded = runner.invoke(
        app,
        [
            "multivector",
            "build",
            str(tmp_path / "docs.parquet"),
            "-o",
            str(tmp_path / "idx8"),
            "--k-sim",
            "4",
            "--repetitions",
            "10",
            "--codec",
            "int8",
            "--candidates",
            "150",
            "--quiet",
        ],
    )
    assert coded.exit_code == 0, coded.output
    assert (tmp_path / "idx8" / "encodings.embc").is_dir()
    index = MultiVectorIndex.open(tmp_path / "idx8")
    np.testing.assert_array_equal(index.search(queries, 3).indices, truth)  # every document reranked: exact


def test_plan_recommends_and_reports_candidates(files):
    tmp_path, _docs, _ = files
    result = runner.invoke(
        app,
        [
            "multivector",
            "plan",
            str(tmp_path / "docs.parquet"),
            str(tmp_path / "queries.parquet"),
            "-k",
            "5",
            "--encodings",
            "3:8:4,4:16:10",
            "--pool-factors",
            "1,2",
            "--candidates",
            "10,50,150",
            "--relevant-column",
            "relevant",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["recommended"]["maxsim_recall"] >= 0.9 and plan["exact_relevance_recall"] >= 0.9
    assert "muvera k_sim=4 d_proj=16 R=10 pool=1" in plan["candidates_needed"]
    text = runner.invoke(
        app,
        [
            "multivector",
            "plan",
            str(tmp_path / "docs.parquet"),
            str(tmp_path / "queries.parquet"),
            "-k",
            "5",
            "--encodings",
            "3:8:4",
            "--pool-factors",
            "1",
            "--candidates",
            "10,150",
        ],
    )
    assert text.exit_code == 0 and "recommended" in text.output


def test_bad_inputs_exit_2(files):
    tmp_path, _docs, _ = files
    single = tmp_path / "single.parquet"
    embedlab.EmbeddingSet(np.ones((3, 4))).to_parquet(single)
    ragged = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"tokens": pa.array([[[1.0, 2.0]], [[1.0, 2.0, 3.0]]])}), ragged)
    cases = [
        (["multivector", "build", str(single), "-o", str(tmp_path / "a")], "no column of token vectors"),
        (["multivector", "build", str(ragged), "-o", str(tmp_path / "b")], "different dimensions"),
        (
            [
                "multivector",
                "build",
                str(tmp_path / "docs.parquet"),
                "-o",
                str(tmp_path / "c"),
                "--k-sim",
                "12",
                "--d-proj",
                "64",
            ],
            "bytes a row",
        ),
        (
            [
                "multivector",
                "search",
                str(tmp_path),
                str(tmp_path / "queries.parquet"),
                "-o",
                str(tmp_path / "r.parquet"),
            ],
            "not a multi-vector index",
        ),
        (["multivector", "plan", str(tmp_path / "docs.parquet"), str(single)], "no column of token vectors"),
        (
            [
                "multivector",
                "plan",
                str(tmp_path / "docs.parquet"),
                str(tmp_path / "queries.parquet"),
                "--encodings",
                "4-16-10",
            ],
            "K_SIM:D_PROJ:REPETITIONS",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists() and not (tmp_path / "r.parquet").exists()
