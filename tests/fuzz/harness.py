"""The reader fuzz harness: a valid input of every format embedlab reads, the ways an input is damaged, and the
check that reading it either succeeds or stops with embedlab's own error.

An input is made from ``(format, seed)`` alone, so a crash is replayed by :func:`replay`. Each format has a
valid seed input (built once per folder) and a reader (the public call a user makes, forced to materialise
every value). Damage is byte-level on one of the input's files (random bytes, truncation, bit flips, overwritten
ranges, spliced copies, a deleted or foreign file) or structural: valid containers with hostile content (wrong
dtypes, shapes and nested types, huge declared sizes, duplicate columns, non-UTF-8 text, JSON with values of the
wrong type, paths that leave the folder).

A crash is any exception that is not an :class:`~embedlab.EmbedlabError` with a message, a ``RuntimeWarning``
(printed to the user as noise), a read that runs past ``time_limit`` seconds, or one whose peak memory grows by
more than ``memory_limit`` bytes. ``tests/fuzz/test_fuzz_readers.py`` runs a short campaign in ``make test``;
``benchmarks/fuzz_readers.py`` a long one with counts per format.
"""

from __future__ import annotations

import copy
import gzip
import json
import queue
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from embedlab import EmbeddingSet, EmbedlabError, describe, iter_batches, load
from embedlab.io.text_sources import read_texts

DIM, ROWS = 8, 24


@dataclass(frozen=True)
class Format:
    """A format: how its valid seed input is written, how it is read back, and its structural damage."""

    name: str
    build: Callable[[Path], Path]
    read: Callable[[Path], object]
    hostile: Callable[[Path, random.Random], None] | None = None


@dataclass(frozen=True)
class Outcome:
    """What reading one input did: ``"read"``, ``"refused"`` (embedlab's error) or ``"crash"``."""

    format: str
    seed: int
    kind: str
    damage: str
    detail: str = ""

    @property
    def signature(self) -> str:
        """The crash's exception type and innermost embedlab frame, to count distinct crashes."""
        return self.detail.splitlines()[0] if self.detail else ""


# -- valid seed inputs --------------------------------------------------------------------------------------------


def _set(n: int = ROWS, dim: int = DIM, seed: int = 0) -> EmbeddingSet:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    labels = np.array([f"c{i % 3}" for i in range(n)])
    return EmbeddingSet(vectors, ids=[f"r{i}" for i in range(n)], metadata={"label": labels})


def _build_npy(folder: Path) -> Path:
    np.save(folder / "set.npy", _set().vectors)
    return folder / "set.npy"


def _build_npz(folder: Path) -> Path:
    emb = _set()
    np.savez(folder / "set.npz", embeddings=emb.vectors, ids=emb.ids.astype(str), label=emb.column("label"))
    return folder / "set.npz"


def _build_parquet(folder: Path) -> Path:
    return _set().to_parquet(folder / "set.parquet")


def _build_parquet_folder(folder: Path) -> Path:
    emb = _set(30)
    for part in range(3):
        emb.take(np.arange(part * 10, part * 10 + 10)).to_parquet(folder / "parts" / f"part-{part}.parquet")
    return folder / "parts"


def _build_feather(folder: Path) -> Path:
    feather.write_feather(_set().to_table(), folder / "set.feather")
    return folder / "set.feather"


def _build_lance(folder: Path) -> Path:
    import lance

    lance.write_dataset(_set().to_table(), str(folder / "set.lance"))
    return folder / "set.lance"


_TEXTS = ["a short text", "another one, with a comma", "ünïcödé text", "the last text"]


def _build_txt(folder: Path) -> Path:
    (folder / "texts.txt").write_text("\n".join(_TEXTS) + "\n", encoding="utf-8")
    return folder / "texts.txt"


