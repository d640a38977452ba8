"""Every reader, fed damaged and hostile inputs, reads them or refuses them with embedlab's own error: a short
fuzz campaign per format (the long one is benchmarks/fuzz_readers.py), hypothesis-shrunk byte edits, and one
regression test for each kind of crash the campaigns found."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedlab import EmbeddingDataError, describe, load
from embedlab._json import MAX_DOCUMENT_BYTES, member, read_document
from tests.fuzz.harness import FORMATS, Fuzzer, campaign

#: Inputs per format in ``make test`` (a few seconds a format; benchmarks/fuzz_readers.py runs 10,000).
SHORT_RUN = 60


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_short_campaign_finds_no_crash(fmt, tmp_path):
    pytest.importorskip("lance") if "lance" in fmt else None
    result = campaign(fmt, range(SHORT_RUN), tmp_path)
    assert result.inputs == SHORT_RUN
    assert result.counts["refused"] > 0  # the damage reaches the readers
    described = [f"seed {c.seed} ({c.damage}): {c.detail.splitlines()[0:2]}" for c in result.crashes]
    assert not result.crashes, f"{fmt}: {len(described)} crashes: " + "; ".join(described)


_FUZZERS: dict[str, Fuzzer] = {}


def _fuzzer(fmt: str, folder: Path) -> Fuzzer:
    if fmt not in _FUZZERS:
        _FUZZERS[fmt] = Fuzzer(fmt, folder / fmt)
    return _FUZZERS[fmt]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["npy", "npz", "parquet", "feather", "jsonl", "csv", "adapter"]),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.none() | st.floats(0, 1),
)
def test_byte_edits_that_hypothesis_shrinks_never_crash(tmp_path_factory, fmt, edits, cut):
    """Overwrite bytes of a valid file (and maybe cut it): hypothesis shrinks any crash to the fewest edits."""
    fuzzer = _fuzzer(fmt, tmp_path_factory.getbasetemp() / "hypothesis")
    data = bytearray(fuzzer.seed_path.read_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    target = tmp_path_factory.mktemp("edit") / fuzzer.seed_path.name
    target.write_bytes(bytes(data))
    try:
        FORMATS[fmt].read(target)
    except EmbeddingDataError as error:
        assert str(target) in str(error) or target.name in str(error)


# -- one regression test per kind of crash the campaigns found ----------------------------------------------------


def test_a_damaged_arrow_offset_is_refused_not_followed(tmp_path):
    """An uncompressed Feather file is read without copying: a list offset pointing past its buffer was followed
    (a segmentation fault) before every batch was validated."""
    vectors = [np.arange(8, dtype=np.float32) + 1, np.arange(8, dtype=np.float32)]
    table = pa.table({"embedding": pa.array(vectors, type=pa.list_(pa.float32())), "id": ["a", "b"]})
    path = tmp_path / "damaged.feather"
    feather.write_feather(table, path, compression="uncompressed")
    data = path.read_bytes()
    at = data.index(struct.pack("<3i", 0, 8, 16))
    path.write_bytes(data[:at] + struct.pack("<3i", 0, 8, 2**30) + data[at + 12 :])
    with pytest.raises(EmbeddingDataError, match=r"damaged\.feather: cannot be read .*offset"):
        load(path)


def test_an_npz_array_declaring_more_bytes_than_it_holds_is_refused_before_allocation(tmp_path):
    path = tmp_path / "huge.npz"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 8), }"
    header += " " * (63 - len(header) % 64) + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("embeddings.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    with pytest.raises(EmbeddingDataError, match=r"'embeddings' declares shape \(1099511627776, 8\)"):
        load(path)


@pytest.mark.parametrize(
    "tail",
    [b"", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',", b"\x93NUMPY\x01\x00\x46\x00{'descr': ('<f4',\n" + b" " * 60],
)
def test_an_npy_whose_header_ends_early_is_refused(tmp_path, tail):
    path = tmp_path / "cut.npy"
    path.write_bytes(tail)
    with pytest.raises(EmbeddingDataError, match=r"cut\.npy: not a readable \.npy file"):
        load(path)


def test_values_whose_squares_overflow_are_refused_and_counted_without_warnings(tmp_path):
    vectors = np.ones((4, 8), dtype=np.float32)
    vectors[2] = 3e38
    np.save(tmp_path / "huge.npy", vectors)
    with pytest.raises(EmbeddingDataError, match="too large to compare"):
        load(tmp_path / "huge.npy")
    counted = describe(tmp_path / "huge.npy")  # counts without a warning (RuntimeWarnings are errors in the tests)
    assert counted.n == 4 and counted.norm_max == pytest.approx(3e38 * 8**0.5, rel=1e-6)


def test_signalling_nans_are_reported_without_a_floating_point_warning(tmp_path):
    vectors = np.ones((3, 4), dtype=np.float32)
    vectors.view(np.uint32)[1, 2] = 0x7F800001  # a signalling NaN
    np.save(tmp_path / "snan.npy", vectors)
    with pytest.raises(EmbeddingDataError, match="NaN or Inf"):
        load(tmp_path / "snan.npy")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pa.array([[1], [2]]), "ids must be integers or strings"),
        (pa.array([1.5, 2.5]), "ids must be integers or strings"),
        (pa.array([b"\xff", b"a"]), "ids must be integers or strings"),
    ],
)
def test_an_id_column_of_another_type_is_refused(table_with, column, message):
    vectors = pa.array([[1.0, 2.0], [3.0, 4.0]], type=pa.list_(pa.float32()))
    with pytest.raises(EmbeddingDataError, match=message):
        load(table_with({"embedding": vectors, "id": column}))


@pytest.mark.parametrize("name", ["dup.feather", "dup.parquet"])
def test_duplicate_column_names_are_refused(tmp_path, name):
    import pyarrow.parquet as pq

    vectors = pa.array([[1.0, 2.0], [3.0, 4.0]], type=pa.list_(pa.float32()))
    table = pa.Table.from_arrays([vectors, pa.array(["a", "b"]), pa.array(["c", "d"])], names=["embedding", "id", "id"])
    (feather.write_feather if name.endswith("feather") else pq.write_table)(table, tmp_path / name)
    with pytest.raises(EmbeddingDataError, match=rf"{name}: cannot be read .*duplicate field names"):
        load(tmp_path / name)


@pytest.mark.parametrize("provenance", [b"[1, 2]", b'{"binary_dtype": "object"}', b"[" * 100_000])
def test_provenance_that_is_not_embedlab_s_is_ignored_or_refused(tmp_path, provenance):
    vectors = pa.array([np.ones(2, np.float32).tobytes()] * 2, type=pa.binary())
    table = pa.table({"embedding": vectors}).replace_schema_metadata({b"embedlab.provenance": provenance})
    feather.write_feather(table, tmp_path / "p.feather")
    try:
        assert load(tmp_path / "p.feather").dim == 2
    except EmbeddingDataError as error:
        assert "binary_dtype 'object'" in str(error)


def test_a_damaged_lance_manifest_raises_embedlab_s_error_not_a_rust_panic(tmp_path):
    """Lance's decoder panics on this damaged manifest (found by the campaign: seed 117, a spliced copy); pyo3
    raises the panic as a BaseException, which readers now turn into embedlab's error."""
    pytest.importorskip("lance")
    path, damage = Fuzzer("lance", tmp_path).make(117)
    assert damage.startswith("spliced copy") and damage.endswith(".manifest")
    with pytest.raises(EmbeddingDataError, match=r"set\.lance: cannot be read"):
        load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"text": {"a": 1}}\n', "does not hold UTF-8 texts"),
        (b'{"text": "\xe9t\xe9"}\n', "not UTF-8|does not hold UTF-8"),
        (b"id,te\x96xt\nt1,a\n", "column name is not UTF-8|cannot be parsed"),
        (b"id,text\n\xff\xfe,a\n", "id column 'id' has type binary"),
        (b'{"id": "\xe9t\xe9", "text": "a"}\n', "a value is not UTF-8"),  # jsonl seed 2297: ids as JSON strings
    ],
)
def test_text_sources_with_texts_ids_or_names_that_are_not_utf8_are_refused(tmp_path, content, message):
    from embedlab.io.text_sources import read_texts

    path = tmp_path / ("t.csv" if content.startswith(b"id,") else "t.jsonl")
    path.write_bytes(content)
    with pytest.raises(EmbeddingDataError, match=message):
        read_texts(path)


