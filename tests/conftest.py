"""Seeded fixtures shared by the test suite, including degenerate data."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from embedlab import EmbeddingSet

SEED = 1234


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


@pytest.fixture
def vectors(rng: np.random.Generator) -> np.ndarray:
    """300 x 16 float32 Gaussian vectors."""
    return rng.normal(size=(300, 16)).astype(np.float32)


@pytest.fixture
def labelled_set(vectors: np.ndarray) -> EmbeddingSet:
    ids = np.array([f"doc-{i}" for i in range(len(vectors))], dtype=object)
    labels = np.arange(len(vectors)) % 3
    return EmbeddingSet(vectors, ids, {"label": labels, "text": [f"text {i}" for i in range(len(vectors))]})


@pytest.fixture
def degenerate() -> dict[str, np.ndarray]:
    """Inputs that break naive code: a zero row, repeated vectors, a constant dimension, one repeated vector."""
    base = np.random.default_rng(SEED).normal(size=(20, 8)).astype(np.float32)
    with_zero = base.copy()
    with_zero[3] = 0.0
    with_dupes = base.copy()
    with_dupes[5] = with_dupes[6] = with_dupes[7]
    constant_dim = base.copy()
    constant_dim[:, 2] = 1.0
    return {
        "zero_row": with_zero,
        "duplicates": with_dupes,
        "constant_dim": constant_dim,
        "one_vector_repeated": np.tile(base[:1], (10, 1)),
    }


def write_all_formats(emb: EmbeddingSet, folder: Path) -> dict[str, Path]:
    """The same set in every format embedlab reads (npy holds vectors only)."""
    paths = {}
    paths["parquet"] = emb.to_parquet(folder / "set.parquet")
    paths["npy"] = folder / "set.npy"
    np.save(paths["npy"], emb.vectors)
    paths["npz"] = folder / "set.npz"
    columns = {c: emb.column(c) for c in emb.columns if emb.column(c).dtype != object}
    np.savez(paths["npz"], embeddings=emb.vectors, ids=emb.ids.astype(str), **columns)
    paths["feather"] = folder / "set.feather"
    feather.write_feather(emb.to_table(), paths["feather"])
    paths["lance"] = folder / "set.lance"
    pytest.importorskip("lance").write_dataset(emb.to_table(), str(paths["lance"]))
    return paths


@pytest.fixture
def write_formats(tmp_path: Path):
    return lambda emb: write_all_formats(emb, tmp_path)


@pytest.fixture
def table_with(tmp_path: Path):
    """Write an Arrow table to Parquet and return the path."""

    def write(columns: dict, name: str = "t.parquet") -> Path:
        import pyarrow.parquet as pq

        path = tmp_path / name
        pq.write_table(pa.table(columns), path)
        return path

    return write


class HashEncoder:
    """A deterministic stand-in for a sentence-transformers model: a text's vector depends on its bytes only."""

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False):
        self.calls += 1
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def hash_encoder(monkeypatch) -> HashEncoder:
    encoder = HashEncoder()
    monkeypatch.setattr("embedlab.embed.pipeline.load_encoder", lambda model=None: encoder)
    return encoder