def _build_jsonl(folder: Path) -> Path:
    lines = [json.dumps({"id": f"t{i}", "text": text}) for i, text in enumerate(_TEXTS)]
    (folder / "texts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "texts.jsonl"


def _build_csv(folder: Path) -> Path:
    rows = ["id,text"] + [f't{i},"{text}"' for i, text in enumerate(_TEXTS)]
    (folder / "texts.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder / "texts.csv"


def _build_jsonl_gz(folder: Path) -> Path:
    source = _build_jsonl(folder)
    (folder / "texts.jsonl.gz").write_bytes(gzip.compress(source.read_bytes()))
    source.unlink()
    return folder / "texts.jsonl.gz"


def _build_collection(folder: Path) -> Path:
    from embedlab.compress import CompressedCollection

    return CompressedCollection.build(_set(64), "pca:4+int8+rescore:4", random_state=0).save(folder / "collection")


def _build_collection_pq(folder: Path) -> Path:
    from embedlab.compress import CompressedCollection

    return CompressedCollection.build(_set(300), "pq:4", random_state=0).save(folder / "collection-pq")


def _build_index(folder: Path) -> Path:
    from embedlab.search import build_index

    index = build_index(_set(200), k=3, method="hnsw", n_queries=20, random_state=0)
    return index.save(folder / "index")


def _build_adapter(folder: Path) -> Path:
    from embedlab.align import ProcrustesAdapter

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, DIM))
    adapter = ProcrustesAdapter().fit(x, x @ np.linalg.qr(rng.normal(size=(DIM, DIM)))[0])
    return adapter.save(folder / "adapter.json")


def _tokens(n: int = 12, seed: int = 0):
    from embedlab.multivector import MultiVectorSet

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 5, size=n)
    vectors = rng.normal(size=(int(lengths.sum()), DIM)).astype(np.float32)
    return MultiVectorSet(vectors, np.concatenate([[0], np.cumsum(lengths)]), ids=[f"d{i}" for i in range(n)])


def _build_multivector(folder: Path) -> Path:
    return _tokens().to_parquet(folder / "tokens.parquet")


def _build_multivector_lance(folder: Path) -> Path:
    import lance

    lance.write_dataset(_tokens().to_table(), str(folder / "tokens.lance"))
    return folder / "tokens.lance"


def _build_multivector_index(folder: Path) -> Path:
    from embedlab.multivector import MuveraEncoder, build_multivector_index

    documents = _build_multivector(folder)
    encoder = MuveraEncoder(k_sim=2, d_proj=4, repetitions=2, random_state=0)
    build_multivector_index(documents, folder / "mv-index", encoder=encoder, candidates=6)
    documents.unlink()
    return folder / "mv-index"


# -- readers ------------------------------------------------------------------------------------------------------


def _read_embeddings(path: Path) -> object:
    emb = load(path)
    np.bitwise_xor.reduce(np.asarray(emb.vectors).view(np.uint32), axis=None)
    describe(path)
    return sum(len(batch) for batch in iter_batches(path, batch_size=7))


def _read_texts(path: Path) -> object:
    table, _ = read_texts(path)
    return table.num_rows


def _queries(dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(2, dim)).astype(np.float32)


def _read_collection(path: Path) -> object:
    from embedlab.compress import CompressedCollection

    collection = CompressedCollection.open(path)
    return collection.search(_queries(collection.dim), 3)


def _read_index(path: Path) -> object:
    from embedlab.search import open_searcher

    searcher = open_searcher(path)
    return searcher.search(_queries(searcher.dim), 3)


def _read_adapter(path: Path) -> object:
    from embedlab.align import load_adapter

    adapter = load_adapter(path)
    return adapter.transform(_queries(adapter.n_features_in_))


def _read_multivector(path: Path) -> object:
    from embedlab.multivector import iter_multivector_batches, load_multivector

    documents = load_multivector(path)
    np.bitwise_xor.reduce(np.asarray(documents.vectors).view(np.uint32), axis=None)
    return sum(len(batch) for batch in iter_multivector_batches(path, 5))


def _read_multivector_index(path: Path) -> object:
    from embedlab.multivector import MultiVectorIndex

    index = MultiVectorIndex.open(path)
    return index.search(_tokens(2, seed=3), 3)


# -- structural damage --------------------------------------------------------------------------------------------

_NAMES = ["embedding", "embeddings", "vector", "id", "ids", "text", "label", "tokens", "", "é", "a" * 300]