# -- JSON documents: size limits, depth, and paths that stay inside their folder ---------------------------------


def test_json_documents_are_refused_past_their_size_limit_before_parsing(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)  # sparse: no bytes are written
    with pytest.raises(EmbeddingDataError, match=r"big\.json: 16,777,217 bytes, more than the 16,777,216"):
        read_document(path, what="index manifest")


@pytest.mark.parametrize(
    ("text", "message"),
    [("[" * 200_000, "RecursionError"), ("[1, 2]", "a JSON list, not an object"), ('{"a": 1', "JSONDecodeError")],
)
def test_json_documents_too_deep_or_not_objects_are_refused(tmp_path, text, message):
    (tmp_path / "d.json").write_text(text)
    with pytest.raises(EmbeddingDataError, match=message):
        read_document(tmp_path / "d.json", what="adapter")


@pytest.mark.parametrize("name", ["../outside.bin", "/etc/passwd", "sub/../../outside.bin", "..", "", 3])
def test_names_in_documents_cannot_leave_their_folder(tmp_path, name):
    with pytest.raises(EmbeddingDataError, match="not a file of the folder"):
        member(tmp_path, name, what="the index manifest")


def test_an_index_manifest_pointing_outside_its_folder_is_refused(tmp_path):
    from embedlab.search import Index

    fuzzer = Fuzzer("index", tmp_path / "f")
    index = fuzzer.seed_path
    (tmp_path / "f" / "outside.bin").write_bytes(b"secret")
    manifest = json.loads((index / "index.json").read_text())
    manifest["files"]["../outside.bin"] = {"bytes": 6, "sha256": hashlib.sha256(b"secret").hexdigest()}
    (index / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(EmbeddingDataError, match=r"'\.\./outside\.bin', which is not a file of the folder"):
        Index.open(index)


def test_an_index_reads_no_file_its_manifest_does_not_vouch_for(tmp_path):
    from embedlab.search import Index

    index = Fuzzer("index", tmp_path / "f").seed_path
    manifest = json.loads((index / "index.json").read_text())
    del manifest["files"]["index.faiss"]
    (index / "index.json").write_text(json.dumps(manifest))
    (index / "index.faiss").write_bytes(b"IxHF" + b"\xff" * 64)  # faiss trusts the sizes it reads
    with pytest.raises(EmbeddingDataError, match="does not list index.faiss"):
        Index.open(index)


def test_a_fitted_array_whose_bytes_changed_is_refused_by_its_digest(tmp_path):
    """collection-pq seed 4511: bit flips inside a PQ codec's serialised faiss index changed its search type, and
    faiss aborted the search instead of refusing the index. Every array a document carries has its SHA-256."""
    from embedlab._json import array_from_json, array_to_json

    document = array_to_json(np.arange(64, dtype=np.uint8))
    assert array_from_json(document).tolist() == list(range(64))
    flipped = bytearray(document["base64"].encode())
    flipped[10] = ord("A") if flipped[10] != ord("A") else ord("B")
    with pytest.raises(EmbeddingDataError, match="SHA-256 differs"):
        array_from_json({**document, "base64": flipped.decode()})
    unsigned = {key: value for key, value in document.items() if key != "sha256"}
    assert array_from_json(unsigned).tolist() == list(range(64))  # documents written before digests


def test_a_faiss_quantizer_state_of_another_index_is_refused():
    """Without a digest (an older document), the deserialised faiss index must still be the one the spec makes."""
    import faiss

    from embedlab.compress import Codec

    rows = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    codec = Codec("pq:4").fit(rows)
    other = faiss.IndexFlatIP(8)
    codec.quantizer_.index_bytes_ = faiss.serialize_index(other)
    with pytest.raises(EmbeddingDataError, match="index is damaged"):
        codec.quantizer_.check_state()


def test_an_adapter_whose_arrays_do_not_fit_together_is_refused():
    """adapter seed 2056: a bias of another length than the weights' columns broke the first transform."""
    from embedlab._json import array_to_json
    from embedlab.align import RidgeAdapter, adapter_from_dict

    rng = np.random.default_rng(0)
    document = RidgeAdapter().fit(rng.normal(size=(20, 8)), rng.normal(size=(20, 8))).to_dict()
    document["state"]["bias_"] = array_to_json(np.zeros(4, dtype=np.float32))
    with pytest.raises(EmbeddingDataError, match="arrays do not fit together"):
        adapter_from_dict(document)


def test_search_parameters_beyond_a_c_int_are_refused_before_faiss():
    """index seeds 2580, 7448, 9817: an ef_search of 2**63 in a manifest overflowed faiss's C int setter."""
    from embedlab.exceptions import ConfigurationError
    from embedlab.neighbors import HNSWParams

    with pytest.raises(ConfigurationError, match="ef_search must be an integer between 1 and 2147483647"):
        HNSWParams(ef_search=2**63)
