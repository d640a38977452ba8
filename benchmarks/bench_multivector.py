"""Multi-vector search on WordNet with MiniLM token embeddings (issue 18): MUVERA candidates against the
single-vector heuristic and the mean-pooled vector, token pooling, streamed build memory, query throughput.

Data: a seeded subset of ``--corpus`` WordNet synsets (default 20,000) as the documents, each ``"word:
definition"`` embedded token by token with the bundled MiniLM (last layer, unit-normalised, special tokens
dropped: ``embedlab.embed.embed_tokens``); ``--queries`` usage examples of those synsets (default 1,000) as the
queries, the relevant document their own synset's. Cached in ``benchmarks/.cache/multivector/``.

One run measures, against the ground truth of exact MaxSim top-10 over every document:

* candidates needed to reach 90% and 95% recall@10 of exact MaxSim, for MUVERA encodings (exact inner-product
  search of the encodings, then exact MaxSim rerank), the single-vector heuristic of the MUVERA paper (each
  query token's nearest document tokens, the union of their documents) and the mean-pooled MiniLM vector
  (the model's own sentence embedding; its top candidates reranked). Goal: MUVERA >= 2x fewer candidates than
  the heuristic at equal recall;
* token pooling factors 1-4 with the encoding the first sweep recommends: tokens kept, MaxSim recall and
  relevance recall (the query's own synset among the 10 found);
* peak RSS of building the index of the whole corpus streamed (``build_multivector_index``, in a child
  process) at two batch sizes, and queries per second of the final pipeline against exact MaxSim over all.

Run from the repository root (nothing else running)::

    .venv/bin/python benchmarks/bench_multivector.py [--corpus 20000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time

import numpy as np

import embedlab
from _common import CACHE_DIR, WORDNET_SYNSETS, log, markdown_table, setup_logging, warn_if_busy, write_results
from embedlab import EmbeddingSet
from embedlab.embed import embed_texts, embed_tokens, load_encoder
from embedlab.multivector import (
    MultiVectorSearcher,
    MultiVectorSet,
    MuveraEncoder,
    build_multivector_index,
    load_multivector,
    maxsim_search,
    plan_multivector,
    pool_tokens,
)
from embedlab.neighbors import recall_at_k

NAME = "bench_multivector"
K = 10
SEED = 0
ROOT = CACHE_DIR / "multivector"
#: (k_sim, d_proj, repetitions): the paper's grid (its Figure 3 sweeps k_sim 2-6, d_proj 8-64, R 1-40).
ENCODINGS = ((2, 16, 10), (3, 16, 20), (4, 16, 20), (4, 32, 20), (5, 16, 20), (5, 32, 20))
CANDIDATES = (10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)
PER_TOKEN = (1, 2, 4, 8, 16, 32, 64, 128)
TARGETS = (0.9, 0.95)


def wordnet_subset(n_corpus: int, n_queries: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """Corpus ids and texts, query texts and each query's relevant corpus id, all seeded."""
    synsets = [json.loads(line) for line in gzip.open(WORDNET_SYNSETS, "rt", encoding="utf-8")]
    rng = np.random.default_rng(SEED)
    chosen = sorted(rng.choice(len(synsets), n_corpus, replace=False).tolist())
    corpus = [synsets[i] for i in chosen]
    pairs = [(text, s["id"]) for s in corpus for text in s["examples"] or []]
    picked = rng.choice(len(pairs), min(n_queries, len(pairs)), replace=False)
    return (
        [s["id"] for s in corpus],
        [f"{s['words'][0]}: {s['definition']}" for s in corpus],
        [pairs[i][0] for i in picked],
        [pairs[i][1] for i in picked],
    )


