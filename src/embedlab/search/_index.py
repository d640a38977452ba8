"""``Index``: a faiss index (or a codec's codes) of an embedding set, tuned to a target recall, with its
operating-point card; written atomically to a directory, checked file by file when opened, and searched as a
:class:`~embedlab.neighbors.Searcher`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._json import MAX_ARRAY_DOCUMENT_BYTES, document_errors, member, read_document
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab._version import __version__
from embedlab.cluster import KMeans
from embedlab.compress import CODEC_METRICS, Codec, CodecParams, CodecSearcher, parse_spec
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry import local_id, twonn
from embedlab.io import EmbeddingSet, atomic_directory, load_npy, read_id_file
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.validation import METRICS, Metric, Rows, prepare
from embedlab.neighbors import (
    ExactSearcher,
    FaissSearcher,
    HNSWParams,
    IVFParams,
    IVFPQParams,
    KnnResult,
    SearchParams,
    knn,
    rerank,
)
from embedlab.search._card import OperatingCard, recall_interval, strata, worst_strata
from embedlab.search._tune import (
    Built,
    Candidate,
    Measured,
    build,
    build_cost,
    candidates,
    confirm,
    sweep,
    variants,
)

__all__ = ["METHODS", "Index", "build_index"]

logger = logging.getLogger(__name__)

METHODS = ("auto", "hnsw", "ivf", "ivfpq")
MANIFEST = "index.json"
FORMAT_VERSION = 1
_FAISS, _CODEC, _CODES, _IDS = "index.faiss", "codec.json", "codes.npy", "ids.parquet"
_VECTORS, _POSITIONS, _CARD = "vectors.npy", "positions.npy", "card.json"
#: Rows whose nearest-neighbour distances estimate the intrinsic dimension that starts the grid.
_ID_SAMPLE = 2_000
#: k-means clusters the validation queries are grouped in for the card.
_CARD_CLUSTERS = 10
#: A further configuration is built only while tuning, that build included, stays under this many times the
#: cheapest build (the chosen one is at least as dear), leaving about half a build for the sweeps and the card.
_TUNING_BUILDS = 2.5
_PARAM_TYPES: dict[str, type[SearchParams]] = {
    "hnsw": HNSWParams,
    "ivf": IVFParams,
    "ivfpq": IVFPQParams,
    "codec": CodecParams,
}


def _params_from_dict(document: dict[str, Any]) -> SearchParams:
    fields = dict(document)
    return _PARAM_TYPES[fields.pop("method")](**fields)


class Index:
    """A tuned index of an embedding set: its searcher, row ids, operating-point card and provenance.

    Made by :func:`build_index`, written by :meth:`save`, read by :meth:`open`. It is a
    :class:`~embedlab.neighbors.Searcher`: :meth:`search` answers in the :class:`KnnResult` convention with the
    rows' ids, at the tuned operating point unless told otherwise.

    Attributes
    ----------
    searcher : FaissSearcher or CodecSearcher
    ids : numpy.ndarray of shape (n,)
    card : OperatingCard
    provenance : dict
        Where the data came from, when and with which seed the index was built.
    """

    def __init__(
        self, searcher: FaissSearcher | CodecSearcher, ids: np.ndarray, card: OperatingCard, provenance: dict
    ) -> None:
        if len(ids) != len(searcher):
            raise EmbeddingDataError(f"the index holds {len(searcher)} rows but {len(ids)} ids.")
        self.searcher, self.ids, self.card, self.provenance = searcher, ids, card, provenance

    def __len__(self) -> int:
        return len(self.searcher)

    def __repr__(self) -> str:
        return f"Index({len(self)} rows, {self.params.to_dict()}, recall@{self.card.k} {self.card.recall:.4f})"

    @property
    def metric(self) -> str:
        return self.searcher.metric

    @property
    def dim(self) -> int:
        return self.searcher.dim

    @property
    def params(self) -> SearchParams:
        """The tuned search parameters."""
        return self.searcher.params

    def search(
        self,
        queries: object,
        k: int | None = None,
        *,
        exclude: np.ndarray | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        rescore: int | None = None,
        progress: ProgressReporter = NULL_PROGRESS,
    ) -> KnnResult:
        """The ``k`` nearest rows of each query (``k`` the tuned one by default), with their ids.

        ``ef_search`` (HNSW), ``nprobe`` (IVF) and ``rescore`` (IVF-PQ's and a codec's re-ranking factor)
        override the tuned operating point for this search only; the card's recall no longer applies then.
        """
        tuned = self.params
        overrides = {"ef_search": ef_search, "nprobe": nprobe}
        overrides = {name: value for name, value in overrides.items() if value is not None}
        if rescore is not None:
            overrides["rescore" if isinstance(tuned, CodecParams) else "rerank_factor"] = rescore
        unknown = [name for name in overrides if not hasattr(tuned, name)]
        if unknown:
            raise ConfigurationError(f"a {tuned.method} index has no {', '.join(unknown)} to set.")
        try:
            self.searcher.configure(replace(tuned, **overrides))
            result = self.searcher.search(queries, self.card.k if k is None else k, exclude=exclude, progress=progress)
        finally:
            self.searcher.configure(tuned)
        return result.with_ids(self.ids)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index to the directory ``path`` atomically (an earlier index there is replaced)."""
        searcher = self.searcher
        with atomic_directory(path, replaceable=MANIFEST) as tmp:
            if isinstance(searcher, FaissSearcher):
                faiss.write_index(searcher.index, str(tmp / _FAISS))
                if searcher.positions is not None:
                    np.save(tmp / _POSITIONS, searcher.positions)
                kind = "faiss"
            else:
                (tmp / _CODEC).write_text(json.dumps(searcher.codec.to_dict()), encoding="utf-8")
                np.save(tmp / _CODES, searcher.codes)
                kind = "codec"
            if searcher.vectors is not None:
                np.save(tmp / _VECTORS, np.asarray(searcher.vectors, dtype=np.float32))
            pq.write_table(pa.table({ID_COLUMN: pa.array(self.ids)}), tmp / _IDS)
            (tmp / _CARD).write_text(json.dumps(self.card.to_dict(), indent=1) + "\n", encoding="utf-8")
            manifest = {
                "format": FORMAT_VERSION,
                "embedlab_version": __version__,
                "kind": kind,
                "metric": self.metric,
                "n": len(self),
                "dim": self.dim,
                "params": self.params.to_dict(),
                "provenance": self.provenance,
                "files": {file.name: _fingerprint(file) for file in sorted(tmp.iterdir())},
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        return Path(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Index:
        """Read an index written by :meth:`save`; every file is checked against the manifest first.

        Raises
        ------
        EmbeddingDataError
            Naming the file that is missing, truncated, changed since it was written, or unreadable.
        """
        root = Path(path)
        manifest = _read_manifest(root)
        for name, expected in manifest["files"].items():
            file = member(root, name, what="the index manifest")
            if not file.is_file():
                raise EmbeddingDataError(f"{file} is missing from the index; rebuild it with 'embedlab index build'.")
            if _fingerprint(file) != expected:
                raise EmbeddingDataError(
                    f"{file} is not the file the index was saved with (its size or checksum differs: truncated or "
                    "changed); rebuild the index with 'embedlab index build'."
                )
        with document_errors(root / MANIFEST, "index manifest"):
            n, dim = check_int(manifest["n"], "n", minimum=0, maximum=2**53), check_int(manifest["dim"], "dim")
            metric = check_choice(manifest["metric"], "metric", METRICS)
            params = _params_from_dict(manifest["params"])
            kind, files, provenance = manifest["kind"], manifest["files"], dict(manifest.get("provenance", {}))
        needed = [_CARD, _IDS, *([_FAISS] if kind == "faiss" else [_CODEC, _CODES])]
        unlisted = [name for name in needed if name not in files]
        if unlisted:  # only files the manifest vouches for are read (faiss trusts the bytes it is given)
            raise EmbeddingDataError(
                f"{root / MANIFEST} does not list {', '.join(unlisted)}; the index is damaged, rebuild it."
            )
        with document_errors(root / _CARD, "operating card"):
            card = OperatingCard.from_dict(read_document(root / _CARD, what="operating card"))
        vectors = load_npy(root / _VECTORS, mmap=True) if _VECTORS in files else None
        try:
            if kind == "faiss":
                index = faiss.read_index(str(root / _FAISS))
                positions = load_npy(root / _POSITIONS) if _POSITIONS in files else None
                searcher: FaissSearcher | CodecSearcher = FaissSearcher(
                    index, params, metric, vectors=vectors, positions=positions, n_rows=n
                )
            else:
                codec_document = read_document(root / _CODEC, what="codec", max_bytes=MAX_ARRAY_DOCUMENT_BYTES)
                with document_errors(root / _CODEC, "codec"):
                    codec = Codec.from_dict(codec_document)
                searcher = CodecSearcher(
                    codec, load_npy(root / _CODES), vectors=vectors, rescore=getattr(params, "rescore", None)
                )
        except (KeyError, TypeError, ValueError, OSError, RuntimeError, pa.ArrowException) as error:
            if isinstance(error, EmbeddingDataError):
                raise
            raise EmbeddingDataError(f"{root} holds an unreadable index ({type(error).__name__}: {error}).") from error
        ids = read_id_file(root / _IDS, n)
        if searcher.dim != dim or len(searcher) != n:
            raise EmbeddingDataError(
                f"{root}: the index's files disagree with its manifest ({n} rows of dimension {dim})."
            )
        return cls(searcher, ids, card, provenance)


def _fingerprint(file: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return {"bytes": file.stat().st_size, "sha256": digest.hexdigest()}


def _read_manifest(root: Path) -> dict[str, Any]:
    if not (root / MANIFEST).is_file():
        raise EmbeddingDataError(
            f"{root} is not an embedlab index (no {MANIFEST}); build one with 'embedlab index build'."
        )
    manifest = read_document(root / MANIFEST, what="index manifest")
    with document_errors(root / MANIFEST, "index manifest"):
        if manifest["format"] != FORMAT_VERSION:
            raise EmbeddingDataError(
                f"{root / MANIFEST}: the index has format {manifest['format']}; this embedlab reads {FORMAT_VERSION}."
            )
        if not isinstance(manifest["files"], dict):
            raise TypeError("'files' is not a mapping")
    return manifest


def _split(
    rows: Rows, queries: Rows | None, n_queries: int, rng: np.random.Generator
) -> tuple[np.ndarray, Rows, Rows, np.ndarray, str]:
    """(positions of the rows indexed while tuning, tuning queries, validation queries, the validation queries'
    positions in the data or the given queries, their description).

    Without queries, ``2 n_queries`` rows are held out of the indexed rows (they are added once tuned); given
    queries are split in halves (at most ``n_queries`` each).
    """
    if queries is None:
        n_queries = min(n_queries, max(1, rows.n // 10))
        held = rng.choice(rows.n, 2 * n_queries, replace=False)
        keep = np.ones(rows.n, dtype=bool)
        keep[held] = False
        described = f"{2 * n_queries} rows held out of the data while tuning (added to the index afterwards)"
        validation = held[n_queries:]
        return np.flatnonzero(keep), rows.take(held[:n_queries]), rows.take(validation), validation, described
    if queries.n < 2:
        raise EmbeddingDataError("queries: tuning needs at least 2 queries (half tune, half validate).")
    order = rng.permutation(queries.n)
    half = queries.n // 2
    tuning, validation = order[: min(half, n_queries)], order[half : half + n_queries]
    described = f"{tuning.size + validation.size} of {queries.n} given queries"
    return np.arange(rows.n), queries.take(tuning), queries.take(validation), validation, described


def _intrinsic_dimension(base: Rows, rng: np.random.Generator) -> float:
    """TwoNN estimate from the two nearest rows of a sample (rows with a duplicate at distance 0 left out)."""
    sample = np.sort(rng.choice(base.n, min(_ID_SAMPLE, base.n), replace=False))
    distances = knn(base.vectors, 2, query_rows=sample, metric="l2", method="exact", recall_sample=0).distances
    distances = distances[distances[:, 0] > 0]
    if distances.shape[0] < 10:
        return float("nan")
    return twonn(distances, n_boot=0, random_state=0).value


def _card_strata(
    base: Rows, validate: Rows, truth: KnnResult, measured: Measured, k: int, rng: np.random.Generator
) -> tuple[list, list]:
    """Recall of the validation queries by k-means cluster and by decile of local intrinsic dimension."""
    per_query = measured.per_query
    n_clusters = min(_CARD_CLUSTERS, max(1, validate.n // 20))
    sample = base.take(np.sort(rng.choice(base.n, min(base.n, 20_000), replace=False)))
    cluster_metric = "cosine" if base.metric == "cosine" else "l2"
    model = KMeans(n_clusters, metric=cluster_metric, random_state=int(rng.integers(2**31 - 1))).fit(sample.vectors)
    by_cluster = strata("cluster", model.predict(validate.vectors), per_query)
    by_lid: list = []
    if k >= 3:
        euclidean = rerank(base.vectors, validate.vectors, truth.indices, "l2", k)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            lid = local_id(np.maximum(euclidean, 1e-12), k=k) if (euclidean[:, 0] > 0).all() else None
        if lid is not None and np.isfinite(lid).sum() >= 10:
            finite = np.isfinite(lid)
            edges = np.quantile(lid[finite], np.linspace(0, 1, 11))
            deciles = np.where(finite, np.clip(np.searchsorted(edges, lid, side="right"), 1, 10), 0)
            names = np.array(
                [f"decile {d} ({edges[max(d - 1, 0)]:.1f}-{edges[d]:.1f})" if d else "undefined" for d in range(11)]
            )
            by_lid = strata("LID", names[deciles], per_query, order=[str(n) for n in names[1:]] + ["undefined"])
    return by_cluster, by_lid


def build_index(
    data: EmbeddingSet | object,
    *,
    k: int = 10,
    target_recall: float | None = 0.95,
    method: str = "auto",
    codec: str | None = None,
    memory_budget: int | None = None,
    queries: object | None = None,
    metric: Metric = "cosine",
    n_queries: int = 1000,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> Index:
    """Build an index of ``data`` tuned to the fewest effort that delivers ``target_recall`` at ``k``.

    Held-out queries (or half of the given ones) are searched exactly for ground truth; a small grid of build
    configurations, started from the data's intrinsic dimension (TwoNN, Facco et al. 2017) and kept within the
    memory budget, is built and each configuration's search-time effort (``ef_search``, ``nprobe``, re-ranking)
    swept. The setting of least work per query (multiply-adds, counted so that the same data and seed give the
    same index) whose one-sided 95% lower prediction bound on recall@k meets the target is kept,
    confirmed on the other half of the queries (its effort raised until their bound meets the target too), and
    measured there for the operating-point card (recall and interval, recall
    per cluster and per decile of local intrinsic dimension, queries per second, build and tuning time, bytes).

    Parameters
    ----------
    data : EmbeddingSet or array-like of shape (n, d)
    k : int, default=10
    target_recall : float or None, default=0.95
        In (0, 1]; None keeps the most accurate setting measured.
    method : {"auto", "hnsw", "ivf", "ivfpq"}, default="auto"
        ``"auto"``: HNSW, or under a memory budget the fastest kind that fits (HNSW, IVF, then IVF-PQ).
    codec : str, optional
        Scan the codes of this codec spec (``"pca:128+int8"``) instead of a faiss index, tuning the re-ranking.
    memory_budget : int, optional
        Bytes the index may hold in memory (full vectors for re-ranking stay on disk, memory-mapped).
    queries : array-like of shape (m, d), optional
        Representative queries; by default ``2 n_queries`` rows are held out of the data while tuning.
    metric : {"cosine", "l2", "ip"}, default="cosine"
    n_queries : int, default=1000
        Tuning queries, and as many validation queries.
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    Index

    Raises
    ------
    ConfigurationError
        On bad parameters, or a memory budget no index fits.

    References
    ----------
    Aumüller, Bernhardsson and Faithfull (2020), "ANN-Benchmarks: A benchmarking tool for approximate nearest
    neighbor algorithms", Information Systems 87 (the protocol). Elliott and Clark (2024), "The Impacts of
    Data, Ordering, and Intrinsic Dimensionality on Recall in Hierarchical Navigable Small Worlds", ICTIR.
    """
    started = time.perf_counter()
    check_choice(method, "method", METHODS)
    check_choice(metric, "metric", METRICS)
    if target_recall is not None:
        check_positive(target_recall, "target_recall", upper=1.0)
    if memory_budget is not None:
        check_int(memory_budget, "memory_budget")
    n_queries = check_int(n_queries, "n_queries")
    if codec is not None:
        if method not in ("auto",):
            raise ConfigurationError(f"give either --codec or --method {method}, not both.")
        check_choice(metric, "metric (with a codec)", CODEC_METRICS)
        codec = parse_spec(codec).codes_spec
    rng = np.random.default_rng(random_state)
    X, ids = (data.vectors, data.ids) if isinstance(data, EmbeddingSet) else (data, None)
    rows = prepare(X, metric, min_rows=2)
    ids = np.arange(rows.n) if ids is None else np.asarray(ids)
    given = None if queries is None else prepare(queries, metric, name="queries", dim=rows.dim)
    base_positions, tune, validate, validation_rows, described = _split(rows, given, n_queries, rng)
    base = rows if base_positions.size == rows.n else rows.take(base_positions)
    k = check_int(k, "k", maximum=base.n - 1, why="the rows indexed while tuning, less one")
    exact = ExactSearcher(base, metric)
    truth_tune, truth_validate = exact.search(tune, k), exact.search(validate, k)
    intrinsic = _intrinsic_dimension(base, rng)
    options = candidates(
        method, rows.n, rows.dim, intrinsic, memory_budget=memory_budget, codec=codec, target=target_recall
    )
    best: tuple[Built, Measured] | None = None
    sweeps: list = []
    builds: list[Built] = []
    with progress.task("tuning the index", len(options)) as advance:
        for candidate in options:
            if builds and not _affordable(candidate, builds):
                logger.info("%s left out: its build would take tuning past the time budget", candidate.params)
                advance(1)
                continue
            built = build(candidate, base, random_state=rng, progress=progress)
            builds.append(built)
            for variant in variants(built, base, random_state=rng):
                full_bytes = variant.memory_bytes * rows.n / base.n  # once the held-out rows are added
                if memory_budget is not None and full_bytes > memory_budget:
                    logger.info("%s would hold %d bytes, over the budget", variant.candidate.params, full_bytes)
                    continue
                measured = sweep(variant, base, tune, truth_tune, k, target_recall)
                sweeps += [m.point for m in measured]
                passing = [m for m in measured if m.point.meets_target] if target_recall is not None else measured
                for m in passing:
                    if best is None or _better(m, best[1], target_recall):
                        best = (variant, m)
            advance(1)
    if best is None:
        closest = max(sweeps, key=lambda p: p.recall_bound, default=None)
        if closest is None:
            raise ConfigurationError(f"no {method} index fits a memory budget of {memory_budget:,} bytes.")
        raise ConfigurationError(
            f"no configuration reaches recall@{k} {target_recall:g}: the best measured is {closest.params} at "
            f"recall {closest.recall:.4f} (lower bound {closest.recall_bound:.4f}). Lower --target-recall, raise "
            "--memory-budget, or choose another --method."
        )
    built, chosen = best
    validated = confirm(built, base, validate, truth_validate, k, target_recall, chosen.params)
    recall, low, high = recall_interval(validated.per_query)
    by_cluster, by_lid = _card_strata(base, validate, truth_validate, validated, k, rng)
    final = _complete(built, rows, base_positions)
    card = OperatingCard(
        params=validated.params.to_dict(),
        k=k,
        target_recall=target_recall,
        recall=recall,
        ci_low=low,
        ci_high=high,
        qps=validated.point.qps,
        multiply_adds=validated.point.multiply_adds,
        n_rows=rows.n,
        dim=rows.dim,
        metric=metric,
        n_tuning_queries=tune.n,
        n_validation_queries=validate.n,
        queries=described,
        intrinsic_dimension=intrinsic,
        build_s=built.build_s,
        tune_s=time.perf_counter() - started - built.build_s,
        memory_bytes=final.index_bytes if isinstance(final, FaissSearcher) else int(final.codes.nbytes),
        disk_bytes=0 if final.vectors is None or not _rereads(final) else int(final.vectors.nbytes),
        by_cluster=by_cluster,
        by_lid=by_lid,
        worst=worst_strata(by_cluster + by_lid),
        sweep=sweeps,
        validation_rows=validation_rows.tolist(),
    )
    provenance = {
        "data": data.provenance() if isinstance(data, EmbeddingSet) else {"source": "array"},
        "random_state": random_state,
    }
    logger.info("%s", card.summary())
    return Index(final, ids, card, provenance)


def _affordable(candidate: Candidate, builds: list[Built]) -> bool:
    """Whether building ``candidate`` after ``builds`` keeps the builds within ``1 + _TUNING_BUILDS`` of the
    cheapest of them or of its own, in :func:`build_cost`'s units (modelled, so the same candidates are built
    on every run)."""
    done = [build_cost(b.candidate) for b in builds]
    estimate = build_cost(candidate)
    return sum(done) + estimate <= (1 + _TUNING_BUILDS) * min(estimate, *done)


def _better(candidate: Measured, incumbent: Measured, target: float | None) -> bool:
    """With a target: less work per query wins; without: more accurate wins, then less work."""
    if target is not None:
        return candidate.point.multiply_adds < incumbent.point.multiply_adds
    return (candidate.point.recall, -candidate.point.multiply_adds) > (
        incumbent.point.recall,
        -incumbent.point.multiply_adds,
    )


def _rereads(searcher: FaissSearcher | CodecSearcher) -> bool:
    """Whether searching reads the full vectors (re-ranking)."""
    if isinstance(searcher, CodecSearcher):
        return searcher.rescore is not None
    return searcher.params.rerank > 1 or searcher.metric == "l2"


def _complete(built: Built, rows: Rows, base_positions: np.ndarray) -> FaissSearcher | CodecSearcher:
    """The tuned searcher over every row: rows held out while tuning are added, positions map to rows."""
    searcher = built.searcher
    held = np.setdiff1d(np.arange(rows.n), base_positions, assume_unique=True)
    if isinstance(searcher, CodecSearcher):
        codes = searcher.codes if held.size == 0 else searcher.codec.encode(rows)
        vectors = rows.vectors if searcher.rescore is not None else None
        return CodecSearcher(searcher.codec, codes, vectors=vectors, rescore=searcher.rescore)
    if held.size:
        searcher.index.add(rows.vectors[held])
    positions = None if held.size == 0 else np.concatenate([base_positions, held])
    vectors = rows.vectors if _rereads(searcher) else None
    return FaissSearcher(
        searcher.index, searcher.params, rows.metric, vectors=vectors, positions=positions, n_rows=rows.n
    )
