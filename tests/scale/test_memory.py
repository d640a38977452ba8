"""Memory bounds: the estimate's parts, the refusal before a job starts, and the watcher that stops a job past
``max_memory``."""

from __future__ import annotations

import sys

import numpy as np
import psutil
import pytest

from embedlab.exceptions import ResourceLimitError
from embedlab.scale import (
    MemoryEstimate,
    available_memory,
    check_memory,
    job_estimate,
    memory_limit,
    memory_room,
    peak_memory,
    process_memory,
    rows_that_fit,
)


def test_what_the_machine_and_process_hold_agrees_with_psutil():
    assert 0 < available_memory() <= psutil.virtual_memory().total
    rss = process_memory()
    assert abs(rss - psutil.Process().memory_info().rss) < 64 * 2**20
    assert peak_memory() >= rss - 64 * 2**20


def test_an_estimate_adds_this_process_and_only_the_libraries_not_imported_yet(monkeypatch):
    monkeypatch.delitem(sys.modules, "umap", raising=False)
    estimate = job_estimate("demo", ("vectors", 1000.0), imports=("umap",))
    parts = dict(estimate.parts)
    assert parts["libraries to load"] == 125 * 2**20 and parts["vectors"] == 1000
    assert estimate.total == sum(parts.values())
    monkeypatch.setitem(sys.modules, "umap", object())
    assert dict(job_estimate("demo", imports=("umap",)).parts)["libraries to load"] == 0


def test_a_job_that_does_not_fit_is_refused_with_the_estimate_and_the_ways_out():
    estimate = MemoryEstimate("inspect of 10 x 4", (("this process", 3 * 2**30), ("vectors", 2**30)))
    with pytest.raises(ResourceLimitError) as caught:
        check_memory(estimate, max_memory=2 * 2**30, ways_out="Use --sample {rows}.")
    message = str(caught.value)
    assert message.startswith("inspect of 10 x 4 needs about 4.0 GiB (this process 3.0 GiB, vectors 1.0 GiB)")
    assert "--max-memory allows 2.0 GiB" in message and message.endswith("Use --sample {rows}.")
    assert check_memory(estimate, max_memory=5 * 2**30) is estimate
    huge = MemoryEstimate("demo", (("vectors", 10 * psutil.virtual_memory().total),))
    with pytest.raises(ResourceLimitError, match="this machine has"):
        check_memory(huge)


def test_rows_that_fit_is_the_largest_that_fits():
    room, _ = memory_room(10_000)
    per_row = 7

    def estimate(n):
        return MemoryEstimate("demo", (("rows", per_row * n),))

    rows = rows_that_fit(estimate, 10**9, room)
    assert estimate(rows).total <= room < estimate(rows + 1).total
    assert rows_that_fit(estimate, 100, room) == 100


def test_a_job_growing_past_max_memory_is_stopped():
    bound = process_memory() + 100 * 2**20
    held = []
    with pytest.raises(ResourceLimitError, match="past --max-memory"):
        with memory_limit(bound, interval=0.01):
            for _ in range(400):  # up to 1.6 GiB in 4 MiB steps, each touched
                held.append(np.ones(2**20, dtype=np.float32))
    assert len(held) < 400
    held.clear()
    with memory_limit(process_memory() + 2**30):
        np.ones(2**20)


def test_memory_error_becomes_a_clear_error():
    with pytest.raises(ResourceLimitError, match="ran out of memory"):
        with memory_limit(None):
            raise MemoryError("Unable to allocate 37.3 TiB")
    with pytest.raises(KeyboardInterrupt):
        with memory_limit(None):
            raise KeyboardInterrupt
