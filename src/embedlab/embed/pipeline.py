"""embed_file: texts in a file -> an embeddings Parquet file, in resumable shards."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.embed.encoder import DEFAULT_MODEL_NAME, embed_texts, load_encoder
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.text_sources import read_texts
from embedlab.io.validation import OnInvalid
from embedlab.io.writers import atomic_path, write_json

__all__ = ["EmbedReport", "embed_file", "shard_dir"]

logger = logging.getLogger(__name__)

_MANIFEST = "manifest.json"


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
        """JSON-ready dictionary."""
        return asdict(self)


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
    progress: ProgressReporter = NULL_PROGRESS,
) -> EmbedReport:
    """Embed every text of a file into a Parquet file of ids, texts, vectors and the file's other columns.

    Work is saved in shards of ``shard_size`` rows beside the output (``OUTPUT.shards/``); a re-run with the
    same input, model and shard size skips the finished shards, so an interrupted run resumes where it
    stopped. The output is written atomically, then the shards are removed.

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
    progress : ProgressReporter, optional

    Returns
    -------
    EmbedReport
    """
    started = time.perf_counter()
    shard_size = check_int(shard_size, "shard_size")
    output = Path(output_path)
    table, validation = read_texts(input_path, text_column=text_column, id_column=id_column, on_invalid=on_invalid)
    model_name = DEFAULT_MODEL_NAME if model is None else str(Path(model).resolve())
    shards = shard_dir(output)
    manifest = _manifest(Path(input_path), table.num_rows, text_column, id_column, model_name, shard_size, on_invalid)
    _prepare_shards(shards, manifest)
    n_shards = -(-table.num_rows // shard_size)
    todo = [i for i in range(n_shards) if not (shards / _shard_name(i)).exists()]
    encoder = load_encoder(model) if todo else None
    with progress.task(f"Embedding {table.num_rows} texts", table.num_rows) as advance:
        advance(table.num_rows - sum(min(shard_size, table.num_rows - i * shard_size) for i in todo))
        for i in todo:
            part = table.slice(i * shard_size, shard_size)
            vectors = embed_texts(part.column("text").to_pylist(), encoder, batch_size=batch_size)
            emb = EmbeddingSet(
                vectors,
                part.column("id").to_numpy(zero_copy_only=False),
                part.drop_columns(["id"]),
                source=str(input_path),
                model=model_name,
            )
            emb.to_parquet(shards / _shard_name(i))
            advance(part.num_rows)
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
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
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
    dim = first.field("embedding").type.list_size
    with atomic_path(output) as tmp, pq.ParquetWriter(tmp, first, compression="zstd") as writer:
        for i in range(n_shards):
            writer.write_table(pq.read_table(shards / _shard_name(i)).cast(first))
    return int(dim)
