"""The multi-vector index folder: built in shards it equals one built whole; ids repeated across the file are
refused and nothing is written."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab import EmbeddingDataError
from embedlab.multivector import MultiVectorIndex, MuveraEncoder, build_multivector_index
from tests.multivector.test_search import _planted


def test_an_index_built_in_shards_equals_one_built_whole(tmp_path):
    docs, queries, _ = _planted(90, 8)
    pq.write_table(docs.to_table(), tmp_path / "docs.parquet", row_group_size=10)
    encoder = dict(k_sim=3, d_proj=8, repetitions=4, random_state=5)
    whole = build_multivector_index(
        tmp_path / "docs.parquet", tmp_path / "whole", encoder=MuveraEncoder(**encoder), shard_rows=1000, candidates=90
    )
    sharded = build_multivector_index(
        tmp_path / "docs.parquet",
        tmp_path / "sharded",
        encoder=MuveraEncoder(**encoder),
        shard_rows=25,
        batch_rows=7,
        candidates=90,
    )
    assert len(list((tmp_path / "sharded" / "encodings").iterdir())) == 5  # row groups of 10: parts of 20 (and 10)
    a, b = MultiVectorIndex.open(tmp_path / "whole"), MultiVectorIndex.open(tmp_path / "sharded")
    np.testing.assert_allclose(
        a.searcher.searcher.search(np.eye(256)[:2], 5).distances,
        b.searcher.searcher.search(np.eye(256)[:2], 5).distances,
        rtol=1e-6,
    )
    np.testing.assert_array_equal(a.search(queries, 4).indices, b.search(queries, 4).indices)
    assert b.manifest["n_documents"] == 90 and sharded["n_tokens"] == docs.n_tokens
    assert whole["encoding_dim"] == 4 * 8 * 8
    pq.write_table(pa.concat_tables([docs.to_table(), docs.to_table()]), tmp_path / "twice.parquet", row_group_size=50)
    with pytest.raises(EmbeddingDataError, match="repeat an earlier row's id"):
        build_multivector_index(tmp_path / "twice.parquet", tmp_path / "twice", shard_rows=50)
    assert not (tmp_path / "twice").exists()
