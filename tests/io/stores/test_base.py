"""The payload helpers every schemaless store shares: columns and types from the first rows, values that do not
fit kept as JSON text rather than dropped, nulls left out of what is written."""

from __future__ import annotations

import json

import pyarrow as pa

from embedlab.io.stores._base import infer_types, records_table, table_records


def test_columns_and_types_come_from_the_first_rows():
    columns, types = infer_types([{"a": 1, "b": "x"}, {"a": 2, "c": 1.5}])
    assert columns == ["a", "b", "c"]
    assert types == {"a": pa.int64(), "b": pa.string(), "c": pa.float64()}


def test_values_that_do_not_fit_become_json_text():
    _, types = infer_types([{"a": 1}])
    table = records_table([{"a": 1}, {"a": "two"}, {"a": None}], ["a"], types)
    assert table.column("a").type == pa.string()
    assert table.column("a").to_pylist() == ["1", "two", None]
    nested = records_table([{"n": {"x": [1, 2]}}], ["n"], None)
    assert json.loads(nested.column("n")[0].as_py()) == {"x": [1, 2]}


def test_missing_keys_are_nulls_and_nulls_are_not_written():
    table = records_table([{"a": 1}, {}], ["a"], {"a": pa.int64()})
    assert table.column("a").to_pylist() == [1, None]
    assert table_records(table, 2) == [{"a": 1}, {}]
    assert table_records(None, 2) == [{}, {}]
