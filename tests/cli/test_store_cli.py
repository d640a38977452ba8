"""``embedlab store`` and store URIs in every command, on LanceDB embedded on a temporary folder: export, import
(killed mid-way and resumed), write-back of cluster labels, an adapter applied into a new collection, and the
errors a user meets (exit 2, one paragraph, no secret)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import embedlab
from embedlab.cli.app import app
from tests.io.stores import conformance as c

c.require("lancedb", "lancedb")
runner = CliRunner()


@pytest.fixture
def imported(tmp_path):
    path, emb = c.dataset(tmp_path, n=1200)
    uri = f"lancedb://{tmp_path}/db/docs"
    result = runner.invoke(app, ["store", "import", str(path), uri, "--checkpoint", str(tmp_path / "k.json"), "--json"])
    assert result.exit_code == 0, result.output
    return uri, emb, json.loads(result.stdout)


def test_import_and_export(imported, tmp_path):
    uri, emb, document = imported
    assert document["verification"]["passed"] and document["written"] == 1200
    result = runner.invoke(app, ["store", "export", uri, "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 0, result.output
    assert "1,200 rows" in result.stdout and "verified" in result.stdout
    c.assert_same_rows(embedlab.load(tmp_path / "out.parquet"), emb)


def test_commands_read_store_uris(imported, tmp_path):
    uri, _, _ = imported
    info = runner.invoke(app, ["info", uri, "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["n"] == 1200
    knn = runner.invoke(app, ["knn", uri, "-k", "3", "--json"])
    assert knn.exit_code == 0, knn.output


def test_cluster_labels_written_back(imported, tmp_path):
    uri, _, _ = imported
    labels = tmp_path / "labels.parquet"
    clustered = runner.invoke(app, ["cluster", uri, "--method", "kmeans", "--k", "4", "-o", str(labels), "--quiet"])
    assert clustered.exit_code == 0, clustered.output
    result = runner.invoke(app, ["store", "write-back", uri, str(labels), "--columns", "cluster", "--prefix", "km_"])
    assert result.exit_code == 0, result.output
    assert "vectors unchanged" in result.stdout
    written = pq.read_table(labels)
    got = embedlab.load(uri)
    expected = dict(zip(written.column("id").to_pylist(), written.column("cluster").to_pylist(), strict=True))
    assert [expected[i] for i in got.ids.tolist()] == got.metadata.column("km_cluster").to_pylist()


def test_write_back_refuses_unknown_ids(imported, tmp_path):
    uri, _, _ = imported
    import pyarrow as pa

    pq.write_table(pa.table({"id": [0, 7, 99_999_999], "flag": [True, False, True]}), tmp_path / "bad.parquet")
    result = runner.invoke(app, ["store", "write-back", uri, str(tmp_path / "bad.parquet")])
    assert result.exit_code == 2
    assert "not in" in result.output and "99999999" in result.output and "Traceback" not in result.output
    assert "flag" not in embedlab.load(uri).metadata.column_names


def test_adapter_applied_into_a_new_collection(imported, tmp_path):
    uri, emb, _ = imported
    rotated = np.linalg.qr(np.random.default_rng(0).normal(size=(c.DIM, c.DIM)))[0].astype(np.float32)
    embedlab.EmbeddingSet(emb.vectors @ rotated, emb.ids).to_parquet(tmp_path / "new.parquet")
    fit = runner.invoke(
        app, ["align", "fit", uri, str(tmp_path / "new.parquet"), "-o", str(tmp_path / "a.json"), "--quiet"]
    )
    assert fit.exit_code == 0, fit.output
    target = f"lancedb://{tmp_path}/db/mapped"
    applied = runner.invoke(app, ["align", "apply", str(tmp_path / "a.json"), uri, "-o", target, "--quiet"])
    assert applied.exit_code == 0, applied.output
    assert len(embedlab.load(target)) == 1200
    again = runner.invoke(app, ["align", "apply", str(tmp_path / "a.json"), uri, "-o", target])
    assert again.exit_code == 2 and "exists" in again.output
    onto_itself = runner.invoke(app, ["align", "apply", str(tmp_path / "a.json"), uri, "-o", uri])
    assert onto_itself.exit_code == 2


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("lancedb://{tmp}/db/absent", "no table 'absent'"),
        ("postgresql://me:hunter2@localhost/db?table=t", "password"),
        ("qdrant+http://key@localhost:6333/c", "credentials"),
        ("lancedb://nocollection", "collection is missing"),
    ],
)
def test_bad_uris_exit_2_without_secrets(uri, expected, tmp_path):
    result = runner.invoke(app, ["store", "export", uri.format(tmp=tmp_path), "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "hunter2" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.parquet").exists()


def test_a_killed_import_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL in the middle of an import (no cleanup runs), then the same command: every row once."""
    path, emb = c.dataset(tmp_path, n=20_000, dim=8)
    uri, checkpoint = f"lancedb://{tmp_path}/db/killed", tmp_path / "killed.json"
    command = [sys.executable, "-m", "embedlab", "store", "import", str(path), uri, "--batch-size", "500"]
    command += ["--checkpoint", str(checkpoint), "--quiet"]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists() and json.loads(checkpoint.read_text() or "{}").get("rows_done", 0) >= 2000:
            break
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"the import finished (code {process.returncode}) before it could be killed; give it more rows")
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(checkpoint.read_text())["rows_done"]
    assert 2000 <= done < 20_000
    result = runner.invoke(app, ["store", "import", str(path), uri, "--checkpoint", str(checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["resumed_from"] >= done and document["verification"]["passed"]
    got = embedlab.load(uri)
    assert len(got) == 20_000 and len(set(got.ids.tolist())) == 20_000
    c.assert_same_rows(got, emb)


def test_a_killed_export_resumes_from_its_work_folder(tmp_path):
    """SIGKILL in the middle of an export, then the same command: it reads only the rows not yet kept, and the
    file holds every row once."""
    path, emb = c.dataset(tmp_path, n=20_000, dim=8)
    uri, out = f"lancedb://{tmp_path}/db/exported", tmp_path / "exported.parquet"
    imported = runner.invoke(app, ["store", "import", str(path), uri, "--checkpoint", str(tmp_path / "i.json")])
    assert imported.exit_code == 0, imported.output
    state = tmp_path / "exported.parquet.parts" / "checkpoint.json"
    command = [sys.executable, "-m", "embedlab", "store", "export", uri, "-o", str(out), "--batch-size", "100"]
    process = subprocess.Popen([*command, "--quiet"], env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if state.exists() and json.loads(state.read_text() or "{}").get("rows_done", 0) >= 2000:
            break
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.fail(f"the export finished (code {process.returncode}) before it could be killed; give it more rows")
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(state.read_text())["rows_done"]
    assert 2000 <= done < 20_000 and not out.exists()
    result = runner.invoke(app, ["store", "export", uri, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["resumed_from"] >= done and document["verification"]["passed"]
    assert not state.parent.exists()
    c.assert_same_rows(embedlab.load(out), emb)


def test_an_export_over_another_ones_work_folder_is_refused(imported, tmp_path):
    uri, _emb, _ = imported
    work = tmp_path / "o.parquet.parts"
    work.mkdir()
    (work / "checkpoint.json").write_text('{"uri": "lancedb:///elsewhere/t", "fingerprint": [], "files": []}')
    result = runner.invoke(app, ["store", "export", uri, "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2 and "--restart" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["store", "export", uri, "-o", str(tmp_path / "o.parquet"), "--restart", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["n_rows"] == 1200
