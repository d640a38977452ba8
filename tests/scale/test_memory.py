"""Memory bounds: the estimate's parts, the refusal before a job starts, and the watcher that stops a job past
``max_memory``."""

from __future__ import annotations

import subprocess
import sys

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


_GROWING_JOB = """
import signal
import numpy as np
from embedlab.exceptions import ResourceLimitError
from embedlab.scale import memory_limit, process_memory
signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job: the limit must still stop it
held = []
try:
    with memory_limit(process_memory() + 100 * 2**20, interval=0.01):
        for _ in range(400):  # up to 1.6 GiB in 4 MiB steps, each touched
            held.append(np.ones(2**20, dtype=np.float32))
except ResourceLimitError as err:
    print(len(held), err)
held.clear()
with memory_limit(process_memory() + 2**30):
    np.ones(2**20)
assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # restored
"""


def test_a_job_growing_past_max_memory_is_stopped():
    """In a fresh process, with SIGINT ignored as in a background job (``_thread.interrupt_main`` needs a SIGINT
    handler): in this one, memory freed by earlier tests can be handed out again without the resident set growing
    (the allocator keeps freed pages), so the job might never cross the bound."""
    result = subprocess.run([sys.executable, "-c", _GROWING_JOB], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    steps, _, message = result.stdout.partition(" ")
    assert int(steps) < 400 and "past --max-memory" in message, result.stdout


def test_memory_error_becomes_a_clear_error():
    with pytest.raises(ResourceLimitError, match="ran out of memory"):
        with memory_limit(None):
            raise MemoryError("Unable to allocate 37.3 TiB")
    with pytest.raises(KeyboardInterrupt):
        with memory_limit(None):
            raise KeyboardInterrupt