def _random_type(rng: random.Random, depth: int = 0) -> pa.DataType:
    scalar = [pa.float32(), pa.float64(), pa.float16(), pa.int8(), pa.int64(), pa.uint64(), pa.bool_(), pa.string()]
    scalar += [pa.binary(), pa.null(), pa.date32(), pa.timestamp("ns"), pa.decimal128(10, 2), pa.large_string()]
    if depth >= 2 or rng.random() < 0.5:
        return rng.choice(scalar)
    inner = _random_type(rng, depth + 1)
    choice = rng.randrange(5)
    if choice == 0:
        return pa.list_(inner)
    if choice == 1:
        return pa.list_(inner, rng.choice([1, 3, DIM]))
    if choice == 2:
        return pa.large_list(inner)
    if choice == 3:
        return pa.struct([("x", inner), ("y", pa.float32())])
    return pa.dictionary(pa.int32(), pa.string())


def _random_array(rng: random.Random, kind: pa.DataType, n: int) -> pa.Array:
    if pa.types.is_dictionary(kind):
        return pa.array([rng.choice(["a", "b", None]) for _ in range(n)]).dictionary_encode()
    if pa.types.is_fixed_size_list(kind):
        values = _random_array(rng, kind.value_type, n * kind.list_size)
        return pa.FixedSizeListArray.from_arrays(values, kind.list_size)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = [rng.choice([0, 1, DIM, DIM, DIM + 1]) for _ in range(n)]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(
            np.int64 if pa.types.is_large_list(kind) else np.int32
        )
        values = _random_array(rng, kind.value_type, int(offsets[-1]))
        array_type = pa.LargeListArray if pa.types.is_large_list(kind) else pa.ListArray
        return array_type.from_arrays(pa.array(offsets), values)
    if pa.types.is_struct(kind):
        return pa.StructArray.from_arrays(
            [_random_array(rng, field.type, n) for field in kind], names=[field.name for field in kind]
        )
    if pa.types.is_floating(kind):
        pool = [0.0, -0.0, 1.5, -2.0, float("nan"), float("inf"), 1e38, 6e4, None]
        values = [rng.choice(pool) if rng.random() < 0.3 else rng.gauss(0, 1) for _ in range(n)]
        return pa.array(values, type=pa.float64()).cast(kind, safe=False)
    if pa.types.is_integer(kind):
        info = np.iinfo(kind.to_pandas_dtype())
        return pa.array([rng.choice([0, 1, int(info.max), int(info.min), None]) for _ in range(n)], type=kind)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pa.array([rng.choice(["r1", "r1", "", "\x00", "ü" * 3, None]) for _ in range(n)], type=kind)
    if pa.types.is_binary(kind):
        return pa.array([rng.randbytes(rng.choice([0, 4, 4 * DIM, 5])) for _ in range(n)], type=kind)
    return pa.nulls(n, type=kind) if rng.random() < 0.5 else pa.array([None] * n).cast(kind)


def _hostile_table(rng: random.Random) -> pa.Table:
    n = rng.choice([0, 1, 2, 5, 30])
    columns, names = [], []
    for _ in range(rng.randint(0, 4)):
        kind = _random_type(rng)
        try:
            columns.append(_random_array(rng, kind, n))
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            continue
        names.append(rng.choice(_NAMES))  # repeats give duplicate columns
    if rng.random() < 0.5:  # usually keep one plausible vector column, so the reader gets past "no column"
        values = np.random.default_rng(rng.randrange(2**32)).normal(size=(n, rng.choice([1, DIM]))).astype(np.float32)
        columns.append(pa.array(list(values), type=pa.list_(pa.float32())))
        names.append(rng.choice(["embedding", "vector", "tokens"]))
    table = pa.Table.from_arrays(columns, names=names)
    if rng.random() < 0.3:
        metadata = rng.choice([b"{", b"[]", b'{"model": 3}', rng.randbytes(20), json.dumps({"x": [1] * 9}).encode()])
        table = table.replace_schema_metadata({b"embedlab": metadata, b"embedlab.provenance": metadata})
    return table


def _hostile_parquet(path: Path, rng: random.Random) -> None:
    buffer = pa.BufferOutputStream()  # written whole or not at all: pyarrow refuses some of these tables midway
    pq.write_table(_hostile_table(rng), buffer, row_group_size=rng.choice([1, 3, 100]))
    path.write_bytes(buffer.getvalue().to_pybytes())


