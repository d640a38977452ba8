"""The learnt codecs (the ``deep`` extra) on the WordNet MiniLM vectors, against the closed-form codecs of the
same size.

The Matryoshka adapter ``mrl:96+int8`` against ``pca:96+int8`` (96 bytes), and BEBR ``bebr:128x3`` and
``bebr:384x1`` against ``binary:itq`` and ``opq:48`` (48 bytes): recall@10 from the codes alone, exact
inner-product ground truth, 500 queries held out from the 117,659 rows (a seeded permutation; the other
115,659 rows minus 1,500 more are the corpus), and the seconds each fit takes on 65,536 training rows.

Run: ``.venv/bin/python benchmarks/bench_compress_learnt.py`` (about 12 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.compress import Codec, CodecSearcher
from embedlab.neighbors import unit_rows

K = 10
N_QUERIES = 500
PAIRS = (("pca:96+int8", "mrl:96+int8"), ("binary:itq", "opq:48", "bebr:128x3", "bebr:384x1"))


def recall(codec: Codec, corpus: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> float:
    found = CodecSearcher(codec, codec.encode(corpus)).search(queries, K).indices
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    X = unit_rows(np.asarray(embedlab.load(prepare_wordnet_embeddings()).vectors, dtype=np.float32))
    order = np.random.default_rng(0).permutation(len(X))
    queries, corpus = X[order[:N_QUERIES]], X[order[2000:]]
    truth = np.argsort(-(queries @ corpus.T), axis=1)[:, :K]
    rows = []
    for group in PAIRS:
        for spec in group:
            started = time.perf_counter()
            codec = Codec(spec).fit(corpus)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "codec": spec,
                    "bytes": codec.bytes_per_vector,
                    "recall_at_10": recall(codec, corpus, queries, truth),
                    "fit_s": round(seconds, 1),
                }
            )
            log.info("%s: %d B, recall@10 %.4f, fit %.0f s", spec, rows[-1]["bytes"], rows[-1]["recall_at_10"], seconds)
    print(
        markdown_table(
            ["codec", "bytes", "recall@10", "fit s"],
            [[r["codec"], r["bytes"], f"{r['recall_at_10']:.4f}", r["fit_s"]] for r in rows],
        )
    )
    write_results(
        "bench_compress_learnt",
        {"load_average": load, "corpus_rows": len(corpus), "queries": N_QUERIES, "k": K, "rows": rows},
    )


if __name__ == "__main__":
    main()
