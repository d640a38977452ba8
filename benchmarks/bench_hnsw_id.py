"""HNSW recall against intrinsic dimension, and insertion order by local intrinsic dimension (LID).

Reproduces the two measurements of Elliott & Clark (2024), "The Impacts of Data, Ordering, and Intrinsic
Dimensionality on Recall in Hierarchical Navigable Small Worlds" (ICTIR), on this machine:

1. Recall@10 of a faiss ``IndexHNSWFlat`` at fixed parameters (M = 16, efConstruction = 100, efSearch = 16, 32
   and 64) on synthetic sets of known intrinsic dimension (50,000 Gaussian points in d = 2 ... 64 dimensions,
   rotated into 384; 1,000 fresh queries from the same law) and on the real sets (Fashion-MNIST 60,000 / 10,000
   test queries; WordNet MiniLM 107,659 / 10,000 held-out rows), each with its TwoNN estimate.
2. The same index built with the rows inserted in random order, by ascending and by descending pointwise LID
   (maximum likelihood, k = 20, from exact Euclidean neighbours; Levina & Bickel 2004). Adds run on one thread
   so that faiss keeps the order (it inserts level by level, in the given order within a level); random order
   is repeated with 3 seeds to show its spread.

Writes ``benchmarks/results/bench_hnsw_id.json`` and ``docs/bench_hnsw_id.png``.

Run from the repository root (about 15 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_hnsw_id.py
"""

from __future__ import annotations

import time
from typing import Any

import faiss
import numpy as np

from _common import REPO_ROOT, log, markdown_table, setup_logging, warn_if_busy, write_results
from bench_index import load_set
from embedlab.geometry import local_id, twonn
from embedlab.io.validation import unit_rows
from embedlab.neighbors import knn, recall_at_k, rerank

NAME = "bench_hnsw_id"
K = 10
M, EF_CONSTRUCTION = 16, 100
EF_SEARCH = (16, 32, 64)
SYNTHETIC_DIMS = (2, 4, 8, 16, 32, 64)
SYNTHETIC_ROWS, SYNTHETIC_QUERIES, AMBIENT = 50_000, 1_000, 384
ORDER_SEEDS = (0, 1, 2)


