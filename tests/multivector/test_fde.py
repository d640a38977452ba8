"""MUVERA fixed dimensional encodings: the construction checked against a plain re-implementation of the
reference's loops, the inequality and the approximation of Chamfer similarity the paper proves, seeding, batch
independence and the size limit."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.multivector import MultiVectorSet, MuveraEncoder, fde_dim, maxsim_scores


def _set(n, dim=16, seed=0, most=9, unit=True):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x = rng.normal(size=(int(rng.integers(1, most)), dim))
        rows.append(x / np.linalg.norm(x, axis=1, keepdims=True) if unit else x)
    return MultiVectorSet.from_matrices(rows)


def _reference(encoder, rows, document):
    """One repetition at a time, token by token, as fixed_dimensional_encoding.cc writes it."""
    k, out = encoder.k_sim, []
    for row in range(len(rows)):
        parts = []
        for rep in encoder.repetitions_:
            tokens = rows[row]
            projected = tokens if rep.projection is None else tokens @ rep.projection
            sketches = tokens @ rep.hyperplanes
            cells = np.zeros((2**k, projected.shape[1]))
            counts = np.zeros(2**k)
            for t, sketch in enumerate(sketches):
                index = 0
                for bit in sketch > 0:
                    index = (index << 1) + (int(bit) ^ (index & 1))  # AppendToGrayCode
                cells[index] += projected[t]
                counts[index] += 1
            if document:
                cells[counts > 0] /= counts[counts > 0, None]
                for index in np.flatnonzero(counts == 0) if encoder.fill_empty else []:
                    binary = index ^ (index >> 1)  # the reference's GrayCodeToBinary
                    distances = []
                    for sketch in sketches:
                        code, d = binary, 0
                        for i in range(k - 1, -1, -1):
                            d += int(sketch[i] > 0) != (code & 1)
                            code >>= 1
                        distances.append(d)
                    cells[index] = projected[int(np.argmin(distances))]
            parts.append(cells.reshape(-1))
        out.append(np.concatenate(parts))
    return np.array(out)


@pytest.mark.parametrize(("k_sim", "d_proj", "fill"), [(0, None, True), (3, None, True), (3, 5, False), (4, 6, True)])
def test_the_encoding_is_the_reference_construction(k_sim, d_proj, fill):
    docs, queries = _set(15, seed=1), _set(6, seed=2)
    encoder = MuveraEncoder(k_sim, d_proj, repetitions=3, fill_empty=fill, random_state=7).fit(docs)
    assert encoder.n_features_out_ == fde_dim(k_sim, 3, d_proj or 16)
    np.testing.assert_allclose(encoder.encode(docs).vectors, _reference(encoder, docs, True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        encoder.encode(queries, "query").vectors, _reference(encoder, queries, False), rtol=1e-5, atol=1e-5
    )


def test_one_partition_is_the_sum_of_the_query_with_the_mean_of_the_document():
    docs, queries = _set(10, seed=3, unit=False), _set(4, seed=4, unit=False)
    encoder = MuveraEncoder(0, None, repetitions=1).fit(docs)
    got = encoder.encode(queries, "query").vectors @ encoder.encode(docs).vectors.T
    expected = np.array([[queries[i].sum(0) @ docs[j].mean(0) for j in range(10)] for i in range(4)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_without_projection_the_estimate_never_exceeds_chamfer():
    """Each query token meets a mean (or one token) of document tokens, never more than its best match."""
    docs, queries = _set(40, seed=5), _set(10, seed=6)
    encoder = MuveraEncoder(4, None, repetitions=6).fit(docs)
    estimate = encoder.encode(queries, "query").vectors @ encoder.encode(docs).vectors.T / 6
    assert (estimate <= maxsim_scores(queries, docs) + 1e-4).all()


def test_the_estimate_approaches_normalised_chamfer():
    """Theorem 2.1: (1/|Q|) <F_q(Q), F_doc(P)> is within eps of NCHAMFER(Q, P) with probability 1 - delta once
    k_sim grows like log(m / delta) / eps (and d_proj like log(m / (eps delta)) / eps**2). On clustered unit
    tokens (each query token a near copy of one token of its document) the error falls as k_sim grows, and at
    k_sim = 6 (64 partitions for 8 tokens) a query's own document is estimated within 0.1 on average; what is
    left is two document tokens sharing a partition, the collisions the theorem's k_sim bound rules out."""
    rng = np.random.default_rng(8)
    centres = rng.normal(size=(200, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def noisy(points, scale):
        x = points + scale * rng.normal(size=points.shape)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    doc_rows = [noisy(centres[rng.choice(200, 8, replace=False)], 0.05) for _ in range(30)]
    query_rows = [noisy(doc_rows[i][rng.choice(8, 4, replace=False)], 0.01) for i in range(30)]
    docs, queries = MultiVectorSet.from_matrices(doc_rows), MultiVectorSet.from_matrices(query_rows)
    nchamfer = maxsim_scores(queries, docs) / queries.lengths[:, None]
    errors = {}
    for k_sim in (1, 3, 6):
        encoder = MuveraEncoder(k_sim, None, repetitions=20, random_state=1).fit(docs)
        estimate = encoder.encode(queries, "query").vectors @ encoder.encode(docs).vectors.T
        error = np.abs(estimate / 20 / queries.lengths[:, None] - nchamfer)
        errors[k_sim] = error
    assert errors[1].mean() > errors[3].mean() > errors[6].mean()
    own = {k_sim: np.diag(error) for k_sim, error in errors.items()}
    assert own[1].mean() > own[3].mean() > own[6].mean() and own[6].mean() <= 0.1
    # and it ranks: each query's own document is among the 3 highest estimates
    encoder = MuveraEncoder(5, 16, repetitions=20, random_state=1).fit(docs)
    estimate = encoder.encode(queries, "query").vectors @ encoder.encode(docs).vectors.T
    top = np.argsort(-estimate, axis=1)[:, :3]
    assert np.mean([i in top[i] for i in range(30)]) >= 0.9


def test_seeded_batch_independent_and_final_projection():
    docs = _set(30, seed=9)
    a = MuveraEncoder(3, 8, repetitions=4, random_state=1).fit(docs)
    b = MuveraEncoder(3, 8, repetitions=4, random_state=1).fit(docs)
    c = MuveraEncoder(3, 8, repetitions=4, random_state=2).fit(docs)
    np.testing.assert_array_equal(a.encode(docs).vectors, b.encode(docs).vectors)
    assert not np.allclose(a.encode(docs).vectors, c.encode(docs).vectors)
    # a batch of 2 and one of 30 may take different BLAS kernels: equal to rounding
    np.testing.assert_allclose(a.encode(docs.take([4, 20])).vectors, a.encode(docs).vectors[[4, 20]], rtol=1e-6)
    assert a.encode(docs).ids.tolist() == docs.ids.tolist()
    reduced = MuveraEncoder(3, 8, repetitions=4, final_dim=64, random_state=1).fit(docs)
    full, small = a.encode(docs).vectors, reduced.encode(docs).vectors
    assert small.shape == (30, 64)
    np.testing.assert_allclose(small, full @ reduced.final_projection_.toarray(), rtol=1e-5, atol=1e-5)


def test_bad_parameters_name_the_size():
    docs = _set(3)
    with pytest.raises(ConfigurationError, match=r"1,310,720 dimensions \(5,242,880 bytes"):
        MuveraEncoder(10, 64, repetitions=20).fit(docs)
    with pytest.raises(ConfigurationError, match="not fitted"):
        MuveraEncoder().encode(docs)
    with pytest.raises(ConfigurationError, match="dimension 16"):
        MuveraEncoder(2, 4, 2).fit(docs).encode(_set(2, dim=8))
    with pytest.raises(ConfigurationError, match="kind"):
        MuveraEncoder(2, 4, 2).fit(docs).encode(docs, "passage")
