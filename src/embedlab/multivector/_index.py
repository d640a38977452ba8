"""A multi-vector index on disk: the documents' (pooled) token vectors and their MUVERA encodings, built by
streaming the documents in batches, searched by encoding candidates and an exact MaxSim rerank."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.compress import CompressedCollection, compress_shards
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.multivector import MultiVectorSet, iter_multivector_batches, load_multivector, open_multivector
from embedlab.io.readers import load
from embedlab.io.writers import atomic_directory, write_json
from embedlab.multivector._fde import MuveraEncoder
from embedlab.multivector._pooling import pool_tokens
from embedlab.multivector._search import MultiVectorSearcher, encode_rows
from embedlab.neighbors import ExactSearcher
from embedlab.neighbors.result import KnnResult

__all__ = ["MULTIVECTOR_MANIFEST", "MultiVectorIndex", "build_multivector_index"]

MULTIVECTOR_MANIFEST = "multivector.json"
_DOCUMENTS = "documents.parquet"
_ENCODINGS = "encodings.parquet"
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
        try:
            manifest = json.loads((root / MULTIVECTOR_MANIFEST).read_text(encoding="utf-8"))
            settings = manifest["encoder"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise EmbeddingDataError(
                f"{root}: not a multi-vector index ({MULTIVECTOR_MANIFEST} missing or unreadable: {err}); build one "
                "with 'embedlab multivector build'."
            ) from None
        if manifest.get("format") != _FORMAT:
            raise EmbeddingDataError(f"{root}: a multi-vector index of format {manifest.get('format')}, not {_FORMAT}.")
        documents = load_multivector(root / _DOCUMENTS)
        encodings = load(root / _ENCODINGS)
        if len(documents) != manifest["n_documents"] or encodings.ids.tolist() != documents.ids.tolist():
            raise EmbeddingDataError(f"{root}: its documents and encodings disagree with its manifest; rebuild it.")
        encoder = MuveraEncoder(**settings).fit(documents.dim)
        if encoder.n_features_out_ != encodings.dim:
            raise EmbeddingDataError(f"{root}: encodings of dimension {encodings.dim}, not the manifest's.")
        if manifest.get("codec"):
            first_stage = CompressedCollection.open(root / _CODES).searcher()
        else:
            first_stage = ExactSearcher(encodings.vectors, "ip")
        searcher = MultiVectorSearcher(
            documents, encoder, candidates=candidates or manifest["candidates"], searcher=first_stage
        )
        return cls(root, manifest, searcher)

    def __len__(self) -> int:
        return len(self.searcher.documents)

    def search(self, queries: MultiVectorSet, k: int = 10) -> KnnResult:
        """The ``k`` documents of highest MaxSim among each query's candidates (see :class:`MultiVectorSearcher`)."""
        return self.searcher.search(queries, k)


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
    progress: ProgressReporter = NULL_PROGRESS,
) -> MultiVectorIndex:
    """Build a multi-vector index folder from a multi-vector file, streaming it ``batch_rows`` rows at a time.

    Each batch is pooled (:func:`pool_tokens`, when ``pool_factor > 1``) and encoded (:class:`MuveraEncoder`,
    fitted on the file's token dimension: encodings are data-oblivious, so a batch needs nothing from the
    others); the pooled tokens and the encodings are appended to ``documents.parquet`` and
    ``encodings.parquet``, so memory stays near one batch. The folder appears whole, atomically. The encodings
    file is an ordinary embedding set: any codec or index of embedlab applies to it.

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
    progress : ProgressReporter, optional

    Returns
    -------
    MultiVectorIndex

    Raises
    ------
    EmbeddingDataError
        On an unreadable or invalid file (named, with its rows), or ids repeated across batches.
    ConfigurationError
        On bad settings, or an output that exists and is not an index.
    """
    encoder = MuveraEncoder() if encoder is None else encoder
    candidates = check_int(candidates, "candidates")
    source = open_multivector(documents, column=column, id_column=id_column)
    settings = {
        "k_sim": encoder.k_sim,
        "d_proj": encoder.d_proj,
        "repetitions": encoder.repetitions,
        "fill_empty": encoder.fill_empty,
        "final_dim": encoder.final_dim,
        "max_dim": encoder.max_dim,
        "random_state": encoder.random_state,
    }
    seen: set = set()
    n_rows = n_tokens = 0
    try:
        with atomic_directory(output, replaceable=MULTIVECTOR_MANIFEST) as tmp:
            writers: dict[str, pq.ParquetWriter] = {}
            try:
                with progress.task("Building the multi-vector index", source.n_rows) as advance:
                    for batch in iter_multivector_batches(documents, batch_rows, column=column, id_column=id_column):
                        if not hasattr(encoder, "repetitions_"):
                            encoder.fit(batch.dim)
                        repeated = seen.intersection(batch.ids.tolist())
                        if repeated:
                            raise EmbeddingDataError(
                                f"{documents}: ids repeated across the file (first: {sorted(map(str, repeated))[:5]})."
                            )
                        seen.update(batch.ids.tolist())
                        pooled = pool_tokens(batch, pool_factor, method=pool_method, protected=protected)
                        encoded = encode_rows(encoder, pooled)
                        for name, table in ((_DOCUMENTS, pooled.to_table()), (_ENCODINGS, encoded.to_table())):
                            if name not in writers:
                                writers[name] = pq.ParquetWriter(tmp / name, table.schema, compression="zstd")
                            writers[name].write_table(table.cast(writers[name].schema))
                        n_rows, n_tokens = n_rows + len(pooled), n_tokens + pooled.n_tokens
                        advance(len(batch))
            finally:
                for writer in writers.values():
                    writer.close()
            if not writers:
                raise EmbeddingDataError(f"{documents}: the input is empty (0 rows).")
            if codec is not None:
                compress_shards(tmp / _ENCODINGS, codec, tmp / _CODES, metric="ip", random_state=encoder.random_state)
            manifest = {
                "format": _FORMAT,
                "source": str(documents),
                "model": source.model,
                "n_documents": n_rows,
                "n_tokens": n_tokens,
                "dim": encoder.dim_,
                "encoder": settings,
                "encoding_dim": encoder.n_features_out_,
                "pooling": {"factor": pool_factor, "method": pool_method, "protected": protected},
                "candidates": candidates,
                "codec": codec,
            }
            write_json(manifest, tmp / MULTIVECTOR_MANIFEST)
    except FileExistsError as err:
        raise ConfigurationError(str(err)) from None
    return MultiVectorIndex.open(output)