def synthetic(d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points of intrinsic dimension ``d`` rotated into 384 dimensions: base and fresh queries."""
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.normal(size=(AMBIENT, d)))[0]
    points = rng.normal(size=(SYNTHETIC_ROWS + SYNTHETIC_QUERIES, d)) @ rotation.T
    points = points.astype(np.float32)
    return points[:SYNTHETIC_ROWS], points[SYNTHETIC_ROWS:]


def real(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A real set in Euclidean form (WordNet's cosine as L2 on unit rows, which ranks the same)."""
    base, queries, metric = load_set(name)
    if metric == "cosine":
        base, queries = unit_rows(base), unit_rows(queries)
    return base, queries


def hnsw_recall(base: np.ndarray, queries: np.ndarray, truth: np.ndarray, order: np.ndarray) -> dict[str, Any]:
    """Build on ``base[order]`` (one thread, order kept) and measure recall@10 at each efSearch."""
    index = faiss.IndexHNSWFlat(base.shape[1], M)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    index.add(np.ascontiguousarray(base[order]))
    build_s = time.perf_counter() - started
    faiss.omp_set_num_threads(threads)
    recalls = {}
    for ef in EF_SEARCH:
        index.hnsw.efSearch = ef
        _, found = index.search(queries, K)
        rows = np.where(found >= 0, order[np.maximum(found, 0)], -1)
        recalls[ef] = recall_at_k(rerank(base, queries, rows, "l2", K)[0], truth)
    return {"build_s": build_s, "recall": recalls}


def study(label: str, base: np.ndarray, queries: np.ndarray, known: int | None) -> dict[str, Any]:
    log.info("%s: %d x %d, %d queries", label, *base.shape, len(queries))
    truth = knn(base, K, queries=queries, metric="l2", method="exact").distances
    sample = np.sort(np.random.default_rng(0).choice(len(base), min(5000, len(base)), replace=False))
    pair = knn(base, 2, query_rows=sample, metric="l2", method="exact").distances
    estimate = twonn(pair[pair[:, 0] > 0], n_boot=0).value
    graph = knn(base, 20, metric="l2", method="exact").distances
    with np.errstate(divide="ignore", invalid="ignore"):
        lid = local_id(np.maximum(graph, 1e-12), k=20)
    lid = np.where(np.isfinite(lid), lid, np.nanmax(lid[np.isfinite(lid)]))
    orders = {f"random (seed {s})": np.random.default_rng(s).permutation(len(base)) for s in ORDER_SEEDS}
    orders["LID ascending"] = np.argsort(lid, kind="stable")
    orders["LID descending"] = np.argsort(-lid, kind="stable")
    measured = {}
    for name, order in orders.items():
        measured[name] = hnsw_recall(base, queries, truth, order)
        log.info("%s, %s: %s", label, name, measured[name])
    return {
        "set": label,
        "known_dimension": known,
        "twonn": estimate,
        "lid_median": float(np.median(lid)),
        "orders": measured,
    }


def plot(results: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ef, marker in zip(EF_SEARCH, "os^", strict=True):
        xs = [r["twonn"] for r in results]
        ys = [np.mean([r["orders"][f"random (seed {s})"]["recall"][ef] for s in ORDER_SEEDS]) for r in results]
        left.scatter(xs, ys, marker=marker, label=f"efSearch {ef}")
        for x, y, r in zip(xs, ys, results, strict=True):
            if ef == EF_SEARCH[0]:
                left.annotate(r["set"], (x, y), fontsize=6, xytext=(3, -8), textcoords="offset points")
    left.set_xscale("log")
    left.set_xticks([2, 4, 8, 16, 32, 64], ["2", "4", "8", "16", "32", "64"])
    left.minorticks_off()
    left.set_xlabel("intrinsic dimension (TwoNN)")
    left.set_ylabel("recall@10 (random insertion order)")
    left.set_title(f"HNSW M={M}, efConstruction={EF_CONSTRUCTION}")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    ef = EF_SEARCH[1]
    labels = [r["set"] for r in results]
    positions = np.arange(len(results))
    for offset, (name, colour) in enumerate((("LID ascending", "tab:blue"), ("LID descending", "tab:red"))):
        shifts = []
        for r in results:
            randoms = [r["orders"][f"random (seed {s})"]["recall"][ef] for s in ORDER_SEEDS]
            shifts.append(r["orders"][name]["recall"][ef] - np.mean(randoms))
        right.bar(positions + (offset - 0.5) * 0.4, shifts, 0.4, color=colour, label=name)
    spread = [np.ptp([r["orders"][f"random (seed {s})"]["recall"][ef] for s in ORDER_SEEDS]) for r in results]
    right.errorbar(
        positions,
        np.zeros(len(results)),
        yerr=np.array(spread) / 2,
        fmt="none",
        color="k",
        capsize=3,
        label="spread of 3 random orders",
    )
    right.axhline(0, color="k", lw=0.5)
    right.set_xticks(positions, labels, rotation=30, ha="right", fontsize=7)
    right.set_ylabel(f"recall@10 shift against random (efSearch {ef})")
    right.set_title("insertion order by pointwise LID")
    right.legend(fontsize=8)
    fig.tight_layout()
    path = REPO_ROOT / "docs" / "bench_hnsw_id.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path.relative_to(REPO_ROOT))


def main() -> None:
    setup_logging()
    load = warn_if_busy()
    results = []
    for d in SYNTHETIC_DIMS:
        base, queries = synthetic(d)
        results.append(study(f"Gaussian d={d}", base, queries, d))
    for name, label in (("fashion", "Fashion-MNIST"), ("wordnet", "WordNet MiniLM")):
        base, queries = real(name)
        results.append(study(label, base, queries, None))
    figure = plot(results)
    write_results(
        NAME,
        {
            "load_average_at_start": load,
            "faiss": faiss.__version__,
            "M": M,
            "ef_construction": EF_CONSTRUCTION,
            "results": results,
            "plot": figure,
        },
    )
    rows = []
    for r in results:
        randoms = {ef: [r["orders"][f"random (seed {s})"]["recall"][ef] for s in ORDER_SEEDS] for ef in EF_SEARCH}
        cells = [r["set"], f"{r['twonn']:.1f}"]
        for ef in EF_SEARCH:
            mean = np.mean(randoms[ef])
            cells.append(
                f"{mean:.4f} ±{np.ptp(randoms[ef]) / 2:.4f} | "
                f"{r['orders']['LID ascending']['recall'][ef] - mean:+.4f} | "
                f"{r['orders']['LID descending']['recall'][ef] - mean:+.4f}"
            )
        rows.append(cells)
    headers = ["set", "TwoNN"] + [f"efSearch {ef}: random (half spread) / asc. shift / desc. shift" for ef in EF_SEARCH]
    print(markdown_table(headers, rows))
    print(f"\nPlot: {figure}")


if __name__ == "__main__":
    main()
