"""Codecs learnt with torch (the ``deep`` extra): the TLDR reducer, the Matryoshka adapter and the BEBR recurrent
residual binariser.

Each trains on the frozen embeddings alone (no raw data, no backbone), on the codec's training sample, and
stores its weights as numpy arrays, so encoding and search need numpy only. Hard examples come from the exact
nearest neighbours of each training row (:func:`embedlab.neighbors.knn`). Training is seeded and reproducible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from embedlab._torch import batches, require_torch, seeded_torch
from embedlab.compress._quantizers import Quantizer, SignQuantizer
from embedlab.compress._transforms import Transform, _ReducingTransform, unit_or_zero_rows
from embedlab.exceptions import ConfigurationError
from embedlab.neighbors import knn

if TYPE_CHECKING:
    import torch

__all__ = ["LEARNT_QUANTIZER_TYPES", "LEARNT_TRANSFORM_TYPES"]


#: Fewest optimiser steps a learnt codec takes: small training samples get more epochs.
_MIN_STEPS = 500


def _epochs(n_rows: int, batch_size: int, epochs: int) -> int:
    """``epochs``, or more when that many passes over ``n_rows`` rows make fewer than ``_MIN_STEPS`` steps."""
    steps_per_epoch = -(-n_rows // batch_size)
    return max(epochs, -(-_MIN_STEPS // steps_per_epoch))


def _training_neighbours(X: np.ndarray, k: int, rng: np.random.RandomState, name: str) -> np.ndarray:
    """The ``k`` nearest other training rows of each training row (inner product), shape (n, k)."""
    if X.shape[0] <= k:
        raise ConfigurationError(f"{name} needs more than {k} training rows, got {X.shape[0]}.")
    return knn(X, k, metric="ip", random_state=int(rng.randint(2**31 - 1))).indices


def _barlow_twins_loss(first: torch.Tensor, second: torch.Tensor, off_diagonal_weight: float) -> torch.Tensor:
    """Barlow Twins: the cross-correlation of the two batch-standardised outputs should be the identity."""
    first = (first - first.mean(dim=0)) / (first.std(dim=0) + 1e-6)
    second = (second - second.mean(dim=0)) / (second.std(dim=0) + 1e-6)
    correlation = first.T @ second / first.shape[0]
    on_diagonal = ((correlation.diagonal() - 1) ** 2).sum()
    off_diagonal = (correlation**2).sum() - (correlation.diagonal() ** 2).sum()
    return on_diagonal + off_diagonal_weight * off_diagonal


class TLDR(_ReducingTransform):
    """TLDR: a linear reducer trained so that each row and its nearest neighbours map to matching outputs.

    A linear encoder ``d -> dims`` followed by a projector (``dims -> 512 -> 512`` with batch norm, used only
    in training) is trained with the Barlow Twins loss on pairs of a row and one of its 3 nearest neighbours
    (drawn anew each epoch): the cross-correlation of the two projected batches is pushed to the identity
    (off-diagonal weight 5e-3). Rows and queries are then encoded by the linear map and unit-normalised.
    10 epochs of batches of 512 on the training sample, Adam at 1e-3.

    References
    ----------
    Kalantidis, Lassance, Almazán and Larlus (2022), "TLDR: twin learning for dimensionality reduction",
    Transactions on Machine Learning Research.
    Zbontar, Jing, Misra, LeCun and Deny (2021), "Barlow twins: self-supervised learning via redundancy
    reduction", ICML.
    """

    name = "tldr"
    state = ("weight_", "bias_")
    n_neighbors = 3
    epochs = 10
    batch_size = 512
    projector_width = 512
    off_diagonal_weight = 5e-3
    learning_rate = 1e-3

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        torch = require_torch("the tldr codec")
        neighbours = _training_neighbours(X, self.n_neighbors, rng, "tldr")
        with seeded_torch(rng):
            encoder = torch.nn.Linear(self.dim_in, self.dims)
            width = self.projector_width
            projector = torch.nn.Sequential(
                torch.nn.Linear(self.dims, width),
                torch.nn.BatchNorm1d(width),
                torch.nn.ReLU(),
                torch.nn.Linear(width, width),
            )
            parameters = [*encoder.parameters(), *projector.parameters()]
            optimiser = torch.optim.Adam(parameters, lr=self.learning_rate)
            data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            for _ in range(self.epochs):
                for anchors in batches(X.shape[0], self.batch_size, rng):
                    if anchors.size < 2:
                        continue
                    pairs = neighbours[anchors, rng.randint(self.n_neighbors, size=anchors.size)]
                    loss = _barlow_twins_loss(
                        projector(encoder(data[anchors])), projector(encoder(data[pairs])), self.off_diagonal_weight
                    )
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
        self.weight_ = encoder.weight.detach().numpy().T.astype(np.float32).copy()
        self.bias_ = encoder.bias.detach().numpy().astype(np.float32).copy()

    def database(self, X: np.ndarray) -> np.ndarray:
        return unit_or_zero_rows(X @ self.weight_ + self.bias_)


class MatryoshkaAdapter(_ReducingTransform):
    """A Matryoshka adapter: a residual MLP ``f(x) = x + W2 relu(W1 x + b1) + b2`` learnt on frozen embeddings
    so that every prefix of ``f(x)`` keeps the similarities of ``x``; then the first ``dims`` coordinates,
    renormalised.

    The unsupervised Matryoshka-Adaptor objective, summed over nested prefix sizes ``m`` (the MRL loss: ``dims``
    and every power of two from 16 up to the full dimension, which is included): the mean absolute difference
    between the cosine similarities of the rows and those of the ``m``-prefixes of their adapted rows over all
    pairs of a batch, plus the same over each batch row's 10 nearest neighbours (the pairs top-k retrieval
    depends on), plus 0.1 times the mean absolute change ``|f(x) - x|`` that keeps the adapter close to the
    identity it starts from. 10 epochs (at least 500 steps) of batches of 256 on the training sample, Adam at
    1e-3, hidden width 512.

    References
    ----------
    Yoon, Chowdhury, Kim, Doshi, Arik and Pfister (2024), "Matryoshka-Adaptor: unsupervised and supervised
    tuning for smaller embedding dimensions", EMNLP.
    Kusupati et al. (2022), "Matryoshka representation learning", NeurIPS.
    """

    name = "mrl"
    state = ("hidden_weight_", "hidden_bias_", "output_weight_", "output_bias_")
    n_neighbors = 10
    epochs = 10
    batch_size = 256
    hidden_width = 512
    change_weight = 0.1
    learning_rate = 1e-3
    smallest_prefix = 16

    def nested_dims(self) -> list[int]:
        """The prefix sizes the MRL loss sums over."""
        sizes = {self.dims, self.dim_in}
        size = self.smallest_prefix
        while size < self.dim_in:
            sizes.add(size)
            size *= 2
        return sorted(sizes)

    def fit(self, X: np.ndarray, queries: np.ndarray | None, rng: np.random.RandomState) -> None:
        torch = require_torch("the mrl codec")
        neighbours = _training_neighbours(X, self.n_neighbors, rng, "mrl")
        prefixes = self.nested_dims()
        with seeded_torch(rng):
            hidden = torch.nn.Linear(self.dim_in, self.hidden_width)
            output = torch.nn.Linear(self.hidden_width, self.dim_in)
            torch.nn.init.zeros_(output.weight)
            torch.nn.init.zeros_(output.bias)
            optimiser = torch.optim.Adam([*hidden.parameters(), *output.parameters()], lr=self.learning_rate)
            data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            for _ in range(_epochs(X.shape[0], self.batch_size, self.epochs)):
                for anchors in batches(X.shape[0], self.batch_size, rng):
                    rows, near = data[anchors], data[neighbours[anchors]]
                    adapted = rows + output(torch.relu(hidden(rows)))
                    adapted_near = near + output(torch.relu(hidden(near)))
                    loss = self.change_weight * (adapted - rows).abs().mean()
                    pair_target = _cosines(rows, rows)
                    near_target = _cosines(rows[:, None, :], near)
                    for m in prefixes:
                        loss = loss + (_cosines(adapted[:, :m], adapted[:, :m]) - pair_target).abs().mean()
                        prefix_near = _cosines(adapted[:, None, :m], adapted_near[:, :, :m])
                        loss = loss + (prefix_near - near_target).abs().mean()
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
        self.hidden_weight_ = hidden.weight.detach().numpy().T.astype(np.float32).copy()
        self.hidden_bias_ = hidden.bias.detach().numpy().astype(np.float32).copy()
        self.output_weight_ = output.weight.detach().numpy().T.astype(np.float32).copy()
        self.output_bias_ = output.bias.detach().numpy().astype(np.float32).copy()

    def adapt(self, X: np.ndarray) -> np.ndarray:
        """``f(X)`` at full dimension, before truncation."""
        hidden = np.maximum(X @ self.hidden_weight_ + self.hidden_bias_, 0.0)
        return (X + hidden @ self.output_weight_ + self.output_bias_).astype(np.float32)

    def database(self, X: np.ndarray) -> np.ndarray:
        return unit_or_zero_rows(np.ascontiguousarray(self.adapt(X)[:, : self.dims]))


def _cosines(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Cosine similarities: all pairs of two (n, d) batches, or row i of (n, 1, d) against its (n, k, d) rows."""
    import torch

    first = torch.nn.functional.normalize(first, dim=-1)
    second = torch.nn.functional.normalize(second, dim=-1)
    if first.dim() == 2:
        return first @ second.T
    return (first * second).sum(dim=-1)