def prepare(n_corpus: int, n_queries: int) -> dict:
    """Token and sentence embeddings of the subset, cached."""
    folder = ROOT / f"c{n_corpus}-q{n_queries}"
    files = {
        name: folder / f"{name}.parquet" for name in ("doc_tokens", "query_tokens", "doc_vectors", "query_vectors")
    }
    if all(path.exists() for path in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    ids, texts, queries, relevant = wordnet_subset(n_corpus, n_queries)
    encoder = load_encoder()
    for name, rows, row_ids, extra in (
        ("doc", texts, ids, {"text": texts}),
        ("query", queries, [f"q{i}" for i in range(len(queries))], {"text": queries, "relevant": relevant}),
    ):
        started = time.perf_counter()
        vectors, offsets = embed_tokens(rows, encoder, batch_size=64)
        MultiVectorSet(vectors, offsets, row_ids, extra, model="all-MiniLM-L6-v2").to_parquet(files[f"{name}_tokens"])
        EmbeddingSet(embed_texts(rows, encoder), row_ids, extra).to_parquet(files[f"{name}_vectors"])
        log.info(
            "embedded %d %s texts (tokens and sentences) in %.0f s", len(rows), name, time.perf_counter() - started
        )
    return files


def needed(points: list, target: float) -> dict[str, float | None]:
    """Per configuration, the fewest candidates reaching ``target`` recall."""
    out: dict[str, float | None] = {}
    for p in points:
        label = p.method + (f" {p.k_sim}:{p.d_proj}:{p.repetitions}" if p.method == "muvera" else "")
        label += f" pool={p.pool_factor}"
        ok = p.maxsim_recall >= target
        best = out.get(label)
        out[label] = (p.candidates if best is None else min(best, p.candidates)) if ok else best
    return out


def fewest(needs: dict[str, float | None], method: str) -> float | None:
    """The fewest candidates any configuration of ``method`` needs."""
    return min((v for label, v in needs.items() if label.startswith(method) and v is not None), default=None)


def peak_rss_mb() -> float:
    """This process's peak RSS since it started (VmHWM: getrusage's ru_maxrss keeps the forking parent's peak
    across exec on Linux, so a child of a large parent would report the parent's)."""
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_memory(doc_tokens: str, output: str, batch_rows: int) -> None:
    """Child: build the index streamed and print its peak RSS."""
    started = time.perf_counter()
    manifest = build_multivector_index(
        doc_tokens, output, encoder=MuveraEncoder(4, 16, 20), batch_rows=batch_rows, shard_rows=batch_rows
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "seconds": seconds, "rows": manifest["n_documents"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--child-build", nargs=3, metavar=("DOCS", "OUT", "BATCH"))
    args = parser.parse_args()
    if args.child_build:
        build_memory(args.child_build[0], args.child_build[1], int(args.child_build[2]))
        return
    setup_logging()
    load = warn_if_busy()
    files = prepare(args.corpus, args.queries)
    docs, queries = load_multivector(files["doc_tokens"]), load_multivector(files["query_tokens"])
    doc_vectors, query_vectors = embedlab.load(files["doc_vectors"]), embedlab.load(files["query_vectors"])
    relevant = queries.metadata.column("relevant").to_pylist()
    log.info(
        "%d documents (%d tokens), %d queries (%d tokens)", len(docs), docs.n_tokens, len(queries), queries.n_tokens
    )

    started = time.perf_counter()
    sweep = plan_multivector(
        docs,
        queries,
        k=K,
        target_recall=TARGETS[0],
        encodings=ENCODINGS,
        pool_factors=[1],
        candidates=CANDIDATES,
        per_token=PER_TOKEN,
        single_vectors=(doc_vectors, query_vectors),
        relevant=relevant,
        random_state=SEED,
    )
    log.info("candidate sweep in %.0f s", time.perf_counter() - started)
    points = list(sweep.points)
    table = {t: needed(points, t) for t in TARGETS}
    muvera = [p for p in points if p.method == "muvera"]
    chosen = sweep.recommended if sweep.recommended and sweep.recommended.method == "muvera" else None
    if chosen is None:
        reaching = [p for p in muvera if p.maxsim_recall >= TARGETS[0]]
        chosen = min(reaching, key=lambda p: p.candidates) if reaching else max(muvera, key=lambda p: p.maxsim_recall)
    encoding = (chosen.k_sim, chosen.d_proj, chosen.repetitions)

    pooling = plan_multivector(
        docs,
        queries,
        k=K,
        target_recall=TARGETS[0],
        encodings=[encoding],
        pool_factors=[1, 2, 3, 4],
        candidates=CANDIDATES,
        per_token=None,
        relevant=relevant,
        random_state=SEED,
    )
    kept = {f: pool_tokens(docs, f).n_tokens for f in (1, 2, 3, 4)}

    # throughput: the final pipeline (the chosen encoding, the candidates it needs) against exact MaxSim
    count = int(table[TARGETS[0]].get(f"muvera {encoding[0]}:{encoding[1]}:{encoding[2]} pool=1") or CANDIDATES[-1])
    searcher = MultiVectorSearcher(docs, MuveraEncoder(*encoding, random_state=SEED), candidates=count)
    started = time.perf_counter()
    searcher.search(queries, K)
    pipeline_qps = len(queries) / (time.perf_counter() - started)
    started = time.perf_counter()
    maxsim_search(queries, docs, K)
    exact_qps = len(queries) / (time.perf_counter() - started)

    # the paper's other claims at the chosen encoding and candidate count: filling empty document partitions
    # helps, and a final projection to a quarter of the dimension costs little
    truth = maxsim_search(queries, docs, K)
    claims = {}
    for label, options in (
        ("fill_empty", {}),
        ("no_fill", {"fill_empty": False}),
        ("final_dim_quarter", {"final_dim": chosen.dim // 4}),
    ):
        variant = MuveraEncoder(*encoding, random_state=SEED, **options)
        found = MultiVectorSearcher(docs, variant, candidates=count).search(queries, K)
        claims[label] = recall_at_k(found.distances, truth.distances)
    log.info("claims at %d candidates: %s", count, claims)

    memory = {}
    for batch in (256, 4096):
        out = ROOT / f"index-{batch}"
        child = subprocess.run(
            [sys.executable, __file__, "--child-build", str(files["doc_tokens"]), str(out), str(batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        memory[batch] = json.loads(child.stdout.strip().splitlines()[-1])

    heuristic = {t: fewest(table[t], "tokens") for t in TARGETS}
    best_muvera = {t: fewest(table[t], "muvera") for t in TARGETS}
    single = {t: table[t].get("single pool=1") for t in TARGETS}
    print()
    print(
        f"{len(docs):,} documents, {len(queries):,} queries, k={K}; exact MaxSim relevance recall "
        f"{sweep.exact_relevance_recall:.3f}"
    )
    rows = [[label, *(table[t].get(label) for t in TARGETS)] for label in table[TARGETS[0]]]
    print(markdown_table(["configuration", "candidates for 90%", "candidates for 95%"], rows))
    for t in TARGETS:
        ratio = None if not (heuristic[t] and best_muvera[t]) else heuristic[t] / best_muvera[t]
        print(
            f"recall {t}: MUVERA {best_muvera[t]}, heuristic {heuristic[t]}, mean-pooled vector {single[t]}; "
            f"heuristic / MUVERA = {ratio}"
        )
    pool_rows = []
    for p in pooling.points:
        if p.candidates == count:
            pool_rows.append(
                [p.pool_factor, kept[p.pool_factor], f"{p.maxsim_recall:.3f}", f"{p.relevance_recall:.3f}"]
            )
    print(
        markdown_table(
            ["pool factor", "tokens kept", f"MaxSim recall@{K} ({count} cand.)", "relevance recall"], pool_rows
        )
    )
    print(
        f"pipeline {pipeline_qps:.0f} queries/s vs exact MaxSim {exact_qps:.1f} queries/s "
        f"({pipeline_qps / exact_qps:.0f}x); build peak RSS {memory}"
    )
    write_results(
        NAME,
        {
            "corpus": len(docs),
            "queries": len(queries),
            "doc_tokens": docs.n_tokens,
            "query_tokens": queries.n_tokens,
            "k": K,
            "load_before": load,
            "exact_relevance_recall": sweep.exact_relevance_recall,
            "candidates_needed": {str(t): table[t] for t in TARGETS},
            "heuristic_over_muvera": {
                str(t): None if not (heuristic[t] and best_muvera[t]) else heuristic[t] / best_muvera[t]
                for t in TARGETS
            },
            "chosen_encoding": list(encoding),
            "pooling": [p.to_dict() for p in pooling.points],
            "tokens_kept": kept,
            "pipeline_candidates": count,
            "claims": claims,
            "pipeline_qps": pipeline_qps,
            "exact_qps": exact_qps,
            "build": {str(b): m for b, m in memory.items()},
            "points": [p.to_dict() for p in points],
        },
    )


if __name__ == "__main__":
    main()
