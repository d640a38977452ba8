"""The report's page data keeps the shape its script reads: every report validates against
``report/assets/page_data.schema.json``, and a document missing what the script needs does not."""

from __future__ import annotations

import copy
import json
from importlib import resources

import numpy as np
import pytest

from embedlab import EmbeddingSet
from embedlab.report import build_report

jsonschema = pytest.importorskip("jsonschema", reason='pip install "embedlab[dev]"')


@pytest.fixture(scope="module")
def schema() -> dict:
    document = json.loads(resources.files("embedlab.report").joinpath("assets/page_data.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return document


@pytest.fixture(scope="module")
def report_of_known_set(small_set):
    return build_report(small_set, labels="label", text_column="text", k_values=[2, 3, 4], compression_queries=50)


def _page(report) -> dict:
    return json.loads(json.dumps(report.page_data()))  # as the page holds it: JSON, NaN written as null


def test_a_report_with_labels_and_texts_matches_the_schema(report_of_known_set, schema):
    jsonschema.validate(_page(report_of_known_set), schema)


def test_a_report_without_labels_texts_or_compression_matches_the_schema(schema):
    bare = EmbeddingSet(np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32))
    jsonschema.validate(_page(build_report(bare, compression=False, k_values=[2, 3], random_state=0)), schema)


@pytest.mark.parametrize(
    ("path", "change"),
    [
        (("points",), "drop"),
        (("geometry", "intrinsic_dimension", "twonn", "value"), "not a number"),
        (("clusters", "clusters"), "drop"),
        (("timings", "seconds", "total"), "not a number"),
    ],
)
def test_a_document_the_script_could_not_draw_is_refused(report_of_known_set, schema, path, change):
    page = copy.deepcopy(_page(report_of_known_set))
    parent = page
    for key in path[:-1]:
        parent = parent[key]
    if change == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = change
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(page, schema)