def _hostile_parquet_folder(path: Path, rng: random.Random) -> None:
    victim = rng.choice(sorted(path.iterdir()))
    if rng.random() < 0.3:
        victim = path / rng.choice(["extra.parquet", "notes.txt", "_manifest.json", ".hidden.parquet"])
    if rng.random() < 0.2:
        victim.mkdir(exist_ok=True) if not victim.exists() else None
        return
    _hostile_parquet(victim, rng)


def _hostile_feather(path: Path, rng: random.Random) -> None:
    buffer = pa.BufferOutputStream()
    feather.write_feather(_hostile_table(rng), buffer, compression=rng.choice(["lz4", "zstd", "uncompressed"]))
    path.write_bytes(buffer.getvalue().to_pybytes())


def _hostile_lance(path: Path, rng: random.Random) -> None:
    import lance

    shutil.rmtree(path)
    table = _hostile_table(rng)
    try:
        lance.write_dataset(table, str(path))
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        shutil.rmtree(path, ignore_errors=True)
        lance.write_dataset(pa.table({"x": pa.array([1, 2])}), str(path))


_NPY_DTYPES = ["<f4", ">f4", "<f8", "<f2", "|O", "<c8", "<U10", "|S4", "|b1", "<i8", "<M8[ns]", "[('a', '<f4')]"]
_NPY_SHAPES = ["(24, 8)", "()", "(0, 8)", "(24,)", "(24, 8, 1)", "(2**40, 8)", "(1099511627776, 8)", "(-1, 8)",
               "(24, 0)", "(3, 2**62)", "(24, 8.5)", "'x'", "(24, 8, 2, 2, 2, 2, 2)"]  # fmt: skip


def _npy_header(rng: random.Random) -> bytes:
    fortran = rng.choice(["False", "True", "1", "'no'"])
    header = (
        f"{{'descr': {rng.choice(_NPY_DTYPES)!r}, 'fortran_order': {fortran}, 'shape': {rng.choice(_NPY_SHAPES)}, }}"
    )
    if rng.random() < 0.2:
        header = rng.choice(["{}", "[1, 2]", "__import__('os')", "{'descr': '<f4'", "x" * 70000, "{'a': (" * 500])
    encoded = header.encode("latin1") + b" " * (63 - len(header) % 64) + b"\n"
    version = rng.choice([(1, 0), (2, 0), (3, 0), (9, 9)])
    length = struct.pack("<H", len(encoded) % 65536) if version[0] == 1 else struct.pack("<I", len(encoded))
    return b"\x93NUMPY" + bytes(version) + length + encoded


def _hostile_npy(path: Path, rng: random.Random) -> None:
    body = np.random.default_rng(rng.randrange(2**32)).normal(size=rng.choice([0, 7, 192, 400])).astype("<f4")
    path.write_bytes(_npy_header(rng) + body.tobytes())


def _hostile_npz(path: Path, rng: random.Random) -> None:
    generator = np.random.default_rng(rng.randrange(2**32))
    n = rng.choice([0, 1, 5, 24])
    candidates = {
        "float": lambda: generator.normal(size=(n, DIM)).astype(rng.choice(["f2", "f4", "f8"])),
        "ints": lambda: generator.integers(0, 9, size=(n, DIM)),
        "complex": lambda: np.ones((n, DIM), dtype=np.complex64),
        "flat": lambda: generator.normal(size=n),
        "cube": lambda: generator.normal(size=(n, 2, 2)),
        "strings": lambda: np.array([f"r{i % 3}" for i in range(n)]),
        "bytes": lambda: np.array([b"\xff\xfe" for _ in range(n)]),
        "scalar": lambda: np.float32(3.0),
        "nan": lambda: np.full((n, DIM), np.nan, dtype=np.float32),
        "huge": lambda: np.full((n, DIM), 3e38, dtype=np.float32),
        "bools": lambda: np.ones((n, DIM), dtype=bool),
        "dates": lambda: np.array(["2020-01-01"] * n, dtype="datetime64[D]"),
        "structured": lambda: np.zeros(n, dtype=[("a", "f4"), ("b", "i4")]),
    }
    arrays = {}
    for _ in range(rng.randint(0, 4)):
        arrays[rng.choice(["embeddings", "vectors", "ids", "label", "x", "arr_0"])] = candidates[
            rng.choice(list(candidates))
        ]()
    with open(path, "wb") as handle:
        np.savez(handle, **arrays) if rng.random() < 0.5 else np.savez_compressed(handle, **arrays)
    if rng.random() < 0.2:  # an entry whose npy header is damaged inside a valid zip
        import zipfile

        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(
                "embeddings.npy" if "embeddings" not in arrays else "zz.npy", _npy_header(rng) + b"\0" * 64
            )


