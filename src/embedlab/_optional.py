"""Lazy imports of optional dependencies, each failing with the exact command that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from embedlab.exceptions import MissingDependencyError

__all__ = ["import_optional"]


def import_optional(module: str, extra: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it.

    Parameters
    ----------
    module : str
        Dotted module name, for example ``"sentence_transformers"``.
    extra : str
        The embedlab extra that installs it, for example ``"text"``.
    purpose : str
        What the caller needs it for, shown in the error message.

    Returns
    -------
    types.ModuleType
        The imported module.

    Examples
    --------
    >>> import_optional("json", "dev", purpose="a doctest").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module.split('.')[0]}', which is not installed. "
            f'Install it with: pip install "embedlab[{extra}]"'
        ) from err
