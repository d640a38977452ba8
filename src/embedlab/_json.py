"""Turning results into JSON-ready values: numpy scalars to Python scalars, NaN and infinities to None, and
fitted arrays to base64 documents and back."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

__all__ = ["array_from_json", "array_to_json", "json_safe", "plain"]


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


def array_to_json(array: np.ndarray) -> dict[str, Any]:
    """An array as ``{"dtype", "shape", "base64"}`` (its raw bytes, exactly restorable)."""
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "base64": base64.b64encode(array).decode("ascii")}


def array_from_json(document: dict[str, Any]) -> np.ndarray:
    """The array saved by :func:`array_to_json`, as a new writable array."""
    data = base64.b64decode(document["base64"])
    return np.frombuffer(data, dtype=np.dtype(document["dtype"])).reshape(document["shape"]).copy()
