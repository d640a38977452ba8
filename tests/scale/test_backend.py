"""Backends by name, the local backend's order and errors; the Ray backend's own tests are in test_ray.py."""

from __future__ import annotations

import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.scale import LocalBackend, RayBackend, WorkerCache, get_backend


def _fails_on_two(item: int) -> int:
    if item == 2:
        raise EmbeddingDataError("shard 2: cannot be read")
    return item


def test_backends_by_name():
    assert isinstance(get_backend("local"), LocalBackend)
    ray = get_backend("ray", address="auto")
    assert isinstance(ray, RayBackend) and ray.address == "auto"
    backend = LocalBackend()
    assert get_backend(backend) is backend
    with pytest.raises(ConfigurationError, match="backend must be one of 'local', 'ray', got 'spark'"):
        get_backend("spark")
    with pytest.raises(ConfigurationError, match="needs the ray backend"):
        get_backend("local", address="auto")
    with pytest.raises(ConfigurationError, match="num_cpus must be positive"):
        RayBackend(num_cpus=0)


def test_local_map_keeps_order_and_stops_at_the_first_error():
    seen = []

    class Progress:
        def task(self, description, total):
            import contextlib

            seen.append((description, total))
            return contextlib.nullcontext(lambda n: seen.append(n))

    assert LocalBackend().map(divmod, [7, 9, 11], 4, progress=Progress(), description="dividing") == [
        (1, 3),
        (2, 1),
        (2, 3),
    ]
    assert seen == [("dividing", 3), 1, 1, 1]
    with pytest.raises(EmbeddingDataError, match="shard 2"):
        LocalBackend().map(_fails_on_two, [1, 2, 3])


def test_a_worker_cache_evicts_the_least_recently_used_within_its_budget():
    cache = WorkerCache(100)
    loads = []

    def loader(name, size):
        return lambda: (loads.append(name) or name, size)

    assert cache.get("a", loader("a", 60)) == "a"
    assert cache.get("b", loader("b", 40)) == "b"
    assert cache.get("a", loader("a", 60)) == "a"  # a hit: "b" is now the oldest use
    cache.get("c", loader("c", 30))
    assert cache.nbytes == 90 and loads == ["a", "b", "c"]
    cache.get("b", loader("b", 40))  # evicted, loaded again
    assert loads == ["a", "b", "c", "b"] and cache.nbytes <= 100
    cache.get("huge", loader("huge", 500))  # larger than the budget: served, never kept
    cache.get("huge", loader("huge", 500))
    assert loads[-2:] == ["huge", "huge"] and cache.nbytes <= 100
    assert (cache.hits, cache.misses) == (1, 6)
    with pytest.raises(ConfigurationError, match="actors"):
        RayBackend(actors=0)
