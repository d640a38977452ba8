"""What the transfer layer refuses whatever the store (run on LanceDB): a stale checkpoint, a source that is its
own destination, write-back tables without ids or columns, an export that would hide repeated ids."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

import embedlab
from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.io.stores import StoreError, export_store, import_store, write_back
from tests.io.stores import conformance as c

c.require("lancedb", "lancedb")


def test_a_checkpoint_of_another_import_is_refused_then_discarded(tmp_path):
    path, _ = c.dataset(tmp_path, n=300)
    checkpoint = tmp_path / "k.json"
    checkpoint.write_text(json.dumps({"source": "other.parquet", "uri": "x", "fingerprint": [1], "rows_done": 5}))
    uri = f"lancedb://{tmp_path}/db/t"
    with pytest.raises(ConfigurationError, match="restart"):
        import_store(path, uri, checkpoint=checkpoint)
    result = import_store(path, uri, checkpoint=checkpoint, restart=True)
    assert result.resumed_from == 0 and result.verification.passed and not checkpoint.exists()


def test_a_changed_source_invalidates_its_checkpoint(tmp_path):
    path, emb = c.dataset(tmp_path, n=300)
    uri, checkpoint = f"lancedb://{tmp_path}/db/t", tmp_path / "k.json"
    with pytest.raises(KeyboardInterrupt):
        import_store(path, uri, batch_size=100, checkpoint=checkpoint, progress=c._Interrupt(1))
    embedlab.EmbeddingSet(emb.vectors[:250], emb.ids[:250]).to_parquet(path)
    with pytest.raises(ConfigurationError, match="changed"):
        import_store(path, uri, checkpoint=checkpoint)


def test_a_collection_is_never_imported_into_itself(tmp_path):
    path, _ = c.dataset(tmp_path, n=100)
    uri = f"lancedb://{tmp_path}/db/t"
    import_store(path, uri, checkpoint=tmp_path / "a.json")
    with pytest.raises(ConfigurationError, match="same collection"):
        import_store(uri, uri, mode="append", checkpoint=tmp_path / "b.json")
    copy = import_store(uri, f"lancedb://{tmp_path}/db/copy", checkpoint=tmp_path / "c.json")
    assert copy.verification.passed and copy.n_rows == 100


def test_invalid_source_rows_stop_the_import_naming_them(tmp_path):
    X = np.ones((50, 4), np.float32)
    X[7] = np.nan
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(EmbeddingDataError, match="NaN"):
        import_store(tmp_path / "bad.npy", f"lancedb://{tmp_path}/db/bad", checkpoint=tmp_path / "k.json")


def test_write_back_refuses_tables_without_what_it_needs(tmp_path):
    path, emb = c.dataset(tmp_path, n=100)
    uri = f"lancedb://{tmp_path}/db/t"
    import_store(path, uri, checkpoint=tmp_path / "k.json")
    with pytest.raises(ConfigurationError, match="no id column"):
        write_back(uri, pa.table({"key": emb.ids, "cluster": np.zeros(100)}))
    with pytest.raises(ConfigurationError, match="no column to write"):
        write_back(uri, pa.table({"id": emb.ids}))
    with pytest.raises(ConfigurationError, match="vector or id column"):
        write_back(uri, pa.table({"id": emb.ids, "embedding": np.zeros(100)}))
    with pytest.raises(EmbeddingDataError, match="integers"):
        write_back(uri, pa.table({"id": ["a"] * 100, "cluster": np.zeros(100)}))


def test_an_export_refuses_repeated_ids(tmp_path):
    import lancedb

    table = pa.table({"id": [1, 1, 2], "embedding": pa.array([[1.0, 0.0]] * 3, type=pa.list_(pa.float32(), 2))})
    lancedb.connect(str(tmp_path / "db")).create_table("dup", data=table)
    with pytest.raises(StoreError, match="repeated ids"):
        export_store(f"lancedb://{tmp_path}/db/dup", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