def _hostile_text(path: Path, rng: random.Random) -> None:
    lines = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.randrange(8)
        if kind == 0:
            lines.append(rng.randbytes(rng.randint(0, 20)))  # non-UTF-8 more often than not
        elif kind == 1:
            lines.append(
                json.dumps(
                    {"text": rng.choice([None, 3, [1], {"a": 1}, "", "ok"]), "id": rng.choice([1, None, "t", [2]])}
                ).encode()
            )
        elif kind == 2:
            lines.append(b'{"text": "unterminated')
        elif kind == 3:
            lines.append(b"id,text,text")  # duplicate columns
        elif kind == 4:
            lines.append(b"\xef\xbb\xbf" + b"bom text")
        elif kind == 5:
            lines.append(b"\x00\x00")
        elif kind == 6:
            lines.append(b"t1," + b'"' * rng.randint(1, 3))
        else:
            lines.append(b"   ")
    data = b"\n".join(lines)
    if path.name.endswith(".gz"):
        data = gzip.compress(data) if rng.random() < 0.7 else data
    path.write_bytes(data)


_JSON_VALUES: list[object] = [None, True, -1, 0, 2**63, 10**400, 1e308, -0.0, "", "x" * 10, "../../../etc/passwd",
                              "/etc/passwd", [], [1, 2], {}, {"a": None}, "\udcff", [[[[[[]]]]]]]  # fmt: skip


def _json_value(rng: random.Random) -> object:
    return copy.deepcopy(rng.choice(_JSON_VALUES))


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value[:6]):
            paths += _paths(item, (*prefix, position))
    return paths


def damage_json(text: str, rng: random.Random) -> str:
    """A JSON document with one value replaced, one key deleted or added, or its nesting made too deep."""
    document = json.loads(text)
    if rng.random() < 0.05:
        return "[" * 100_000 + "]" * 100_000
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(document))
        if not path:
            document = _json_value(rng) if rng.random() < 0.3 else document
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.3 and isinstance(parent, dict):
            parent[rng.choice(["../x", "files", "n", "zz"])] = _json_value(rng)
        else:
            parent[path[-1]] = _json_value(rng)
    return json.dumps(document, ensure_ascii=rng.random() < 0.5)


def _json_files(path: Path) -> list[Path]:
    files = [path] if path.is_file() else sorted(path.rglob("*.json"))
    return [file for file in files if file.suffix == ".json"]


def _hostile_json(path: Path, rng: random.Random) -> None:
    """Damage a JSON document of the input structurally (the index's manifest's file names included)."""
    files = _json_files(path)
    target = rng.choice(files)
    target.write_text(damage_json(target.read_text(encoding="utf-8"), rng), encoding="utf-8", errors="surrogatepass")


def _hostile_index(path: Path, rng: random.Random) -> None:
    manifest_path = path / "index.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if rng.random() < 0.5:  # a file name that leaves the folder, with the fingerprint of what it points at
        outside = path.parent / "outside.bin"
        outside.write_bytes(b"secret")
        name = rng.choice(["../outside.bin", str(outside), "sub/../../outside.bin"])
        manifest["files"][name] = {"bytes": 6, "sha256": __import__("hashlib").sha256(b"secret").hexdigest()}
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    else:
        _hostile_json(path, rng)


# -- byte-level damage --------------------------------------------------------------------------------------------


