"""JSON in and out: results made JSON-ready (numpy scalars to Python scalars, NaN and infinities to None), fitted
arrays as base64 documents and back, and the one reader of every JSON document embedlab reads back from disk
(manifests, cards, adapters, codecs, checkpoints), with a size limit and errors that name the file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.exceptions import EmbeddingDataError

__all__ = [
    "MAX_ARRAY_DOCUMENT_BYTES",
    "MAX_DOCUMENT_BYTES",
    "array_from_json",
    "array_to_json",
    "document_errors",
    "json_safe",
    "member",
    "plain",
    "read_document",
    "split_timings",
    "with_timings",
]

#: The largest JSON document :func:`read_document` parses unless told otherwise (manifests and cards are a few
#: kilobytes; adapters and codecs carry their fitted arrays and are read with their own, larger limit).
MAX_DOCUMENT_BYTES = 16 * 2**20
#: The limit for documents that carry fitted arrays as base64 (adapters, codecs and the manifests holding them).
MAX_ARRAY_DOCUMENT_BYTES = 2**30


def plain(value: object) -> object:
    """A numpy scalar as the Python scalar it holds; anything else unchanged.

    Examples
    --------
    >>> type(plain(np.int64(3))).__name__
    'int'
    """
    return value.item() if isinstance(value, np.generic) else value


def json_safe(value: object) -> object:
    """``value`` with numpy scalars made plain and NaN or infinite floats made None, recursively.

    Examples
    --------
    >>> json_safe({"a": [np.float32(1.5), float("nan")], "b": np.inf})
    {'a': [1.5, None], 'b': None}
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def with_timings(document: dict[str, Any], *names: str) -> dict[str, Any]:
    """``document`` with the keys ``names`` (wall-clock measurements) moved into its ``"timings"`` block, so that
    two runs of the same work give the same document outside that block.

    Examples
    --------
    >>> with_timings({"n": 3, "seconds": 1.5}, "seconds")
    {'n': 3, 'timings': {'seconds': 1.5}}
    """
    timings = {name: document[name] for name in names}
    return {**{k: v for k, v in document.items() if k not in names}, "timings": timings}


def split_timings(documents: list[dict[str, Any]], *names: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each of ``documents`` split into what it computed and its wall-clock measurements ``names``: two lists in
    the same order, the second for a ``"timings"`` block (see :func:`with_timings`).

    Examples
    --------
    >>> split_timings([{"recall": 0.9, "query_ms": 1.2}], "query_ms")
    ([{'recall': 0.9}], [{'query_ms': 1.2}])
    """
    split = [with_timings(document, *names) for document in documents]
    return [{k: v for k, v in part.items() if k != "timings"} for part in split], [part["timings"] for part in split]


def array_to_json(array: np.ndarray) -> dict[str, Any]:
    """An array as ``{"dtype", "shape", "base64", "sha256"}``: its raw bytes, exactly restorable, and their
    digest, so that a damaged document is refused instead of handing damaged state (a serialised faiss index)
    to the code that uses it."""
    array = np.ascontiguousarray(array)
    return {
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "base64": base64.b64encode(array).decode("ascii"),
        "sha256": hashlib.sha256(array.data).hexdigest(),
    }


def array_from_json(document: dict[str, Any]) -> np.ndarray:
    """The array saved by :func:`array_to_json`, as a new writable array.

    Raises
    ------
    EmbeddingDataError
        When the document is not such an array: not base64, a dtype that is not a plain number type (objects are
        never decoded), a shape its bytes do not fill, or bytes whose digest is not the one written with them
        (documents written before digests were kept have none, and are read without the check).
    """
    try:
        dtype = np.dtype(document["dtype"])
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise ValueError(f"dtype {dtype} is not a number type")
        shape = tuple(int(size) for size in document["shape"])
        data = base64.b64decode(document["base64"], validate=True)
        if "sha256" in document and hashlib.sha256(data).hexdigest() != document["sha256"]:
            raise ValueError("its bytes are not those it was written with (the SHA-256 differs)")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        raise EmbeddingDataError(f"an array of the document is corrupt ({type(error).__name__}: {error}).") from error


def read_document(path: str | os.PathLike, *, what: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """The JSON object in ``path``, refused before parsing when it is larger than ``max_bytes``.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file should be ("the index manifest"), for the message.
    max_bytes : int
        The size limit.

    Raises
    ------
    EmbeddingDataError
        Naming the file, when it is missing, larger than the limit, not UTF-8, not JSON, nested too deeply to
        parse, or JSON that is not an object.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise EmbeddingDataError(
                f"{path}: {size:,} bytes, more than the {max_bytes:,} a valid {what} can hold; it is not one."
            )
        document = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise EmbeddingDataError(f"{path} is missing ({what}).") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        if isinstance(error, EmbeddingDataError):
            raise
        raise EmbeddingDataError(f"{path} is not a readable {what} ({type(error).__name__}: {error}).") from None
    if not isinstance(document, dict):
        raise EmbeddingDataError(f"{path} is not a valid {what} (a JSON {type(document).__name__}, not an object).")
    return document


@contextmanager
def document_errors(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn what a parsed document's shape can raise (a missing key, a value of the wrong type) into one
    :class:`~embedlab.exceptions.EmbeddingDataError` naming the file.

    Examples
    --------
    >>> with document_errors("index.json", "index manifest"):
    ...     {"n": 1}["dim"]
    Traceback (most recent call last):
    ...
    embedlab.exceptions.EmbeddingDataError: index.json is not a valid index manifest (KeyError: 'dim').
    """
    try:
        yield
    except EmbeddingDataError as error:
        if str(path) in str(error):
            raise
        raise EmbeddingDataError(f"{path}: {error}") from error
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as error:
        raise EmbeddingDataError(f"{path} is not a valid {what} ({type(error).__name__}: {error}).") from error


def member(folder: str | os.PathLike, name: object, *, what: str) -> Path:
    """The file ``name`` of ``folder`` as a document lists it, refused unless it is a plain name inside the folder
    (no separator, no ``..``, not absolute), so that no document can point a reader outside its folder.

    Examples
    --------
    >>> member("index", "codes.npy", what="the index manifest").as_posix()
    'index/codes.npy'
    >>> member("index", "../secret", what="the index manifest")
    Traceback (most recent call last):
    ...
    embedlab.exceptions.EmbeddingDataError: index: the index manifest names '../secret', which is not a file of \
the folder.
    """
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or Path(name).is_absolute()
    ):
        raise EmbeddingDataError(f"{folder}: {what} names {name!r}, which is not a file of the folder.")
    return Path(folder) / name
