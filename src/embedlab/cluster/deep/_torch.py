"""Torch pieces of the deep clustering heads: stacked heads, the DEC autoencoder and its pretraining.

The generic helpers (lazy import, seeding, MLPs, batching) live in :mod:`embedlab._torch` and are re-exported
here. The networks are built from torch's own containers only (``Sequential``, ``ModuleDict``,
``ParameterDict``), so fitted estimators pickle.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from embedlab._progress import Advance, ProgressReporter
from embedlab._torch import apply_in_batches, batches, mlp, require_torch, seeded_torch

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEC_HIDDEN_DIMS",
    "apply_in_batches",
    "autoencoder",
    "batches",
    "head_stack",
    "heads_forward",
    "mlp",
    "pretrain_autoencoder",
    "require_torch",
    "seeded_torch",
    "select_head",
]

#: Hidden layer widths of the DEC autoencoder, d-500-500-2000-z (Xie et al. 2016), mirrored in the decoder.
DEC_HIDDEN_DIMS = (500, 500, 2000)


def head_stack(n_heads: int, dims: Sequence[int], *, last_bias: bool = True) -> torch.nn.ParameterDict:
    """The weights of ``n_heads`` independent MLPs ``dims[0] -> ... -> dims[-1]``, stacked on a leading axis.

    Layer ``i`` has ``"weight{i}"`` of shape (n_heads, in, out) and ``"bias{i}"`` of shape (n_heads, 1, out)
    (none on the last layer when ``last_bias`` is False), initialised like ``torch.nn.Linear``: uniform in
    +-1/sqrt(in). :func:`heads_forward` runs all heads at once with batched matrix products.
    """
    import torch

    parameters = {}
    for layer, (width_in, width_out) in enumerate(itertools.pairwise(dims)):
        bound = 1.0 / math.sqrt(width_in)
        parameters[f"weight{layer}"] = torch.empty(n_heads, width_in, width_out).uniform_(-bound, bound)
        if last_bias or layer < len(dims) - 2:
            parameters[f"bias{layer}"] = torch.empty(n_heads, 1, width_out).uniform_(-bound, bound)
    return torch.nn.ParameterDict({name: torch.nn.Parameter(value) for name, value in parameters.items()})


def heads_forward(
    heads: torch.nn.ParameterDict, x: torch.Tensor, *, activation: str = "relu", normalize_last_hidden: bool = False
) -> torch.Tensor:
    """Outputs of every head of a :func:`head_stack` for rows ``x`` of shape (batch, in): (n_heads, batch, out).

    ``activation`` ("relu" or "gelu") follows every layer but the last; ``normalize_last_hidden`` scales the
    input of the last layer to unit L2 norm.
    """
    import torch

    n_layers = sum(name.startswith("weight") for name in heads)
    hidden = x
    for layer in range(n_layers):
        if layer == n_layers - 1 and normalize_last_hidden:
            hidden = torch.nn.functional.normalize(hidden, dim=-1)
        hidden = torch.matmul(hidden, heads[f"weight{layer}"])
        if f"bias{layer}" in heads:
            hidden = hidden + heads[f"bias{layer}"]
        if layer < n_layers - 1:
            hidden = torch.relu(hidden) if activation == "relu" else torch.nn.functional.gelu(hidden)
    return hidden


def select_head(heads: torch.nn.ParameterDict, index: int) -> torch.nn.ParameterDict:
    """A :func:`head_stack` holding a copy of the single head ``index``."""
    import torch

    return torch.nn.ParameterDict(
        {name: torch.nn.Parameter(value.detach()[index : index + 1].clone()) for name, value in heads.items()}
    )


def autoencoder(n_features: int, hidden_dims: Sequence[int], latent_dim: int) -> torch.nn.ModuleDict:
    """A fully connected autoencoder ``d - hidden - z - reversed(hidden) - d`` with ReLU activations.

    The code layer and the reconstruction are linear, as in DEC (Xie et al. 2016).

    Returns
    -------
    torch.nn.ModuleDict
        With ``"encoder"`` and ``"decoder"``, both ``torch.nn.Sequential``.
    """
    import torch

    widths = [int(n_features), *(int(width) for width in hidden_dims), int(latent_dim)]
    return torch.nn.ModuleDict({"encoder": mlp(widths), "decoder": mlp(widths[::-1])})


def pretrain_autoencoder(
    network: torch.nn.ModuleDict,
    X: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.RandomState,
    advance: Advance,
) -> np.ndarray:
    """Train an :func:`autoencoder` end to end on validated float32 rows: mean squared error, Adam.

    Returns
    -------
    numpy.ndarray of shape (epochs,)
        Mean reconstruction loss of each epoch.
    """
    import torch

    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
    data = torch.from_numpy(X)
    history = np.empty(epochs)
    for epoch in range(epochs):
        total = 0.0
        for rows in batches(len(X), batch_size, rng):
            batch = data[rows]
            loss = torch.nn.functional.mse_loss(network["decoder"](network["encoder"](batch)), batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        history[epoch] = total / len(X)
        advance(1)
    return history


def fit_autoencoder(
    X: np.ndarray,
    hidden_dims: Sequence[int],
    latent_dim: int,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.RandomState,
    progress: ProgressReporter,
    label: str,
) -> tuple[torch.nn.ModuleDict, np.ndarray]:
    """Build an :func:`autoencoder` for the rows of ``X`` and pretrain it, one progress step per epoch.

    Call inside :func:`seeded_torch` so that the initial weights follow ``rng``. Returns the network and the
    mean reconstruction loss of each epoch.
    """
    network = autoencoder(X.shape[1], hidden_dims, latent_dim)
    with progress.task(f"{label}: autoencoder pretraining", epochs) as advance:
        history = pretrain_autoencoder(
            network, X, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, rng=rng, advance=advance
        )
    return network, history
