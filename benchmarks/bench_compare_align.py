"""compare and align on pairs of genuinely different spaces of the WordNet corpus, 117,659 definitions embedded
by each model. Four pairs:

* ``layer3``, ``layer5``: OLD = the mean-pooled, normalised output of MiniLM's first 3 or first 5 of 6 layers
  (weaker, differently shaped spaces of the same dimension), NEW = MiniLM;
* ``static``: OLD = a static 256-d model distilled from MiniLM (Model2Vec-style token table with SIF weights,
  see ``_common.StaticMiniLM``), which retrieves as well as MiniLM on this benchmark, NEW = MiniLM;
* ``upgrade``: OLD = MiniLM, NEW = MiniLM fine-tuned on WordNet's (lemma list, definition) pairs
  (``_common.finetuned_minilm``): the model upgrade Drift-Adapter is about.

Targets (issue 6):

* linear CKA on 100,000 paired 384-d vectors in under 5 seconds (timed here, median of 3, both estimators);
* an adapter fitted on at most 10,000 pairs recovers at least 97% of full re-embedding recall@10.

Recall is measured two ways:

* **relevance** (the Drift-Adapter setting): 1,000 WordNet usage examples as queries, each relevant to the
  definition of its own synset; recall@10 = share of queries whose definition is among the 10 retrieved.
  Full re-embedding = NEW queries against the NEW corpus; the adapter = NEW queries mapped into the OLD space
  against the OLD corpus; also OLD against OLD (no upgrade) and NEW queries against the OLD corpus unmapped.
* **neighbour agreement** (``fit_adapter``'s own evaluation): held-out corpus rows as queries, the NEW
  model's own top-10 as ground truth.

``compare_spaces`` with its defaults reports every score with its permutation null.

Run: ``.venv/bin/python benchmarks/bench_compare_align.py [--pairs layer3 layer5 static upgrade]`` (about 4
minutes per pair; the first time, about 7 more per truncated model and 20 for the fine-tuned one, training
included, which embed the corpus and cache it; the static model takes a minute).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import embedlab
from _common import (
    StaticMiniLM,
    finetuned_minilm,
    log,
    markdown_table,
    prepare_wordnet_embeddings,
    prepare_wordnet_finetuned_embeddings,
    prepare_wordnet_layer_embeddings,
    relevance_hits,
    setup_logging,
    truncated_minilm,
    usage_examples,
    warn_if_busy,
    wordnet_rows,
    write_results,
)
from embedlab.align import fit_adapter
from embedlab.compare import compare_spaces, linear_cka
from embedlab.embed import embed_texts, load_encoder
from embedlab.io import pair_by_id
from embedlab.neighbors import unit_rows

K = 10
N_QUERIES = 1000
CKA_ROWS = 100_000
MAX_PAIRS = 10_000
TARGET_CKA_SECONDS = 5.0
TARGET_FRACTION = 0.97
#: Pairs: OLD = MiniLM truncated to its first 3 or 5 of 6 layers, or a static model distilled from MiniLM,
#: against NEW = MiniLM; and the upgrade OLD = MiniLM, NEW = MiniLM fine-tuned on WordNet.
PAIRS = ("layer3", "layer5", "static", "upgrade")
DESCRIPTIONS = {
    "layer3": "OLD = MiniLM's first 3 layers, NEW = MiniLM",
    "layer5": "OLD = MiniLM's first 5 layers, NEW = MiniLM",
    "static": "OLD = static 256-d model distilled from MiniLM, NEW = MiniLM",
    "upgrade": "OLD = MiniLM, NEW = MiniLM fine-tuned on WordNet",
}


def time_linear_cka(old: np.ndarray, new: np.ndarray) -> dict:
    """Value and median seconds of 3 runs of linear CKA, both estimators, on the first ``CKA_ROWS`` pairs."""
    cka = {}
    for name, debiased in (("biased", False), ("debiased", True)):
        times, value = [], None
        for _ in range(3):
            started = time.perf_counter()
            value = linear_cka(old[:CKA_ROWS], new[:CKA_ROWS], debiased=debiased)
            times.append(time.perf_counter() - started)
        cka[name] = {"value": value, "seconds": float(np.median(times))}
        log.info("linear CKA (%s) on %d pairs: %.4f in %.2f s", name, CKA_ROWS, value, np.median(times))
    return cka


def other_model(name: str, texts: list[str]) -> tuple[embedlab.EmbeddingSet, np.ndarray]:
    """The corpus and the query ``texts`` embedded by the model that pairs with MiniLM in ``name``."""
    if name == "static":
        rows = wordnet_rows()
        static = StaticMiniLM([row["text"] for row in rows])
        corpus = embedlab.EmbeddingSet(static.encode([row["text"] for row in rows]), ids=[row["id"] for row in rows])
        return corpus, static.encode(texts)
    if name == "upgrade":
        corpus = embedlab.load(prepare_wordnet_finetuned_embeddings())
        return corpus, unit_rows(embed_texts(texts, finetuned_minilm()))
    layers = int(name.removeprefix("layer"))
    corpus = embedlab.load(prepare_wordnet_layer_embeddings(layers))
    return corpus, unit_rows(embed_texts(texts, truncated_minilm(layers)))


def measure(name: str, minilm_set: embedlab.EmbeddingSet, minilm_queries: np.ndarray, texts: list[str]) -> dict:
    """compare_spaces, the adapter and the relevance recalls of the pair ``name``."""
    other_set, other_queries = other_model(name, texts)
    if name == "upgrade":
        old_set, new_set, old_queries, new_queries = minilm_set, other_set, minilm_queries, other_queries
    else:
        old_set, new_set, old_queries, new_queries = other_set, minilm_set, other_queries, minilm_queries
    pairs = pair_by_id(old_set, new_set)
    old, new = unit_rows(pairs.first), unit_rows(pairs.second)
    _, relevant = usage_examples(pairs.ids, N_QUERIES, seed=0)
    result: dict = {"pair": name, "pairs": len(pairs), "linear_cka": time_linear_cka(old, new)}

    started = time.perf_counter()
    comparison = compare_spaces(old_set, new_set, k=K, random_state=0)
    result["compare"] = {"seconds": time.perf_counter() - started, **comparison.to_dict()}

    started = time.perf_counter()
    alignment = fit_adapter(old_set, new_set, direction="new-to-old", max_pairs=MAX_PAIRS, k=K, random_state=0)
    fit_seconds = time.perf_counter() - started
    mapped = unit_rows(alignment.adapter.transform(new_queries))
    relevance = {
        "full re-embedding (NEW -> NEW)": float(relevance_hits(new_queries, new, relevant).mean()),
        "adapter (NEW mapped -> OLD)": float(relevance_hits(mapped, old, relevant).mean()),
        "no upgrade (OLD -> OLD)": float(relevance_hits(old_queries, old, relevant).mean()),
    }
    if old.shape[1] == new.shape[1]:
        relevance["no adapter (NEW -> OLD)"] = float(relevance_hits(new_queries, old, relevant).mean())
    full, adapted = relevance["full re-embedding (NEW -> NEW)"], relevance["adapter (NEW mapped -> OLD)"]
    result["align"] = {
        "fit_seconds": fit_seconds,
        "alignment": alignment.to_dict(),
        "relevance_recall_at_10": relevance,
        "fraction_of_full_recall": adapted / full,
    }
    print(f"\n## {DESCRIPTIONS[name]} ({len(pairs)} pairs)\n")
    scores = comparison.to_dict()["scores"]
    print(
        markdown_table(
            ["score", "value", "null mean", "p"],
            [[name, f"{s['value']:.4f}", f"{s['null_mean']:.4f}", f"{s['p_value']:.3f}"] for name, s in scores.items()],
        )
    )
    print(
        markdown_table(
            ["method", "params", "cv recall@10"],
            [[row.method, json.dumps(row.params), f"{row.score:.4f}"] for row in alignment.cv_table],
        )
    )
    print(f"chosen: {alignment.method} {json.dumps(alignment.params)}; fit {fit_seconds:.0f} s")
    print(markdown_table(["retrieval (relevance)", "recall@10"], [[n, f"{v:.4f}"] for n, v in relevance.items()]))
    evaluation = alignment.to_dict()["evaluation"]
    print(markdown_table(["neighbour agreement", "value"], [[n, v] for n, v in evaluation.items()]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, default=list(PAIRS), help="Pairs of models to measure.")
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    minilm_set = embedlab.load(prepare_wordnet_embeddings())
    texts, _ = usage_examples(minilm_set.ids, N_QUERIES, seed=0)
    minilm_queries = unit_rows(embed_texts(texts, load_encoder()))
    runs = [measure(name, minilm_set, minilm_queries, texts) for name in args.pairs]
    targets = []
    for run in runs:
        cka, align = run["linear_cka"], run["align"]
        relevance = align["relevance_recall_at_10"]
        seconds = max(cka["biased"]["seconds"], cka["debiased"]["seconds"])
        targets += [
            [
                f"linear CKA, 100,000 pairs ({run['pair']})",
                f"{cka['biased']['seconds']:.2f} s (debiased {cka['debiased']['seconds']:.2f} s)",
                f"< {TARGET_CKA_SECONDS} s",
                seconds < TARGET_CKA_SECONDS,
            ],
            [
                f"adapter / full re-embedding recall ({run['pair']})",
                f"{align['fraction_of_full_recall']:.4f} ({relevance['adapter (NEW mapped -> OLD)']:.4f} / "
                f"{relevance['full re-embedding (NEW -> NEW)']:.4f})",
                f">= {TARGET_FRACTION}",
                align["fraction_of_full_recall"] >= TARGET_FRACTION,
            ],
        ]
    print(markdown_table(["target", "measured", "goal", "met"], targets))
    # A run of some pairs only gets its own file, so that it never overwrites the figures of the others.
    name = "bench_compare_align" if set(args.pairs) == set(PAIRS) else "_".join(["bench_compare_align", *args.pairs])
    write_results(name, {"load_average": load, "runs": runs})


if __name__ == "__main__":
    main()