def _sign_straight_through(logits: torch.Tensor) -> torch.Tensor:
    """Signs (+-1) forward; the gradient of the clipped identity backward (straight-through estimator)."""
    import torch

    clipped = torch.clamp(logits, -1.0, 1.0)
    return clipped + (torch.where(logits >= 0, 1.0, -1.0) - clipped).detach()


class BEBR(SignQuantizer):
    """BEBR recurrent residual binarisation: ``loops`` binary codes of ``bits`` bits, each encoding what the
    previous ones left unexplained.

    Loop ``t`` binarises the residual ``r_t = x - x̂_(t-1)`` (``r_0 = x``) with a residual MLP block,
    ``b_t = sign(r_t P_t + W2_t relu(W1_t r_t + c_t) + e_t)``, and adds its reconstruction:
    ``x̂_t = x̂_(t-1) + b_t D_t`` (with one shared bias). Each loop has its own weights. Training is the
    paper's task-agnostic embedding-to-embedding objective: an NCE loss in which each float row must score its
    own reconstruction above the reconstructions of the other rows of the batch, with hard negatives (each
    batch row brings one of its 10 nearest neighbours), summed over the loops so that every prefix of loops is
    usable, plus the squared reconstruction error ``||x - x̂_t||^2`` of every loop (which gives the residuals
    their meaning; the NCE logits are unnormalised ``x_i . x̂_j / 0.05``). Decoders start at zero; signs pass
    gradients straight through (clipped). 10 epochs (at least 500 steps) of 256 anchors plus their
    neighbours, Adam at 1e-3, hidden width 512.

    On the WordNet MiniLM set (115,659 rows, 500 held-out queries, k = 10) ``bebr:128x3`` recalls 0.740 at
    48 bytes, ``bebr:384x1`` less; ``binary:itq`` 0.748 and ``opq:48`` 0.783 at the same size (``bebr`` is
    therefore not in the planner's default grid); the reconstruction term alone gives 0.733.

    Search is asymmetric: a float query scores ``q . x̂``, which the linear decoders turn into one product with
    the signs (as for ``binary``); the paper's symmetric distance tables serve binary queries and are not
    needed when queries arrive as floats.

    The argument is ``BITSxLOOPS``, e.g. ``bebr:128x3`` (48 bytes); BITS must be a multiple of 8.

    References
    ----------
    Gan, Ge, Zhou, Su, Xu, Xu, Hui, Chen, Wang and Shan (2023), "Binary embedding-based retrieval at
    Tencent", KDD.
    Bengio, Léonard and Courville (2013), "Estimating or propagating gradients through stochastic neurons for
    conditional computation", arXiv:1308.3432 (straight-through estimator).
    """

    name = "bebr"
    state = (
        "skip_weight_",
        "hidden_weight_",
        "hidden_bias_",
        "output_weight_",
        "output_bias_",
        "decoder_weight_",
        "decoder_bias_",
    )
    n_neighbors = 10
    epochs = 10
    batch_size = 256
    hidden_width = 512
    temperature = 0.05
    learning_rate = 1e-3

    def __init__(self, argument: str | None, dim: int) -> None:
        super().__init__(argument, dim)
        bits, _, loops = (argument or "").partition("x")
        if not (bits.isdigit() and loops.isdigit() and int(bits) % 8 == 0 and int(bits) > 0 and int(loops) > 0):
            raise ConfigurationError(
                f"'bebr:{argument}': write the argument as BITSxLOOPS with BITS a multiple of 8, e.g. 'bebr:128x3'."
            )
        self.bits, self.loops = int(bits), int(loops)

    @property
    def bytes_per_vector(self) -> int:
        return self.bits * self.loops // 8

    def fit(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        torch = require_torch("the bebr codec")
        neighbours = _training_neighbours(X, self.n_neighbors, rng, "bebr")
        with seeded_torch(rng):
            blocks = [_BinarisingBlock(self.dim, self.hidden_width, self.bits) for _ in range(self.loops)]
            decoders = [torch.nn.Linear(self.bits, self.dim, bias=False) for _ in range(self.loops)]
            for decoder in decoders:
                torch.nn.init.zeros_(decoder.weight)
            decoder_bias = torch.nn.Parameter(torch.zeros(self.dim))
            parameters = [decoder_bias]
            for module in (*blocks, *decoders):
                parameters += list(module.parameters())
            optimiser = torch.optim.Adam(parameters, lr=self.learning_rate)
            data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            for _ in range(_epochs(X.shape[0], self.batch_size, self.epochs)):
                for anchors in batches(X.shape[0], self.batch_size, rng):
                    pairs = neighbours[anchors, rng.randint(self.n_neighbors, size=anchors.size)]
                    rows = data[np.concatenate([anchors, pairs])]
                    targets = torch.arange(rows.shape[0])
                    reconstruction = decoder_bias.expand_as(rows)
                    loss = torch.zeros(())
                    for block, decoder in zip(blocks, decoders, strict=True):
                        signs = _sign_straight_through(block(rows - reconstruction))
                        reconstruction = reconstruction + decoder(signs)
                        logits = rows @ reconstruction.T / self.temperature
                        error = ((rows - reconstruction) ** 2).sum(dim=1).mean()
                        loss = loss + torch.nn.functional.cross_entropy(logits, targets) + error
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()

        def stacked(arrays: list[torch.Tensor]) -> np.ndarray:
            return np.stack([array.detach().numpy().T for array in arrays]).astype(np.float32)

        self.skip_weight_ = stacked([block.skip.weight for block in blocks])
        self.hidden_weight_ = stacked([block.hidden.weight for block in blocks])
        self.hidden_bias_ = stacked([block.hidden.bias for block in blocks])
        self.output_weight_ = stacked([block.output.weight for block in blocks])
        self.output_bias_ = stacked([block.output.bias for block in blocks])
        self.decoder_weight_ = stacked([decoder.weight for decoder in decoders])
        self.decoder_bias_ = decoder_bias.detach().numpy().astype(np.float32).copy()

    def encode(self, X: np.ndarray) -> np.ndarray:
        reconstruction = np.broadcast_to(self.decoder_bias_, X.shape).astype(np.float32)
        codes = []
        for loop in range(self.loops):
            residual = X - reconstruction
            hidden = np.maximum(residual @ self.hidden_weight_[loop] + self.hidden_bias_[loop], 0.0)
            logits = residual @ self.skip_weight_[loop] + hidden @ self.output_weight_[loop] + self.output_bias_[loop]
            positive = logits >= 0
            reconstruction = (
                reconstruction + np.where(positive, 1.0, -1.0).astype(np.float32) @ self.decoder_weight_[loop]
            )
            codes.append(np.packbits(positive, axis=1))
        return np.hstack(codes)

    @property
    def n_bits(self) -> int:
        return self.bits * self.loops

    def _decoder(self) -> tuple[np.ndarray, np.ndarray]:
        return self.decoder_weight_.reshape(-1, self.dim), self.decoder_bias_


class _BinarisingBlock:
    """Logits of one BEBR loop: a linear skip plus a one-hidden-layer MLP (a residual MLP block)."""

    def __init__(self, dim: int, hidden_width: int, bits: int) -> None:
        import torch

        self.skip = torch.nn.Linear(dim, bits, bias=False)
        self.hidden = torch.nn.Linear(dim, hidden_width)
        self.output = torch.nn.Linear(hidden_width, bits)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [*self.skip.parameters(), *self.hidden.parameters(), *self.output.parameters()]

    def __call__(self, residual: torch.Tensor) -> torch.Tensor:
        import torch

        return self.skip(residual) + self.output(torch.relu(self.hidden(residual)))


LEARNT_TRANSFORM_TYPES: dict[str, type[Transform]] = {cls.name: cls for cls in (TLDR, MatryoshkaAdapter)}
LEARNT_QUANTIZER_TYPES: dict[str, type[Quantizer]] = {BEBR.name: BEBR}
