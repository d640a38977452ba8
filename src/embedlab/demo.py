"""The demo job: embed the bundled WordNet corpus and write its HTML report (``embedlab demo``)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embedlab._json import with_timings
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.datasets import wordnet_demo_path
from embedlab.embed import embed_file
from embedlab.io import load
from embedlab.neighbors import knn_graph
from embedlab.report import build_report, write_html

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_QUERIES = ("happiness", "doctor", "wolf", "bread", "storm", "sing")


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    embeddings : str
        The embeddings Parquet file.
    report : str
        The HTML report; ``report_bytes`` its size.
    report_bytes : int
    n, dim : int
        Rows and dimension of the embeddings.
    embed_seconds : float
        Time spent embedding (0 when the file was reused).
    report_seconds : float
        Time to measure and write the report.
    recommendations : list of str
        The report's recommendations.
    neighbours : dict
        For a few query words, the texts of their 5 nearest synsets.
    """

    embeddings: str
    report: str
    report_bytes: int
    n: int
    dim: int
    embed_seconds: float
    report_seconds: float
    recommendations: list[str]
    neighbours: dict

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the seconds in its ``timings`` block)."""
        return with_timings(asdict(self), "embed_seconds", "report_seconds")


def run_demo(
    out_dir: str | os.PathLike = "embedlab-demo",
    *,
    random_state: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> DemoResult:
    """Embed the bundled WordNet corpus (once; later runs reuse it) and write its HTML report.

    Parameters
    ----------
    out_dir : path-like, default="embedlab-demo"
        Where the embeddings and ``report.html`` are written.
    random_state : int, default=0
        Seed of every sampled step of the report.
    progress : ProgressReporter, optional

    Returns
    -------
    DemoResult
    """
    out = Path(out_dir)
    output = out / "wordnet_demo.parquet"
    started = time.perf_counter()
    if output.exists():
        logger.info("reusing %s", output)
        embed_seconds = 0.0
    else:
        embed_file(wordnet_demo_path(), output, progress=progress)
        embed_seconds = time.perf_counter() - started
    emb = load(output)
    started = time.perf_counter()
    report = build_report(
        emb,
        name=f"WordNet demo: {len(emb):,} synset definitions ({emb.model or 'embeddings'})",
        labels="label",
        random_state=random_state,
        progress=progress,
    )
    path = write_html(report, out / "report.html")
    report_seconds = time.perf_counter() - started
    graph = knn_graph(emb, k=10, random_state=random_state)  # the report's inspect built it: read from the set's cache
    texts = emb.column("text")
    heads = np.array([t.split(":", 1)[0] for t in texts])
    neighbours = {}
    for word in DEMO_QUERIES:
        hits = np.flatnonzero(heads == word)
        if hits.size:
            row = int(hits[0])
            neighbours[str(texts[row])] = [str(texts[j]) for j in graph.indices[row, :5]]
    return DemoResult(
        embeddings=str(output),
        report=str(path),
        report_bytes=path.stat().st_size,
        n=len(emb),
        dim=emb.dim,
        embed_seconds=round(embed_seconds, 2),
        report_seconds=round(report_seconds, 2),
        recommendations=report.recommendations,
        neighbours=neighbours,
    )
