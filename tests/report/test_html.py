from __future__ import annotations

import json
import re

import pytest

from embedlab.report import build_report, render_html, write_html


@pytest.fixture(scope="module")
def report(small_set):
    return build_report(small_set, name="known <set>", labels="label", k_values=[2, 3, 4], compression=False)


def _embedded_data(page: str) -> dict:
    match = re.search(r'<script id="embedlab-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_the_page_is_self_contained(report):
    page = render_html(report)
    assert not re.search(r"<(script|img|iframe)[^>]+src=", page)
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    assert "__EMBEDLAB_" not in page
    assert "<title>known &lt;set&gt; - embedlab report</title>" in page


def test_texts_cannot_break_out_of_the_data_script(report):
    page = render_html(report)
    assert page.count("</script>") == 2  # the data's and the program's, none from the texts
    data = _embedded_data(page)
    assert data["points"]["text"][-1] == "a </script><script>window.pwned = 1</script> lone point"
    assert data["n"] == 605 and len(data["points"]["x"]) == 605


def test_write_html_is_atomic(report, tmp_path, monkeypatch):
    path = write_html(report, tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == render_html(report)
    before = path.read_bytes()

    def broken(_report):
        raise RuntimeError("disk full")

    monkeypatch.setattr("embedlab.report._html.render_html", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_html(report, path)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_a_marker_inside_a_name_is_left_as_written(small_set):
    report = build_report(small_set, name="__EMBEDLAB_DATA__", k_values=[2, 3], compression=False, max_map_points=50)
    page = render_html(report)
    assert "<title>__EMBEDLAB_DATA__ - embedlab report</title>" in page
    assert _embedded_data(page)["name"] == "__EMBEDLAB_DATA__"
