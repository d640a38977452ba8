"""S³ topic axes against k-means clusters named by c-TF-IDF on WordNet, and Loki on a lexname probe (issue 22).

The 117,659 WordNet definitions (``"word: definition"``, MiniLM embeddings) carry their lexicographer file (45
lexnames), which no method sees; it only scores the topics and their names.

S³ against c-TF-IDF, 45 topics each, the same vocabulary (CountVectorizer, English stop words, terms in at least
5 definitions), ten terms a topic:

* ``k-means + c-TF-IDF``: spherical ``cluster.KMeans(45)``, each cluster named by ``ctfidf_keywords``;
* ``k-means + S³``: the same clusters named by ``s3_keywords`` (each cluster takes the terms of the S³ axis its
  members lie furthest along, clusters and axes matched one to one);
* ``S³ axes``: ``semantic_axes(n_components=45)``, each axis's documents its top 2,615 by score (the mean cluster
  size, n / 45); for NMI every document goes to its highest-scoring axis.

Measures, each a mean over the 45 topics: ``purity``, the share of a topic's documents in its most common lexname
(its lexname); ``NMI`` of the partition against the lexnames; ``term precision``, for each of a topic's terms the
share of the definitions containing it that are in the topic's lexname (``chance``: the share of that lexname
among all definitions); ``in topic``, the share of the definitions containing a term that are the topic's own
documents; ``coverage``, the share of a topic's documents that contain at least one of its terms.

Loki (``geometry.loki_predict``) on a logistic-regression probe (scikit-learn, C = 1) trained on 20,000 seeded
rows, scored on 20,000 others, against the probe's argmax, under two label metrics: ``lexname tree``, WordNet's own
grouping of the files by part of speech (root, then noun / verb / adj / adv, then the 45 lexnames; path lengths,
so 2 within a part of speech and 4 across), and ``gloss embeddings``, the cosine distance between MiniLM
embeddings of each file's description in WordNet's lexnames(5WN) page. Each with all 45 lexnames observed, and
with a seeded third of them (15) held out of the probe's training rows, which only Loki can then predict.
Reported: accuracy (all test rows, and the rows of held-out lexnames), the share of rows given another part of
speech, and the mean squared label distance to the truth (what Loki minimises in expectation).

Run from the repository root (about 15 minutes on 2 shared cores)::

    nice -n 10 .venv/bin/python benchmarks/bench_s3_naming.py
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

import embedlab
from _common import log, markdown_table, prepare_wordnet_embeddings, setup_logging, warn_if_busy, write_results
from embedlab.cluster import KMeans, external_scores
from embedlab.cluster.naming import ctfidf_keywords, s3_keywords, semantic_axes
from embedlab.embed import embed_texts, load_encoder
from embedlab.geometry import loki_predict
from embedlab.io.validation import unit_rows

NAME = "bench_s3_naming"
N_TOPICS = 45
TOP_N = 10
VOCABULARY = {"stop_words": "english", "min_df": 5}
PROBE_ROWS = 20_000  # each of the probe's training and test rows (at most half the set each)
#: The lexicographer files as WordNet's lexnames(5WN) page describes them.
GLOSSES = {
    "adj.all": "all adjective clusters",
    "adj.pert": "relational adjectives (pertainyms)",
    "adj.ppl": "participial adjectives",
    "adv.all": "all adverbs",
    "noun.Tops": "unique beginner for nouns",
    "noun.act": "nouns denoting acts or actions",
    "noun.animal": "nouns denoting animals",
    "noun.artifact": "nouns denoting man-made objects",
    "noun.attribute": "nouns denoting attributes of people and objects",
    "noun.body": "nouns denoting body parts",
    "noun.cognition": "nouns denoting cognitive processes and contents",
    "noun.communication": "nouns denoting communicative processes and contents",
    "noun.event": "nouns denoting natural events",
    "noun.feeling": "nouns denoting feelings and emotions",
    "noun.food": "nouns denoting foods and drinks",
    "noun.group": "nouns denoting groupings of people or objects",
    "noun.location": "nouns denoting spatial position",
    "noun.motive": "nouns denoting goals",
    "noun.object": "nouns denoting natural objects (not man-made)",
    "noun.person": "nouns denoting people",
    "noun.phenomenon": "nouns denoting natural phenomena",
    "noun.plant": "nouns denoting plants",
    "noun.possession": "nouns denoting possession and transfer of possession",
    "noun.process": "nouns denoting natural processes",
    "noun.quantity": "nouns denoting quantities and units of measure",
    "noun.relation": "nouns denoting relations between people or things or ideas",
    "noun.shape": "nouns denoting two and three dimensional shapes",
    "noun.state": "nouns denoting stable states of affairs",
    "noun.substance": "nouns denoting substances",
    "noun.time": "nouns denoting time and temporal relations",
    "verb.body": "verbs of grooming, dressing and bodily care",
    "verb.change": "verbs of size, temperature change, intensifying, etc.",
    "verb.cognition": "verbs of thinking, judging, analyzing, doubting",
    "verb.communication": "verbs of telling, asking, ordering, singing",
    "verb.competition": "verbs of fighting, athletic activities",
    "verb.consumption": "verbs of eating and drinking",
    "verb.contact": "verbs of touching, hitting, tying, digging",
    "verb.creation": "verbs of sewing, baking, painting, performing",
    "verb.emotion": "verbs of feeling",
    "verb.motion": "verbs of walking, flying, swimming",
    "verb.perception": "verbs of seeing, hearing, feeling",
    "verb.possession": "verbs of buying, selling, owning",
    "verb.social": "verbs of political and social activities and events",
    "verb.stative": "verbs of being, having, spatial relations",
    "verb.weather": "verbs of raining, snowing, thawing, thundering",
}


class CachedEncoder:
    """The bundled MiniLM, each text embedded once: ``semantic_axes`` and ``s3_keywords`` embed one vocabulary."""

    def __init__(self) -> None:
        self.model = load_encoder()
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self.vectors]
        if missing:
            self.vectors |= dict(zip(missing, self.model.encode(missing, **kwargs), strict=True))
        return np.stack([self.vectors[text] for text in texts])


def topic_scores(
    topics: list[np.ndarray], names: list[list[str]], lexnames: np.ndarray, has_term: sparse.csc_matrix, index: dict
) -> dict:
    """Purity, term precision against the topic's lexname and its chance, in-topic share and coverage."""
    n_lexnames = int(lexnames.max()) + 1
    overall = np.bincount(lexnames, minlength=n_lexnames) / lexnames.size
    purity, precision, chance, in_topic, coverage = [], [], [], [], []
    for documents, terms in zip(topics, names, strict=True):
        counts = np.bincount(lexnames[documents], minlength=n_lexnames)
        lexname = int(np.argmax(counts))
        purity.append(counts[lexname] / documents.size)
        chance.append(overall[lexname])
        member = np.zeros(lexnames.size, dtype=bool)
        member[documents] = True
        columns = [index[term] for term in terms]
        for column in columns:
            rows = has_term.indices[has_term.indptr[column] : has_term.indptr[column + 1]]
            precision.append(np.mean(lexnames[rows] == lexname))
            in_topic.append(np.mean(member[rows]))
        coverage.append(np.mean(has_term[documents][:, columns].getnnz(axis=1) > 0) if columns else 0.0)
    return {
        "purity": float(np.mean(purity)),
        "term_precision": float(np.mean(precision)),
        "chance": float(np.mean(chance)),
        "in_topic": float(np.mean(in_topic)),
        "coverage": float(np.mean(coverage)),
    }


