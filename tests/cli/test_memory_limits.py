"""--max-memory on the main commands: a job estimated past the bound is refused before it reads DATA, with the
estimate and a way out that works; a bound that fits changes nothing; with --backend the bound sizes the shards."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.cli.app import app
from embedlab.cluster import clustering_memory
from embedlab.compress import compression_memory
from embedlab.curate import dedup_memory
from embedlab.geometry import inspect_memory
from embedlab.neighbors import knn_memory
from embedlab.report import report_memory
from embedlab.scale import process_memory

runner = CliRunner()
N, DIM = 3_000, 32


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("memory") / "set.parquet"
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    EmbeddingSet(vectors, [f"r{i}" for i in range(N)]).to_parquet(path)
    return path


COMMANDS = {
    "inspect": (["inspect", "{data}"], "--sample"),
    "knn": (["knn", "{data}", "-o", "{out}"], "--backend local"),
    "cluster": (["cluster", "{data}", "-k", "5"], "--backend local"),
    "report": (["report", "{data}", "-o", "{out}"], "--sample"),
    "compress apply": (["compress", "apply", "{data}", "--codec", "int8", "-o", "{out}"], "--backend local"),
    "curate dedup": (["curate", "dedup", "{data}", "-o", "{out}"], "--backend local"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_job_past_max_memory_is_refused_before_it_starts(command, data, tmp_path):
    args, way_out = COMMANDS[command]
    out = tmp_path / "out"
    bound = process_memory() + 2**20  # less than any job adds to this process
    result = runner.invoke(
        app, [a.format(data=data, out=out) for a in args] + ["--max-memory", str(bound)], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert re.search(r"needs about [\d.]+ [MG]iB \(this process", message), message
    assert "--max-memory allows" in message and way_out in message
    assert "Traceback" not in message and not out.exists()


def test_the_suggested_sample_fits(data, tmp_path):
    bound = inspect_memory(N // 2, DIM).total
    refused = runner.invoke(app, ["inspect", str(data), "--max-memory", str(bound)])
    assert refused.exit_code == 2
    rows = int(re.search(r"--sample ([\d,]+) fits", " ".join(refused.output.split())).group(1).replace(",", ""))
    assert 0 < rows < N
    # This test's process grows a little between the two runs (a new command's own process would not).
    headroom = str(bound + 32 * 2**20)
    done = runner.invoke(app, ["inspect", str(data), "--sample", str(rows), "--max-memory", headroom, "--json"])
    assert done.exit_code == 0, done.output
    assert '"n_total": 3000' in done.stdout and f'"n": {rows},' in done.stdout


def test_a_bound_that_fits_changes_nothing(data):
    plain = runner.invoke(app, ["cluster", str(data), "-k", "4", "--json"])
    bounded = runner.invoke(app, ["cluster", str(data), "-k", "4", "--json", "--max-memory", "64GiB"])
    assert plain.exit_code == bounded.exit_code == 0
    strip = re.compile(r'"seconds": [\d.e-]+')
    assert strip.sub("", plain.stdout) == strip.sub("", bounded.stdout)


def test_with_backend_the_bound_sizes_the_shards(data, tmp_path):
    args = ["knn", str(data), "--backend", "local", "-o", str(tmp_path / "graph"), "--json", "--max-memory"]
    too_small = runner.invoke(app, [*args, str(process_memory() // 2)])
    assert too_small.exit_code == 2 and "less than this process already holds" in too_small.output
    done = runner.invoke(app, [*args, str(process_memory() + 2**30)])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "graph").is_dir()


def test_a_bad_bound_is_refused():
    result = runner.invoke(app, ["inspect", "x.parquet", "--max-memory", "lots"])
    assert result.exit_code == 2 and "--max-memory" in result.output


@pytest.mark.parametrize(
    "estimate",
    [
        lambda n, d: inspect_memory(n, d),
        lambda n, d: knn_memory(n, d),
        lambda n, d: clustering_memory(n, d, n_clusters=10),
        lambda n, d: clustering_memory(n, d, method="leiden"),
        lambda n, d: report_memory(n, d),
        lambda n, d: compression_memory(n, d, "pca:16+int8+rescore:5"),
        lambda n, d: dedup_memory(n, d, method="near"),
        lambda n, d: dedup_memory(n, d),
    ],
)
def test_estimates_grow_with_the_set_and_count_every_vector(estimate):
    small, more_rows, wider = estimate(10_000, 64), estimate(1_000_000, 64), estimate(10_000, 1024)
    assert small.total < more_rows.total and small.total < wider.total
    vectors = 4 * 1_000_000 * 64
    assert more_rows.total - small.total >= vectors  # at least the vectors themselves


def test_report_on_a_sample_read_in_a_stream(data, tmp_path):
    out = tmp_path / "report.html"
    args = [
        "report",
        str(data),
        "-o",
        str(out),
        "--sample",
        "300",
        "--no-compression",
        "--json",
        "--max-points",
        "300",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert '"n": 300' in result.stdout and "a sample of 300 of 3,000 rows" in out.read_text()
