"""compare_spaces: nulls, readings, the cluster breakdown, pairing and errors; and the compare command."""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.cli.compare import compare
from embedlab.compare import compare_spaces
from embedlab.exceptions import EmbeddingDataError

N_PERMUTATIONS = 9


def _blobs(rng: np.random.Generator, n_per: int = 60, n_blobs: int = 5, d: int = 16) -> np.ndarray:
    centres = 4.0 * rng.normal(size=(n_blobs, d))
    return np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)


@pytest.fixture
def blobs(rng):
    return _blobs(rng)


@pytest.fixture(scope="module")
def app():
    local = typer.Typer()
    local.command("compare")(compare)
    return local


def test_a_rotated_copy_agrees_on_every_score_beyond_every_permutation(rng, blobs):
    embed = np.linalg.qr(rng.normal(size=(24, 24)))[0][:16]
    result = compare_spaces(blobs, 3.0 * blobs @ embed, k=10, n_permutations=N_PERMUTATIONS, clusters=0)
    assert result.n_pairs == 300 and (result.dim_a, result.dim_b) == (16, 24)
    for score in result.scores:
        best = 0.0 if score.name == "procrustes_distance" else 1.0
        assert score.value == pytest.approx(best, abs=2e-3), score.name
        assert score.p_value == pytest.approx(1 / (1 + N_PERMUTATIONS)), score.name
        assert f"above all {N_PERMUTATIONS} random pairings" in score.reading
    assert result.clusters == ()


def test_independent_sets_are_no_better_than_a_random_pairing(rng, blobs):
    unrelated = _blobs(rng)[rng.permutation(300)]  # blobs of its own, in no relation to A's
    result = compare_spaces(blobs, unrelated, n_permutations=N_PERMUTATIONS, clusters=0)
    for score in result.scores:
        assert abs(score.z) < 3.5, score.name
    assert np.mean([score.p_value for score in result.scores]) > 0.25
    assert any("no better than a random pairing" in score.reading for score in result.scores)


def test_the_breakdown_puts_the_scrambled_cluster_first(rng, blobs):
    B = blobs @ np.linalg.qr(rng.normal(size=(16, 16)))[0]
    scrambled = slice(120, 180)  # the third blob, replaced by unrelated vectors in B
    B[scrambled] = _blobs(rng, n_per=60, n_blobs=1)
    result = compare_spaces(blobs, B, n_permutations=0, clusters=5)
    assert [c.size for c in result.clusters] and sum(c.size for c in result.clusters) == 300
    worst, *rest = result.clusters
    assert worst.size == 60 and worst.mutual_knn < 0.5
    assert all(c.mutual_knn > 0.9 for c in rest)
    assert [c.mutual_knn for c in result.clusters] == sorted(c.mutual_knn for c in result.clusters)
    assert np.isnan(result.score("linear_cka").p_value)  # no permutations: no null


def test_to_dict_is_json_ready_and_says_how_each_score_was_computed(rng, blobs):
    result = compare_spaces(blobs, blobs, n_permutations=3, sample=100, random_state=1)
    document = json.loads(json.dumps(result.to_dict()))
    assert document["parameters"]["sample"] == 100 and document["parameters"]["clusters"] == 6
    assert set(document["scores"]) == {s.name for s in result.scores} and len(document["scores"]) == 9
    entry = document["scores"]["linear_cka"]
    assert {"value", "null_mean", "null_std", "p_value", "z", "reading", "method", "n_rows"} <= set(entry)
    assert entry["n_rows"] == 100 and "Kornblith" in entry["method"]
    assert document["scores"]["mutual_knn"]["n_rows"] == 300
    assert len(document["clusters"]) == 6  # min(10, 300 // 50)


def test_sets_are_paired_by_id_with_partial_overlap(blobs):
    ids = np.array([f"doc-{i}" for i in range(300)])
    order = np.random.default_rng(3).permutation(300)[:250]  # B holds 250 of A's items, shuffled
    first = EmbeddingSet(blobs, ids)
    second = EmbeddingSet(2.0 * blobs[order], ids[order])
    result = compare_spaces(first, second, n_permutations=2, clusters=0)
    assert (result.n_pairs, result.n_only_a, result.n_only_b) == (250, 50, 0)
    assert result.score("mutual_knn").value == pytest.approx(1.0)