def _damage_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.randrange(7)
    if kind == 0 or not data:
        return rng.randbytes(rng.choice([0, 1, 8, 64, 1024, max(1, len(data))])), "random bytes"
    if kind == 1:
        return data[: rng.randrange(len(data))], "truncated"
    if kind == 2:
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        return bytes(damaged), "bit flips"
    if kind == 3:
        start = rng.randrange(len(data))
        length = rng.randint(1, 64)
        fill = rng.choice([b"\x00", b"\xff", None])
        chunk = rng.randbytes(length) if fill is None else fill * length
        return data[:start] + chunk + data[start + length :], "overwritten range"
    if kind == 4:
        start = rng.randrange(len(data))
        piece = data[start : start + rng.randint(1, 256)]
        at = rng.randrange(len(data))
        return data[:at] + piece + data[at:], "spliced copy"
    if kind == 5:
        keep = min(len(data), rng.choice([4, 8, 16, 64]))
        return data[:keep] + rng.randbytes(max(0, len(data) - keep)), "valid magic, random rest"
    return data + rng.randbytes(rng.randint(1, 512)), "trailing garbage"


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(file for file in path.rglob("*") if file.is_file())


def damage(path: Path, fmt: Format, rng: random.Random) -> str:
    """Damage the input at ``path`` in place; returns what was done."""
    if fmt.hostile is not None and rng.random() < 0.4:
        try:
            fmt.hostile(path, rng)
            return "hostile content"
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            pass  # a writer that cannot write this content (pyarrow refuses some types): damage bytes instead
    files = _files(path)
    if path.is_dir() and rng.random() < 0.1:
        victim = rng.choice(files)
        victim.unlink()
        return f"deleted {victim.relative_to(path)}"
    json_files = _json_files(path)
    if json_files and rng.random() < 0.3:
        _hostile_json(path, rng)
        return "damaged JSON"
    victim = rng.choice(files)
    data, what = _damage_bytes(victim.read_bytes(), rng)
    victim.write_bytes(data)
    return f"{what} in {victim.name}"


FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in [
        Format("npy", _build_npy, _read_embeddings, _hostile_npy),
        Format("npz", _build_npz, _read_embeddings, _hostile_npz),
        Format("parquet", _build_parquet, _read_embeddings, _hostile_parquet),
        Format("parquet-folder", _build_parquet_folder, _read_embeddings, _hostile_parquet_folder),
        Format("feather", _build_feather, _read_embeddings, _hostile_feather),
        Format("lance", _build_lance, _read_embeddings, _hostile_lance),
        Format("txt", _build_txt, _read_texts, _hostile_text),
        Format("jsonl", _build_jsonl, _read_texts, _hostile_text),
        Format("csv", _build_csv, _read_texts, _hostile_text),
        Format("jsonl-gz", _build_jsonl_gz, _read_texts, _hostile_text),
        Format("collection", _build_collection, _read_collection, _hostile_json),
        Format("collection-pq", _build_collection_pq, _read_collection, _hostile_json),
        Format("index", _build_index, _read_index, _hostile_index),
        Format("adapter", _build_adapter, _read_adapter, _hostile_json),
        Format("multivector", _build_multivector, _read_multivector, _hostile_parquet),
        Format("multivector-lance", _build_multivector_lance, _read_multivector, _hostile_lance),
        Format("multivector-index", _build_multivector_index, _read_multivector_index, _hostile_json),
    ]
}


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - only runs when a read hangs
    raise _Timeout