def naming(
    emb: embedlab.EmbeddingSet, lexnames: np.ndarray, label_names: np.ndarray, encoder: CachedEncoder, seed: int
) -> dict:
    """The three ways of naming 45 topics, scored alike."""
    texts = list(emb.column("text"))
    vectorizer = CountVectorizer(binary=True, **VOCABULARY)
    has_term = vectorizer.fit_transform(texts).tocsc()
    index = {term: i for i, term in enumerate(vectorizer.get_feature_names_out())}
    started = time.perf_counter()
    clusters = KMeans(N_TOPICS, metric="cosine", random_state=seed).fit(emb.vectors).labels_
    seconds = {"kmeans": time.perf_counter() - started}
    started = time.perf_counter()
    ctfidf = ctfidf_keywords(texts, clusters, top_n=TOP_N, **VOCABULARY)
    seconds["ctfidf"] = time.perf_counter() - started
    started = time.perf_counter()
    axes = semantic_axes(
        texts, emb.vectors, n_components=N_TOPICS, top_n=TOP_N, encoder=encoder, random_state=seed, **VOCABULARY
    )
    seconds["s3_axes (with embedding the vocabulary)"] = time.perf_counter() - started
    started = time.perf_counter()
    s3_named = s3_keywords(texts, emb.vectors, clusters, top_n=TOP_N, encoder=encoder, random_state=seed, **VOCABULARY)
    seconds["s3_keywords (vocabulary embedded already)"] = time.perf_counter() - started
    members = [np.flatnonzero(clusters == c) for c in range(N_TOPICS)]
    loaded = np.argsort(-axes.scores, axis=0)[: round(len(emb) / N_TOPICS)].T
    runs = {
        "k-means + c-TF-IDF": (members, [[t for t, _ in ctfidf[c]] for c in range(N_TOPICS)], clusters),
        "k-means + S³": (members, [[t for t, _ in s3_named[c]] for c in range(N_TOPICS)], clusters),
        "S³ axes": (list(loaded), [[t for t, _ in axes.keywords[a]] for a in range(N_TOPICS)], axes.scores.argmax(1)),
    }
    results = {}
    for name, (topics, names, partition) in runs.items():
        scores = topic_scores(topics, names, lexnames, has_term, index)
        scores["nmi"] = external_scores(lexnames, partition).to_dict()["nmi"]
        scores["examples"] = [
            {"lexname": str(label_names[np.bincount(lexnames[topics[t]]).argmax()]), "terms": names[t][:6]}
            for t in range(0, N_TOPICS, 9)
        ]
        results[name] = scores
        log.info("%s: %s", name, {k: v for k, v in scores.items() if k != "examples"})
    return {"results": results, "seconds": seconds, "vocabulary": len(index)}