def test_bad_inputs_get_clear_errors(blobs):
    ids = [f"a{i}" for i in range(300)]
    with pytest.raises(EmbeddingDataError, match="share no id"):
        compare_spaces(EmbeddingSet(blobs, ids), EmbeddingSet(blobs, [f"b{i}" for i in range(300)]))
    with pytest.raises(EmbeddingDataError, match="at least 10"):
        compare_spaces(EmbeddingSet(blobs, ids), EmbeddingSet(blobs[:8], ids[:8]))
    broken = blobs.copy()
    broken[7, 0] = np.nan
    with pytest.raises(EmbeddingDataError, match="NaN"):
        compare_spaces(blobs, broken)


def test_progress_reports_one_step_per_score(blobs):
    seen = []

    class Recorder:
        @contextmanager
        def task(self, description, total):
            seen.append((description, total))
            yield lambda n: seen.append(n)

    compare_spaces(blobs, blobs, n_permutations=1, clusters=0, progress=Recorder())
    assert ("comparing spaces", 9) in seen and seen.count(1) >= 9


def test_cli_prints_tables_and_json(tmp_path, rng, blobs, app):
    ids = [f"doc-{i}" for i in range(300)]
    a = EmbeddingSet(blobs, ids).to_parquet(tmp_path / "a.parquet")
    b = EmbeddingSet(blobs @ rng.normal(size=(16, 8)), ids).to_parquet(tmp_path / "b.parquet")
    runner = CliRunner()
    human = runner.invoke(app, [str(a), str(b), "--permutations", "3", "--clusters", "3", "-q"])
    assert human.exit_code == 0, human.output
    assert "linear_cka" in human.stdout and "p-value" in human.stdout and "least agreement first" in human.stdout
    raw = runner.invoke(app, [str(a), str(b), "--k", "5", "--permutations", "2", "--sample", "200", "--json", "-q"])
    assert raw.exit_code == 0, raw.output
    document = json.loads(raw.stdout)
    assert document["n_pairs"] == 300 and document["parameters"]["k"] == 5
    assert document["parameters"]["sample"] == 200 and document["dim_b"] == 8


def test_cli_turns_a_pairing_error_into_one_line_and_exit_2(tmp_path, blobs, app):
    a = EmbeddingSet(blobs, [f"a{i}" for i in range(300)]).to_parquet(tmp_path / "a.parquet")
    b = EmbeddingSet(blobs, [f"b{i}" for i in range(300)]).to_parquet(tmp_path / "b.parquet")
    result = CliRunner().invoke(app, [str(a), str(b), "-q"])
    assert result.exit_code == 2
    assert "share no id" in result.output and "Traceback" not in result.output


def test_cli_stitches_a_probe_of_a_label_column_from_a_to_b(tmp_path, rng, app):
    blobs = _blobs(rng)
    ids = [f"doc-{i}" for i in range(300)]
    labels = [f"blob-{i // 60}" for i in range(300)]
    a = EmbeddingSet(blobs, ids, {"kind": labels}).to_parquet(tmp_path / "a.parquet")
    rotation = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    b = EmbeddingSet(blobs @ rotation, ids).to_parquet(tmp_path / "b.parquet")
    runner = CliRunner()
    args = [str(a), str(b), "--permutations", "2", "--clusters", "0", "--stitch-labels", "kind", "--anchors", "40"]
    raw = runner.invoke(app, [*args, "--json", "-q"])
    assert raw.exit_code == 0, raw.output
    stitching = json.loads(raw.stdout)["stitching"]
    assert stitching["n_anchors"] == 40 and stitching["within_accuracy"] > 0.9
    assert stitching["stitched_accuracy"] == pytest.approx(stitching["within_accuracy"], abs=0.02)  # a rotation
    human = runner.invoke(app, [*args, "-q"])
    assert "zero-shot stitching" in human.stdout and "absolute coordinates" in human.stdout
    missing = runner.invoke(app, [str(a), str(b), "--permutations", "2", "--stitch-labels", "genre", "-q"])
    assert missing.exit_code == 2 and "no column 'genre'" in missing.output and "kind" in missing.output
    one = EmbeddingSet(blobs, ids, {"kind": ["x"] * 300}).to_parquet(tmp_path / "one.parquet")
    single = runner.invoke(app, [str(one), str(b), "--permutations", "2", "--stitch-labels", "kind", "-q"])
    assert single.exit_code == 2 and "hold one class" in single.output
