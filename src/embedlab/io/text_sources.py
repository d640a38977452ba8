"""Text inputs for embedding: .txt (one text per line), JSONL, CSV and Parquet with a text column."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from embedlab.exceptions import EmbeddingDataError
from embedlab.io.readers import PREFERRED_ID_COLUMNS, check_column_names, is_id_type
from embedlab.io.validation import InvalidRows, OnInvalid, ValidationReport, repeated_positions

__all__ = ["TEXT_COLUMN", "read_texts"]

TEXT_COLUMN = "text"
_PREFERRED_TEXT_COLUMNS = (TEXT_COLUMN, "sentence", "content", "document", "body")


_COMPRESSED = {".gz", ".bz2", ".zst"}


def _format_suffix(path: Path) -> str:
    """The format's suffix, looking through a compression suffix (``texts.jsonl.gz`` -> ``.jsonl``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSED:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _read_table(path: Path) -> pa.Table:
    table = _parse_table(path)
    try:
        table.column_names  # noqa: B018 - names that are not UTF-8 fail here, not later
    except UnicodeDecodeError as err:
        raise EmbeddingDataError(f"{path}: a column name is not UTF-8 text ({err}).") from err
    try:
        table.validate(full=True)  # the JSON reader passes invalid UTF-8 through into string columns
    except pa.ArrowException as err:
        raise EmbeddingDataError(f"{path}: a value is not UTF-8 text ({err}).") from err
    return table


def _parse_table(path: Path) -> pa.Table:
    suffix = _format_suffix(path)
    try:
        if suffix == ".txt":
            with pa.input_stream(str(path), compression="detect") as stream:
                lines = stream.read().decode("utf-8").splitlines()
            return pa.table({TEXT_COLUMN: pa.array(lines, type=pa.string())})
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pajson.read_json(path)
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except UnicodeDecodeError as err:
        raise EmbeddingDataError(f"{path}: not UTF-8 text ({err}).") from err
    except (pa.ArrowInvalid, OSError) as err:
        raise EmbeddingDataError(f"{path}: cannot be parsed as {suffix[1:].upper()} ({err}).") from err
    raise EmbeddingDataError(
        f"{path}: unknown text format {suffix or '(no suffix)'}; use .txt (one text per line), .jsonl, .csv "
        "or .parquet."
    )


def read_texts(
    path: str | os.PathLike,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    on_invalid: OnInvalid = "raise",
) -> tuple[pa.Table, ValidationReport]:
    """Read texts to embed, with their ids and any other columns.

    Parameters
    ----------
    path : path-like
        ``.txt`` (one text per line), ``.jsonl``, ``.csv`` / ``.tsv`` or ``.parquet``.
    text_column : str, optional
        Column holding the texts; ``text`` (or the only string column) when omitted.
    id_column : str, optional
        Column holding unique ids; ``id`` when present, else the row numbers (for ``.txt``, line number - 1).
    on_invalid : {"raise", "drop"}, default="raise"
        What to do with empty or missing texts and repeated ids.

    Returns
    -------
    table : pyarrow.Table
        Columns ``id``, ``text`` and then the file's other columns, in file order.
    report : ValidationReport
        The rows dropped (only with ``on_invalid="drop"``).

    Raises
    ------
    EmbeddingDataError
        Unknown format, unparsable file, no text column, empty input, or invalid rows with
        ``on_invalid="raise"``.
    """
    p = Path(path)
    if not p.is_file():
        raise EmbeddingDataError(f"{p}: no such file.")
    table = _read_table(p)
    check_column_names(p, table.column_names)
    if table.num_rows == 0:
        raise EmbeddingDataError(f"{p}: the input is empty (0 rows).")
    text_name = _text_column(p, table, text_column)
    id_name = id_column or next((c for c in PREFERRED_ID_COLUMNS if c in table.column_names), None)
    if id_name is not None and id_name not in table.column_names:
        raise EmbeddingDataError(f"{p}: no id column {id_name!r} (columns: {', '.join(table.column_names)}).")
    if id_name is not None and not is_id_type(table.schema.field(id_name).type):
        raise EmbeddingDataError(
            f"{p}: the id column {id_name!r} has type {table.schema.field(id_name).type} (binary when it is not "
            "UTF-8); ids must be integers or text."
        )
    ids = (
        pa.array(np.arange(table.num_rows, dtype=np.int64))
        if id_name is None
        else table.column(id_name).combine_chunks()
    )
    try:
        texts = table.column(text_name).combine_chunks().cast(pa.string())
        texts.validate(full=True)  # a binary column cast to strings
    except pa.ArrowException as err:
        raise EmbeddingDataError(
            f"{p}: column {text_name!r} of type {table.schema.field(text_name).type} does not hold UTF-8 texts ({err})."
        ) from err
    others = {c: table.column(c) for c in table.column_names if c not in (text_name, id_name)}
    out = pa.table({"id": ids, TEXT_COLUMN: texts, **{c: v for c, v in others.items() if c not in ("id", TEXT_COLUMN)}})
    problems = _invalid_text_rows(out)
    if problems and on_invalid == "raise":
        details = "; ".join(prob.describe(out.num_rows) for prob in problems)
        raise EmbeddingDataError(
            f"{p}: {details}. Fix the file, or drop these rows explicitly with on_invalid='drop' "
            "(CLI: --on-invalid drop), which lists every dropped id."
        )
    report = ValidationReport(out.num_rows, problems)
    if problems:
        keep = np.ones(out.num_rows, dtype=bool)
        for prob in problems:
            keep[prob.positions] = False
        out = out.filter(pa.array(keep))
        if out.num_rows == 0:
            raise EmbeddingDataError(f"{p}: every row was invalid; nothing is left to embed.")
    return out, report


def _text_column(path: Path, table: pa.Table, requested: str | None) -> str:
    if requested is not None:
        if requested not in table.column_names:
            raise EmbeddingDataError(
                f"{path}: no text column {requested!r} (columns: {', '.join(table.column_names)})."
            )
        return requested
    for name in _PREFERRED_TEXT_COLUMNS:
        if name in table.column_names:
            return name
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if len(strings) == 1:
        return strings[0]
    raise EmbeddingDataError(
        f"{path}: cannot tell which column holds the texts (string columns: {', '.join(strings) or 'none'}); "
        "name it with text_column=... (CLI: --text-column)."
    )


def _invalid_text_rows(table: pa.Table) -> tuple[InvalidRows, ...]:
    texts = table.column(TEXT_COLUMN)
    empty = pc.or_kleene(pc.is_null(texts), pc.equal(pc.utf8_trim_whitespace(texts), "")).fill_null(True)
    ids = table.column("id").to_numpy(zero_copy_only=False)
    problems = []
    bad = np.flatnonzero(empty.to_numpy(zero_copy_only=False))
    if bad.size:
        problems.append(InvalidRows("an empty or missing text", bad, ids[bad]))
    if table.column("id").null_count:
        bad = np.flatnonzero(pc.is_null(table.column("id")).to_numpy(zero_copy_only=False))
        problems.append(InvalidRows("no id", bad, bad))
    else:
        repeated = repeated_positions(ids)
        if repeated.size:
            problems.append(InvalidRows("a duplicate id (an earlier row has the same id)", repeated, ids[repeated]))
    return tuple(problems)
