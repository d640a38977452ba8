from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.compress import Codec, CodecSearcher


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _recall(codec, X, Q, k=10):
    codes = codec.encode(X)
    found = CodecSearcher(codec, codes).search(Q, k).indices
    truth = np.argsort(-(_unit(Q) @ _unit(X).T), axis=1)[:, :k]
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)])


def test_float_codecs_round_trip_within_their_precision(low_rank):
    exact = Codec("float32").fit(low_rank)
    np.testing.assert_array_equal(exact.decode(exact.encode(low_rank)), low_rank)
    half = Codec("float16").fit(low_rank)
    decoded = half.decode(half.encode(low_rank))
    assert np.abs(decoded - low_rank).max() <= 2.0**-11 * np.abs(low_rank).max()
    assert exact.bytes_per_vector == 256 and half.bytes_per_vector == 128


@pytest.mark.parametrize(("spec", "levels", "width"), [("int8", 256, 64), ("int4", 16, 32)])
def test_scalar_quantizers_err_by_at_most_half_a_step_inside_the_range(low_rank, spec, levels, width):
    codec = Codec(spec, metric="ip").fit(low_rank)
    quantizer = codec.quantizer_
    inside = np.all(
        (low_rank >= quantizer.low_) & (low_rank <= quantizer.low_ + quantizer.step_ * (levels - 1)), axis=1
    )
    assert inside.mean() > 0.5  # the clipped tails are a small share of rows
    decoded = codec.decode(codec.encode(low_rank))
    assert codec.bytes_per_vector == width
    assert np.all(np.abs(decoded - low_rank)[inside] <= quantizer.step_ / 2 + 1e-6)


def test_int4_packs_odd_dimensions(rng):
    X = rng.normal(size=(300, 7)).astype(np.float32)
    codec = Codec("int4:100", metric="ip").fit(X)
    assert codec.bytes_per_vector == 4
    assert np.all(np.abs(codec.decode(codec.encode(X)) - X) <= codec.quantizer_.step_ / 2 + 1e-6)


@pytest.mark.parametrize("mode", ["sign", "center", "itq"])
def test_binary_codes_keep_the_signs_and_one_bit_per_dimension(low_rank, mode):
    codec = Codec(f"binary:{mode}", metric="ip").fit(low_rank)
    quantizer = codec.quantizer_
    codes = codec.encode(low_rank)
    assert codes.shape == (2000, 8)
    rotated = (low_rank - quantizer.mean_) @ quantizer.rotation_
    decoded_rotated = (codec.decode(codes) - quantizer.mean_) @ quantizer.rotation_
    np.testing.assert_array_equal(np.sign(decoded_rotated), np.where(rotated > 0, 1.0, -1.0))
    np.testing.assert_allclose(quantizer.rotation_.T @ quantizer.rotation_, np.eye(64), atol=1e-4)


def test_itq_rotation_lowers_the_binarisation_error(low_rank, rng):
    # ||sign(VR) - VR||^2 = const - 2 sum|VR|: ITQ's rotation must beat no rotation and a random one on sum|VR|
    quantizer = Codec("binary:itq", metric="ip").fit(low_rank).quantizer_
    centred = low_rank - quantizer.mean_
    random_rotation = np.linalg.qr(rng.normal(size=(64, 64)))[0]
    learnt = np.abs(centred @ quantizer.rotation_).sum()
    assert learnt > 1.03 * np.abs(centred).sum()
    assert learnt > 1.03 * np.abs(centred @ random_rotation).sum()


def test_full_dimension_transforms_preserve_the_ranking(low_rank, rng):
    Q = _unit(rng.normal(size=(30, 64)) @ np.linalg.qr(rng.normal(size=(64, 64)))[0])
    for spec in ("pca:64", "leanvec:64", "rotate"):
        assert _recall(Codec(spec).fit(low_rank), low_rank, Q) == 1.0
    codec = Codec("pca:64", metric="ip").fit(low_rank)
    result = CodecSearcher(codec, codec.encode(low_rank)).search(Q, 5)
    np.testing.assert_allclose(result.scores, np.take_along_axis(Q @ low_rank.T, result.indices, axis=1), atol=1e-5)


def test_matryoshka_keeps_a_renormalised_prefix(low_rank):
    codec = Codec("matryoshka:16").fit(low_rank)
    decoded = codec.decode(codec.encode(low_rank))
    np.testing.assert_allclose(decoded, _unit(low_rank[:, :16]), atol=1e-6)


def test_reductions_keep_recall_on_low_rank_data(low_rank, rng):
    Q = low_rank[rng.choice(2000, 50, replace=False)] + 0.05 * rng.normal(size=(50, 64)).astype(np.float32)
    assert _recall(Codec("pca:16+int8").fit(low_rank), low_rank, Q) > 0.8
    assert _recall(Codec("int4").fit(low_rank), low_rank, Q) > 0.8
    assert _recall(Codec("pq:16").fit(low_rank), low_rank, Q) > 0.6
    assert _recall(Codec("rabitq:4").fit(low_rank), low_rank, Q) > 0.8


def test_more_bits_give_higher_recall(low_rank, rng):
    Q = _unit(rng.normal(size=(50, 64)))
    recalls = [_recall(Codec(spec).fit(low_rank), low_rank, Q) for spec in ("rabitq:1", "rabitq:2", "rabitq:4")]
    assert recalls[0] < recalls[1] < recalls[2]
    pq = [_recall(Codec(spec).fit(low_rank), low_rank, Q) for spec in ("pq:8", "pq:32")]
    assert pq[0] < pq[1]


