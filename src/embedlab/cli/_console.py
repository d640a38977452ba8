"""Terminal output: consoles, logging set-up, Rich progress bars, JSON output and error rendering."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.traceback import Traceback

from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import EmbedlabError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_DATA_ERROR = 2


def stderr_console() -> Console:
    """A Rich console on the current stderr (looked up at call time, so test runners can capture it)."""
    return Console(stderr=True, soft_wrap=True)


class RichProgress:
    """A :class:`ProgressReporter` drawing Rich progress bars on stderr; nested tasks share one display."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._open = 0

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if self._bar is None:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._bar = Progress(*columns, console=self.console, transient=True)
            self._bar.start()
        bar = self._bar
        task_id = bar.add_task(description, total=total)
        self._open += 1
        try:
            yield lambda n: bar.advance(task_id, n)
        finally:
            bar.remove_task(task_id)
            self._open -= 1
            if self._open == 0:
                bar.stop()
                self._bar = None


def setup(quiet: bool, verbose: int) -> ProgressReporter:
    """Configure logging for a command and return the progress reporter it should use."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    console = stderr_console()
    handler = RichHandler(console=console, show_time=False, show_path=verbose >= 2)
    logger = logging.getLogger("embedlab")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return NULL_PROGRESS if quiet else RichProgress(console)


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def error_message(error: BaseException) -> str:
    """One paragraph for a user: embedlab's message, or what the system refused on which file.

    Examples
    --------
    >>> error_message(PermissionError(13, "Permission denied", "/data/out.parquet"))
    '/data/out.parquet: permission denied.'
    """
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename is not None else ""
        return f"{where}{error.strerror[0].lower()}{error.strerror[1:]}."
    return " ".join(str(error).split("\n\n"))


def handles_errors(command: F) -> F:
    """Turn embedlab errors, and what the system refuses (a file that cannot be written, a full disk, an output
    folder that is not an earlier output), into one red paragraph on stderr and exit code 2; the traceback only
    with ``-v``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (EmbedlabError, OSError) as err:
            console = stderr_console()
            if logging.getLogger("embedlab").isEnabledFor(logging.INFO):  # -v
                console.print(Traceback.from_exception(type(err), err, err.__traceback__))
            console.print(f"[bold red]error:[/] {escape(error_message(err))}", highlight=False, markup=True)
            raise typer.Exit(EXIT_DATA_ERROR) from None

    return wrapper  # type: ignore[return-value]
