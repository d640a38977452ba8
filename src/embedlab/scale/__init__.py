"""Scale: one execution model for a set on one machine and on a Ray cluster.

Work is written once as shards -> partial results -> merge. A set on disk is cut into
:class:`~embedlab.io.shards.Shard` s opened by path where they are processed; a :class:`Backend` runs each
shard's work (``local``: in this process, one shard at a time; ``ray``: as Ray tasks, or on actors that keep
their shards cached between passes) and returns the small
partials in shard order for the caller to merge. This package knows nothing of what the work is: the
capabilities that scale (``describe`` first) write their own per-shard work and merge.
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

__all__ = ["BACKENDS", "Backend", "LocalBackend", "RayBackend", "WorkerCache", "get_backend", "worker_cache"]