def test_leanvec_ood_beats_in_distribution_projection_on_shifted_queries(rng):
    # rows vary along the first 8 axes, queries along axes 8-15: the rows' own top axes miss the queries
    X = _unit(rng.normal(size=(3000, 32)) * np.r_[np.full(8, 3.0), np.full(24, 1.0)])
    Q = _unit(rng.normal(size=(400, 32)) * np.r_[np.full(8, 0.1), np.full(8, 3.0), np.full(16, 0.1)])
    learn, evaluate = Q[:200], Q[200:]
    ood = _recall(Codec("leanvec-ood:8").fit(X, queries=learn), X, evaluate)
    in_distribution = _recall(Codec("leanvec:8").fit(X), X, evaluate)
    assert ood > in_distribution + 0.2


def test_a_codec_survives_json_with_identical_answers(low_rank, rng):
    Q = _unit(rng.normal(size=(20, 64)))
    for spec in ("pca:32+int4", "binary:itq", "opq:16", "pqfs:32", "rabitq:2", "leanvec-ood:16+float16"):
        codec = Codec(spec).fit(low_rank[:600], queries=Q)  # OPQ's fit on all 2,000 rows takes seconds
        codes = codec.encode(low_rank)
        again = Codec.from_dict(codec.to_dict())
        np.testing.assert_array_equal(again.encode(low_rank), codes)
        np.testing.assert_array_equal(
            CodecSearcher(again, codes).search(Q, 5).indices, CodecSearcher(codec, codes).search(Q, 5).indices
        )


def test_fits_are_reproducible(low_rank):
    X = low_rank[:600]  # OPQ's alternating fits take seconds on the full 2,000 rows
    first = Codec("opq:8", random_state=3).fit(X).encode(X)
    np.testing.assert_array_equal(first, Codec("opq:8", random_state=3).fit(X).encode(X))


def test_bad_inputs_get_clear_errors(low_rank, rng):
    codec = Codec("int8").fit(low_rank)
    codes = codec.encode(low_rank)
    searcher = CodecSearcher(codec, codes)
    with pytest.raises(EmbeddingDataError, match="queries has 32 features, but it is expecting 64 features"):
        searcher.search(rng.normal(size=(3, 32)), 5)
    with pytest.raises(EmbeddingDataError, match="queries"):
        searcher.search(np.empty((0, 64), dtype=np.float32), 5)
    with pytest.raises(ConfigurationError, match="k=2001 but only 2000 neighbour"):
        searcher.search(low_rank[:2], 2001)
    with pytest.raises(EmbeddingDataError, match=r"codes must be uint8 of shape \(n, 64\)"):
        CodecSearcher(codec, codes[:, :10])
    with pytest.raises(ConfigurationError, match="not fitted"):
        Codec("int8").encode(low_rank)
    with pytest.raises(ConfigurationError, match="float16 holds magnitudes up to"):
        Codec("float16", metric="ip").fit(low_rank * 1e6).encode(low_rank * 1e6)
    with pytest.raises(ConfigurationError, match="sample queries"):
        Codec("leanvec-ood:8").fit(low_rank)
    with pytest.raises(ConfigurationError, match="must divide the dimension 64"):
        Codec("pq:7").fit(low_rank)
    with pytest.raises(ConfigurationError, match="between 1 and 64"):
        Codec("pca:65").fit(low_rank)
    for spec in ("pq:8", "opq:8"):  # OPQ's rotation is refused too, before faiss's k-means aborts on 100 rows
        with pytest.raises(ConfigurationError, match="needs at least 256 training rows"):
            Codec(spec).fit(low_rank[:100])
    with pytest.raises(ConfigurationError, match="metric must be one of 'cosine', 'ip'"):
        Codec("int8", metric="l2").fit(low_rank)
    with pytest.raises(EmbeddingDataError, match="NaN"):
        Codec("int8").fit(np.where(np.arange(64) == 3, np.nan, low_rank))
    with pytest.raises(EmbeddingDataError, match="format"):
        Codec.from_dict({**codec.to_dict(), "format": 99})
    with pytest.raises(EmbeddingDataError, match="not a valid embedlab codec"):
        Codec.from_dict({"spec": "int8"})


@pytest.mark.parametrize("spec", ["pq:8", "opq:8", "pqfs:8", "rabitq:1"])
def test_faiss_codes_are_encoded_in_bounded_blocks_with_the_same_codes(spec, monkeypatch):
    """faiss encodes a call at once (a product quantizer's distance tables for 65,536 rows of pq:32 took 2 GiB);
    the rows are encoded in blocks of bounded bytes instead, with the same codes."""
    from embedlab.compress import _quantizers

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3_000, 32)).astype(np.float32)
    codec = Codec(spec, random_state=0).fit(X[:600])  # fitted on a part: the blocks are about encoding
    whole = codec.encode(X)
    monkeypatch.setattr(_quantizers, "_ENCODE_BYTES", 40_000)  # a few hundred rows a block
    assert codec.quantizer_.encode_row_bytes * 3_000 > 40_000
    assert np.array_equal(codec.encode(X), whole)
