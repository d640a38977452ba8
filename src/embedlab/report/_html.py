"""One self-contained HTML file: the template with its style sheet, script and data inlined (nothing fetched)."""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path

from embedlab import __version__
from embedlab._json import json_safe
from embedlab.io.writers import atomic_path
from embedlab.report._collect import Report

__all__ = ["render_html", "write_html"]


def _asset(name: str) -> str:
    return resources.files("embedlab.report").joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(document: dict) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>`` or ``<!--`` can end or confuse it."""
    text = json.dumps(json_safe(document), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(report: Report) -> str:
    """The report as one HTML document, its style sheet, script and data inlined.

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab import EmbeddingSet
    >>> from embedlab.report import build_report
    >>> rng = np.random.default_rng(0)
    >>> emb = EmbeddingSet(rng.normal(size=(60, 8)).astype("float32"))
    >>> page = render_html(build_report(emb, compression=False, k_values=[2, 3], max_map_points=60))
    >>> page.startswith("<!DOCTYPE html>") and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    True
    """
    title = html.escape(report.name)
    replacements = {
        "__EMBEDLAB_CSS__": _asset("report.css"),
        "__EMBEDLAB_JS__": _asset("report.js"),
        "__EMBEDLAB_TITLE__": title,
        "__EMBEDLAB_VERSION__": html.escape(__version__),
    }
    page = _asset("template.html")
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    # The data goes in last, so that no marker inside a text of the data is ever replaced.
    return page.replace("__EMBEDLAB_DATA__", _script_json(report.page_data()))


def write_html(report: Report, path: str | os.PathLike) -> Path:
    """Write :func:`render_html` to ``path`` atomically (a finished file or none); return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(report), encoding="utf-8")
    return Path(path)
