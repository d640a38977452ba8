"""Progress reporting without printing: library code reports work done to a reporter the caller passes.

The library never draws anything itself. The CLI passes a Rich-backed reporter; API users may pass their
own object with the same ``task`` method, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

__all__ = ["NULL_PROGRESS", "ProgressReporter"]

Advance = Callable[[int], None]


class ProgressReporter(Protocol):
    """Something that shows the progress of named tasks."""

    def task(self, description: str, total: int | None) -> AbstractContextManager[Advance]:  # pragma: no cover
        """Open a task of ``total`` units (None when unknown); the context yields ``advance(n)``."""
        ...


class _NullProgress:
    """A reporter that shows nothing."""

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        yield lambda n: None


NULL_PROGRESS: ProgressReporter = _NullProgress()
