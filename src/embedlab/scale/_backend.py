"""Backends: where the work on each shard runs, and how its partial result comes back to be merged.

Work on a large set is written once as ``partial = work(shard, *args)`` for every shard, then a merge of the
partials in shard order. ``work`` opens its shard by path, so nothing large travels: only the shard's few
hundred bytes go out and the (small, mergeable) partial comes back. :class:`LocalBackend` runs the shards one
after another in this process, holding one at a time; :class:`RayBackend` runs them as Ray tasks, which Ray
retries on another worker when one dies (a shard's work is a pure function of the shard, so a retried shard
is counted once), or, with ``actors``, as calls on long-lived Ray actors that each keep the shards they read
in a process-local cache (:func:`worker_cache`), so the passes of an iterative method (Lloyd iterations) read
each shard from disk once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, TypeVar

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._optional import import_optional
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbedlabError

__all__ = ["BACKENDS", "Backend", "LocalBackend", "RayBackend", "WorkerCache", "get_backend", "worker_cache"]

BACKENDS = ("local", "ray")

Item = TypeVar("Item")
Partial = TypeVar("Partial")


class WorkerCache:
    """A least-recently-used store of what a worker process read, within a byte budget.

    Parameters
    ----------
    max_bytes : int
        Values are evicted, oldest use first, while the cached total exceeds this.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = check_int(max_bytes, "max_bytes", 0)
        self._values: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.nbytes = self.hits = self.misses = 0

    def get(self, key: Hashable, load: Callable[[], tuple[Any, int]]) -> Any:
        """The value cached under ``key``, or ``load()``'s ``(value, nbytes)`` cached when it fits."""
        if key in self._values:
            self._values.move_to_end(key)
            self.hits += 1
            return self._values[key][0]
        self.misses += 1
        value, nbytes = load()
        if nbytes <= self.max_bytes:
            self._values[key] = (value, nbytes)
            self.nbytes += nbytes
            while self.nbytes > self.max_bytes:
                _, (_, dropped) = self._values.popitem(last=False)
                self.nbytes -= dropped
        return value


_WORKER_CACHE: WorkerCache | None = None


def worker_cache() -> WorkerCache | None:
    """The cache of this worker process, or None where none was enabled (the driver, plain Ray tasks)."""
    return _WORKER_CACHE


def _enable_worker_cache(max_bytes: int) -> None:
    global _WORKER_CACHE
    _WORKER_CACHE = WorkerCache(max_bytes)


class _ShardWorker:
    """A Ray actor's body: it runs shards' work in its own process, where its cache persists between calls."""

    def __init__(self, cache_bytes: int) -> None:
        _enable_worker_cache(cache_bytes)

    def run(self, work: Callable[..., Partial], item: Any, *args: Any) -> Partial:
        return work(item, *args)

    def cache_stats(self) -> tuple[int, int, int]:
        cache = worker_cache()
        return (cache.hits, cache.misses, cache.nbytes) if cache is not None else (0, 0, 0)


class Backend(ABC):
    """Runs ``work(item, *args)`` for every item (a shard) and returns the partial results in item order."""

    name: ClassVar[str]

    def map(
        self,
        work: Callable[..., Partial],
        items: Sequence[Item],
        *args: Any,
        progress: ProgressReporter = NULL_PROGRESS,
        description: str = "Processing shards",
    ) -> list[Partial]:
        """``[work(item, *args) for item in items]``, wherever the backend runs it.

        ``work`` must be a module-level function (Ray sends it to its workers by reference) and ``args`` small.

        Raises
        ------
        EmbedlabError
            The first error of any item's work (an unreadable shard names its file); the other items' work is
            cancelled and nothing is returned.
        """
        with progress.task(description, len(items)) as advance:
            return self._run(work, items, args, advance)

    @abstractmethod
    def _run(
        self, work: Callable[..., Partial], items: Sequence[Item], args: tuple[Any, ...], advance: Advance
    ) -> list[Partial]:
        """The partials in item order, calling ``advance(1)`` as each item is done."""


class LocalBackend(Backend):
    """Every shard in this process, one after another: memory holds one shard's work at a time.

    Examples
    --------
    >>> LocalBackend().map(pow, [1, 2, 3], 2)
    [1, 4, 9]
    """

    name = "local"

    def _run(
        self, work: Callable[..., Partial], items: Sequence[Item], args: tuple[Any, ...], advance: Advance
    ) -> list[Partial]:
        results = []
        for item in items:
            results.append(work(item, *args))
            advance(1)
        return results

    def __repr__(self) -> str:
        return "LocalBackend()"


