"""Seeded data for the deep clustering tests — separated blobs (frozen embeddings) and raw vectors on curved
low-dimensional sheets — and small, fast settings of every estimator, fitted once per session."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import pytest

from embedlab.cluster.deep import CPP, DEC, IDEC, N2D, SCAN, TEMI, SwAV

SEED = 1234


def gaussian_blobs(sizes: list[int], d: int = 32, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs: centres N(0, 1.5^2) per coordinate, noise N(0, 0.5^2)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(size=(len(sizes), d)) * 1.5
    return (centres[truth] + rng.normal(size=(truth.size, d)) * 0.5).astype(np.float32), truth


def lifted(z: np.ndarray, d: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """2-D points mapped into ``d`` dimensions by a random smooth map ``tanh(z A + b)``, plus a little noise."""
    lift = rng.normal(size=(2, d)) * scale
    X = np.tanh(z @ lift + rng.normal(size=d)) + rng.normal(scale=0.02, size=(len(z), d))
    return X.astype(np.float32)


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """600 x 32: four blobs of 150."""
    return gaussian_blobs([150] * 4)


@pytest.fixture(scope="session")
def sheet_blobs() -> tuple[np.ndarray, np.ndarray]:
    """600 x 48 raw vectors: four compact 2-D blobs on a circle, lifted onto a curved sheet."""
    rng = np.random.default_rng(SEED)
    angles = 2 * np.pi * np.arange(4) / 4
    truth = np.repeat(np.arange(4), 150)
    z = 3 * np.c_[np.cos(angles), np.sin(angles)][truth] + rng.normal(scale=0.35, size=(truth.size, 2))
    return lifted(z, 48, rng, scale=2 / 3), truth


@pytest.fixture(scope="session")
def stripes() -> tuple[np.ndarray, np.ndarray]:
    """900 x 48 raw vectors in random order: three long parallel 2-D stripes (k-means cuts across them), lifted."""
    rng = np.random.default_rng(SEED)
    truth = np.repeat(np.arange(3), 300)
    z = np.c_[rng.uniform(-5, 5, size=truth.size), (truth - 1) * 1.5 + rng.normal(scale=0.12, size=truth.size)]
    order = rng.permutation(truth.size)
    return lifted(z, 48, rng, scale=1 / 4)[order], truth[order]


AUTOENCODER = {"hidden_dims": (64, 64), "pretrain_epochs": 10, "batch_size": 128}
DEC_PHASE = {"latent_dim": 4, "epochs": 3, "update_interval": 5, "n_init": 3}
#: Small, fast settings of every estimator that recover the four blobs of the ``blobs`` fixture.
ESTIMATORS: dict[str, Callable[[int], object]] = {
    "DEC": lambda seed: DEC(4, **AUTOENCODER, **DEC_PHASE, random_state=seed),
    "IDEC": lambda seed: IDEC(4, **AUTOENCODER, **DEC_PHASE, random_state=seed),
    "N2D": lambda seed: N2D(4, **AUTOENCODER, random_state=seed),
    "SCAN": lambda seed: SCAN(4, n_neighbors=10, n_heads=3, epochs=10, learning_rate=1e-2, random_state=seed),
    "TEMI": lambda seed: TEMI(
        4, n_neighbors=10, n_heads=3, hidden_dim=64, bottleneck_dim=32, epochs=10, batch_size=64,
        learning_rate=3e-3, teacher_momentum=0.9, random_state=seed,
    ),
    "CPP": lambda seed: CPP(4, hidden_dim=64, z_dim=16, epochs=20, batch_size=150, random_state=seed),
    "SwAV": lambda seed: SwAV(
        4, n_neighbors=10, hidden_dim=64, projection_dim=32, epochs=10, batch_size=64, learning_rate=1e-2,
        random_state=seed,
    ),
}  # fmt: skip


class StepCounter:
    """A progress reporter recording, per task description, its total and the steps reported."""

    def __init__(self) -> None:
        self.tasks: dict[str, list[int]] = {}

    @contextmanager
    def task(self, description: str, total: int | None):
        steps = self.tasks.setdefault(description, [total, 0])
        yield lambda n: steps.__setitem__(1, steps[1] + n)


@pytest.fixture(scope="session")
def make() -> dict[str, Callable[[int], object]]:
    """Factories of the small estimators, by name, taking the seed."""
    return ESTIMATORS


@pytest.fixture(scope="session")
def fitted(blobs) -> dict[str, tuple[object, StepCounter]]:
    """Each small estimator fitted once on the blobs with seed 0, with the progress it reported."""
    pytest.importorskip("torch")
    pytest.importorskip("umap")
    models = {}
    for name, factory in ESTIMATORS.items():
        progress = StepCounter()
        models[name] = (factory(0).fit(blobs[0], progress=progress), progress)
    return models


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread for these tiny networks: with the two cores shared, torch's threaded matrix products
    made a fit up to 8 times slower; results do not depend on the thread count."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
