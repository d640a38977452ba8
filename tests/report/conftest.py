"""A small set whose answers are known: 3 well-separated clusters, exact duplicates, one outlier, texts."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import EmbeddingSet

WORDS = ("alpha", "bravo", "charlie")
N_PER_CLUSTER = 200
N_DUPLICATES = 4


def known_set(seed: int = 7, n_per_cluster: int = N_PER_CLUSTER) -> EmbeddingSet:
    """3 tight clusters on orthogonal directions of a 32-d space; rows 0..3 repeated at the end (4 exact
    duplicates); one row far from everything; a text and a label per row."""
    rng = np.random.default_rng(seed)
    centres = 5 * np.eye(32)[:3]
    rows = np.concatenate([c + 0.5 * rng.normal(size=(n_per_cluster, 32)) for c in centres])
    labels = np.repeat(np.array(WORDS), n_per_cluster)
    outlier = -4 * np.ones((1, 32)) + rng.normal(size=(1, 32))
    rows = np.concatenate([rows, rows[:N_DUPLICATES], outlier]).astype(np.float32)
    labels = np.concatenate([labels, labels[:N_DUPLICATES], ["outlier"]])
    texts = [f"{label} item {i}" for i, label in enumerate(labels)]
    texts[-1] = "a </script><script>window.pwned = 1</script> lone point"
    ids = [f"row-{i}" for i in range(len(rows))]
    return EmbeddingSet(rows, ids, {"label": labels, "text": texts})


@pytest.fixture(scope="module")
def small_set() -> EmbeddingSet:
    return known_set()
