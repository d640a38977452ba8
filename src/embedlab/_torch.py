"""Torch helpers shared by every capability that trains a network: the lazy import with its install hint,
seeding, a fully connected stack, shuffled batches and batched inference.

torch is imported inside the functions: each public entry point first calls :func:`require_torch`, which fails
with the install command when torch is missing, so importing a capability never needs torch. torch's thread
count is left at its default.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from embedlab._optional import import_optional

if TYPE_CHECKING:
    import torch

__all__ = ["apply_in_batches", "batches", "mlp", "require_torch", "seeded_torch"]

#: Rows per forward pass when a network is applied to a whole array without gradients.
_EVAL_BATCH_ROWS = 8192


def require_torch(purpose: str) -> ModuleType:
    """Import torch or raise :class:`MissingDependencyError` with ``pip install "embedlab[deep]"``."""
    return import_optional("torch", "deep", purpose=purpose)


@contextmanager
def seeded_torch(rng: np.random.RandomState) -> Iterator[None]:
    """Run the block with torch's global generator seeded from ``rng``, restoring its state afterwards.

    Weight initialisation and every other random torch operation inside the block are then reproducible on
    CPU, and callers' own torch random state is left untouched.
    """
    import torch

    seed = int(rng.randint(np.iinfo(np.int32).max))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def mlp(dims: Sequence[int]) -> torch.nn.Sequential:
    """Fully connected layers ``dims[0] -> dims[1] -> ... -> dims[-1]`` with ReLU between them (not after the last)."""
    import torch

    layers: list[torch.nn.Module] = []
    for width_in, width_out in itertools.pairwise(dims):
        layers += [torch.nn.Linear(width_in, width_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def batches(n_rows: int, batch_size: int, rng: np.random.RandomState) -> Iterator[np.ndarray]:
    """Row positions of one shuffled pass over ``n_rows`` rows, ``batch_size`` at a time (the last may be short)."""
    order = rng.permutation(n_rows)
    for start in range(0, n_rows, batch_size):
        yield order[start : start + batch_size]


def apply_in_batches(function: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray) -> np.ndarray:
    """``function`` applied to the rows of a float32 array block by block, without gradients, as float32."""
    import torch

    with torch.no_grad():
        parts = [
            function(torch.from_numpy(X[start : start + _EVAL_BATCH_ROWS]))
            for start in range(0, len(X), _EVAL_BATCH_ROWS)
        ]
    return torch.cat(parts).numpy().astype(np.float32, copy=False)
