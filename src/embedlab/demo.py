"""The demo job: embed the bundled WordNet corpus and summarise it (the report issue grows this into HTML)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.datasets import wordnet_demo_path
from embedlab.embed import embed_file
from embedlab.io import Description, describe, load
from embedlab.neighbors import knn_graph

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
    description : Description
        :func:`embedlab.describe` of it.
    embed_seconds : float
        Time spent embedding (0 when the file was reused).
    knn_method : str
        Search method of the kNN graph; ``knn_recall`` its measured recall@10, ``knn_seconds`` its time.
    knn_recall : float or None
    knn_seconds : float
    neighbours : dict
        For a few query words, the texts of their 5 nearest synsets.
    """

    embeddings: str
    description: Description
    embed_seconds: float
    knn_method: str
    knn_recall: float | None
    knn_seconds: float
    neighbours: dict

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        document = asdict(self)
        document["description"] = self.description.to_dict()
        return document


def run_demo(
    out_dir: str | os.PathLike = "embedlab-demo",
    *,
    seed: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> DemoResult:
    """Embed the bundled WordNet corpus (once; later runs reuse it), build its kNN graph and summarise it.

    Parameters
    ----------
    out_dir : path-like, default="embedlab-demo"
        Where the embeddings are written.
    seed : int, default=0
        Seed of the kNN recall sample.
    progress : ProgressReporter, optional

    Returns
    -------
    DemoResult
    """
    output = Path(out_dir) / "wordnet_demo.parquet"
    started = time.perf_counter()
    if output.exists():
        logger.info("reusing %s", output)
        embed_seconds = 0.0
    else:
        embed_file(wordnet_demo_path(), output, progress=progress)
        embed_seconds = time.perf_counter() - started
    description = describe(output, progress=progress)
    emb = load(output)
    started = time.perf_counter()
    graph = knn_graph(emb, k=10, random_state=seed, progress=progress)
    knn_seconds = time.perf_counter() - started
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
        description=description,
        embed_seconds=round(embed_seconds, 2),
        knn_method=graph.method,
        knn_recall=graph.recall,
        knn_seconds=round(knn_seconds, 2),
        neighbours=neighbours,
    )
