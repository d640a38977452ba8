"""A multi-vector index on disk: the documents' (pooled) token vectors and their MUVERA encodings, built by
streaming the documents in batches, searched by encoding candidates and an exact MaxSim rerank."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from embedlab._checks import check_choice, check_int
from embedlab._json import document_errors, read_document
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.compress import CompressedCollection, compress_shards
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.multivector import MultiVectorSet, iter_multivector_batches, load_multivector, open_multivector
from embedlab.io.readers import Part, load
from embedlab.io.validation import plain, repeated_positions
from embedlab.io.writers import atomic_directory, atomic_path, write_json
from embedlab.multivector._fde import MuveraEncoder
from embedlab.multivector._pooling import POOLING_METHODS, pool_tokens
from embedlab.multivector._search import MultiVectorSearcher, encode_rows
from embedlab.neighbors import ExactSearcher
from embedlab.neighbors.result import KnnResult
from embedlab.scale import Backend, get_backend

__all__ = ["MULTIVECTOR_MANIFEST", "MultiVectorIndex", "build_multivector_index"]

MULTIVECTOR_MANIFEST = "multivector.json"
_DOCUMENTS = "documents"
_ENCODINGS = "encodings"
_ENCODER_SETTINGS = ("k_sim", "d_proj", "repetitions", "fill_empty", "final_dim", "max_dim", "random_state")
_CODES = "encodings.embc"
_FORMAT = 1


@dataclass
class MultiVectorIndex:
    """An index built by :func:`build_multivector_index`, opened with :meth:`open`.

    Attributes
    ----------
    path : Path
    manifest : dict
        The encoder and pooling settings, the row counts, the source and model.
    searcher : MultiVectorSearcher
    """

    path: Path
    manifest: dict
    searcher: MultiVectorSearcher

    @classmethod
    def open(cls, path: str | os.PathLike, *, candidates: int | None = None) -> MultiVectorIndex:
        """Read an index folder (the token vectors and encodings are loaded into memory).

        Raises
        ------
        EmbeddingDataError
            When the folder is not an index embedlab wrote, or its files do not agree with its manifest.
        """
        root = Path(path)
        manifest_path = root / MULTIVECTOR_MANIFEST
        if not manifest_path.is_file():
            raise EmbeddingDataError(
                f"{root}: not a multi-vector index (no {MULTIVECTOR_MANIFEST}); build one with 'embedlab multivector "
                "build'."
            )
        manifest = read_document(manifest_path, what="multi-vector index manifest")
        if manifest.get("format") != _FORMAT:
            raise EmbeddingDataError(f"{root}: a multi-vector index of format {manifest.get('format')}, not {_FORMAT}.")
        documents = load_multivector(root / _DOCUMENTS)
        encodings = load(root / _ENCODINGS)
        with document_errors(manifest_path, "multi-vector index manifest"):
            if len(documents) != manifest["n_documents"] or encodings.ids.tolist() != documents.ids.tolist():
                raise EmbeddingDataError(f"{root}: its documents and encodings disagree with its manifest; rebuild it.")
            encoder = MuveraEncoder(**manifest["encoder"]).fit(documents.dim)
            candidates = check_int(candidates or manifest["candidates"], "candidates")
        if encoder.n_features_out_ != encodings.dim:
            raise EmbeddingDataError(f"{root}: encodings of dimension {encodings.dim}, not the manifest's.")
        if manifest.get("codec"):
            first_stage = CompressedCollection.open(root / _CODES).searcher()
        else:
            first_stage = ExactSearcher(encodings.vectors, "ip")
        searcher = MultiVectorSearcher(documents, encoder, candidates=candidates, searcher=first_stage)
        return cls(root, manifest, searcher)

    def __len__(self) -> int:
        return len(self.searcher.documents)

    def search(self, queries: MultiVectorSet, k: int = 10) -> KnnResult:
        """The ``k`` documents of highest MaxSim among each query's candidates (see :class:`MultiVectorSearcher`)."""
        return self.searcher.search(queries, k)


#: Documents a shard of the build holds by default (each task reads its shard in batches of ``batch_rows``).
SHARD_ROWS = 65_536


def _build_shard(
    item: tuple[int, Part],
    documents: str,
    settings: dict,
    pooling: dict,
    column: str | None,
    id_column: str | None,
    batch_rows: int,
    folder: str,
) -> tuple[np.ndarray, int]:
    """Pool and encode one shard of the documents where the backend runs it, writing its part of
    ``documents/`` and ``encodings/`` (atomically); its ids and pooled token count come back."""
    number, part = item
    encoder = MuveraEncoder(**{k: v for k, v in settings.items() if k != "dim"}).fit(settings["dim"])
    batches = iter_multivector_batches(documents, batch_rows, column=column, id_column=id_column, part=part)
    first = next(batches, None)
    if first is None:  # a part without rows (a Lance fragment whose rows were deleted) writes nothing
        return np.empty(0, np.int64), 0
    name = f"part-{number:05d}.parquet"
    writers: dict[str, pq.ParquetWriter] = {}
    ids, tokens = [], 0
    with atomic_path(Path(folder) / _DOCUMENTS / name) as docs, atomic_path(Path(folder) / _ENCODINGS / name) as codes:
        try:
            for batch in itertools.chain([first], batches):
                pooled = pool_tokens(batch, **pooling, random_state=encoder.random_state)
                encoded = encode_rows(encoder, pooled)
                for target, table in ((docs, pooled.to_table()), (codes, encoded.to_table())):
                    if target not in writers:
                        writers[target] = pq.ParquetWriter(target, table.schema, compression="zstd")
                    writers[target].write_table(table.cast(writers[target].schema))
                ids.append(batch.ids)
                tokens += pooled.n_tokens
        finally:
            for writer in writers.values():
                writer.close()
    return np.concatenate(ids), tokens


