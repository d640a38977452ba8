"""The one set of parameter checks: integers, positive numbers and choices, each error naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab._checks import check_choice, check_int, check_positive


def test_accepted_values_come_back_as_python_types():
    assert check_int(np.int32(4), "k") == 4 and type(check_int(np.int32(4), "k")) is int
    assert check_int(0, "rescore_max", 0) == 0
    assert check_int(5, "k", maximum=5) == 5
    assert check_positive(1, "target_recall", upper=1.0) == 1.0
    assert check_choice("ivf", "method", ("hnsw", "ivf")) == "ivf"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_int(True, "k"), "k must be an integer >= 1, got True"),
        (lambda: check_int(2.0, "k"), "k must be an integer >= 1, got 2.0"),
        (lambda: check_int(-1, "seed", 0), "seed must be an integer >= 0, got -1"),
        (lambda: check_int(9, "k", maximum=8, why="the rows"), r"k must be an integer between 1 and 8 \(the rows\)"),
        (lambda: check_positive(0, "tol"), "tol must be positive, got 0"),
        (lambda: check_positive(1.5, "target_recall", upper=1.0), "target_recall must be positive and at most 1"),
        (lambda: check_positive("0.5", "tol"), "tol must be a number"),
        (lambda: check_choice("lsh", "method", ("hnsw", "ivf")), "method must be one of 'hnsw', 'ivf', got 'lsh'"),
        (lambda: check_choice(["hnsw"], "method", ("hnsw",)), "method must be one of"),
    ],
)
def test_refusals_name_the_parameter_and_what_it_got(call, message):
    with pytest.raises(ConfigurationError, match=message):
        call()
