from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab import EmbeddingDataError
from embedlab.io.text_sources import read_texts


def test_txt_lines_with_row_number_ids(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("first\nsecond\nthird\n", encoding="utf-8")
    table, report = read_texts(path)
    assert table.column("text").to_pylist() == ["first", "second", "third"]
    assert table.column("id").to_pylist() == [0, 1, 2] and report.n_dropped == 0


def test_jsonl_gz_keeps_other_columns(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        for i in range(3):
            handle.write(json.dumps({"id": f"x{i}", "text": f"t{i}", "label": i % 2}) + "\n")
    table, _ = read_texts(path)
    assert table.column_names == ["id", "text", "label"]
    assert table.column("id").to_pylist() == ["x0", "x1", "x2"]


def test_csv_with_named_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("key,body,topic\n7,hello,a\n8,world,b\n")
    table, _ = read_texts(path, text_column="body", id_column="key")
    assert table.column_names == ["id", "text", "topic"] and table.column("id").to_pylist() == [7, 8]


def test_parquet_single_string_column_is_the_text(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"sentence_x": ["a", "b"], "n": [1, 2]}), path)
    assert read_texts(path)[0].column("text").to_pylist() == ["a", "b"]


def test_empty_text_rows_fail_or_drop(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a\n\n   \nb\n")
    with pytest.raises(EmbeddingDataError, match="2 of 4 rows have an empty or missing text"):
        read_texts(path)
    table, report = read_texts(path, on_invalid="drop")
    assert table.column("text").to_pylist() == ["a", "b"]
    assert report.to_dict()["dropped"][0]["ids"] == [1, 2]


def test_duplicate_ids_and_missing_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,text\n1,a\n1,b\n")
    with pytest.raises(EmbeddingDataError, match="duplicate id"):
        read_texts(path)
    with pytest.raises(EmbeddingDataError, match="no text column 'body'"):
        read_texts(path, text_column="body")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.doc", "x", "unknown text format"),
        ("t.jsonl", "{not json", "cannot be parsed"),
        ("t.txt", "", "empty"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(EmbeddingDataError, match=message):
        read_texts(path)
