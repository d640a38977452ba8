"""Writers killed with SIGKILL at random moments leave a complete output or nothing, and two writers of one
target leave one whole version (a short run of tests/io/killed_writes.py; benchmarks/killed_writes.py runs 200
trials of each kind)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.io.killed_writes import KINDS, Harness

#: Kills per kind in ``make test``, and concurrent-writer trials.
TRIALS, CONCURRENT = 8, 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_killed_writer_leaves_a_whole_output_or_nothing(kind, tmp_path):
    if kind == "checkpoint" and importlib.util.find_spec("lancedb") is None:
        pytest.skip('an import needs a store: pip install "embedlab[stores]"')
    harness = Harness(kind, tmp_path / "writes")
    delay = harness.max_delay()
    trials = 2 if kind == "checkpoint" else TRIALS  # an import takes seconds, not milliseconds
    outcomes = [harness.trial(seed, delay) for seed in range(trials)]
    for seed in range(CONCURRENT if kind != "checkpoint" else 0):
        harness.concurrent(seed)
    assert harness.counts.partial == harness.counts.concurrent_partial == 0, harness.counts.failures
    assert harness.counts.litter_after_next_write == 0  # what a killed writer leaves goes with the next write
    assert "partial" not in outcomes and len(outcomes) == trials


def test_the_harness_tells_a_partial_output(tmp_path):
    """A target cut short matches no reference: the check that every trial passes can fail."""
    harness = Harness("parquet", tmp_path / "writes")
    target = tmp_path / "writes" / "cut.parquet"
    harness.kind.write(target, 0)
    assert harness._outcome(target) == "previous"
    target.write_bytes(target.read_bytes()[:-100])
    assert harness._outcome(target) == "partial"
