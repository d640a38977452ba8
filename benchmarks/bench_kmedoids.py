"""k-medoids (issue 22): ``cluster.KMedoids``'s two solvers against the ``kmedoids`` package's own FasterPAM and
k-means, on WordNet.

Seeded uniform samples of the 117,659 MiniLM WordNet definitions (cosine distance), k = 45 (the lexicographer
files) and 100. For each: ``KMedoids(solver="matrix")`` (the package's FasterPAM on the n x n matrix, from
k-means medoids), ``KMedoids(solver="blocked")`` (the same swaps, candidates' distances in blocks, n x k memory),
the package's ``fasterpam`` from its own initialisation (``init="build"``, the matrix built outside the timing),
and spherical k-means; total deviation (the sum of each row's cosine distance to its medoid; for k-means, to its
centre, which is not a row), NMI against the lexicographer files and time.

Run: ``.venv/bin/python benchmarks/bench_kmedoids.py [--sizes 5000,10000] [--k 45,100]``.
"""

from __future__ import annotations

import argparse
import time

import kmedoids
import numpy as np
from sklearn.metrics import normalized_mutual_info_score

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.cluster import KMeans, KMedoids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000")
    parser.add_argument("--k", default="45,100")
    args = parser.parse_args()
    setup_logging()
    busy = warn_if_busy()
    emb = embedlab.load(prepare_wordnet_embeddings())
    rows, results = [], []
    for n in (int(v) for v in args.sizes.split(",")):
        sample = emb.sample(n, random_state=0)
        X = sample.vectors / np.linalg.norm(sample.vectors, axis=1, keepdims=True)
        truth = np.asarray(sample.column("label"))
        D = np.maximum(1.0 - X.astype(np.float64) @ X.astype(np.float64).T, 0.0)
        for k in (int(v) for v in args.k.split(",")):
            found = {}
            for solver in ("matrix", "blocked"):
                started = time.perf_counter()
                model = KMedoids(k, solver=solver, random_state=0).fit(X)
                found[solver] = (time.perf_counter() - started, model.inertia_, model.labels_, model.n_iter_)
            started = time.perf_counter()
            package = kmedoids.fasterpam(D, k, init="build", random_state=0, n_cpu=1)
            found["package, BUILD"] = (
                time.perf_counter() - started,
                float(package.loss),
                package.labels,
                package.n_iter,
            )
            started = time.perf_counter()
            means = KMeans(k, random_state=0).fit(X)
            seconds = time.perf_counter() - started
            deviation = float(np.maximum(1.0 - (X * means.cluster_centers_[means.labels_]).sum(1), 0.0).sum())
            found["k-means (to centres)"] = (seconds, deviation, means.labels_, means.n_iter_)
            for name, (seconds, loss, labels, passes) in found.items():
                nmi = float(normalized_mutual_info_score(truth, labels))
                results.append(
                    {
                        "n": n,
                        "k": k,
                        "method": name,
                        "seconds": seconds,
                        "deviation": loss,
                        "nmi": nmi,
                        "passes": int(passes),
                    }
                )
                log.info("%s", results[-1])
                rows.append([f"{n:,}", k, name, f"{loss:.2f}", f"{nmi:.3f}", passes, f"{seconds:.2f}"])
    print(markdown_table(["rows", "k", "method", "total deviation", "NMI (lexname)", "passes", "s"], rows))
    write_results("bench_kmedoids", {"load_average_at_start": busy, "results": results})


if __name__ == "__main__":
    main()
