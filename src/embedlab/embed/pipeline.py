"""embed_file: texts in a file -> an embeddings Parquet file, in resumable shards encoded on any backend."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedlab._checks import check_int
from embedlab._json import read_document, with_timings
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.embed.encoder import DEFAULT_MODEL_NAME, embed_texts, embed_tokens, load_encoder
from embedlab.exceptions import EmbeddingDataError
from embedlab.io.embedding_set import VECTOR_COLUMN, EmbeddingSet
from embedlab.io.multivector import TOKENS_COLUMN, MultiVectorSet
from embedlab.io.text_sources import read_texts
from embedlab.io.validation import OnInvalid
from embedlab.io.writers import atomic_path, write_json
from embedlab.scale import Backend, get_backend

__all__ = ["EmbedReport", "embed_file", "shard_dir"]

logger = logging.getLogger(__name__)

_MANIFEST = "manifest.json"

#: The encoder this process loaded last, by model: a worker embeds shard after shard with one load.
_LOADED: dict[str, Any] = {}


@dataclass(frozen=True)
class EmbedReport:
    """What :func:`embed_file` did.

    Attributes
    ----------
    output : str
        The Parquet file written.
    n, dim : int
        Rows embedded and their dimension.
    model : str
        The model used.
    shards, shards_reused : int
        Shards in all, and shards found finished from an earlier run and not embedded again.
    seconds : float
        Wall time.
    validation : dict
        Rows dropped from the input (with ``on_invalid="drop"``), by reason, with their ids.
    """

    output: str
    n: int
    dim: int
    model: str
    shards: int
    shards_reused: int
    seconds: float
    validation: dict

    def to_dict(self) -> dict:
        """JSON-ready dictionary (``seconds`` in its ``timings`` block)."""
        return with_timings(asdict(self), "seconds")


def shard_dir(output: Path) -> Path:
    """Where the shards of ``output`` are kept until it is complete."""
    return output.with_name(output.name + ".shards")


def embed_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    model: str | os.PathLike | None = None,
    batch_size: int = 64,
    shard_size: int = 4096,
    on_invalid: OnInvalid = "raise",
    token_embeddings: bool = False,
    keep_special: bool = False,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> EmbedReport:
    """Embed every text of a file into a Parquet file of ids, texts, vectors and the file's other columns.

    Work is saved in shards of ``shard_size`` rows beside the output (``OUTPUT.shards/``); a re-run with the
    same input, model and shard size skips the finished shards, so an interrupted run resumes where it
    stopped. The output is written atomically, then the shards are removed.

    Each unfinished shard is one item of ``backend``: its texts go to the task, which encodes them with the
    model its process loaded once (a Ray actor of :class:`~embedlab.scale.RayBackend` keeps it across shards)
    and writes the shard's file itself; only the file's name and row count come back. Shards finished before
    a worker died stay finished, and a retried shard rewrites its own file, so nothing is embedded twice into
    the output.

    Parameters
    ----------
    input_path : path-like
        ``.txt``, ``.jsonl``, ``.csv`` or ``.parquet`` (see :func:`embedlab.io.text_sources.read_texts`).
    output_path : path-like
        The ``.parquet`` file to write.
    text_column, id_column : str, optional
        Columns of the texts and ids; auto-detected when omitted.
    model : path-like, optional
        A sentence-transformers model folder; the bundled all-MiniLM-L6-v2 when omitted.
    batch_size : int, default=64
        Texts per forward pass.
    shard_size : int, default=4096
        Rows per resumable shard.
    on_invalid : {"raise", "drop"}, default="raise"
        What to do with empty texts and repeated ids.
    token_embeddings : bool, default=False
        Write each text's token vectors (the last layer's states, unit-normalised) instead of one vector: a
        multi-vector file (``tokens`` column, :func:`embedlab.multivector.load_multivector`).
    keep_special : bool, default=False
        With ``token_embeddings``, keep the special tokens ([CLS], [SEP]).
    backend : {"local", "ray"} or Backend, default="local"
        Where the shards are encoded. On Ray, the model folder and ``OUTPUT.shards/`` must be on a file
        system every node sees.
    progress : ProgressReporter, optional
        Receives the shards done.

    Returns
    -------
    EmbedReport

    Raises
    ------
    ConfigurationError
        On bad parameters, or a model path that is not a folder.
    EmbeddingDataError
        On an unreadable input or invalid texts (with ``on_invalid="raise"``), naming the file and rows.
    """
    started = time.perf_counter()
    shard_size = check_int(shard_size, "shard_size")
    output = Path(output_path)
    table, validation = read_texts(input_path, text_column=text_column, id_column=id_column, on_invalid=on_invalid)
    model_name = DEFAULT_MODEL_NAME if model is None else str(Path(model).resolve())
    shards = shard_dir(output)
    manifest = _manifest(Path(input_path), table.num_rows, text_column, id_column, model_name, shard_size, on_invalid)
    manifest["tokens"] = {"keep_special": bool(keep_special)} if token_embeddings else None
    _prepare_shards(shards, manifest)
    n_shards = -(-table.num_rows // shard_size)
    todo = [i for i in range(n_shards) if not (shards / _shard_name(i)).exists()]
    runner = get_backend(backend)
    if todo:  # loaded here first: a bad model folder is named before any shard is sent, and local shards reuse it
        _LOADED[model_name] = load_encoder(model)
    try:
        runner.map(
            _embed_shard,
            [(i, _rows(table, i * shard_size, shard_size, copy=runner.name != "local")) for i in todo],
            None if model is None else str(Path(model).resolve()),
            model_name,
            batch_size,
            str(input_path),
            manifest["tokens"],
            str(shards),
            progress=progress,
            description=f"Embedding {table.num_rows:,} texts in {len(todo)} of {n_shards} shards",
        )
    finally:
        _LOADED.clear()
    dim = _concatenate_shards(shards, n_shards, output)
    shutil.rmtree(shards)
    report = EmbedReport(
        output=str(output),
        n=table.num_rows,
        dim=dim,
        model=model_name,
        shards=n_shards,
        shards_reused=n_shards - len(todo),
        seconds=round(time.perf_counter() - started, 3),
        validation=validation.to_dict(),
    )
    logger.info("embedded %d texts into %s in %.1f s", report.n, output, report.seconds)
    return report


def _embed_shard(
    item: tuple[int, pa.Table],
    model: str | None,
    model_name: str,
    batch_size: int,
    source: str,
    tokens: dict | None,
    folder: str,
) -> tuple[str, int]:
    """Encode one shard's texts where the backend runs it and write its file (atomically); its name and rows."""
    number, part = item
    if model_name not in _LOADED:
        _LOADED.clear()
        _LOADED[model_name] = load_encoder(model)
    texts, ids = part.column("text").to_pylist(), part.column("id").to_numpy(zero_copy_only=False)
    if tokens is None:
        vectors = embed_texts(texts, _LOADED[model_name], batch_size=batch_size)
        emb = EmbeddingSet(vectors, ids, part.drop_columns(["id"]), source=source, model=model_name)
    else:
        vectors, offsets = embed_tokens(
            texts, _LOADED[model_name], keep_special=tokens["keep_special"], batch_size=batch_size
        )
        emb = MultiVectorSet(vectors, offsets, ids, part.drop_columns(["id"]), source=source, model=model_name)
    emb.to_parquet(Path(folder) / _shard_name(number))
    return _shard_name(number), part.num_rows


