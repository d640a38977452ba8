from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import Rows, as_float32_matrix, check_k, check_vectors, find_invalid_rows, prepare


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_converts_to_c_contiguous_float32(dtype):
    X = np.asfortranarray(np.arange(12).reshape(4, 3).astype(dtype))
    out = as_float32_matrix(X)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.arange(12).reshape(4, 3))


def test_float32_input_is_not_copied():
    X = np.ones((3, 2), dtype=np.float32)
    assert as_float32_matrix(X) is X


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.ones(5), "reshape(1, -1)"),
        (np.ones((2, 2, 2)), "2-D array"),
        (np.empty((0, 4)), "empty"),
        (np.empty((3, 0)), "dimension 0"),
        (np.array([["a", "b"]]), "numeric"),
        ([[1.0, 2.0], [3.0]], "ragged"),
    ],
)
def test_shape_and_type_errors_say_what_to_do(value, message):
    with pytest.raises(EmbeddingDataError, match="my_input") as info:
        as_float32_matrix(value, name="my_input")
    assert message in str(info.value)


def test_nan_rows_named_by_id_and_fix_suggested():
    X = np.ones((6, 3))
    X[[1, 4], 0] = np.nan
    X[2, 2] = np.inf
    with pytest.raises(EmbeddingDataError) as info:
        check_vectors(X, ids=["a", "b", "c", "d", "e", "f"], name="f.parquet")
    text = str(info.value)
    assert "f.parquet" in text and "3 of 6 rows have NaN or Inf" in text
    assert "'b', 'c', 'e'" in text and "--on-invalid drop" in text


def test_drop_reports_every_dropped_id():
    X = np.ones((5, 2))
    X[0] = 0.0
    X[1, 1] = np.nan
    out, ids, report = check_vectors(X, ids=[10, 11, 12, 12, 14], on_invalid="drop")
    assert out.shape == (2, 2) and ids.tolist() == [12, 14]
    assert report.n_dropped == 3
    reasons = {d["reason"]: d["ids"] for d in report.to_dict()["dropped"]}
    assert reasons == {
        "NaN or Inf values": [11],
        "all-zero vectors": [10],
        "a duplicate id (an earlier row has the same id)": [12],
    }


def test_zero_rows_allowed_on_request():
    X = np.zeros((3, 2))
    assert find_invalid_rows(as_float32_matrix(X), allow_zero=True) == ()
    assert find_invalid_rows(as_float32_matrix(X))[0].positions.tolist() == [0, 1, 2]


def test_min_rows_counts_after_dropping():
    with pytest.raises(EmbeddingDataError, match="1 usable row.*at least 2.*1 dropped"):
        check_vectors([[1.0, 0.0], [np.nan, 0.0]], on_invalid="drop", min_rows=2)


def test_ids_length_mismatch():
    with pytest.raises(EmbeddingDataError, match="3 vectors but 2 ids"):
        check_vectors(np.ones((3, 2)), ids=[1, 2])


def test_unknown_policy():
    with pytest.raises(ConfigurationError, match="on_invalid"):
        check_vectors(np.ones((3, 2)), on_invalid="ignore")


@pytest.mark.parametrize(
    ("k", "n", "exclude", "ok"), [(1, 2, True, True), (2, 2, True, False), (2, 2, False, True), (0, 5, True, False)]
)
def test_check_k(k, n, exclude, ok):
    if ok:
        assert check_k(k, n, exclude_self=exclude) == k
    else:
        with pytest.raises(ConfigurationError, match="k"):
            check_k(k, n, exclude_self=exclude)


def test_check_k_rejects_bool_and_float():
    for bad in (True, 2.0):
        with pytest.raises(ConfigurationError):
            check_k(bad, 10)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    )
)
def test_drop_keeps_exactly_the_finite_nonzero_rows(X):
    with np.errstate(over="ignore", invalid="ignore"):
        as_float32 = X.astype(np.float32)
        squares = np.einsum("ij,ij->i", as_float32, as_float32)
    good = np.isfinite(as_float32).all(axis=1) & X.any(axis=1) & np.isfinite(squares)  # squares that overflow: refused
    if not good.any():
        with pytest.raises(EmbeddingDataError):
            check_vectors(X, on_invalid="drop")
        return
    out, _, report = check_vectors(X, on_invalid="drop")
    np.testing.assert_array_equal(out, X[good].astype(np.float32))
    assert report.n_dropped == int((~good).sum())


def test_prepare_validates_once_and_normalises_for_cosine():
    X = np.array([[3.0, 4.0], [0.0, 2.0]])
    rows = prepare(X, "cosine")
    assert isinstance(rows, Rows) and rows.vectors.dtype == np.float32 and rows.vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(rows.vectors, axis=1), 1.0, rtol=1e-6)
    assert prepare(rows, "cosine") is rows
    assert prepare(rows, "ip").vectors is rows.vectors  # unit rows rank the same under the inner product
    raw = prepare(X, "l2")
    np.testing.assert_array_equal(raw.vectors, X.astype(np.float32))
    np.testing.assert_allclose(prepare(raw, "cosine").vectors, rows.vectors)  # prepared again for cosine
    assert rows.take(np.array([1])).vectors.tolist() == [[0.0, 1.0]] and len(rows) == 2 and rows.dim == 2


def test_prepare_errors_name_the_input():
    with pytest.raises(EmbeddingDataError, match="queries: 1 of 2 rows have all-zero vectors"):
        prepare([[0.0, 0.0], [1.0, 0.0]], "cosine", name="queries")
    assert prepare([[0.0, 0.0], [1.0, 0.0]], "l2").n == 2
    with pytest.raises(EmbeddingDataError, match="queries has 2 features, but it is expecting 3 features"):
        prepare([[1.0, 0.0]], "ip", name="queries", dim=3)
    with pytest.raises(EmbeddingDataError, match="at least 2"):
        prepare([[1.0, 0.0]], "l2", min_rows=2)
    with pytest.raises(ConfigurationError, match="metric must be one of 'cosine', 'l2', 'ip'"):
        prepare([[1.0, 0.0]], "manhattan")
