"""Scale: one execution model for a set on one machine and on a Ray cluster.

Work is written once as shards -> partial results -> merge. A set on disk is cut into
:class:`~embedlab.io.shards.Shard` s opened by path where they are processed; a :class:`Backend` runs each
shard's work (``local``: in this process, one shard at a time; ``ray``: as Ray tasks, or on actors that keep
their shards cached between passes) and returns the small
partials in shard order for the caller to merge. This package knows nothing of what the work is: the
capabilities that scale (``describe`` first) write their own per-shard work and merge.

Memory is bounded here too: a capability states what its job holds (a :class:`MemoryEstimate`),
:func:`check_memory` refuses a job that does not fit before it starts, :func:`memory_limit` stops one that grows
past a bound.
"""

from embedlab.scale._backend import (
    BACKENDS,
    Backend,
    LocalBackend,
    RayBackend,
    WorkerCache,
    get_backend,
    worker_cache,
)
from embedlab.scale._memory import (
    MemoryEstimate,
    available_memory,
    check_memory,
    format_bytes,
    job_estimate,
    memory_limit,
    memory_room,
    peak_memory,
    process_memory,
    rows_that_fit,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalBackend",
    "MemoryEstimate",
    "RayBackend",
    "WorkerCache",
    "available_memory",
    "check_memory",
    "format_bytes",
    "get_backend",
    "job_estimate",
    "memory_limit",
    "memory_room",
    "peak_memory",
    "process_memory",
    "rows_that_fit",
    "worker_cache",
]
