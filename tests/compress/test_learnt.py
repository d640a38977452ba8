"""The codecs learnt with torch: TLDR, the Matryoshka adapter and the BEBR binariser."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, MissingDependencyError
from embedlab._optional import import_optional
from embedlab.compress import Codec, CodecSearcher

pytest.importorskip("torch")


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def queries(low_rank, rng):
    return _unit(low_rank[rng.choice(len(low_rank), 50, replace=False)] + 0.05 * rng.normal(size=(50, 64)))


def _recall(codec, X, Q, k=10):
    found = CodecSearcher(codec, codec.encode(X)).search(Q, k).indices
    truth = np.argsort(-(Q @ X.T), axis=1)[:, :k]
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)])


def _assert_serialisable(codec, X):
    np.testing.assert_array_equal(Codec.from_dict(codec.to_dict()).encode(X), codec.encode(X))
    return codec


def _assert_reproducible_and_serialisable(spec, X):
    """Refits with the same seed give the same codes (the three codecs share one seeded training loop, so the
    cheapest configuration of each is refitted)."""
    codec = Codec(spec, random_state=0).fit(X)
    np.testing.assert_array_equal(Codec(spec, random_state=0).fit(X).encode(X), codec.encode(X))
    return _assert_serialisable(codec, X)


def test_tldr_learns_a_reduction_that_keeps_neighbours(low_rank, queries):
    tldr = _assert_reproducible_and_serialisable("tldr:8", low_rank)
    # the rows' coordinates are random mixtures of their axes: keeping 8 of them is a random projection
    random_projection = _recall(Codec("matryoshka:8").fit(low_rank), low_rank, queries)
    assert _recall(tldr, low_rank, queries) > random_projection + 0.15


def test_matryoshka_adapter_moves_the_similarities_into_the_prefix(low_rank, queries):
    adapter = _assert_serialisable(Codec("mrl:8", random_state=0).fit(low_rank), low_rank)
    assert adapter.transforms_[0].nested_dims() == [8, 16, 32, 64]
    truncation = _recall(Codec("matryoshka:8").fit(low_rank), low_rank, queries)
    assert _recall(adapter, low_rank, queries) > truncation + 0.2
    # the full-dimension output stays close to the identity the adapter starts from
    adapted = adapter.transforms_[0].adapt(low_rank)
    cosines = np.sum(_unit(adapted) * low_rank, axis=1)
    assert np.median(cosines) > 0.5


def test_bebr_codes_have_the_asked_size_and_more_loops_reconstruct_better(low_rank, queries):
    one_loop = _assert_reproducible_and_serialisable("bebr:16x1", low_rank)
    three_loops = _assert_serialisable(Codec("bebr:16x3", random_state=0).fit(low_rank), low_rank)
    assert one_loop.bytes_per_vector == 2 and three_loops.bytes_per_vector == 6
    codes = three_loops.encode(low_rank)
    assert codes.shape == (2000, 6) and codes.dtype == np.uint8

    def error(codec):
        return float(np.mean(np.sum((codec.decode(codec.encode(low_rank)) - low_rank) ** 2, axis=1)))

    assert error(three_loops) < 0.7 * error(one_loop)
    assert _recall(three_loops, low_rank, queries) > _recall(one_loop, low_rank, queries)
    # the sign-sum scoring equals the inner product with the decoded rows
    result = CodecSearcher(three_loops, codes).search(queries, 5)
    decoded_scores = np.take_along_axis(queries @ three_loops.decode(codes).T, result.indices, 1)
    np.testing.assert_allclose(result.scores, decoded_scores, atol=1e-4)


def test_bebr_beats_sign_bits_at_equal_bytes(low_rank, queries):
    bebr = Codec("bebr:32x2", random_state=0).fit(low_rank)
    assert bebr.bytes_per_vector == Codec("binary").fit(low_rank).bytes_per_vector == 8
    assert _recall(bebr, low_rank, queries) > _recall(Codec("binary").fit(low_rank), low_rank, queries) + 0.05


@pytest.mark.parametrize("argument", ["12x2", "128", "0x3", "16x0", "ax2"])
def test_bebr_arguments_are_checked(argument):
    with pytest.raises(ConfigurationError, match="BITSxLOOPS"):
        Codec(f"bebr:{argument}").fit(np.eye(64, dtype=np.float32))


def test_learnt_codecs_need_more_rows_than_neighbours():
    with pytest.raises(ConfigurationError, match="more than 10 training rows"):
        Codec("mrl:4").fit(np.eye(8, dtype=np.float32))


@pytest.mark.parametrize("spec", ["tldr:8", "mrl:8", "bebr:8x1"])
def test_learnt_codecs_without_torch_name_the_extra(low_rank, monkeypatch, spec):
    def without_torch(name, extra, *, purpose):
        with monkeypatch.context() as patch:
            patch.setitem(__import__("sys").modules, name, None)
            return import_optional(name, extra, purpose=purpose)

    monkeypatch.setattr("embedlab._torch.import_optional", without_torch)
    with pytest.raises(MissingDependencyError, match=r"embedlab\[deep\]"):
        Codec(spec).fit(low_rank)
