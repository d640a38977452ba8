from __future__ import annotations

import json

import numpy as np
import pytest

import embedlab
from embedlab.embed import embed_file
from embedlab.embed.pipeline import shard_dir


def _write_jsonl(path, n):
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"s{i}", "text": f"sentence number {i}", "label": i % 3}) + "\n")
    return path


def test_output_has_ids_texts_vectors_and_columns(tmp_path, hash_encoder):
    src = _write_jsonl(tmp_path / "in.jsonl", 10)
    report = embed_file(src, tmp_path / "out.parquet", shard_size=4)
    emb = embedlab.load(tmp_path / "out.parquet")
    assert (report.n, report.dim, report.shards, report.shards_reused) == (10, 8, 3, 0)
    assert emb.ids.tolist() == [f"s{i}" for i in range(10)]
    assert emb.columns == ["text", "label"]
    assert emb.model == report.model
    assert not shard_dir(tmp_path / "out.parquet").exists()


def test_interrupted_run_resumes_from_finished_shards(tmp_path, hash_encoder, monkeypatch):
    src = _write_jsonl(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.parquet"
    original = hash_encoder.encode

    def crash_on_third_shard(texts, **kwargs):
        if hash_encoder.calls == 2:
            raise KeyboardInterrupt
        return original(texts, **kwargs)

    monkeypatch.setattr(hash_encoder, "encode", crash_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        embed_file(src, out, shard_size=4)
    assert not out.exists()
    assert sorted(p.name for p in shard_dir(out).iterdir()) == [
        "manifest.json",
        "shard-00000.parquet",
        "shard-00001.parquet",
    ]

    monkeypatch.setattr(hash_encoder, "encode", original)
    report = embed_file(src, out, shard_size=4)
    assert report.shards_reused == 2
    embed_file(src, tmp_path / "clean.parquet", shard_size=4)
    np.testing.assert_array_equal(embedlab.load(out).vectors, embedlab.load(tmp_path / "clean.parquet").vectors)


def test_changed_settings_start_over(tmp_path, hash_encoder):
    src = _write_jsonl(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out.parquet"
    folder = shard_dir(out)
    folder.mkdir()
    (folder / "manifest.json").write_text('{"other": "job"}')
    (folder / "shard-00000.parquet").write_text("stale")
    report = embed_file(src, out, shard_size=4)
    assert report.shards_reused == 0 and len(embedlab.load(out)) == 6


def test_invalid_texts_fail_or_are_dropped_and_reported(tmp_path, hash_encoder):
    src = tmp_path / "in.txt"
    src.write_text("one\n\ntwo\n")
    with pytest.raises(embedlab.EmbeddingDataError, match="empty or missing text"):
        embed_file(src, tmp_path / "o.parquet")
    report = embed_file(src, tmp_path / "o.parquet", on_invalid="drop")
    assert report.n == 2 and report.validation["dropped"][0]["ids"] == [1]


def test_real_offline_model_gives_meaningful_unit_vectors(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("a small cat\na kitten\na red sports car\n")
    report = embed_file(src, tmp_path / "o.parquet")
    emb = embedlab.load(tmp_path / "o.parquet")
    assert report.dim == 384 and report.model == "sentence-transformers/all-MiniLM-L6-v2"
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    sims = emb.vectors @ emb.vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_model_must_be_a_folder(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    with pytest.raises(embedlab.ConfigurationError, match="not a folder"):
        embed_file(src, tmp_path / "o.parquet", model=tmp_path / "missing-model")


def test_the_shards_go_through_the_backend_one_model_load_for_all(tmp_path, hash_encoder, monkeypatch):
    from embedlab.embed import pipeline
    from embedlab.scale import LocalBackend

    src = _write_jsonl(tmp_path / "in.jsonl", 10)
    loads = []
    monkeypatch.setattr(pipeline, "load_encoder", lambda model=None: loads.append(model) or hash_encoder)
    seen = []

    class Recording(LocalBackend):
        def _run(self, work, items, args, advance):
            seen.extend(number for number, _ in items)
            return super()._run(work, items, args, advance)

    report = embed_file(src, tmp_path / "out.parquet", shard_size=4, backend=Recording())
    expected = embed_file(src, tmp_path / "plain.parquet", shard_size=4)
    assert seen == [0, 1, 2] and report.shards == 3
    assert len(loads) == 2  # once for each call, not once a shard
    np.testing.assert_array_equal(
        embedlab.load(tmp_path / "out.parquet").vectors, embedlab.load(tmp_path / "plain.parquet").vectors
    )
    assert embedlab.load(tmp_path / "out.parquet").ids.tolist() == [f"s{i}" for i in range(10)]
    assert expected.n == 10 and not pipeline._LOADED  # the model is not kept after the call


def test_a_folder_without_a_model_is_named(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(embedlab.ConfigurationError, match="photos' is not a sentence-transformers model"):
        embed_file(src, tmp_path / "o.parquet", model=folder)
    assert not (tmp_path / "o.parquet").exists()


def test_a_broken_model_folder_is_a_configuration_error(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(embedlab.ConfigurationError, match="could not be loaded as a sentence-transformers model"):
        embed_file(src, tmp_path / "o.parquet", model=folder)
