"""NECO and INLP on WordNet (issue 22): out-of-distribution scores on held-out lexicographer files, and removing the
part of speech.

Data: the 117,659 MiniLM WordNet definitions, labelled by lexicographer file (45) and part of speech (noun,
verb, adjective, adverb: the prefix of each id).

* **Out of distribution.** 9 of the 45 lexicographer files (seeded) are held out. Half of the rows of the other
  36 (seeded) are the labelled reference; the new rows are the other half plus every row of the held-out files.
  ``score_ood`` fits NECO and the kNN-distance score (k = 10, cosine) on the reference, thresholds each at the
  5% false-positive rate of held-out reference rows. Reported: AUROC of each score between new rows of the
  known files and rows of the held-out ones, and the share each threshold flags of each.
* **Removing an attribute.** ``remove_attribute`` removes the part of speech from a seeded sample of
  ``--inlp-rows`` rows: a fresh logistic probe before and after (against the majority rate), the kNN accuracy of
  the lexicographer file before and after (which carries the part of speech in its name, so some of it must
  go), and the share of each row's 10 neighbours kept.

Run: ``.venv/bin/python benchmarks/bench_labels_wordnet.py [--inlp-rows 30000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.geometry import remove_attribute, score_ood

N_HELD_OUT_FILES = 9


def ood(emb: embedlab.EmbeddingSet, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    files = np.asarray(emb.column("label"))
    held_out = rng.choice(np.unique(files), N_HELD_OUT_FILES, replace=False)
    unseen = np.isin(files, held_out)
    half = rng.random(files.size) < 0.5
    reference = emb.take(np.flatnonzero(~unseen & half))
    new = emb.take(np.r_[np.flatnonzero(~unseen & ~half), np.flatnonzero(unseen)])
    n_known = int((~unseen & ~half).sum())
    started = time.perf_counter()
    scores = score_ood(reference, "label", new, k=10, false_positive_rate=0.05, random_state=seed)
    seconds = time.perf_counter() - started
    known = np.r_[np.ones(n_known), np.zeros(new.vectors.shape[0] - n_known)]
    found = {
        "held_out_files": sorted(held_out.tolist()),
        "n_reference": len(reference),
        "n_new_known": n_known,
        "n_new_unseen": len(new) - n_known,
        "seconds": seconds,
    }
    for name, score, flagged in (
        ("neco", scores.neco, scores.neco_out),
        ("knn_distance", -scores.knn_distance, scores.knn_out),
    ):
        found[name] = {
            "auroc": float(roc_auc_score(known, score)),
            "flagged_known": float(flagged[:n_known].mean()),
            "flagged_unseen": float(flagged[n_known:].mean()),
        }
        log.info("%s: %s", name, found[name])
    return found


def inlp(emb: embedlab.EmbeddingSet, n_rows: int, seed: int) -> dict:
    sample = emb.sample(n_rows, random_state=seed)
    pos = np.array([str(i).split(":")[0] for i in sample.ids])
    started = time.perf_counter()
    removal = remove_attribute(sample, pos, others={"lexname": np.asarray(sample.column("label"))}, random_state=seed)
    found = {**removal.to_dict(), "n_rows": n_rows, "seconds": time.perf_counter() - started}
    log.info("inlp: %s", found)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inlp-rows", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    busy = warn_if_busy()
    emb = embedlab.load(prepare_wordnet_embeddings())
    results = {"load_average_at_start": busy, "ood": ood(emb, args.seed), "inlp": inlp(emb, args.inlp_rows, args.seed)}
    write_results("bench_labels_wordnet", results)
    found = results["ood"]
    print(
        markdown_table(
            ["score", "AUROC known vs held-out files", "flags of known rows", "flags of held-out files"],
            [
                [
                    name,
                    f"{found[name]['auroc']:.3f}",
                    f"{found[name]['flagged_known']:.3f}",
                    f"{found[name]['flagged_unseen']:.3f}",
                ]
                for name in ("neco", "knn_distance")
            ],
        )
    )
    removal = results["inlp"]
    print(
        markdown_table(
            ["probe before", "probe after", "majority", "directions", "lexname kNN before", "after", "neighbours kept"],
            [
                [
                    f"{removal['probe_before']:.3f}",
                    f"{removal['probe_after']:.3f}",
                    f"{removal['majority']:.3f}",
                    removal["n_directions"],
                    f"{removal['others']['lexname']['before']:.3f}",
                    f"{removal['others']['lexname']['after']:.3f}",
                    f"{removal['neighbours_kept']:.3f}",
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