def build_multivector_index(
    documents: str | os.PathLike,
    output: str | os.PathLike,
    *,
    encoder: MuveraEncoder | None = None,
    pool_factor: int = 1,
    pool_method: str = "hierarchical",
    protected: int = 0,
    candidates: int = 100,
    codec: str | None = None,
    column: str | None = None,
    id_column: str | None = None,
    batch_rows: int = 4096,
    shard_rows: int = SHARD_ROWS,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> dict:
    """Build a multi-vector index folder from a multi-vector file, shard by shard on ``backend``.

    The file is cut into shards (runs of Parquet row groups, Arrow files or Lance fragments of about
    ``shard_rows`` rows); each shard's task reads its rows ``batch_rows`` at a time, pools them
    (:func:`pool_tokens`, when ``pool_factor > 1``) and encodes them (:class:`MuveraEncoder`: encodings are
    data-oblivious, so every task draws the same matrices from the seed and needs nothing from the others), and
    writes its part of ``documents/`` (pooled tokens) and ``encodings/`` (one vector per document, an ordinary
    embedding set: any codec or index of embedlab applies). Memory stays near one batch a task; only ids and
    counts come back. The folder appears whole, atomically.

    Parameters
    ----------
    documents : path-like
        A multi-vector Parquet file or folder, or Lance dataset (``embedlab embed --token-embeddings``).
    output : path-like
        The index folder (replaced only if it is an earlier index).
    encoder : MuveraEncoder, optional
        Its settings (``MuveraEncoder()`` by default); fitted here.
    pool_factor, pool_method, protected
        See :func:`pool_tokens`.
    candidates : int, default=100
        Candidates a search reranks unless told otherwise.
    codec : str, optional
        A codec spec of :mod:`embedlab.compress` (``"int8"``, ``"pca:512+int8"``, ...): the encodings are also
        written as a compressed collection (``encodings.embc``, built shard by shard) that searches use.
    column, id_column : str, optional
    batch_rows : int, default=4096
    shard_rows : int, default=65,536
    backend : {"local", "ray"} or Backend, default="local"
        On Ray, the documents and ``output`` must be on a file system every node sees.
    progress : ProgressReporter, optional

    Returns
    -------
    dict
        The index's manifest (rows, tokens, encoder and pooling settings); open the index with
        :meth:`MultiVectorIndex.open`.

    Raises
    ------
    EmbeddingDataError
        On an unreadable or invalid file (named, with its rows), or ids repeated across it.
    ConfigurationError
        On bad settings, or an output that exists and is not an index.
    """
    encoder = MuveraEncoder() if encoder is None else encoder
    candidates = check_int(candidates, "candidates")
    batch_rows = check_int(batch_rows, "batch_rows")
    source = open_multivector(documents, column=column, id_column=id_column)
    if source.n_rows == 0:
        raise EmbeddingDataError(f"{documents}: the input is empty (0 rows).")
    dim = source.dim or next(iter_multivector_batches(documents, 1, column=column, id_column=id_column)).dim
    encoder.fit(dim)  # refuses an encoding too large before any shard is read
    settings = {name: getattr(encoder, name) for name in _ENCODER_SETTINGS}
    check_choice(pool_method, "pool_method", POOLING_METHODS)
    pooling = {
        "pool_factor": check_int(pool_factor, "pool_factor"),
        "method": pool_method,
        "protected": check_int(protected, "protected", minimum=0),
    }
    items = list(enumerate(source.parts(check_int(shard_rows, "shard_rows"))))
    try:
        with atomic_directory(output, replaceable=MULTIVECTOR_MANIFEST) as tmp:
            (tmp / _DOCUMENTS).mkdir()
            (tmp / _ENCODINGS).mkdir()
            results = get_backend(backend).map(
                _build_shard,
                items,
                str(documents),
                {**settings, "dim": dim},
                pooling,
                column,
                id_column,
                batch_rows,
                str(tmp),
                progress=progress,
                description=f"Building the multi-vector index ({len(items)} shards)",
            )
            for folder in (_DOCUMENTS, _ENCODINGS):  # left by a worker killed while writing (its task was retried)
                for stray in (tmp / folder).glob(".*.tmp"):
                    stray.unlink()
            ids = np.concatenate([found for found, _ in results])
            repeated = repeated_positions(ids)
            if repeated.size:
                raise EmbeddingDataError(
                    f"{documents}: {repeated.size:,} rows repeat an earlier row's id (first: "
                    f"{[plain(v) for v in ids[repeated[:5]]]}); ids must be unique."
                )
            if codec is not None:
                compress_shards(tmp / _ENCODINGS, codec, tmp / _CODES, metric="ip", random_state=encoder.random_state)
            manifest = {
                "format": _FORMAT,
                "source": str(documents),
                "model": source.model,
                "n_documents": int(ids.size),
                "n_tokens": int(sum(tokens for _, tokens in results)),
                "dim": dim,
                "encoder": settings,
                "encoding_dim": encoder.n_features_out_,
                "pooling": {"factor": pool_factor, "method": pool_method, "protected": protected},
                "candidates": candidates,
                "codec": codec,
            }
            write_json(manifest, tmp / MULTIVECTOR_MANIFEST)
    except FileExistsError as err:
        raise ConfigurationError(str(err)) from None
    return manifest
