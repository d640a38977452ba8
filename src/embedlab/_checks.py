"""Parameter checks, declared once: every public function and estimator checks its integers, numbers and choices
here, so each error names the parameter, the accepted values and what it got in the same words."""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

import numpy as np

from embedlab.exceptions import ConfigurationError

__all__ = ["check_choice", "check_int", "check_positive"]

T = TypeVar("T")


def check_int(value: object, name: str, minimum: int = 1, *, maximum: int | None = None, why: str = "") -> int:
    """``value`` as a Python int in ``[minimum, maximum]``, or a ConfigurationError naming the bounds.

    Parameters
    ----------
    value : object
        What the caller passed; booleans are refused although Python counts them as integers.
    name : str
        The parameter's name, as the caller knows it.
    minimum : int, default=1
    maximum : int, optional
        No upper bound when omitted.
    why : str, default=""
        What sets the upper bound (``"the rows of X"``), quoted in the message.

    Examples
    --------
    >>> check_int(np.int64(3), "k")
    3
    >>> check_int(0, "k")
    Traceback (most recent call last):
    ...
    embedlab.exceptions.ConfigurationError: k must be an integer >= 1, got 0.
    """
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if integral and minimum <= value and (maximum is None or value <= maximum):
        return int(value)
    if maximum is None:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    because = f" ({why})" if why else ""
    raise ConfigurationError(f"{name} must be an integer between {minimum} and {maximum}{because}, got {value!r}.")


def check_positive(value: object, name: str, *, upper: float | None = None) -> float:
    """``value`` as a float in ``(0, upper]`` (unbounded when ``upper`` is None), or a ConfigurationError.

    Examples
    --------
    >>> check_positive(0.95, "target_recall", upper=1.0)
    0.95
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigurationError(f"{name} must be a number, got {value!r}.")
    if not 0 < value <= (np.inf if upper is None else upper):
        bound = "" if upper is None else f" and at most {upper:g}"
        raise ConfigurationError(f"{name} must be positive{bound}, got {value!r}.")
    return float(value)


def check_choice(value: T, name: str, choices: Collection[object]) -> T:
    """``value`` itself, or a ConfigurationError naming the choices when it is not one of them.

    Examples
    --------
    >>> check_choice("l2", "metric", ("cosine", "l2"))
    'l2'
    """
    if isinstance(value, str | int | float | bool | None) and value in choices:
        return value
    raise ConfigurationError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")