class RayBackend(Backend):
    """Every shard as a Ray task on a cluster (the ``scale`` extra).

    Parameters
    ----------
    address : str, optional
        The cluster to join (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``); by default the one this
        process already joined with ``ray.init``, else a new local one.
    max_retries : int, default=3
        Times Ray runs a shard's task again when its worker dies.
    num_cpus : float, default=1
        CPUs each task or actor holds (faiss and numpy inside it use them).
    actors : int, optional
        Run the work on this many long-lived actors instead of tasks. Item ``i`` of every call goes to actor
        ``i mod actors``, so a shard is always read by the same actor, which keeps what it read in a cache of
        ``cache_bytes`` (an iterative method then reads each shard from disk once). A killed actor is
        restarted and its calls retried (``max_retries`` times); it reads its shards again.
    cache_bytes : int, default=2 GiB
        Each actor's cache of shard rows (least recently used evicted first).

    Notes
    -----
    Workers import embedlab and open the shards by path: on a cluster of several machines, every node needs
    embedlab installed and the data at the same path (a shared or object-store file system).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        max_retries: int = 3,
        num_cpus: float = 1,
        actors: int | None = None,
        cache_bytes: int = 2 * 2**30,
    ) -> None:
        self.address = address
        self.max_retries = check_int(max_retries, "max_retries", 0)
        self.num_cpus = check_positive(num_cpus, "num_cpus")
        self.actors = None if actors is None else check_int(actors, "actors")
        self.cache_bytes = check_int(cache_bytes, "cache_bytes", 0)
        self._pool: list[Any] = []

    def __repr__(self) -> str:
        actors = "" if self.actors is None else f", actors={self.actors}"
        return f"RayBackend(address={self.address!r}{actors})"

    def close(self) -> None:
        """End the actors (a later call starts new ones, with empty caches)."""
        if self._pool:
            ray = self._ray()
            for actor in self._pool:
                ray.kill(actor)
            self._pool = []

    def cache_stats(self) -> list[tuple[int, int, int]]:
        """Each actor's cache hits, misses and bytes held (empty without actors)."""
        if not self._pool:
            return []
        ray = self._ray()
        return ray.get([actor.cache_stats.remote() for actor in self._pool])

    def _submit(self, ray: Any, work: Callable[..., Partial], items: Sequence[Item], shared: list[Any]) -> list[Any]:
        """One object reference per item: a task each, or a call on the item's actor."""
        if self.actors is None:
            remote = ray.remote(num_cpus=self.num_cpus, max_retries=self.max_retries)(work)
            return [remote.remote(item, *shared) for item in items]
        if not self._pool:
            worker = ray.remote(
                num_cpus=self.num_cpus, max_restarts=self.max_retries, max_task_retries=self.max_retries
            )(_ShardWorker)
            self._pool = [worker.remote(self.cache_bytes) for _ in range(self.actors)]
        function = ray.put(work)
        return [self._pool[i % self.actors].run.remote(function, item, *shared) for i, item in enumerate(items)]

    def _ray(self) -> Any:
        ray = import_optional("ray", "scale", purpose="The ray backend")
        if not ray.is_initialized():
            try:
                _check_reachable(self.address)
                ray.init(
                    address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
                )
            except (OSError, RuntimeError, ValueError, SystemExit) as err:  # Ray exits when its GCS never answers
                where = f"at {self.address}" if self.address else "on this machine"
                raise ConfigurationError(
                    f"cannot reach a Ray cluster {where} ({type(err).__name__}: {err}). Start one with 'ray start "
                    "--head' and pass its address (--ray-address host:6379), or use --backend local."
                ) from err
        return ray

    def _run(
        self, work: Callable[..., Partial], items: Sequence[Item], args: tuple[Any, ...], advance: Advance
    ) -> list[Partial]:
        ray = self._ray()
        shared = [ray.put(arg) for arg in args]  # stored once, not once per task (Ray resolves them in the task)
        refs = self._submit(ray, work, items, shared)
        place = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                results[place[done[0]]] = ray.get(done[0])
            except ray.exceptions.RayTaskError as err:
                for ref in pending:
                    with contextlib.suppress(ray.exceptions.RayError, ValueError):  # a running actor call
                        ray.cancel(ref)
                cause = getattr(err, "cause", None)
                if isinstance(cause, EmbedlabError):
                    raise cause from None
                raise
            advance(1)
        return results


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Open and close a TCP connection to ``host:port`` (plain or ``ray://``): Ray itself retries an
    unreachable address for minutes and then exits the process.

    Raises
    ------
    OSError
        When nothing answers within ``timeout_s``.
    ValueError
        When the address is not ``host:port``.
    """
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, ray://host:port or 'auto', got {address!r}")
    with socket.create_connection((host, int(port)), timeout=timeout_s):
        pass


def get_backend(backend: str | Backend = "local", *, address: str | None = None) -> Backend:
    """The backend named ``backend`` (``"local"`` or ``"ray"``, joining ``address``), or ``backend`` itself.

    Raises
    ------
    ConfigurationError
        For an unknown name, or an address given to the local backend.
    """
    if isinstance(backend, Backend):
        return backend
    check_choice(backend, "backend", BACKENDS)
    if backend == "local":
        if address is not None:
            raise ConfigurationError("a Ray address needs the ray backend (--backend ray).")
        return LocalBackend()
    return RayBackend(address)
