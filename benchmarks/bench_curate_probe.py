"""Does curation help? A linear probe trained on a curated sample of WordNet against one trained on a uniform one.

The 117,659 WordNet MiniLM embeddings carry their lexicographer file (45 very unequal classes, from 25,000 rows
of noun.artifact down to 2 of adj.ppl) as a label that no sampler sees. A seeded, stratified fifth of the rows is
held out; from the rest, samples of each ``--sizes`` are drawn by every ``--methods`` (``embedlab.curate.sample``
with its defaults: balanced over a hierarchical k-means tree of levels (306, 30), 3 resampling steps; sensitivity
sampling with k = size / 10; uniform), for each of ``--seeds`` seeds. A logistic-regression probe
(scikit-learn, lbfgs, C = 1, the sample's labels) is scored by balanced accuracy (the mean of the per-class
recalls, which weighs the rare files as much as the common ones) and plain accuracy on the held-out rows.

Reported: the mean and standard deviation over seeds per method and size, and the paired difference to uniform
sampling (same seed, same size) with its standard deviation and how many seeds it won.

Run from the repository root (about 25 minutes on 2 cores with the defaults)::

    .venv/bin/python benchmarks/bench_curate_probe.py [--sizes 1000 3000 10000] [--seeds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.curate import default_levels, sample

NAME = "bench_curate_probe"
METHODS = ("balanced", "sensitivity", "random")


def probe(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> dict:
    model = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
    predicted = model.predict(X_test)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
        "accuracy": float(accuracy_score(y_test, predicted)),
        "classes_in_sample": int(np.unique(y).size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 3000, 10000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    emb = embedlab.load(prepare_wordnet_embeddings())
    labels = np.asarray(emb.column("label")).astype(str)
    pool, test = train_test_split(np.arange(len(emb)), test_size=0.2, stratify=labels, random_state=0)
    X, y = emb.vectors[pool], labels[pool]
    X_test, y_test = emb.vectors[test], labels[test]
    log.info(
        "pool %d rows, %d held out, %d classes; tree levels %s", len(pool), len(test), 45, default_levels(len(pool))
    )
    runs = []
    for size in args.sizes:
        for seed in range(args.seeds):
            for method in args.methods:
                started = time.perf_counter()
                chosen = sample(X, size, method=method, random_state=seed)
                sample_s = time.perf_counter() - started
                found = probe(X[chosen.rows], y[chosen.rows], X_test, y_test)
                runs.append({"size": size, "seed": seed, "method": method, "sample_s": sample_s, **found})
                log.info("%s", runs[-1])
    rows, summary = [], {}
    for size in args.sizes:
        uniform = {r["seed"]: r for r in runs if r["size"] == size and r["method"] == "random"}
        for method in args.methods:
            mine = [r for r in runs if r["size"] == size and r["method"] == method]
            bal = np.array([r["balanced_accuracy"] for r in mine])
            acc = np.array([r["accuracy"] for r in mine])
            diff = np.array([r["balanced_accuracy"] - uniform[r["seed"]]["balanced_accuracy"] for r in mine])
            entry = {
                "balanced_accuracy": [float(bal.mean()), float(bal.std(ddof=1)) if bal.size > 1 else 0.0],
                "accuracy": [float(acc.mean()), float(acc.std(ddof=1)) if acc.size > 1 else 0.0],
                "difference_to_random": [float(diff.mean()), float(diff.std(ddof=1)) if diff.size > 1 else 0.0],
                "seeds_won": int((diff > 0).sum()),
                "classes_in_sample": float(np.mean([r["classes_in_sample"] for r in mine])),
                "sample_s": float(np.mean([r["sample_s"] for r in mine])),
            }
            summary[f"{method}@{size}"] = entry
            rows.append(
                [
                    f"{size:,}",
                    method,
                    f"{entry['balanced_accuracy'][0]:.4f} ± {entry['balanced_accuracy'][1]:.4f}",
                    f"{entry['accuracy'][0]:.4f} ± {entry['accuracy'][1]:.4f}",
                    "-"
                    if method == "random"
                    else f"{entry['difference_to_random'][0]:+.4f} ± {entry['difference_to_random'][1]:.4f} "
                    f"({entry['seeds_won']}/{len(mine)})",
                    f"{entry['classes_in_sample']:.1f}",
                    f"{entry['sample_s']:.1f}",
                ]
            )
    write_results(
        NAME,
        {
            "load_average_at_start": load,
            "pool_rows": len(pool),
            "test_rows": len(test),
            "sizes": args.sizes,
            "seeds": args.seeds,
            "summary": summary,
            "runs": runs,
        },
    )
    headers = [
        "size",
        "sampler",
        "balanced accuracy",
        "accuracy",
        "balanced acc. - uniform (seeds won)",
        "classes in sample",
        "sample s",
    ]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
