"""The tuner's grid: candidates by method and budget, memory estimates against faiss, effort capped."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab._progress import NULL_PROGRESS
from embedlab.io.validation import prepare
from embedlab.neighbors import HNSWParams, IVFParams
from embedlab.search._tune import build, candidates, estimated_bytes, search_time_groups


def test_estimates_are_close_to_what_faiss_holds():
    rows = prepare(np.random.default_rng(0).normal(size=(4000, 32)), "l2")
    for params in (HNSWParams(M=16, storage="flat"), HNSWParams(M=16), IVFParams(storage="flat")):
        candidate = candidates("hnsw", 4000, 32, 12.0, memory_budget=None, codec=None)[0]
        built = build(type(candidate)(params), rows, random_state=np.random.default_rng(0), progress=NULL_PROGRESS)
        assert estimated_bytes(params, 4000, 32) == pytest.approx(built.memory_bytes, rel=0.3), params


def test_grid_order_budget_and_effort_cap():
    low = [c.params for c in candidates("hnsw", 10**5, 64, 12.0, memory_budget=None, codec=None, target=0.9)]
    high = [c.params for c in candidates("hnsw", 10**5, 64, 12.0, memory_budget=None, codec=None, target=0.99)]
    assert low[0].M == high[0].M == 32 and low[1].M == 16 and high[1].storage == "sq8"
    small = candidates("auto", 10**5, 64, 12.0, memory_budget=10 * 10**6, codec=None)
    assert {c.params.method for c in small} <= {"ivf", "ivfpq"}
    with pytest.raises(ConfigurationError, match="fits a memory budget"):
        candidates("auto", 10**5, 64, 12.0, memory_budget=10, codec=None)
    rows = prepare(np.random.default_rng(0).normal(size=(1000, 8)), "l2")
    built = build(
        candidates("hnsw", 1000, 8, 5.0, memory_budget=None, codec=None)[0],
        rows,
        random_state=np.random.default_rng(0),
        progress=NULL_PROGRESS,
    )
    (efs,) = [[p.ef_search for p in group] for group in search_time_groups(built, 10)]
    assert efs[0] == 10 and max(efs) <= 250  # never beyond a quarter of an exact scan
