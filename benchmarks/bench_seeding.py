"""k-means++ seeding: embedlab's float32 greedy k-means++ against scikit-learn's ``kmeans_plusplus``.

Both run the same greedy rule (2 + log k D^2-sampled candidates per centre, the best kept) on the sample
``KMeans`` seeds from by default: 32,000 of the 200,000 MiniLM vectors of ``bench_kmeans``, k = 1,000. The
quality check is the seeding potential (the inertia of all 200,000 rows against the seeds), averaged over the
seeds run; the time is the best of the runs.

Run: ``.venv/bin/python benchmarks/bench_seeding.py [--seeds 3]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.cluster import kmeans_plusplus

from _common import Runs, log, markdown_table, setup_logging, warn_if_busy, write_results
from bench_kmeans import K, inertia, load_200k
from embedlab.cluster._kmeans import kmeans_plusplus_indices

SAMPLE = 32_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    X = load_200k()
    sample = X[np.sort(np.random.default_rng(0).choice(X.shape[0], SAMPLE, replace=False))]
    ours, theirs = Runs("embedlab k-means++"), Runs("scikit-learn kmeans_plusplus")
    ours_potential, theirs_potential = [], []
    for seed in range(args.seeds):
        chosen = ours.run(lambda: kmeans_plusplus_indices(sample, K, np.random.RandomState(seed)))  # noqa: B023
        ours_potential.append(inertia(X, sample[chosen]))
        centres, _ = theirs.run(lambda: kmeans_plusplus(sample, K, random_state=seed))  # noqa: B023
        theirs_potential.append(inertia(X, centres))
    speedup = theirs.best / ours.best
    log.info("seeding: embedlab %.1f s, scikit-learn %.1f s (%.1fx)", ours.best, theirs.best, speedup)
    write_results(
        "bench_seeding",
        {
            "data": f"{SAMPLE} of 200,000 x 384 MiniLM (WordNet), k={K}",
            "embedlab": {**ours.to_dict(), "potentials": ours_potential},
            "sklearn": {**theirs.to_dict(), "potentials": theirs_potential},
            "speedup": speedup,
            "load_average_at_start": load,
        },
    )
    rows = [
        ["embedlab `kmeans_plusplus_indices`", f"{ours.best:.1f} s", f"{np.mean(ours_potential):,.0f}"],
        ["scikit-learn `kmeans_plusplus`", f"{theirs.best:.1f} s", f"{np.mean(theirs_potential):,.0f}"],
        ["ratio", f"{speedup:.1f}x faster", f"{np.mean(ours_potential) / np.mean(theirs_potential):.4f}"],
    ]
    print(markdown_table(["seeding", "best time", f"mean potential over {args.seeds} seeds (all rows)"], rows))


if __name__ == "__main__":
    main()
