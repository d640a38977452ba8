"""LanceDB embedded on a temporary folder: the conformance checks, and the table's own rules."""

from __future__ import annotations

import pytest

from tests.io.stores import conformance as c

c.require("lancedb", "lancedb")


@pytest.fixture
def make(tmp_path):
    return lambda name: f"lancedb://{tmp_path}/db/{name}"


def test_round_trip(make, tmp_path):
    c.check_round_trip(make, tmp_path)


def test_string_ids(make, tmp_path):
    c.check_round_trip(make, tmp_path, string_ids=True)


def test_modes(make, tmp_path):
    c.check_modes(make, tmp_path)


def test_write_back(make, tmp_path):
    c.check_write_back(make, tmp_path)


def test_resume(make, tmp_path):
    c.check_resume(make, tmp_path)


def test_bad_inputs(make, tmp_path):
    c.check_bad_inputs(make, tmp_path)


def test_row_ranges(make, tmp_path):
    c.check_row_ranges(make, tmp_path)


def test_export_resume(make, tmp_path):
    c.check_export_resume(make, tmp_path)


def test_row_ranges_of_string_ids(make, tmp_path):
    c.check_row_ranges(make, tmp_path, string_ids=True)


def test_plain_npy(make, tmp_path):
    c.check_export_of_empty_payload(make, tmp_path)
