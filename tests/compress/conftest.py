"""Fixtures shared by the compress tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def low_rank(rng):
    """2,000 x 64 rows whose variance lives mostly in 8 directions (as in real embeddings), unit length."""
    basis = np.linalg.qr(rng.normal(size=(64, 64)))[0]
    scales = np.r_[np.full(8, 3.0), np.full(56, 0.15)]
    X = rng.normal(size=(2000, 64)) * scales @ basis.T
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
