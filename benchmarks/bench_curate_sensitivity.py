"""Sensitivity sampling as a coreset: the weighted k-means cost of a sample against the full cost, on WordNet.

Axiotis et al. (2024) sample rows by their sensitivity to a k-means clustering so that weighted sums over the
sample estimate sums over the set for *any* clustering, not only the one sampled by. On the 117,659 WordNet
MiniLM embeddings, two spherical k-means clusterings are fixed first (k = 45 and k = 500, seed 0; neither is the
one the sampler uses) and their full costs computed (the sum over rows of the squared distance of the unit row
to its nearest centre). Then, for each ``--sizes`` and ``--seeds`` seeds, a sensitivity sample
(``embedlab.curate.sample(method="sensitivity")``, its own k-means with k = size / 10) and a uniform one give
the estimates ``sum(weight * cost)``; reported are their bias (mean of estimate / full - 1) and spread (standard
deviation of estimate / full) over the seeds.

Run from the repository root (about 10 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_curate_sensitivity.py [--sizes 500 1000 3000] [--seeds 20]
"""

from __future__ import annotations

import argparse

import numpy as np

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.cluster import KMeans, nearest_centers
from embedlab.curate import sample

NAME = "bench_curate_sensitivity"
EVALUATED_K = (45, 500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 1000, 3000])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    X = embedlab.load(prepare_wordnet_embeddings()).vectors
    costs = {}
    for k in EVALUATED_K:
        centers = KMeans(k, random_state=0).fit(X).cluster_centers_
        costs[k] = nearest_centers(X, centers)[1].astype(np.float64)
        log.info("k = %d: full cost %.2f", k, costs[k].sum())
    ratios: dict = {}
    for size in args.sizes:
        for method in ("sensitivity", "random"):
            found = [sample(X, size, method=method, random_state=seed) for seed in range(args.seeds)]
            for k, cost in costs.items():
                estimate = np.array([cost[s.rows] @ s.weight for s in found]) / cost.sum()
                ratios[f"{method}@{size}@k{k}"] = estimate.tolist()
                log.info(
                    "%s, %d rows, k = %d: estimate / full %.4f +- %.4f",
                    method,
                    size,
                    k,
                    estimate.mean(),
                    estimate.std(),
                )
    rows = []
    for size in args.sizes:
        for k in EVALUATED_K:
            cells = []
            for method in ("sensitivity", "random"):
                r = np.array(ratios[f"{method}@{size}@k{k}"])
                cells += [f"{r.mean() - 1:+.4f}", f"{r.std(ddof=1):.4f}"]
            spread = np.std(ratios[f"random@{size}@k{k}"], ddof=1) / np.std(ratios[f"sensitivity@{size}@k{k}"], ddof=1)
            rows.append([f"{size:,}", k, *cells, f"{spread:.2f}"])
    write_results(
        NAME,
        {
            "load_average_at_start": load,
            "rows": int(X.shape[0]),
            "evaluated_k": list(EVALUATED_K),
            "full_cost": {str(k): float(c.sum()) for k, c in costs.items()},
            "seeds": args.seeds,
            "estimate_over_full": ratios,
        },
    )
    headers = [
        "size",
        "clustering k",
        "sensitivity bias",
        "sensitivity spread",
        "uniform bias",
        "uniform spread",
        "uniform spread / sensitivity spread",
    ]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
