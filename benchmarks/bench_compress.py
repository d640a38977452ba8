"""Compression planner on the 117,659 WordNet MiniLM vectors against sentence-transformers and faiss anchors.

Targets (issue 5), k = 10, exact inner-product ground truth, 1,000 held-out queries:

* embedlab's frontier dominates every anchor configuration at equal bytes: for each anchor, some embedlab
  point with no more code bytes per vector reaches at least its recall@10 (codes alone against codes alone;
  a rescored anchor against embedlab points rescoring at most as many candidates);
* at 48 bytes per vector: recall@10 >= 0.85 from codes alone, and >= 0.99 with at most 10x rescoring;
* the whole plan (``plan_compression`` with its default codec grid) in at most 10 minutes on 2 cores.

The plan holds out 2,000 rows (1,000 evaluation queries, 1,000 for query-aware codecs) and searches the other
115,659; the anchors are measured on exactly the same corpus and evaluation queries (``held_out_rows`` and
``evaluation_rows`` of the plan), recall counted the same tie-aware way.

Anchors, measured in the same run:

* sentence-transformers ``quantize_embeddings`` searched with its own ``semantic_search_faiss``: ``ubinary``
  (48 B, Hamming search) and ``uint8`` (384 B, calibrated on the corpus), each without rescoring and with
  ``rescore_multiplier=10`` (the float query against the quantized shortlist, their rescoring).
* faiss ``index_factory`` strings with inner product: SQ8, SQ4, PQ48, OPQ48,PQ48, PQ96, OPQ96,PQ96,
  PQ96x4fs, RaBitQ, and OPQ48,PQ48,RFlat (faiss's own re-ranking of 10 x k candidates by full vectors).

Run: ``.venv/bin/python benchmarks/bench_compress.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import faiss
import numpy as np

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.compress import PlanPoint, plan_compression
from embedlab.neighbors import knn, recall_at_k, rerank, unit_rows

K = 10
RESCORE = 10
FAISS_ANCHORS = (
    "SQ8",
    "SQ4",
    "PQ48",
    "OPQ48,PQ48",
    "PQ96",
    "OPQ96,PQ96",
    "PQ96x4fs",
    "RaBitQ",
    "OPQ48,PQ48,RFlat",
)
TARGET_48B_CODES = 0.85
TARGET_48B_RESCORED = 0.99
TARGET_PLAN_SECONDS = 600


def faiss_anchor(factory: str, corpus: np.ndarray, queries: np.ndarray) -> tuple[int, np.ndarray, float]:
    """(code bytes per vector, top-k rows, ms per query) of one faiss index_factory string."""
    index = faiss.index_factory(corpus.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    index.train(corpus)
    index.add(corpus)
    if "RFlat" in factory:
        faiss.downcast_index(index).k_factor = RESCORE
        code_bytes = faiss.downcast_index(index).base_index.sa_code_size()
    else:
        code_bytes = index.sa_code_size()
    started = time.perf_counter()
    _, rows = index.search(queries, K)
    return int(code_bytes), rows, 1000 * (time.perf_counter() - started) / len(queries)


def sentence_transformers_anchor(
    precision: str, corpus: np.ndarray, queries: np.ndarray, rescore: bool
) -> tuple[int, np.ndarray, float]:
    """(bytes per vector, top-k rows, ms per query) of sentence-transformers' quantization and search."""
    from sentence_transformers.util.quantization import quantize_embeddings, semantic_search_faiss

    codes = quantize_embeddings(corpus, precision=precision, calibration_embeddings=corpus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        hits, _ = semantic_search_faiss(
            queries,
            corpus_embeddings=codes,
            corpus_precision=precision,
            top_k=K,
            calibration_embeddings=corpus,
            rescore=rescore,
            rescore_multiplier=RESCORE,
        )
        seconds = time.perf_counter() - started
    rows = np.array([[hit["corpus_id"] for hit in query_hits] for query_hits in hits], dtype=np.int64)
    return int(codes.shape[1] * codes.itemsize), rows, 1000 * seconds / len(queries)


def best_within(points: list[PlanPoint], code_bytes: int, rescore: int | None) -> PlanPoint | None:
    """embedlab's highest recall with no more bytes and no more rescoring than an anchor."""
    allowed = [
        p
        for p in points
        if p.bytes_per_vector <= code_bytes and (p.rescore is None or (rescore is not None and p.rescore <= rescore))
    ]
    return max(allowed, key=lambda p: p.recall_at_k, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    data = embedlab.load(prepare_wordnet_embeddings())
    log.info("data: %d x %d, faiss %s", len(data), data.dim, faiss.__version__)

    started = time.perf_counter()
    plan = plan_compression(data, k=K, rescore_max=RESCORE, n_queries=1000, random_state=0)
    plan_seconds = time.perf_counter() - started
    log.info("plan: %d points in %.0f s, failures %s", len(plan.points), plan_seconds, plan.failures)

    rows = unit_rows(data.vectors)
    keep = np.ones(len(rows), dtype=bool)
    keep[plan.held_out_rows] = False
    corpus, queries = np.ascontiguousarray(rows[keep]), np.ascontiguousarray(rows[plan.evaluation_rows])
    true_scores = -knn(corpus, K, queries=queries, metric="ip", method="exact").distances

    def recall(found: np.ndarray) -> float:
        return recall_at_k(rerank(corpus, queries, found, "ip", K)[0], -true_scores)

    anchors = []
    for precision, rescore in (("ubinary", False), ("ubinary", True), ("uint8", False), ("uint8", True)):
        code_bytes, found, ms = sentence_transformers_anchor(precision, corpus, queries, rescore)
        name = f"sentence-transformers {precision}" + (f", rescore x{RESCORE}" if rescore else "")
        anchors.append((name, code_bytes, recall(found), RESCORE if rescore else None, ms))
        log.info("%s: %d B, recall %.4f", name, code_bytes, anchors[-1][2])
    for factory in FAISS_ANCHORS:
        code_bytes, found, ms = faiss_anchor(factory, corpus, queries)
        rescore = RESCORE if "RFlat" in factory else None
        anchors.append((f"faiss {factory}", code_bytes, recall(found), rescore, ms))
        log.info("faiss %s: %d B, recall %.4f", factory, code_bytes, anchors[-1][2])

    comparison, dominated = [], 0
    for name, code_bytes, anchor_recall, rescore, ms in anchors:
        ours = best_within(plan.points, code_bytes, rescore)
        wins = ours is not None and ours.recall_at_k >= anchor_recall
        dominated += wins
        comparison.append(
            [
                name,
                code_bytes,
                f"{anchor_recall:.4f}",
                f"{ms:.2f}",
                "-" if ours is None else f"{ours.codec} ({ours.bytes_per_vector} B)",
                "-" if ours is None else f"{ours.recall_at_k:.4f}",
                "yes" if wins else "**no**",
            ]
        )
    at_48 = [p for p in plan.points if p.bytes_per_vector <= 48]
    best_codes = max((p for p in at_48 if p.rescore is None), key=lambda p: p.recall_at_k)
    best_rescored = max((p for p in at_48 if p.rescore is not None), key=lambda p: p.recall_at_k)
    targets = [
        ["frontier dominates every anchor", f"{dominated} of {len(anchors)}", "all", dominated == len(anchors)],
        [
            "48 B, codes alone",
            f"{best_codes.recall_at_k:.4f} ({best_codes.codec})",
            f">= {TARGET_48B_CODES}",
            best_codes.recall_at_k >= TARGET_48B_CODES,
        ],
        [
            f"48 B, rescoring <= {RESCORE}x",
            f"{best_rescored.recall_at_k:.4f} ({best_rescored.codec})",
            f">= {TARGET_48B_RESCORED}",
            best_rescored.recall_at_k >= TARGET_48B_RESCORED,
        ],
        ["whole plan", f"{plan_seconds:.0f} s", f"<= {TARGET_PLAN_SECONDS} s", plan_seconds <= TARGET_PLAN_SECONDS],
    ]
    frontier = [
        [p.codec, p.bytes_per_vector, f"{p.recall_at_k:.4f}", f"{p.query_ms:.2f}", f"{p.encode_s:.1f}"]
        for p in plan.frontier
    ]
    write_results(
        "bench_compress",
        {
            "data": f"WordNet MiniLM, {plan.n_rows} searched x {plan.dim}, {plan.n_queries} held-out queries",
            "k": K,
            "plan_seconds": plan_seconds,
            "plan": plan.to_dict(),
            "anchors": [
                {"anchor": a[0], "bytes_per_vector": a[1], "recall_at_k": a[2], "rescore": a[3], "query_ms": a[4]}
                for a in anchors
            ],
            "targets": [{"target": t[0], "measured": t[1], "goal": t[2], "met": bool(t[3])} for t in targets],
            "load_average_at_start": load,
        },
    )
    print(markdown_table(["codec", "bytes/vector", "recall@10", "ms/query", "fit+encode s"], frontier))
    print()
    headers = ["anchor", "bytes", "recall@10", "ms/query", "embedlab best within bytes", "recall@10", "dominated"]
    print(markdown_table(headers, comparison))
    print()
    print(
        markdown_table(["target", "measured", "goal", "met"], [[*t[:3], "yes" if t[3] else "**no**"] for t in targets])
    )


if __name__ == "__main__":
    main()