def tree_distances(label_names: np.ndarray) -> np.ndarray:
    """Path lengths in the tree root - part of speech - lexname, between the lexnames."""
    pos = np.array([name.split(".")[0] for name in label_names])
    return np.where(pos[:, None] == pos[None, :], 2.0, 4.0) * (1.0 - np.eye(pos.size))


def gloss_distances(label_names: np.ndarray, encoder: CachedEncoder) -> np.ndarray:
    """Cosine distances between MiniLM embeddings of the lexnames' descriptions."""
    glosses = unit_rows(embed_texts([GLOSSES[name] for name in label_names], encoder)).astype(np.float64)
    return np.clip(1.0 - glosses @ glosses.T, 0.0, None) * (1.0 - np.eye(len(label_names)))


def loki(
    emb: embedlab.EmbeddingSet, lexnames: np.ndarray, label_names: np.ndarray, encoder: CachedEncoder, seed: int
) -> list[dict]:
    """Argmax against Loki on a probe's probabilities, all lexnames observed and a third held out."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(emb))
    size = min(PROBE_ROWS, len(emb) // 2)
    train, test = order[:size], order[size : 2 * size]
    held_out = rng.choice(label_names.size, size=label_names.size // 3, replace=False)
    metrics = {"lexname tree": tree_distances(label_names), "gloss embeddings": gloss_distances(label_names, encoder)}
    pos = np.array([name.split(".")[0] for name in label_names])
    truth = lexnames[test]
    rows = []
    for setting, hidden in (("all 45 observed", np.array([], dtype=int)), ("15 held out", held_out)):
        fit = train[~np.isin(lexnames[train], hidden)]
        started = time.perf_counter()
        probe = LogisticRegression(C=1.0, max_iter=1000).fit(emb.vectors[fit], lexnames[fit])
        proba = probe.predict_proba(emb.vectors[test])
        log.info(
            "%s: probe of %d classes fitted in %.0f s", setting, probe.classes_.size, time.perf_counter() - started
        )
        unseen = np.isin(truth, hidden)
        for metric_name, D in metrics.items():
            predictions = {
                "argmax": probe.classes_[np.argmax(proba, axis=1)],
                "Loki": loki_predict(proba, D, observed=probe.classes_),
            }
            for rule, predicted in predictions.items():
                rows.append(
                    {
                        "setting": setting,
                        "metric": metric_name,
                        "rule": rule,
                        "accuracy": float(np.mean(predicted == truth)),
                        "accuracy_held_out": float(np.mean(predicted[unseen] == truth[unseen]))
                        if unseen.any()
                        else None,
                        "other_pos": float(np.mean(pos[predicted] != pos[truth])),
                        "mean_squared_distance": float(np.mean(D[predicted, truth] ** 2)),
                        "held_out_predicted": int(np.isin(predicted, hidden).sum()),
                    }
                )
                log.info("%s", rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["naming", "loki"], choices=["naming", "loki"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=None, help="a seeded sample of the rows, for a quick try")
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    emb = embedlab.load(prepare_wordnet_embeddings(), sample=args.sample, random_state=args.seed)
    label_names, lexnames = np.unique(np.asarray(emb.column("label")).astype(str), return_inverse=True)
    encoder = CachedEncoder()
    document: dict[str, Any] = {"data": f"WordNet MiniLM, {len(emb):,} x {emb.dim}, 45 lexnames", "seed": args.seed}
    name = NAME if args.sample is None else f"{NAME}-sample{args.sample}"
    if "naming" in args.parts:
        document["naming"] = naming(emb, lexnames, label_names, encoder, args.seed)
        table = [
            [
                name,
                f"{s['purity']:.3f}",
                f"{s['nmi']:.3f}",
                f"{s['term_precision']:.3f} ({s['chance']:.3f})",
                f"{s['in_topic']:.3f}",
                f"{s['coverage']:.3f}",
            ]
            for name, s in document["naming"]["results"].items()
        ]
        print(markdown_table(["topics", "purity", "NMI", "term precision (chance)", "in topic", "coverage"], table))
    if "loki" in args.parts:
        document["loki"] = loki(emb, lexnames, label_names, encoder, args.seed)
        table = [
            [
                r["setting"],
                r["metric"],
                r["rule"],
                f"{r['accuracy']:.3f}",
                "" if r["accuracy_held_out"] is None else f"{r['accuracy_held_out']:.3f}",
                f"{r['other_pos']:.3f}",
                f"{r['mean_squared_distance']:.4f}",
            ]
            for r in document["loki"]
        ]
        headers = ["probe", "label metric", "rule", "accuracy", "accuracy (held out)", "other POS", "mean d²"]
        print(markdown_table(headers, table))
    write_results(name, {**document, "load": load})


if __name__ == "__main__":
    main()