def _rows(table: pa.Table, start: int, n: int, *, copy: bool) -> pa.Table:
    """``n`` rows from ``start``; copied for another process, as a slice would carry the whole table's buffers."""
    if not copy:
        return table.slice(start, n)
    return table.take(np.arange(start, min(start + n, table.num_rows)))


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}.parquet"


def _manifest(
    path: Path,
    n_rows: int,
    text_column: str | None,
    id_column: str | None,
    model: str,
    shard_size: int,
    on_invalid: OnInvalid,
) -> dict:
    stat = path.stat()
    return {
        "input": str(path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "rows": n_rows,
        "text_column": text_column,
        "id_column": id_column,
        "model": model,
        "shard_size": shard_size,
        "on_invalid": on_invalid,
    }


def _prepare_shards(shards: Path, manifest: dict) -> None:
    """Keep finished shards of the same job; clear shards of any other job."""
    manifest_path = shards / _MANIFEST
    if manifest_path.exists():
        try:
            previous = read_document(manifest_path, what="embedding job manifest")
        except EmbeddingDataError:
            previous = None
        if previous == manifest:
            logger.info("resuming from the finished shards in %s", shards)
            return
        logger.info("shards in %s belong to another input or settings; starting over", shards)
        shutil.rmtree(shards)
    shards.mkdir(parents=True, exist_ok=True)
    write_json(manifest, manifest_path)


def _concatenate_shards(shards: Path, n_shards: int, output: Path) -> int:
    """Stream the shards into one Parquet file, atomically; return the dimension."""
    first = pq.read_schema(shards / _shard_name(0))
    vectors = (
        first.field(TOKENS_COLUMN).type.value_type if TOKENS_COLUMN in first.names else first.field(VECTOR_COLUMN).type
    )
    dim = vectors.list_size
    with atomic_path(output) as tmp, pq.ParquetWriter(tmp, first, compression="zstd") as writer:
        for i in range(n_shards):
            writer.write_table(pq.read_table(shards / _shard_name(i)).cast(first))
    return int(dim)
