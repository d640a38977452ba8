"""One self-contained HTML file: the template with its style sheet, script and data inlined (nothing fetched)."""

from __future__ import annotations

import html
import json
import os
import re
from importlib import resources
from pathlib import Path

from embedlab._json import json_safe
from embedlab._version import __version__
from embedlab.io.writers import atomic_path
from embedlab.report._collect import Report

__all__ = ["render_html", "write_html"]

_MARKER = re.compile(r"__EMBEDLAB_([A-Z]+)__")


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
    values = {
        "CSS": _asset("report.css"),
        "JS": _asset("report.js"),
        "TITLE": html.escape(report.name),
        "VERSION": html.escape(__version__),
        "DATA": _script_json(report.page_data()),
    }
    # One pass over the template: a marker inside a value (a name, a text) is never replaced in turn.
    return _MARKER.sub(lambda match: values[match.group(1)], _asset("template.html"))


def write_html(report: Report, path: str | os.PathLike) -> Path:
    """Write :func:`render_html` to ``path`` atomically (a finished file or none); return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(report), encoding="utf-8")
    return Path(path)
