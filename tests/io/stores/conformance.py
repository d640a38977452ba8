"""What every store must do, run by each store's test module against the real store it starts.

Each function takes a URI factory ``make(name) -> str`` (a new collection of that name in the store the
module started) and ``tmp_path``. The store's own module adds what only it has (its id rules, its limits).
"""

from __future__ import annotations

import importlib
import json
import os
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embedlab
from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.io.readers import iter_batches
from embedlab.io.shards import gather_rows, open_shards, read_ids
from embedlab.io.stores import (
    StoreError,
    StoreSource,
    export_store,
    import_store,
    open_store,
    write_back,
)

DIM = 24
N = 3000


def require(module: str, extra: str):
    """Import a store's client, or skip with the install command (fail where ``EMBEDLAB_REQUIRE_STORES`` is
    set, as in CI)."""
    install = f'pip install "embedlab[{extra}]"'
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("EMBEDLAB_REQUIRE_STORES"):
            pytest.fail(f"the {extra} store tests are required here but {module} is not installed; {install}.")
        pytest.skip(f"{extra} store tests skipped: {module} is not installed; to run them, {install}.")


def dataset(tmp_path, *, n: int = N, dim: int = DIM, string_ids: bool = False, seed: int = 0, name: str = "x"):
    """A Parquet file of ``n`` rows with ids, a label, a text and a score; returns its path and the set."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    ids = np.array([f"doc-{i}" for i in range(n)], dtype=object) if string_ids else np.arange(n, dtype=np.int64) * 7
    meta = {
        "label": np.arange(n) % 5,
        "text": [f"text {i}" for i in range(n)],
        "score": rng.random(n),
    }
    emb = embedlab.EmbeddingSet(X, ids, meta)
    path = tmp_path / f"{name}.parquet"
    emb.to_parquet(path)
    return path, emb


def _by_id(emb) -> dict:
    return {key: i for i, key in enumerate(emb.ids.tolist())}


def assert_same_rows(got, expected, *, unit: bool = False) -> None:
    """The same ids, vectors (unit-normalised where the store normalises) and payload, in any order."""
    assert sorted(map(str, got.ids.tolist())) == sorted(map(str, expected.ids.tolist()))
    where = _by_id(got)
    order = [where[key] if key in where else where[str(key)] for key in expected.ids.tolist()]
    vectors, wanted = got.vectors[order], expected.vectors
    if unit:
        wanted = wanted / np.linalg.norm(wanted, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, wanted, rtol=1e-5, atol=1e-6)
    for column in ("label", "text"):
        assert [got.metadata.column(column)[i].as_py() for i in order] == expected.metadata.column(column).to_pylist()
    np.testing.assert_allclose(
        np.asarray(got.metadata.column("score").to_pylist())[order], expected.metadata.column("score").to_numpy()
    )


def check_round_trip(make, tmp_path, *, unit: bool = False, string_ids: bool = False) -> None:
    """Import a file, export it again, and read the store directly: the same rows every way."""
    path, emb = dataset(tmp_path, string_ids=string_ids)
    uri = make("roundtrip")
    result = import_store(path, uri, batch_size=700, checkpoint=tmp_path / "ckpt.json")
    assert result.verification.passed and result.written == N and result.resumed_from == 0
    assert not (tmp_path / "ckpt.json").exists()
    exported = export_store(uri, tmp_path / "out.parquet", batch_size=512)
    assert exported.n_rows == N and exported.verification.passed
    assert {"label", "text", "score"} <= set(exported.metadata_columns)
    assert_same_rows(embedlab.load(tmp_path / "out.parquet"), emb, unit=unit)
    assert_same_rows(embedlab.load(uri), emb, unit=unit)
    batches = list(iter_batches(uri, 1000))
    assert sum(len(b) for b in batches) == N and max(len(b) for b in batches) <= 1000


def check_modes(make, tmp_path) -> None:
    """create refuses an existing collection, append adds (same dimension only), overwrite replaces."""
    path, _ = dataset(tmp_path, n=500)
    more, _ = dataset(tmp_path, n=200, seed=1, name="more")
    uri = make("modes")
    import_store(path, uri, checkpoint=tmp_path / "c1.json")
    with pytest.raises(StoreError, match="exists"):
        import_store(path, uri, checkpoint=tmp_path / "c2.json")
    shifted = embedlab.load(more)
    shifted = embedlab.EmbeddingSet(shifted.vectors, shifted.ids + 10_000_000, shifted.metadata)
    shifted.to_parquet(tmp_path / "shifted.parquet")
    result = import_store(tmp_path / "shifted.parquet", uri, mode="append", checkpoint=tmp_path / "c3.json")
    assert result.verification.passed and result.verification.rows == 700
    wide, _ = dataset(tmp_path, n=50, dim=DIM + 1, name="wide")
    with pytest.raises(StoreError, match="dimension"):
        import_store(wide, uri, mode="append", checkpoint=tmp_path / "c4.json")
    replaced = import_store(more, uri, mode="overwrite", checkpoint=tmp_path / "c5.json")
    assert replaced.verification.rows == 200
    with pytest.raises(StoreError):
        import_store(path, make("absent"), mode="append", checkpoint=tmp_path / "c6.json")


def check_write_back(make, tmp_path) -> None:
    """Labels, flags and weights set by id, vectors untouched; bad tables refused before anything is written."""
    path, emb = dataset(tmp_path, n=800)
    uri = make("writeback")
    import_store(path, uri, checkpoint=tmp_path / "c.json")
    labels = pa.table({"id": emb.ids, "cluster": np.arange(800) % 3, "duplicate": np.arange(800) % 10 == 0})
    result = write_back(uri, labels, batch_size=300)
    assert result.updated == 800 and result.vectors_unchanged and result.n_rows == 800
    chosen = pa.table({"id": emb.ids[::4], "weight": np.full(200, 4.0)})
    write_back(uri, chosen)
    got = embedlab.load(uri)
    where = _by_id(got)
    rows = [where[key] for key in emb.ids.tolist()]
    assert [got.metadata.column("cluster")[i].as_py() for i in rows] == (np.arange(800) % 3).tolist()
    assert [got.metadata.column("duplicate")[i].as_py() for i in rows] == (np.arange(800) % 10 == 0).tolist()
    weights = [got.metadata.column("weight")[i].as_py() for i in rows]
    assert weights[::4] == [4.0] * 200 and all(w is None for i, w in enumerate(weights) if i % 4)
    unit = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(
        got.vectors[rows] / np.linalg.norm(got.vectors[rows], axis=1, keepdims=True), unit, atol=1e-6
    )
    assert [got.metadata.column("label")[i].as_py() for i in rows] == emb.metadata.column("label").to_pylist()
    with pytest.raises(EmbeddingDataError, match="repeat"):
        write_back(uri, pa.table({"id": np.concatenate([emb.ids[:3], emb.ids[:1]]), "cluster": [1, 2, 3, 4]}))
    absent = np.array([123456789], dtype=emb.ids.dtype) if emb.ids.dtype != object else np.array(["nope"], object)
    with pytest.raises(EmbeddingDataError, match="not in"):
        write_back(uri, pa.table({"id": np.concatenate([emb.ids[:2], absent]), "cluster": [9, 9, 9]}))
    assert embedlab.load(uri).metadata.column("cluster").to_pylist().count(9) == 0


class _Interrupt:
    """A progress reporter that stops the run (as Ctrl-C would) after ``after`` advances."""

    def __init__(self, after: int) -> None:
        self.after = after

    @contextmanager
    def task(self, description, total):
        calls = [0]

        def advance(n):
            if n:
                calls[0] += 1
                if calls[0] > self.after:
                    raise KeyboardInterrupt

        yield advance


def check_resume(make, tmp_path) -> None:
    """An import stopped after three batches resumes from its checkpoint, rewrites the batch its checkpoint may
    not have recorded, and writes no row twice."""
    path, _emb = dataset(tmp_path, n=1000)
    uri, checkpoint = make("resume"), tmp_path / "resume.json"
    with pytest.raises(KeyboardInterrupt):
        import_store(path, uri, batch_size=300, checkpoint=checkpoint, progress=_Interrupt(2))
    assert checkpoint.exists()
    with open_store(uri) as store:
        assert store.count() == 900
    # as if the process died after the third batch was written but before its checkpoint was
    state = json.loads(checkpoint.read_text())
    assert state["rows_done"] == 900
    checkpoint.write_text(json.dumps({**state, "rows_done": 600}))
    result = import_store(path, uri, batch_size=999, checkpoint=checkpoint)
    assert result.resumed_from == 600 and result.written == 400 and result.batch_size == 300
    assert result.verification.passed and result.verification.rows == 1000
    assert not checkpoint.exists()
    assert len(set(embedlab.load(uri).ids.tolist())) == 1000


def check_bad_inputs(make, tmp_path) -> None:
    """A missing collection is named; a collection that grows during a read is refused."""
    uri = make("missing")
    with pytest.raises(StoreError, match="missing|no collection|no table|not exist|does not exist"):
        export_store(uri, tmp_path / "none.parquet")
    assert not (tmp_path / "none.parquet").exists()
    with pytest.raises(StoreError):
        embedlab.load(uri)
    path, _emb = dataset(tmp_path, n=600)
    uri = make("growing")
    import_store(path, uri, checkpoint=tmp_path / "g.json")
    with open_store(uri) as store:
        source = StoreSource(store)
        chunks = source.iter_chunks(200)
        next(chunks)
        extra = np.array([999_999_999], dtype=np.int64)
        store.write(extra, np.ones((1, DIM), np.float32), None, upsert=False)
        with pytest.raises(StoreError, match="changed while it was read"):
            list(chunks)


def check_export_of_empty_payload(make, tmp_path) -> None:
    """A .npy file (no ids, no payload) imports with row numbers as ids and exports back exactly."""
    X = np.random.default_rng(3).normal(size=(300, DIM)).astype(np.float32)
    np.save(tmp_path / "plain.npy", X)
    uri = make("plain")
    import_store(tmp_path / "plain.npy", uri, metric="l2", checkpoint=tmp_path / "p.json")
    export_store(uri, tmp_path / "plain.parquet")
    table = pq.read_table(tmp_path / "plain.parquet")
    order = np.argsort(table.column("id").to_numpy())
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))[order]
    np.testing.assert_array_equal(got, X)


def check_row_ranges(make, tmp_path, *, string_ids: bool = False) -> None:
    """Scans of row ranges give the rows of the full scan's order there, and a collection cut into shards (what
    ``--memory-budget`` and ``--backend ray`` read) covers it once, in that order."""
    path, emb = dataset(tmp_path, n=1000, string_ids=string_ids, name="ranges")
    uri = make("ranges")
    import_store(path, uri, batch_size=250, checkpoint=tmp_path / "r.json")
    with open_store(uri) as store:
        order = np.concatenate([b.ids for b in store.scan(128, with_vectors=False, with_metadata=False)])
        assert sorted(order.tolist()) == sorted(emb.ids.tolist())
        for start, stop in [(0, 0), (0, 1), (5, 300), (299, 301), (990, None), (990, 5000), (1000, None), (1500, 9)]:
            batches = list(store.scan(100, start=start, stop=stop, with_metadata=False))
            got = np.concatenate([b.ids for b in batches]) if batches else np.empty(0, order.dtype)
            assert got.tolist() == order[start:stop].tolist(), (start, stop)
            assert all(len(b) <= 100 for b in batches)
            for batch in batches:
                assert batch.vectors.shape == (len(batch), DIM)
    sharded = open_shards(uri, shard_rows=300)
    assert [shard.n_rows for shard in sharded.shards] == [300, 300, 300, 100]
    assert read_ids(sharded).tolist() == order.tolist()
    where = _by_id(emb)
    positions = np.array([999, 0, 301, 42])
    expected = emb.vectors[[where[key] for key in order[positions].tolist()]]
    got = gather_rows(sharded, positions)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731 - cosine stores may normalise
    np.testing.assert_allclose(unit(got), unit(expected), rtol=1e-5, atol=1e-6)
    budget = open_shards(uri, memory_budget=2 * 4 * DIM * 400)
    assert len(budget.shards) == 3 and max(shard.n_rows for shard in budget.shards) <= 400


def check_export_resume(make, tmp_path) -> None:
    """An export stopped after three batches leaves no output, resumes from its work folder reading only the rows
    after its last whole batch, and gives the file an uninterrupted export gives; a collection changed in between
    is refused."""
    path, emb = dataset(tmp_path, n=1000, name="exp")
    uri, out = make("export_resume"), tmp_path / "exp-out.parquet"
    import_store(path, uri, checkpoint=tmp_path / "e.json")
    with pytest.raises(KeyboardInterrupt):
        export_store(uri, out, batch_size=300, progress=_Interrupt(2))
    parts = tmp_path / "exp-out.parquet.parts"
    assert not out.exists() and json.loads((parts / "checkpoint.json").read_text())["rows_done"] == 900
    # as if the machine lost power before the third kept batch reached the disk
    (parts / "batch-000002.arrow").write_bytes(b"the start of a file")
    result = export_store(uri, out, batch_size=77)
    assert result.resumed_from == 600 and result.n_rows == 1000 and result.verification.passed
    assert not parts.exists()
    assert pq.ParquetFile(out).metadata.num_row_groups == 4  # the kept batches of 300, then 100
    assert_same_rows(embedlab.load(out), emb, unit=not _keeps_norms(uri))
    with pytest.raises(KeyboardInterrupt):
        export_store(uri, out, batch_size=400, progress=_Interrupt(1))
    with open_store(uri) as store:
        store.write(np.array([123_456_789]), np.ones((1, DIM), np.float32), None, upsert=False)
    with pytest.raises(ConfigurationError, match="restart"):
        export_store(uri, out)
    assert export_store(uri, out, restart=True).n_rows == 1001


def _keeps_norms(uri: str) -> bool:
    with open_store(uri) as store:
        return store.keeps_norms


def check_append_keeps_payload(make, tmp_path) -> None:
    """Appending rows with a payload field the collection lacks never drops it: a table (fixed columns) refuses
    the append and names the field, a schemaless store keeps it."""
    path, _ = dataset(tmp_path, n=100, name="base")
    uri = make("payload")
    import_store(path, uri, checkpoint=tmp_path / "p1.json")
    rng = np.random.default_rng(7)
    extra = embedlab.EmbeddingSet(
        rng.normal(size=(20, DIM)), np.arange(20) + 50_000, {"label": np.arange(20) % 5, "colour": ["red"] * 20}
    )
    extra.to_parquet(tmp_path / "extra.parquet")
    with open_store(uri) as store:
        fixed = store.fixed_columns
    if fixed:
        with pytest.raises(StoreError, match="'colour'.*drop them"):
            import_store(tmp_path / "extra.parquet", uri, mode="append", checkpoint=tmp_path / "p2.json")
        with open_store(uri) as store:
            assert store.count() == 100
    else:
        import_store(tmp_path / "extra.parquet", uri, mode="append", checkpoint=tmp_path / "p2.json")
        got = embedlab.load(uri)
        colours = dict(zip(got.ids.tolist(), got.metadata.column("colour").to_pylist(), strict=True))
        assert colours[50_003] == "red"


class Conformance:
    """The checks above as tests: a store's module subclasses this (``class TestConformance(c.Conformance)``) beside
    its ``make`` fixture, and sets ``unit`` when the store keeps cosine vectors unit-normalised."""

    unit = False

    def test_round_trip(self, make, tmp_path):
        check_round_trip(make, tmp_path, unit=self.unit)

    def test_string_ids(self, make, tmp_path):
        check_round_trip(make, tmp_path, unit=self.unit, string_ids=True)

    def test_modes(self, make, tmp_path):
        check_modes(make, tmp_path)

    def test_write_back(self, make, tmp_path):
        check_write_back(make, tmp_path)

    def test_resume(self, make, tmp_path):
        check_resume(make, tmp_path)

    def test_bad_inputs(self, make, tmp_path):
        check_bad_inputs(make, tmp_path)

    def test_row_ranges(self, make, tmp_path):
        check_row_ranges(make, tmp_path)

    def test_row_ranges_of_string_ids(self, make, tmp_path):
        check_row_ranges(make, tmp_path, string_ids=True)

    def test_export_resume(self, make, tmp_path):
        check_export_resume(make, tmp_path)

    def test_plain_npy(self, make, tmp_path):
        check_export_of_empty_payload(make, tmp_path)

    def test_append_keeps_payload(self, make, tmp_path):
        check_append_keeps_payload(make, tmp_path)
