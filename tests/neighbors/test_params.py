"""Search parameters: checked on creation, resolved from the data, and carried by every result."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, knn
from embedlab.neighbors import ExactParams, HNSWParams, IVFParams, IVFPQParams, search_params


def test_unset_fields_are_resolved_from_the_data():
    assert HNSWParams().resolve(10_000, 10, 64).ef_search == 40
    assert HNSWParams().resolve(10_000, 5, 64).ef_search == 32
    assert HNSWParams(ef_search=12).resolve(10_000, 10, 64).ef_search == 20  # at least the 2k re-ranked candidates
    assert HNSWParams(ef_search=12, storage="flat").resolve(10_000, 10, 64).ef_search == 12
    ivf = IVFParams().resolve(10_000, 10, 64)
    assert ivf.nlist == 256 and ivf.nprobe == 16
    assert IVFParams().resolve(100, 10, 64).nlist == 2  # at least 39 rows per list
    pq = IVFPQParams().resolve(10_000, 10, 384)
    assert pq.m == 96 and pq.rerank == 10 and pq.nbits == 8
    assert IVFPQParams().resolve(5_600, 10, 32).nbits == 7  # 128 centroids per sub-quantizer, 39 rows each
    assert IVFPQParams().resolve(10_000, 10, 100).m == 25
    assert ExactParams().resolve(5, 1, 2) == ExactParams()


def test_results_carry_resolved_parameters_as_documents():
    X = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    result = knn(X, 5, method="hnsw", recall_sample=0)
    assert result.params == HNSWParams(ef_search=32)
    assert result.params.to_dict() == {
        "method": "hnsw",
        "M": 32,
        "ef_construction": 80,
        "ef_search": 32,
        "storage": "sq8",
    }
    assert search_params("auto", 10, 10).method == "exact"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: HNSWParams(M=1), "M must be an integer between 2 and 2147483647"),
        (lambda: HNSWParams(ef_search=0), "ef_search must be an integer between 1 and 2147483647"),
        (lambda: HNSWParams(storage="pq"), "storage must be one of"),
        (lambda: IVFParams(nlist=True), "nlist must be an integer"),
        (lambda: IVFParams(nlist=500).resolve(100, 1, 8), "nlist must be an integer between 1 and 100"),
        (lambda: IVFPQParams(m=7).resolve(1000, 1, 64), "m must divide the dimension 64"),
        (lambda: IVFPQParams(rerank_factor=0), "rerank_factor must be an integer between 1 and 2147483647"),
        (lambda: IVFPQParams(nbits=9), "nbits must be an integer between 1 and 8"),
        (lambda: search_params("lsh", 1, 1), "method must be one of"),
    ],
)
def test_bad_parameters_are_named(make, message):
    with pytest.raises(ConfigurationError, match=message):
        make()
