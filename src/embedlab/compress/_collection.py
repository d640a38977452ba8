"""``CompressedCollection``: an embedding set stored as codes (plus, for rescoring, its full vectors on disk),
written atomically to a directory and searched in place."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedlab._checks import check_int
from embedlab._json import MAX_ARRAY_DOCUMENT_BYTES, document_errors, read_document
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab._version import __version__
from embedlab.compress._codec import Codec, CompressMetric
from embedlab.compress._quantizers import encoding_table_bytes
from embedlab.compress._search import CodecSearcher
from embedlab.compress._spec import CodecSpec, parse_spec
from embedlab.exceptions import EmbeddingDataError
from embedlab.io import EmbeddingSet, atomic_directory, load_npy, read_id_file
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.readers import reading_memory
from embedlab.io.validation import prepare
from embedlab.neighbors import KnnResult
from embedlab.scale import MemoryEstimate, job_estimate

# The block of rows being encoded and faiss's own buffers.
_ENCODING_BUFFER_BYTES = 32 * 2**20

__all__ = ["CompressedCollection"]

MANIFEST = "collection.json"
_CODES = "codes.npy"
_IDS = "ids.parquet"
_VECTORS = "vectors.npy"
#: Rows encoded per block.
_ENCODE_ROWS = 65_536


def compression_memory(n_rows: int, dim: int, codec: str) -> MemoryEstimate:
    """The estimated peak memory of :meth:`CompressedCollection.build` with the codec spec ``codec`` on a set of
    ``n_rows`` x ``dim`` read with ``load`` (``embedlab compress apply``): the set, the codes (at most a float per
    dimension), the full vectors kept for rescoring, and the larger of the codec's training sample and what
    encoding holds (faiss's buffers and a product quantizer's distance tables)."""
    spec = parse_spec(codec)
    quantizer = spec.quantizer_stage
    code_bytes = {"float32": 4.0, "float16": 2.0}.get(quantizer.name, 1.0) * dim
    reduced = [int(stage.argument) for stage in spec.transforms if stage.argument is not None]
    tables = 0
    if quantizer.name in ("pq", "opq"):
        tables = encoding_table_bytes(quantizer.name, int(quantizer.argument), min([dim, *reduced]), n_rows)
    return job_estimate(
        f"compress apply of {n_rows:,} x {dim}",
        *reading_memory(n_rows, dim),
        ("codes", code_bytes * n_rows),
        ("kept vectors", 4.0 * n_rows * dim if spec.rescore else 0.0),
        # The training sample is gone before the encoding's buffers come: the larger of the two counts.
        (
            "training, then encoding",
            max(4.0 * min(n_rows, Codec(codec).max_train_rows) * dim, tables + _ENCODING_BUFFER_BYTES),
        ),
    )


class CompressedCollection:
    """An embedding set as codes of one codec, with its ids, and optionally its full vectors for rescoring.

    Build one with :meth:`build`, write it with :meth:`save` and read it back with :meth:`open` (the codes are
    loaded, the full vectors memory-mapped). :meth:`search` answers queries from the codes alone or, with
    ``rescore=M``, ranks ``M x k`` shortlisted rows by their exact inner products. A collection is a
    :class:`~embedlab.neighbors.Searcher`.

    Attributes
    ----------
    codec : Codec
    codes : numpy.ndarray of shape (n, codec.bytes_per_vector), uint8
    ids : numpy.ndarray of shape (n,)
    vectors : numpy.ndarray of shape (n, d) or None
        Full-precision rows (unit-normalised under cosine), in memory or memory-mapped.
    """

    def __init__(self, codec: Codec, codes: np.ndarray, ids: np.ndarray, vectors: np.ndarray | None = None) -> None:
        if len(ids) != codes.shape[0] or (vectors is not None and vectors.shape[0] != codes.shape[0]):
            raise EmbeddingDataError(
                f"the collection's parts disagree: {codes.shape[0]} codes, {len(ids)} ids"
                + ("" if vectors is None else f", {vectors.shape[0]} vectors")
                + "."
            )
        self.codec, self.codes, self.ids, self.vectors = codec, codes, ids, vectors

    def __len__(self) -> int:
        return self.codes.shape[0]

    def __repr__(self) -> str:
        rescoring = ", full vectors kept" if self.vectors is not None else ""
        size = f"{self.codec.bytes_per_vector} B/vector"
        return f"CompressedCollection({len(self)} rows, {self.codec.spec}, {size}{rescoring})"

    @property
    def spec(self) -> CodecSpec:
        return self.codec.spec

    @property
    def metric(self) -> str:
        return self.codec.metric

    @property
    def dim(self) -> int:
        return self.codec.dim_

    @classmethod
    def build(
        cls,
        data: EmbeddingSet | object,
        spec: str | CodecSpec,
        *,
        metric: CompressMetric = "cosine",
        keep_vectors: bool | None = None,
        queries: object | None = None,
        random_state: int | None = 0,
        progress: ProgressReporter = NULL_PROGRESS,
    ) -> CompressedCollection:
        """Fit the codec on ``data`` and encode every row.

        Parameters
        ----------
        data : EmbeddingSet or array-like of shape (n, d)
            Ids are the set's, or the row numbers for an array.
        spec : str or CodecSpec
            Codec spec, e.g. ``"pca:256+int8"``; a final ``rescore:M`` makes rescoring the default of
            :meth:`search` and keeps the full vectors.
        metric : {"cosine", "ip"}, default="cosine"
        keep_vectors : bool, optional
            Keep the full-precision rows for rescoring; by default exactly when the spec has ``rescore``.
        queries : array-like, optional
            Sample queries for query-aware codecs (``leanvec-ood``).
        random_state : int or None, default=0
        progress : ProgressReporter
        """
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        X, ids = (data.vectors, data.ids) if isinstance(data, EmbeddingSet) else (data, None)
        rows = prepare(X, metric)
        ids = np.arange(rows.n) if ids is None else np.asarray(ids)
        sample = None if queries is None else prepare(queries, metric, name="queries", dim=rows.dim)
        codec = Codec(spec, metric=metric, random_state=random_state).fit(rows, queries=sample)
        codes = np.empty((rows.n, codec.bytes_per_vector), dtype=np.uint8)
        with progress.task(f"encoding with {spec.codes_spec}", rows.n) as advance:
            for start in range(0, rows.n, _ENCODE_ROWS):
                block = rows.take(slice(start, start + _ENCODE_ROWS))
                codes[start : start + block.n] = codec.encode(block)
                advance(block.n)
        keep = spec.rescore is not None if keep_vectors is None else keep_vectors
        return cls(codec, codes, ids, rows.vectors if keep else None)

    def searcher(self, rescore: int | str | None = "spec") -> CodecSearcher:
        """The collection's codes (and full vectors) as a searcher; ``rescore`` as for :meth:`search`."""
        factor = self.spec.rescore if rescore == "spec" else rescore
        if factor is not None:
            factor = check_int(factor, "rescore")
        return CodecSearcher(self.codec, self.codes, vectors=self.vectors, rescore=factor)

    def search(
        self, queries: object, k: int = 10, *, exclude: np.ndarray | None = None, rescore: int | str | None = "spec"
    ) -> KnnResult:
        """The ``k`` rows of highest (approximate or rescored) inner product with each query.

        ``rescore`` is the shortlist multiplier M (None: codes alone); by default the spec's ``rescore:M``.
        ``exclude`` as for :meth:`~embedlab.neighbors.BaseSearcher.search`. The result carries the rows' ids.
        """
        return self.searcher(rescore).search(queries, k, exclude=exclude).with_ids(self.ids)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the collection to the directory ``path`` atomically (an earlier collection there is replaced)."""
        with atomic_directory(path, replaceable=MANIFEST) as tmp:
            np.save(tmp / _CODES, self.codes)
            pq.write_table(pa.table({ID_COLUMN: pa.array(self.ids)}), tmp / _IDS)
            if self.vectors is not None:
                np.save(tmp / _VECTORS, np.asarray(self.vectors, dtype=np.float32))
            self.write_manifest(tmp, self.codec, len(self), has_vectors=self.vectors is not None)
        return Path(path)

    @staticmethod
    def write_manifest(folder: Path, codec: Codec, n: int, *, has_vectors: bool) -> None:
        """The manifest that makes ``folder`` (codes, ids and maybe vectors already in it) a collection."""
        manifest = {"embedlab_version": __version__, "n": n, "has_vectors": has_vectors, "codec": codec.to_dict()}
        (folder / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")

    @classmethod
    def open(cls, path: str | os.PathLike) -> CompressedCollection:
        """Read a collection written by :meth:`save`; the full vectors stay on disk (memory-mapped).

        Raises
        ------
        EmbeddingDataError
            Naming the file that is missing, unreadable or inconsistent with the others.
        """
        root = Path(path)
        if not (root / MANIFEST).is_file():
            raise EmbeddingDataError(
                f"{root} is not an embedlab compressed collection (no {MANIFEST}); create one with "
                "'embedlab compress apply'."
            )
        manifest = read_document(root / MANIFEST, what="collection manifest", max_bytes=MAX_ARRAY_DOCUMENT_BYTES)
        with document_errors(root / MANIFEST, "collection manifest"):
            codec = Codec.from_dict(manifest["codec"])
            n = check_int(manifest["n"], "n", minimum=0)
            has_vectors = manifest.get("has_vectors")
        codes = _read_array(root / _CODES, (n, codec.bytes_per_vector), np.uint8, mmap=False)
        ids = read_id_file(root / _IDS, n)
        vectors = _read_array(root / _VECTORS, (n, codec.dim_), np.float32, mmap=True) if has_vectors else None
        return cls(codec, codes, ids, vectors)


def _read_array(path: Path, shape: tuple[int, int], dtype: type, *, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise EmbeddingDataError(f"{path} is missing from the collection.")
    array = load_npy(path, mmap=mmap)
    if array.shape != shape or array.dtype != dtype:
        raise EmbeddingDataError(
            f"{path} holds {array.dtype} {array.shape}; the manifest expects {np.dtype(dtype)} {shape}."
        )
    return array
