from __future__ import annotations

import pytest

from embedlab import ConfigurationError
from embedlab.compress import parse_spec


@pytest.mark.parametrize(
    "text",
    [
        "float32",
        "float16",
        "int8",
        "int8:99.5",
        "int4",
        "binary",
        "binary:itq",
        "binary+rescore:10",
        "pca:256+int8",
        "pca:128",
        "pca:128+float32",
        "rotate+int4",
        "matryoshka:128+float16+rescore:5",
        "leanvec-ood:96+int8",
        "pq:48",
        "opq:48+rescore:10",
        "pqfs:96",
        "rabitq:1",
        "pca:192+rabitq:2",
    ],
)
def test_specs_parse_and_print_back_identically(text):
    spec = parse_spec(text)
    assert str(spec) == text
    assert parse_spec(str(spec)) == spec


def test_parts_of_a_spec():
    spec = parse_spec("pca:256+rotate+int8+rescore:10")
    assert [str(stage) for stage in spec.transforms] == ["pca:256", "rotate"]
    assert spec.quantizer_stage.name == "int8" and spec.rescore == 10
    assert spec.codes_spec == "pca:256+rotate+int8"
    assert parse_spec("pca:64").quantizer_stage.name == "float32"
    assert str(spec.with_rescore(None)) == "pca:256+rotate+int8"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("int9", "unknown stage 'int9'"),
        ("int8+pca:64", "comes after the quantizer"),
        ("int8+binary", "two quantizers"),
        ("rescore:5+int8", "must be the last stage"),
        ("pca", "needs an argument"),
        ("rotate:3", "takes no argument"),
        ("int8+rescore:0", "integer >= 1"),
        ("int8+rescore:x", "integer >= 1"),
        ("rescore:4", "name a codec"),
        ("pca:12 8", "cannot read the stage"),
        ("int8++pq:4", "cannot read the stage"),
        # Found by the memory benchmark: a count written as faiss writes it reached int() unchecked.
        ("pq:32x8", "'pq:32x8': the argument must be an integer >= 1"),
        ("pca:1.5", "'pca:1.5': the argument must be an integer >= 1"),
        ("opq:0", "integer >= 1"),
    ],
)
def test_bad_specs_get_clear_errors(text, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_spec(text)
