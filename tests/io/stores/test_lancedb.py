"""LanceDB embedded on a temporary folder: the conformance checks, and the table's own rules."""

from __future__ import annotations

import pytest

from tests.io.stores import conformance as c

c.require("lancedb", "lancedb")


@pytest.fixture
def make(tmp_path):
    return lambda name: f"lancedb://{tmp_path}/db/{name}"


class TestConformance(c.Conformance):
    """Every store's checks (tests/io/stores/conformance.py)."""
