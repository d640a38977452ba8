from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedlab import EmbeddingSet
from embedlab.cli.app import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_commands():
    result = _run("--help")
    assert result.exit_code == 0
    for command in ("info", "embed", "report", "demo"):
        assert command in result.stdout


def test_info_json_is_the_only_stdout(tmp_path, vectors):
    path = EmbeddingSet(vectors).to_parquet(tmp_path / "v.parquet")
    result = _run("info", path, "--json", "--seed", 3)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["dim"], document["duplicate_rows"]) == (300, 16, 0)


def test_info_human_output_counts_problems(tmp_path):
    rows = [[1.0, 2.0], [float("nan"), 1.0], [0.0, 0.0], [1.0, 2.0]]
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"embedding": pa.array(rows)}), path)
    result = _run("info", path)
    assert result.exit_code == 0
    assert "rows with NaN or Inf" in result.stdout and "duplicate vectors" in result.stdout


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("garbage"), "cannot be read"),
        (lambda p: pq.write_table(pa.table({"embedding": pa.array([[1.0], [1.0, 2.0]])}), p), "different lengths"),
        (lambda p: pq.write_table(pa.table({"x": pa.array(["a"])}), p), "no vector column"),
    ],
)
def test_bad_input_gives_exit_code_2_and_one_message(tmp_path, setup, message):
    path = tmp_path / "in.parquet"
    setup(path)
    result = _run("info", path)
    assert result.exit_code == 2
    assert message in result.stderr and "in.parquet" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_embed_reports_dropped_rows(tmp_path, hash_encoder):
    src = tmp_path / "t.txt"
    src.write_text("alpha\n\nbeta\n")
    result = _run("embed", src, "-o", tmp_path / "o.parquet")
    assert result.exit_code == 2 and "--on-invalid drop" in result.stderr
    result = _run("embed", src, "-o", tmp_path / "o.parquet", "--on-invalid", "drop", "--json", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n"] == 2 and document["validation"]["dropped"][0]["ids"] == [1]


def test_embed_with_a_folder_that_is_no_model_exits_2_naming_it(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("alpha\n")
    (tmp_path / "notes").mkdir()
    result = _run("embed", src, "-o", tmp_path / "o.parquet", "--model", tmp_path / "notes")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "notes' is not a sentence-transformers model" in message and "Traceback" not in result.output
    assert not (tmp_path / "o.parquet").exists()


def test_embed_rejects_unknown_policy(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("alpha\n")
    result = _run("embed", src, "-o", tmp_path / "o.parquet", "--on-invalid", "skip")
    assert result.exit_code == 2 and "fail" in result.output


def test_demo_on_a_small_corpus_writes_the_report(tmp_path, hash_encoder, monkeypatch):
    corpus = tmp_path / "corpus.jsonl"
    words = ["happiness", "doctor", "cat", "wolf", "red", "blue", "tree", "car", "house", "sea", "sky", "book"]
    corpus.write_text(
        "".join(json.dumps({"id": f"w{i}", "text": f"{w}: a word", "label": i % 2}) + "\n" for i, w in enumerate(words))
    )
    monkeypatch.setattr("embedlab.demo.wordnet_demo_path", lambda: corpus)
    result = _run("demo", "--out", tmp_path / "demo", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n"] == 12 and document["report"] == str(tmp_path / "demo" / "report.html")
    assert (tmp_path / "demo" / "report.html").stat().st_size == document["report_bytes"] > 10_000
    assert set(document["neighbours"]) == {"happiness: a word", "doctor: a word", "wolf: a word"}
    assert all(len(v) == 5 for v in document["neighbours"].values())
    assert any("duplicate" in line for line in document["recommendations"])
    again = _run("demo", "--out", tmp_path / "demo")
    assert again.exit_code == 0 and "reused" in again.stdout and "report.html" in again.stdout


def test_report_writes_one_html_file_and_prints_json(tmp_path, labelled_set):
    path = labelled_set.to_parquet(tmp_path / "set.parquet")
    out = tmp_path / "r" / "report.html"
    result = _run("report", path, "-o", out, "--labels", "label", "--no-compression", "--max-points", 100, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["output"] == str(out) and document["bytes"] == out.stat().st_size
    assert document["n"] == 300 and document["map"] == {
        "method": "umap",
        "n_points": 100,
        "n_total": 300,
        "sampled": True,
        "note": "UMAP (15 neighbours, cosine) of a uniform random sample of 100 of 300 rows (seed 0)",
    }
    assert document["compression"] is None and "skip" in document["compression_note"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_names_a_missing_column_and_writes_nothing(tmp_path, labelled_set):
    path = labelled_set.to_parquet(tmp_path / "set.parquet")
    result = _run("report", path, "-o", tmp_path / "report.html", "--labels", "colour")
    assert result.exit_code == 2 and "has no column 'colour'" in result.output
    assert not (tmp_path / "report.html").exists()


def test_knn_writes_graph_and_reports(tmp_path, vectors):
    path = EmbeddingSet(vectors).to_parquet(tmp_path / "v.parquet")
    result = _run("knn", path, "-k", 4, "-o", tmp_path / "g.parquet", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["k"], document["method"], document["recall"]) == (300, 4, "exact", 1.0)
    graph = pq.read_table(tmp_path / "g.parquet")
    assert graph.num_rows == 300 and graph.column_names == ["id", "neighbor_ids", "distances"]


@pytest.mark.parametrize("storage", ["sq8", "flat"])
def test_knn_index_storage(tmp_path, vectors, storage):
    path = EmbeddingSet(vectors).to_parquet(tmp_path / "v.parquet")
    result = _run("knn", path, "-k", 4, "--method", "hnsw", "--storage", storage, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["params"]["storage"] == storage and document["recall"] > 0.9


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        (1, ["-k", "1"], "at least 2"),
        (5, ["-k", "5"], "k=5 but only 4 neighbour"),
        (5, ["--metric", "hamming"], "metric must be one of"),
        (50, ["-k", "3", "--method", "hnsw", "--storage", "pq"], "storage must be one of"),
    ],
)
def test_knn_bad_requests_exit_2(tmp_path, vectors, rows, args, message):
    path = EmbeddingSet(vectors[:rows]).to_parquet(tmp_path / "v.parquet")
    result = _run("knn", path, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_knn_drop_policy_lists_dropped_rows(tmp_path, vectors):
    bad = vectors.copy()
    bad[7] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    failed = _run("knn", tmp_path / "bad.npy", "-k", 3)
    assert failed.exit_code == 2 and "1 of 300 rows have NaN or Inf values (ids 7)" in failed.stderr
    dropped = _run("knn", tmp_path / "bad.npy", "-k", 3, "--on-invalid", "drop", "--json")
    assert json.loads(dropped.stdout)["validation"]["dropped"][0]["ids"] == [7]


def test_inspect_json_and_human_output(tmp_path, rng):
    X = rng.normal(size=(400, 12)).astype(np.float32)
    labels = np.arange(400) % 4
    path = EmbeddingSet(X, metadata={"topic": labels}).to_parquet(tmp_path / "v.parquet")
    result = _run("inspect", path, "--labels", "topic", "--json", "--sample", 300, "--seed", 2)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n"], document["n_total"], document["labels"]["n_labels"]) == (300, 400, 4)
    human = _run("inspect", path, "-q")
    assert human.exit_code == 0 and "TwoNN" in human.stdout and "hubness" in human.stdout
    assert "recommended" in human.stdout and "DANCo" not in human.stdout
    assert document["intrinsic_dimension"]["danco"]["value"] is None


def test_inspect_leads_with_the_recommended_estimate_and_runs_danco_on_request(tmp_path, rng):
    plane = rng.uniform(size=(600, 3)) @ rng.normal(size=(3, 16))
    path = EmbeddingSet(plane.astype(np.float32)).to_parquet(tmp_path / "v.parquet")
    document = json.loads(_run("inspect", path, "--danco", "--json").stdout)["intrinsic_dimension"]
    assert abs(document["recommended"]["value"] - 3) < 0.4 and document["recommended"]["agree"] is not None
    assert abs(document["danco"]["value"] - 3) < 0.4 and document["danco"]["scale"]["3"] == min(
        document["danco"]["scale"].values()
    )
    human = _run("inspect", path, "--danco", "-q").stdout
    assert human.index("recommended") < human.index("TwoNN") and "DANCo" in human


def test_inspect_unknown_label_column_exits_2(tmp_path, vectors):
    path = EmbeddingSet(vectors).to_parquet(tmp_path / "v.parquet")
    result = _run("inspect", path, "--labels", "nope")
    assert result.exit_code == 2 and "no column 'nope'" in result.stderr


def _topic_parquet(tmp_path, rng):
    centres = np.eye(8)[:3] * 8
    truth = np.repeat(np.arange(3), 40)
    X = (centres[truth] + rng.normal(size=(truth.size, 8))).astype(np.float32)
    texts = [["apple pear plum", "train rail track", "violin cello bow"][t] + f" note {i}" for i, t in enumerate(truth)]
    emb = EmbeddingSet(X, None, {"text": texts, "kind": [f"k{t}" for t in truth]})
    return emb.to_parquet(tmp_path / "topics.parquet")


def test_cluster_writes_labels_and_json(tmp_path, rng):
    path = _topic_parquet(tmp_path, rng)
    out = tmp_path / "clusters.parquet"
    result = _run("cluster", path, "--k", "auto", "--k-values", "2,3,4", "--labels", "kind", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["k"] == 3 and document["k_selection"]["best_k"] == 3 and document["output"] == str(out)
    assert document["metrics"]["external"]["accuracy"] == pytest.approx(1.0)
    table = pq.read_table(out)
    assert table.column_names == ["id", "cluster", "confidence"] and table.num_rows == 120
    human = _run("cluster", path, "--k", "3", "--method", "gmm", "-o", tmp_path / "soft.parquet", "--proba")
    assert human.exit_code == 0, human.output
    assert "3 clusters by gmm" in human.stdout
    assert "probabilities" in pq.read_table(tmp_path / "soft.parquet").column_names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "lots"], "positive integer or 'auto'"),
        (["--method", "spectral"], "method must be one of"),
        (["--k-values", "2,x"], "comma-separated integers"),
        (["--proba"], "--proba adds a column to the --output file"),
        (["--k", "3", "--proba", "-o", "x.parquet"], "no cluster probabilities"),
        (["--k", "3", "--param", "n_init"], "expected KEY=VALUE"),
        (["--k", "3", "--param", "codes=sp2ot"], "method 'kmeans' has no parameter 'codes'; it takes: "),
        (["--k", "3", "--param", "n_init=0"], "n_init must be an integer >= 1"),
        (["--k", "3", "--stream", "--param", "n_init=2"], "--param sets the estimator of an in-memory run"),
    ],
)
def test_cluster_bad_requests_exit_2(tmp_path, rng, args, message):
    result = _run("cluster", _topic_parquet(tmp_path, rng), *args)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_cluster_passes_parameters_to_the_estimator(tmp_path, rng):
    path = _topic_parquet(tmp_path, rng)
    args = ["--method", "swav", "--k", "3", "--metric", "l2", "--labels", "kind", "--json", "--seed", "0"]
    params = ["--param", "codes=sp2ot", "--param", "epochs=8", "--param", "hidden_dim=32", "--param", "epsilon=none"]
    result = _run("cluster", path, *args, *params, "--param", "learning_rate=1e-2")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    given = {"codes": "sp2ot", "epochs": 8, "hidden_dim": 32, "epsilon": None, "learning_rate": 0.01}
    assert {key: document["params"][key] for key in given} == given
    assert document["metrics"]["external"]["accuracy"] == pytest.approx(1.0)


def test_cluster_streams_a_file(tmp_path, rng):
    path = _topic_parquet(tmp_path, rng)
    out = tmp_path / "streamed.parquet"
    result = _run("cluster", path, "--stream", "--method", "minibatch", "--k", "3", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["streamed"] and document["n"] == 120 and sorted(document["sizes"]) == [40, 40, 40]
    assert pq.read_table(out).num_rows == 120
    refused = _run("cluster", path, "--stream", "--k", "auto")
    assert refused.exit_code == 2 and "--stream runs mini-batch k-means with a fixed --k" in refused.stderr


@pytest.mark.parametrize("method", ["kmeans", "hierarchical"])
def test_cluster_runs_on_shards_and_writes_labels_per_shard(tmp_path, rng, method):
    path = tmp_path / "groups.parquet"
    pq.write_table(pq.read_table(_topic_parquet(tmp_path, rng)), path, row_group_size=40)
    out = tmp_path / "labels"
    args = ("cluster", path, "--backend", "local", "--shard-rows", 50, "--method", method, "--k", 3, "-o", out)
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["sharded"] and document["n_shards"] == 3 and sorted(document["sizes"]) == [40, 40, 40]
    table = pq.read_table(out)
    assert table.num_rows == 120 and table.column("id").to_pylist() == pq.read_table(path).column("id").to_pylist()
    assert len(set(table.column("cluster").to_pylist())) == 3
    again = _run(*args)  # an earlier output is replaced
    assert again.exit_code == 0 and "3 shards (local)" in again.stdout and "labels written to" in again.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "local", "--k", "auto"], "--backend runs kmeans or hierarchical with a fixed --k"),
        (["--backend", "local", "--method", "gmm", "--k", "3"], "--backend runs kmeans or hierarchical"),
        (["--backend", "local", "--stream", "--k", "3"], "give --stream or --backend, not both"),
        (["--memory-budget", "1GB", "--k", "3"], "need --backend local or ray"),
        (["--backend", "local", "--k", "3", "--memory-budget", "100"], "cannot hold two shards"),
        (["--backend", "local", "--k", "3", "--memory-budget", "lots"], "is not a size"),
        (["--backend", "spark", "--k", "3"], "backend must be one of"),
    ],
)
def test_cluster_on_shards_refuses_bad_requests(tmp_path, rng, args, message):
    result = _run("cluster", _topic_parquet(tmp_path, rng), *args)
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_knn_on_shards_writes_the_graph_per_shard(tmp_path, rng, method):
    X = rng.normal(size=(400, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "graph"
    args = ("knn", tmp_path / "x.npy", "-k", 5, "--metric", "l2", "--method", method, "--backend", "local")
    result = _run(*args, "--shard-rows", 150, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n_shards"] == 3 and document["method"] == method and len(document["files"]) == 3
    table = pq.read_table(out)
    assert table.num_rows == 400 and table.column("id").to_pylist() == list(range(400))
    assert not any(name.startswith(".graph.indexes") for name in (p.name for p in tmp_path.iterdir()))
    missing = _run(*args)
    assert missing.exit_code == 2 and "give the --output directory" in missing.stderr