class Fuzzer:
    """Makes and reads damaged inputs of one format; the valid seed input is built once in ``folder``."""

    def __init__(self, fmt: str, folder: Path, *, time_limit: float = 20.0, memory_limit: int = 2**30) -> None:
        self.fmt = FORMATS[fmt]
        self.folder = Path(folder)
        self.time_limit, self.memory_limit = time_limit, memory_limit
        shutil.rmtree(self.folder / "seed", ignore_errors=True)  # a worker that replaces a dead one starts afresh
        (self.folder / "seed").mkdir(parents=True)
        self.seed_path = self.fmt.build(self.folder / "seed")
        self.work = self.folder / "work"

    def make(self, seed: int) -> tuple[Path, str]:
        """The damaged input of ``seed`` (written afresh in the work folder) and what was done to it."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        target = self.work / self.seed_path.name
        if self.seed_path.is_dir():
            shutil.copytree(self.seed_path, target)
        else:
            shutil.copy(self.seed_path, target)
        return target, damage(target, self.fmt, random.Random(f"{self.fmt.name}:{seed}"))

    def run(self, seed: int) -> Outcome:
        """Read the damaged input of ``seed`` and classify what happened."""
        path, done = self.make(seed)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, self.time_limit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                self.fmt.read(path)
            kind, detail = "read", ""
        except _Timeout:
            kind, detail = "crash", f"hang: no answer after {self.time_limit} s"
        except EmbedlabError as error:
            kind, detail = ("refused", str(error)) if str(error).strip() else ("crash", "an empty EmbedlabError")
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):
                raise
            kind, detail = "crash", _describe(error)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        if kind != "crash" and grown > self.memory_limit:
            kind, detail = "crash", f"memory: peak grew by {grown / 2**20:.0f} MiB"
        return Outcome(self.fmt.name, seed, kind, done, detail)


def _describe(error: BaseException) -> str:
    """The exception and the innermost embedlab frame it passed through (the first line is the signature)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "/embedlab/" in frame.filename and "/tests/" not in frame.filename]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "outside embedlab"
    return f"{type(error).__name__} at {where}\n{error}\n" + "".join(traceback.format_tb(error.__traceback__))


def replay(fmt: str, seed: int, folder: Path) -> Outcome:
    """Make and read the input of ``(fmt, seed)`` again (to debug a crash a campaign reported)."""
    return Fuzzer(fmt, folder).run(seed)


@dataclass
class Campaign:
    """The outcomes of one format's seeds, counted."""

    format: str
    counts: dict[str, int]
    crashes: list[Outcome]
    seconds: float

    @property
    def inputs(self) -> int:
        return sum(self.counts.values())

    def signatures(self) -> dict[str, int]:
        """Distinct crashes and how often each was hit."""
        found: dict[str, int] = {}
        for crash in self.crashes:
            found[crash.signature] = found.get(crash.signature, 0) + 1
        return found


def campaign(fmt: str, seeds: range, folder: Path, *, time_limit: float = 20.0) -> Campaign:
    """Read the damaged inputs of ``seeds`` in a worker process, so that a reader that kills its process (a
    segmentation fault in a native library) or hangs in native code is counted as a crash of that seed, and
    the campaign goes on in a new worker from the next seed."""
    counts = {"read": 0, "refused": 0, "crash": 0}
    crashes: list[Outcome] = []
    started = time.perf_counter()
    next_seed = seeds.start
    while next_seed < seeds.stop:
        command = [sys.executable, "-m", "tests.fuzz.harness", fmt, str(next_seed), str(seeds.stop), str(folder)]
        worker = subprocess.Popen(command, cwd=_REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(worker.stdout, lines), daemon=True).start()
        ready = False
        while True:
            try:
                line = lines.get(timeout=time_limit * 3 if ready else 600)
            except queue.Empty:
                worker.kill()
                outcome = Outcome(
                    fmt, next_seed, "crash", "unknown", f"hang: the worker gave no answer in {time_limit * 3} s"
                )
                break
            if line is None:
                code = worker.wait()
                outcome = Outcome(fmt, next_seed, "crash", "unknown", f"the worker died with exit code {code}")
                break
            if line == "ready":
                ready = True
                continue
            record = json.loads(line)
            outcome = Outcome(**record)
            counts[outcome.kind] += 1
            if outcome.kind == "crash":
                crashes.append(outcome)
            next_seed = outcome.seed + 1
            if next_seed >= seeds.stop:
                worker.wait()
                outcome = None
                break
        if outcome is not None:  # the worker died or hung on next_seed
            worker.wait()
            counts["crash"] += 1
            crashes.append(outcome)
            next_seed += 1
    return Campaign(fmt, counts, crashes, time.perf_counter() - started)


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _worker(fmt: str, start: int, stop: int, folder: str) -> None:
    fuzzer = Fuzzer(fmt, Path(folder) / fmt)
    print("ready", flush=True)
    for seed in range(start, stop):
        outcome = fuzzer.run(seed)
        detail = outcome.detail if outcome.kind == "crash" else ""
        record = {"format": fmt, "seed": seed, "kind": outcome.kind, "damage": outcome.damage, "detail": detail}
        print(json.dumps(record), flush=True)


_REPO = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
