"""Subspace alignment before mapping (issue 22): ``SubspaceAdapter`` (SVCCA directions, then the map between them)
against the full-space adapters on the MiniLM / MPNet pair of ``bench_align_mpnet.py``.

Same data and protocol as that benchmark: 30,000 WordNet definitions embedded by both models (MPNet's cached by
``bench_align_mpnet.mpnet_corpus``), 1,000 usage examples as queries, each relevant to its synset's definition;
NEW queries mapped into the OLD index, recall@10 as a share of full re-embedding, both upgrade directions, 1,000 /
2,000 / 10,000 fitting pairs. Measured: Procrustes, low-rank (rank 64) and ridge with their defaults, and the
subspace adapter at ranks 32, 64, 128 and 192 (principal directions keeping 99% of each space's variance first),
with how many canonical correlations exceed 0.5 on the fitting pairs (in-sample: optimistic with few pairs).

Run: ``.venv/bin/python benchmarks/bench_align_subspace.py [--pair-counts 1000 2000 10000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import embedlab
from _common import (
    log,
    markdown_table,
    mpnet_folder,
    prepare_wordnet_embeddings,
    relevance_hits,
    setup_logging,
    usage_examples,
    warn_if_busy,
    wordnet_rows,
    write_results,
)
from bench_align_mpnet import N_QUERIES, K, fit_pairs, hits_summary, mpnet_corpus
from embedlab.align import ADAPTER_TYPES
from embedlab.embed import embed_texts, load_encoder
from embedlab.neighbors import unit_rows

#: The adapters measured: (name, method, parameters).
ADAPTERS = [
    ("procrustes", "procrustes", {}),
    ("low-rank 64", "low-rank", {"rank": 64}),
    ("ridge", "ridge", {}),
    *[(f"subspace {rank}", "subspace", {"rank": rank}) for rank in (32, 64, 128, 192)],
]


def upgrade(old: np.ndarray, new: np.ndarray, new_queries: np.ndarray, relevant: np.ndarray, counts: list[int]) -> dict:
    full = hits_summary(relevance_hits(new_queries, new, relevant, K))["recall"]
    found: dict = {"full re-embedding": full, "pairs": {}}
    for n in counts:
        rows = fit_pairs(len(old), relevant, n, seed=n)
        X, Y = new[rows], old[rows]
        recalls, spectrum = {}, {}
        for name, method, params in ADAPTERS:
            started = time.perf_counter()
            adapter = ADAPTER_TYPES[method](**params).fit(X, Y)
            seconds = time.perf_counter() - started
            hits = relevance_hits(unit_rows(adapter.transform(new_queries)), old, relevant, K)
            recalls[name] = {**hits_summary(hits), "fraction_of_full": float(hits.mean() / full), "seconds": seconds}
            if method == "subspace" and not spectrum:
                correlations = adapter.canonical_correlations_
                spectrum = {"above_0.5": int((correlations > 0.5).sum()), "first": correlations[:5].tolist()}
            log.info("%d pairs, %s: %.4f of full", n, name, recalls[name]["fraction_of_full"])
        found["pairs"][n] = {"recall": recalls, "canonical_correlations": spectrum}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=30_000)
    parser.add_argument("--pair-counts", type=int, nargs="+", default=[1000, 2000, 10_000])
    args = parser.parse_args()
    setup_logging()
    busy = warn_if_busy()
    rows = wordnet_rows()
    chosen = np.sort(np.random.default_rng(0).choice(len(rows), args.corpus, replace=False))
    ids = [rows[i]["id"] for i in chosen]
    mpnet = mpnet_corpus(ids, [rows[i]["text"] for i in chosen])
    minilm_all = embedlab.load(prepare_wordnet_embeddings())
    position = {key: i for i, key in enumerate(minilm_all.ids.tolist())}
    minilm = minilm_all.take([position[key] for key in ids])
    texts, relevant = usage_examples(minilm.ids, N_QUERIES, seed=0)
    queries = {
        "MiniLM": unit_rows(embed_texts(texts, load_encoder())),
        "MPNet": unit_rows(embed_texts(texts, load_encoder(mpnet_folder()))),
    }
    vectors = {"MiniLM": unit_rows(minilm.vectors), "MPNet": unit_rows(mpnet.vectors)}
    results: dict = {"corpus": args.corpus, "queries": N_QUERIES, "load_average_at_start": busy, "upgrades": {}}
    for old_name, new_name in (("MiniLM", "MPNet"), ("MPNet", "MiniLM")):
        title = f"{old_name} -> {new_name}"
        result = upgrade(vectors[old_name], vectors[new_name], queries[new_name], relevant, args.pair_counts)
        results["upgrades"][title] = result
        print(
            f"\n## {title} (OLD = {old_name}, NEW = {new_name}), full re-embedding {result['full re-embedding']:.4f}\n"
        )
        table = []
        for name, _, _ in ADAPTERS:
            cells = [f"{result['pairs'][n]['recall'][name]['fraction_of_full']:.1%}" for n in args.pair_counts]
            table.append([name, *cells])
        print(markdown_table(["adapter", *[f"{n:,} pairs" for n in args.pair_counts]], table))
    write_results("bench_align_subspace", results)


if __name__ == "__main__":
    main()
