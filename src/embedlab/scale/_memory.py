"""Memory: what a job is estimated to hold at its peak, what the machine can give it, and a bound on the job.

A capability states what its job holds as a :class:`MemoryEstimate` (its parts, in bytes); this module knows
nothing of the work itself. :func:`check_memory` refuses a job whose estimate does not fit before it starts, with
the estimate and the ways out in the message; :func:`memory_limit` stops a running job that grows past a bound.
"""

from __future__ import annotations

import _thread
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from embedlab._checks import check_int
from embedlab.exceptions import ResourceLimitError

__all__ = [
    "MemoryEstimate",
    "available_memory",
    "check_memory",
    "format_bytes",
    "job_estimate",
    "memory_limit",
    "memory_room",
    "peak_memory",
    "process_memory",
    "rows_that_fit",
]

# Modules a job may import after the check, and what importing them adds to this process (measured on
# Linux x86-64 with the versions pyproject.toml allows: resident set after the import minus before).
IMPORT_BYTES = {"umap": 125 * 2**20, "torch": 180 * 2**20}

# cgroup (v2, then v1) files that bound a container's memory below what the host reports.
_CGROUP_LIMITS = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def format_bytes(n: float) -> str:
    """``n`` bytes for a person to read.

    Examples
    --------
    >>> format_bytes(3 * 2**30), format_bytes(1536 * 2**10), format_bytes(12)
    ('3.0 GiB', '1.5 MiB', '12 B')
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def process_memory() -> int:
    """The resident set of this process now, in bytes."""
    return int(psutil.Process().memory_info().rss)


def peak_memory() -> int:
    """The largest resident set this process has had (Linux's VmHWM), in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _cgroup_room() -> int | None:
    for limit_file, usage_file in _CGROUP_LIMITS:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            return max(int(limit) - usage, 0)
    return None


def available_memory() -> int:
    """Bytes a new allocation can take without swapping: what the system calls available, or what this
    container's cgroup has left when that is less."""
    room = int(psutil.virtual_memory().available)
    cgroup = _cgroup_room()
    return room if cgroup is None else min(room, cgroup)


@dataclass(frozen=True)
class MemoryEstimate:
    """What a job is estimated to hold at its peak, part by part.

    Attributes
    ----------
    job : str
        What the job is, for messages (``"inspect of 2,000,000 x 768"``).
    parts : tuple of (str, int)
        What is held and how many bytes; ``"this process"`` is what the process held before the job.
    """

    job: str
    parts: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        """The estimated peak resident set of the process, in bytes."""
        return sum(size for _, size in self.parts)

    def describe(self) -> str:
        """The estimate in words: ``"about 3.1 GiB (this process 230.0 MiB, vectors 2.9 GiB)"``."""
        parts = ", ".join(f"{name} {format_bytes(size)}" for name, size in self.parts if size)
        return f"about {format_bytes(self.total)} ({parts})"

    def to_dict(self) -> dict[str, object]:
        return {"job": self.job, "total": self.total, "parts": dict(self.parts)}


def job_estimate(job: str, *parts: tuple[str, float], imports: tuple[str, ...] = ()) -> MemoryEstimate:
    """A :class:`MemoryEstimate` of ``parts`` on top of what this process holds now and the libraries in
    ``imports`` it has not imported yet (:data:`IMPORT_BYTES`).

    Examples
    --------
    >>> estimate = job_estimate("demo", ("vectors", 4e6))
    >>> estimate.parts[0][0], estimate.parts[-1], estimate.total > 4e6
    ('this process', ('vectors', 4000000), True)
    """
    missing = sum(IMPORT_BYTES[name] for name in imports if name not in sys.modules)
    held = (("this process", process_memory()), ("libraries to load", missing))
    return MemoryEstimate(job, held + tuple((name, int(size)) for name, size in parts))


def memory_room(max_memory: int | None = None) -> tuple[int, str]:
    """The bytes a job's process may reach, ``max_memory`` or what it holds now plus :func:`available_memory`,
    and where that bound comes from, in words."""
    if max_memory is not None:
        return check_int(max_memory, "max_memory"), f"--max-memory allows {format_bytes(max_memory)}"
    room = process_memory() + available_memory()
    return room, f"this machine has {format_bytes(room)} for it"


def rows_that_fit(estimate: Callable[[int], MemoryEstimate], n_rows: int, room: int) -> int:
    """The most rows, at most ``n_rows``, whose ``estimate(rows)`` fits in ``room`` bytes (0 when none does).

    Examples
    --------
    >>> rows_that_fit(lambda n: MemoryEstimate("demo", (("rows", 100 * n),)), 10**6, 5_000)
    50
    """
    low, high = 0, n_rows
    while low < high:
        middle = (low + high + 1) // 2
        if estimate(middle).total <= room:
            low = middle
        else:
            high = middle - 1
    return low


def check_memory(estimate: MemoryEstimate, *, max_memory: int | None = None, ways_out: str = "") -> MemoryEstimate:
    """Refuse a job whose estimated peak does not fit, before it starts.

    Parameters
    ----------
    estimate : MemoryEstimate
    max_memory : int, optional
        The bound in bytes on the whole process (``--max-memory``); by default what this process holds now plus
        :func:`available_memory`.
    ways_out : str
        What the user can do instead (streaming, Ray, a sample), appended to the message.

    Returns
    -------
    MemoryEstimate
        ``estimate``, when it fits.

    Raises
    ------
    ResourceLimitError
        Giving the estimate, the room there is, and ``ways_out``.
    """
    room, bound = memory_room(max_memory)
    if estimate.total > room:
        raise ResourceLimitError(f"{estimate.job} needs {estimate.describe()}, but {bound}. {ways_out}".strip())
    return estimate


@contextmanager
def memory_limit(max_memory: int | None, *, interval: float = 0.05) -> Iterator[None]:
    """Stop the job in the ``with`` block when this process grows past ``max_memory`` bytes.

    A watcher thread reads the resident set every ``interval`` seconds and interrupts the main thread when it is
    exceeded; the interrupt is raised as :class:`ResourceLimitError` (at the next Python line the main thread
    runs, so a long call into a compiled library finishes first). A :class:`MemoryError` raised in the block
    becomes the same error. ``None`` watches nothing and only translates :class:`MemoryError`.

    Raises
    ------
    ResourceLimitError
    """
    tripped: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        process = psutil.Process()
        while not stop.wait(interval):
            rss = process.memory_info().rss
            if rss > max_memory and not stop.is_set():
                tripped.append(rss)
                _thread.interrupt_main()
                return

    watcher, ignored = None, None
    if max_memory is not None:
        check_int(max_memory, "max_memory")
        ignored = _interruptible()
        watcher = threading.Thread(target=watch, name="embedlab-memory-limit", daemon=True)
        watcher.start()
    try:
        yield
    except KeyboardInterrupt:
        if not tripped:
            raise
        raise ResourceLimitError(
            f"the job was stopped at {format_bytes(tripped[0])}, past --max-memory {format_bytes(max_memory or 0)}."
            " Raise the bound, or make the job smaller (a sample, or --backend to process the set in shards)."
        ) from None
    except MemoryError as err:
        raise ResourceLimitError(
            f"the job ran out of memory ({err or 'no detail'}). Make it smaller: a sample, or --backend to process "
            "the set in shards."
        ) from None
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
        if ignored is not None:
            signal.signal(signal.SIGINT, ignored)


def _interruptible() -> object | None:
    """Let the watcher interrupt the main thread where SIGINT is ignored, and return the handler to restore.

    ``_thread.interrupt_main`` does nothing unless Python handles SIGINT, and a shell starts background jobs
    (``command &``) with SIGINT ignored, so there the limit would never stop a job. Returns None where nothing
    was changed (SIGINT already handled, or not called from the main thread, which alone may set handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if current not in (signal.SIG_IGN, signal.SIG_DFL, None):
        return None
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return current
