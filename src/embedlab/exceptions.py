"""The embedlab error hierarchy: every error the library raises on purpose derives from EmbedlabError."""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "EmbeddingDataError",
    "EmbedlabError",
    "MissingDependencyError",
    "ResourceLimitError",
]


class EmbedlabError(Exception):
    """Base class of every error embedlab raises on purpose."""


class EmbeddingDataError(EmbedlabError, ValueError):
    """The input data is unusable: unreadable file, bad values, wrong shape, duplicate ids, ...

    The message names the input, the problem, how many rows are affected, the first offending ids, and
    what to do about it.
    """


class ConfigurationError(EmbedlabError, ValueError):
    """A parameter is out of range or inconsistent with the data (for example ``k >= n``)."""


class MissingDependencyError(EmbedlabError, ImportError):
    """An optional dependency is needed; the message gives the exact ``pip install`` command."""


class ResourceLimitError(EmbedlabError):
    """A job needs more memory than it may have: the message gives the estimate, the room there is and the ways
    out (a sample, streaming the set in shards, a Ray cluster)."""
