"""The same inputs and seed give the same results: each command run twice gives the same JSON (every value but
its ``timings`` blocks) and the same output files, table for table, JSON document for JSON document (outside
their ``timings``) and byte for byte. The planners choose by counted work, never by a clock, so they are here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.multivector import MultiVectorSet
from tests.cli.arguments import fill

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("same")
    rng = np.random.default_rng(0)
    centres, labels = rng.normal(size=(5, 16)), rng.integers(0, 5, 400)
    vectors = (centres[labels] + 0.3 * rng.normal(size=(400, 16))).astype(np.float32)
    ids = np.array([f"r{i}" for i in range(400)], dtype=object)
    EmbeddingSet(vectors, ids, {"label": labels.astype(str)}).to_parquet(folder / "a.parquet")
    mapped = vectors @ rng.normal(size=(16, 12)) + 0.05 * rng.normal(size=(400, 12))
    EmbeddingSet(mapped.astype(np.float32), ids).to_parquet(folder / "b.parquet")
    EmbeddingSet(vectors[:50] + 0.01, ids[:50]).to_parquet(folder / "q.parquet")
    (folder / "texts.txt").write_text("\n".join(f"text number {i}" for i in range(60)))
    tokens = rng.normal(size=(1200, 16)).astype(np.float32)
    MultiVectorSet(tokens, np.arange(0, 1201, 3), list(ids)).to_parquet(folder / "tokens.parquet")
    MultiVectorSet(tokens[:150], np.arange(0, 151, 3), [f"q{i}" for i in range(50)]).to_parquet(folder / "qt.parquet")
    return folder


#: Each command, with ``{x}`` for a file of the data folder and ``OUT`` for the output of this run.
COMMANDS = {
    "info": ["info", "{a.parquet}"],
    "inspect": ["inspect", "{a.parquet}", "--labels", "label"],
    "knn": ["knn", "{a.parquet}", "-k", "5", "-o", "OUT.parquet"],
    "cluster": ["cluster", "{a.parquet}", "--k", "5", "-o", "OUT.parquet", "--labels", "label"],
    "cluster, k chosen": ["cluster", "{a.parquet}", "--k-values", "3,5,7"],
    "compare": ["compare", "{a.parquet}", "{b.parquet}", "--permutations", "10"],
    "compress apply": ["compress", "apply", "{a.parquet}", "--codec", "pca:8+int8", "-o", "OUT"],
    "curate dedup": ["curate", "dedup", "{a.parquet}", "-o", "OUT.parquet"],
    "curate sample": ["curate", "sample", "{a.parquet}", "-n", "50", "-o", "OUT.parquet"],
    "curate batches": ["curate", "batches", "{a.parquet}", "-b", "40", "-o", "OUT.parquet"],
    "curate leakage": ["curate", "leakage", "{a.parquet}", "{q.parquet}", "-o", "OUT.parquet"],
    "align fit": ["align", "fit", "{a.parquet}", "{b.parquet}", "-o", "OUT.json"],
    "embed": ["embed", "{texts.txt}", "-o", "OUT.parquet"],
    "multivector build": ["multivector", "build", "{tokens.parquet}", "-o", "OUT"],
    "compress plan": ["compress", "plan", "{a.parquet}", "--n-queries", "50", "--target-recall", "0.8"],
    "index build": ["index", "build", "{a.parquet}", "-k", "5", "--n-queries", "50", "-o", "OUT"],
    "index build, ivf": ["index", "build", "{a.parquet}", "--method", "ivf", "--target-recall", "0.8", "-o", "OUT"],
    "multivector plan": ["multivector", "plan", "{tokens.parquet}", "{qt.parquet}", "-k", "5", "--candidates", "5,20"],
    "report": ["report", "{a.parquet}", "--labels", "label", "-o", "OUT.html"],
}


def _run(template: list[str], data: Path, out: Path) -> dict:
    from embedlab.cli.app import app

    result = runner.invoke(app, [*fill(template, data, out), "--json", "--seed", "7", "-q"])
    assert result.exit_code == 0, result.output
    return _untimed(json.loads(result.stdout))


def _untimed(document: object) -> object:
    """``document`` without its ``timings`` blocks, at any depth (a saved index's card holds one)."""
    if isinstance(document, dict):
        return {key: _untimed(value) for key, value in document.items() if key != "timings"}
    if isinstance(document, list):
        return [_untimed(value) for value in document]
    return document


def _read(path: Path) -> object:
    """Parquet as its table (its bytes carry the writer's version); JSON and a report's page data without their
    timings, and without the sizes and checksums a manifest lists (the files themselves are compared); the rest
    as bytes."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".json":
        document = _untimed(json.loads(path.read_text()))
        return {key: value for key, value in document.items() if key != "files"}
    if path.suffix == ".html":
        page = re.search(r'<script id="embedlab-data" type="application/json">(.*?)</script>', path.read_text(), re.S)
        return _untimed(json.loads(page.group(1)))
    return path.read_bytes()


def _outputs(folder: Path) -> dict[str, object]:
    """Every output file, read by :func:`_read`."""
    return {str(path.relative_to(folder)): _read(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def _same(first: object, second: object) -> bool:
    if hasattr(first, "equals"):
        return first.equals(second)
    return first == second


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_run_twice_gives_the_same_results(command, data, tmp_path, hash_encoder):
    documents, outputs = [], []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        document = _run(COMMANDS[command], data, folder / "result")
        if command == "report":
            document.pop("bytes")  # the page holds its timings, whose digits vary; its data is compared below
        documents.append(json.loads(json.dumps(document).replace(str(folder), "RUN")))  # the output paths differ
        outputs.append(_outputs(folder))
    assert documents[0] == documents[1]
    assert outputs[0].keys() == outputs[1].keys()
    changed = [name for name in outputs[0] if not _same(outputs[0][name], outputs[1][name])]
    assert not changed, f"{command}: {changed} differ between runs"


def test_the_align_adapter_applied_twice_gives_the_same_rows(data, tmp_path):
    from embedlab.cli.app import app

    adapter = tmp_path / "adapter.json"
    fitted = runner.invoke(app, ["align", "fit", str(data / "a.parquet"), str(data / "b.parquet"), "-o", str(adapter)])
    assert fitted.exit_code == 0, fitted.output
    tables = []
    for run in ("first", "second"):
        out = tmp_path / f"{run}.parquet"
        result = runner.invoke(app, ["align", "apply", str(adapter), str(data / "b.parquet"), "-o", str(out), "-q"])
        assert result.exit_code == 0, result.output
        tables.append(pq.read_table(out))
    assert tables[0].equals(tables[1])
