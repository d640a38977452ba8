from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from embedlab import EmbeddingSet, load
from embedlab.cli.align import align_app

runner = CliRunner()
app = typer.Typer()
app.add_typer(align_app)


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path, rng):
    centres = rng.normal(size=(20, 24))
    new = (centres[rng.integers(20, size=400)] + 0.5 * rng.normal(size=(400, 24))).astype(np.float32)
    old = (new @ np.linalg.qr(rng.normal(size=(24, 16)))[0] + 0.01 * rng.normal(size=(400, 16))).astype(np.float32)
    ids = [f"doc-{i}" for i in range(400)]
    old_path = EmbeddingSet(old, ids, {"title": [f"t{i}" for i in range(400)]}).to_parquet(tmp_path / "old.parquet")
    new_path = EmbeddingSet(new[::-1], ids[::-1]).to_parquet(tmp_path / "new.parquet")
    return old_path, new_path, old


def test_fit_then_apply_maps_new_rows_into_the_old_space(files, tmp_path):
    old_path, new_path, old = files
    adapter = tmp_path / "adapter.json"
    methods = "procrustes,ridge"
    fitted = _run("align", "fit", old_path, new_path, "--methods", methods, "--k", 5, "-o", adapter, "--json")
    assert fitted.exit_code == 0, fitted.output
    document = json.loads(fitted.stdout)
    assert document["direction"] == "new-to-old" and document["method"] in ("procrustes", "ridge")
    assert {row["method"] for row in document["cv_table"]} == {"procrustes", "ridge"}
    evaluation = document["evaluation"]  # OLD is a 16-d projection of NEW: neighbourhoods change, recall < 1
    assert evaluation["recall_unadapted"] is None and 0.5 < evaluation["fraction_recovered"] <= 1.0
    assert document["output"] == str(adapter) and adapter.exists()

    out = tmp_path / "mapped.parquet"
    applied = _run("align", "apply", adapter, new_path, "-o", out, "--json")
    assert applied.exit_code == 0, applied.output
    summary = json.loads(applied.stdout)
    assert (summary["n"], summary["dim_in"], summary["dim_out"]) == (400, 24, 16)
    mapped = load(out)
    assert mapped.ids.tolist() == [f"doc-{i}" for i in range(400)][::-1]
    cosine = np.sum(mapped.vectors * old[::-1], axis=1) / np.linalg.norm(mapped.vectors, axis=1)
    assert np.mean(cosine / np.linalg.norm(old[::-1], axis=1)) > 0.99


def test_fit_prints_the_cv_table_and_the_evaluation(files, tmp_path):
    old_path, new_path, _ = files
    result = _run(
        "align", "fit", old_path, new_path, "--methods", "procrustes", "--direction", "old-to-new", "-o",
        tmp_path / "a.json", "--seed", 3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("Cross-validation", "procrustes", "Recall@10", "full re-embedding", "dimensions differ"):
        assert text in result.stdout


def test_apply_with_the_wrong_dimension_names_the_file_and_dims(files, tmp_path):
    old_path, new_path, _ = files
    adapter = tmp_path / "adapter.json"
    assert _run("align", "fit", old_path, new_path, "--methods", "ridge", "-o", adapter, "-q").exit_code == 0
    result = _run("align", "apply", adapter, old_path, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "old.parquet has 16 features, but" in message
    assert not (tmp_path / "out.parquet").exists()


def test_fit_errors_are_one_line_and_exit_2(files, tmp_path):
    old_path, new_path, _ = files
    result = _run("align", "fit", old_path, new_path, "--methods", "magic", "-o", tmp_path / "a.json")
    assert result.exit_code == 2
    assert "methods must be among" in result.output and "Traceback" not in result.output


def test_fit_states_what_to_expect_and_recommends_reembedding_below_min_recall(files, tmp_path):
    old_path, new_path, _ = files
    out = tmp_path / "a.json"
    result = _run("align", "fit", old_path, new_path, "--methods", "ridge", "--min-recall", 0.999, "-o", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "re-embed: expect about" in text and "95% interval" in text and "re-embed the corpus instead" in text
    document = json.loads(out.read_text())
    assert document["alignment"]["recommendation"] == "re-embed" and document["alignment"]["min_recall"] == 0.999
    as_json = _run("align", "fit", old_path, new_path, "--methods", "ridge", "--min-recall", 0.1, "-o", out, "--json")
    assert json.loads(as_json.stdout)["recommendation"] == "adapter"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("disjoint", "share no id"),
        ("few", "20 pairs are left to fit the adapter (a limit of 20 pairs caps them), but a map from 24"),
        ("recall", "min_recall must be positive and at most 1"),
    ],
)
def test_bad_pairs_exit_2_naming_the_problem_and_write_nothing(files, tmp_path, rng, case, message):
    old_path, new_path, _ = files
    args = []
    if case == "disjoint":
        new_path = EmbeddingSet(rng.normal(size=(50, 24)), [f"x{i}" for i in range(50)]).to_parquet(tmp_path / "x.pq")
    elif case == "few":
        args = ["--pairs", 20]
    else:
        args = ["--min-recall", 1.5]
    out = tmp_path / "a.json"
    result = _run("align", "fit", old_path, new_path, "-o", out, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists()
