"""Turning results into JSON-ready values: numpy scalars to Python scalars, NaN and infinities to None."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["json_safe", "plain"]


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
