"""Report: one self-contained, interactive HTML file that shows what an embedding set holds.

This sub-package owns the collection of the report's figures (:func:`build_report`: inspect, clusters with
automatic k, a quick compression plan with faiss anchors, a 2-D map, plain-language recommendations) and their
rendering into a single offline HTML page (:func:`write_html`; style sheet, script and data inlined).
"""

from embedlab.report._collect import (
    MapPoints,
    Report,
    build_report,
    map_points,
    quick_anchors,
    quick_codecs,
    report_memory,
)
from embedlab.report._html import render_html, write_html

__all__ = [
    "MapPoints",
    "Report",
    "build_report",
    "map_points",
    "quick_anchors",
    "quick_codecs",
    "render_html",
    "report_memory",
    "write_html",
]
