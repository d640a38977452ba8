"""Out of core and on Ray: the sharded steps on a synthetic set larger than memory allows, and Ray's overhead.

Out of core (issue 15): a synthetic ``--rows`` x 384 float32 set (default 10,000,000 rows, about 15 GB) is
generated piece by piece into ``benchmarks/.cache/scale/`` as one ``.npy`` file: 1,000 planted clusters
(unit centres plus Gaussian noise of norm about 0.5) and 0.5% planted exact duplicates of earlier rows. Each
step then runs in a fresh child process on the local backend, which reports its wall time and peak RSS
(``getrusage``; the parent imports nothing heavy, so the figure is the step's own):

* ``describe``: counts, norms and duplicate hashes of every row (the planted duplicates must be found);
* ``kmeans``: k-means, k = 1,000, 10 Lloyd iterations (tol 0), labels of every row written per shard;
  adjusted Rand index against the planted clusters;
* ``hierarchical``: hierarchical k-means, levels (1000, 100, 10), one resampling step per level, 10 Lloyd
  iterations per k-means run;
* ``twonn``: TwoNN from 10,000 sampled query rows searched exactly against every row;
* ``semdedup``: SemDeDup (one cluster per 10,000 rows, 10 Lloyd iterations) with its shuffle by cluster
  through scratch files; the rows removed at eps 0.001, 0.01 and 0.05 against the planted exact duplicates;
* ``knn``: the 10-nearest-neighbour graph of a planted set of ``--knn-rows`` rows (default 2,000,000; exact
  search would cost ``n^2 d``): an index per shard tuned to recall 0.95 on the first shard
  (``build_shard_indexes``), then every shard's rows searched through every shard's index; the graph's recall
  measured on 1,000 sampled rows against exact search.

Goal: peak RSS <= 4 GB for every step. Each step's figures are written to the results file as soon as it ends,
beside those of earlier runs of the other steps on the same number of rows.

Ray against local (``--ray-rows``, default 1,000,000 rows of the same generator): k-means k = 100, 10 Lloyd
iterations, on the local backend, on Ray tasks and on Ray actors that cache their shards
(``ray.init(num_cpus=2)``), and on a simulated two-node cluster (``ray.cluster_utils.Cluster``, one CPU a
node). Goals: Ray's time <= 1.3x the local backend's; every Ray result bit-identical to the local one.

Run from the repository root (nothing else running; the default sizes take about two hours on 2 cores)::

    .venv/bin/python benchmarks/bench_scale.py [--rows 10000000] [--steps describe,kmeans,hierarchical,twonn]
        [--knn-rows 2000000] [--ray-rows 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    CACHE_DIR,
    RESULTS_DIR,
    library_version,
    log,
    markdown_table,
    setup_logging,
    warn_if_busy,
    write_results,
)

NAME = "bench_scale"
DIM = 384
CLUSTERS = 1000
DUPLICATE_SHARE = 0.005
PIECE_ROWS = 65_536
SEED = 0
RSS_TARGET_MB = 4 * 1000**3 / 2**20  # 4 GB
RAY_OVERHEAD_TARGET = 1.3
STEPS = ("describe", "kmeans", "hierarchical", "twonn", "knn", "semdedup")
KNN_RECALL_QUERIES = 1000
SCALE_DIR = CACHE_DIR / "scale"


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------- child: the data


def generate(path: Path, n_rows: int) -> dict:
    """Write the planted set piece by piece through a memory map, and its planted labels beside it.

    Row ``i`` belongs to cluster ``labels[i]``; a ``DUPLICATE_SHARE`` of the rows (not in the first piece)
    copy a row of an earlier piece exactly. Each piece has its own seeded stream, so the set depends on
    ``n_rows`` and ``SEED`` only.
    """
    import numpy as np

    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, CLUSTERS, n_rows).astype(np.int16)
    tmp = path.with_name(path.name + ".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_rows, DIM))
    duplicates = 0
    for number, start in enumerate(range(0, n_rows, PIECE_ROWS)):
        stop = min(start + PIECE_ROWS, n_rows)
        piece_rng = np.random.default_rng([SEED, number])
        noise = piece_rng.standard_normal((stop - start, DIM), dtype=np.float32) * np.float32(0.5 / np.sqrt(DIM))
        piece = centres[labels[start:stop]] + noise
        if start > 0:
            copies = np.flatnonzero(piece_rng.random(stop - start) < DUPLICATE_SHARE)
            sources = piece_rng.integers(0, start, copies.size)
            piece[copies] = out[sources]
            labels[start + copies] = labels[sources]
            duplicates += copies.size
        out[start:stop] = piece
    out.flush()
    del out
    np.save(path.with_name(path.stem + "-labels.npy"), labels)
    tmp.replace(path)
    return {"rows": n_rows, "planted_duplicates": duplicates}


# ------------------------------------------------------------------------------------ child: the steps


def run_step(step: str, path: Path, work: Path) -> dict:
    """One step on the local backend; its own figures (the caller adds time and RSS)."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from embedlab.cluster import HierarchicalKMeans, KMeans
    from embedlab.geometry import twonn_shards
    from embedlab.io import describe
    from embedlab.io.shards import open_shards, write_columns

    sharded = open_shards(path)
    found: dict = {"shards": len(sharded), "rows": sharded.n_rows}
    if step == "describe":
        summary = describe(sharded)
        found.update(duplicate_rows=summary.duplicate_rows, nan_inf_rows=summary.nan_inf_rows)
    elif step == "kmeans":
        model = KMeans(CLUSTERS, metric="l2", max_iter=10, tol=0.0, random_state=SEED).fit(sharded)
        write_columns(sharded, {"cluster": model.labels_, "confidence": model.confidence_}, work / "kmeans-labels")
        planted = np.load(path.with_name(path.stem + "-labels.npy"))
        found.update(
            n_iter=model.n_iter_,  # fewer than 10 when the centres stop moving at all
            inertia=model.inertia_,
            ari_planted=float(adjusted_rand_score(planted, model.labels_)),
        )
    elif step == "hierarchical":
        model = HierarchicalKMeans((1000, 100, 10), metric="l2", n_resamples=1, max_iter=10, random_state=SEED)
        model.fit(sharded)
        found.update(levels=[int(level.centers.shape[0]) for level in model.levels_])
    elif step == "twonn":
        estimate = twonn_shards(sharded, n_queries=10_000, metric="l2", random_state=SEED)
        found.update(intrinsic_dimension=estimate.value, ci=[estimate.ci_low, estimate.ci_high], n_queries=estimate.n)
    elif step == "knn":
        found.update(knn_graph(path, sharded, work))
    elif step == "semdedup":
        found.update(semdedup(sharded, work))
    else:
        raise SystemExit(f"unknown step {step!r}")
    return found


def semdedup(sharded, work: Path) -> dict:
    """SemDeDup with one cluster per 10,000 rows and 10 Lloyd iterations; rows removed at three thresholds,
    against the exact duplicates (every copy of an earlier row), which are the only rows closer than 0.999."""
    import numpy as np

    from embedlab.curate import SemDeDup

    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = SemDeDup(sharded.n_rows // 10_000, max_iter=10, random_state=SEED, work_dir=str(work)).fit(sharded)
    sizes = np.bincount(model.labels_)
    return {
        "n_clusters": int(sizes.size),
        "largest_cluster": int(sizes.max()),
        "fit_s": time.perf_counter() - started,
        "removed": {str(eps): int((~model.keep_mask(eps=eps)).sum()) for eps in (0.001, 0.01, 0.05)},
        "exact_copies_removed": int((model.max_similarity_ >= 1.0 - 1e-6).sum()),
    }


def knn_graph(path: Path, sharded, work: Path) -> dict:
    """The 10-NN graph through an index per shard; build and graph times, and the graph's sampled recall."""
    import numpy as np
    import pyarrow.parquet as pq

    from embedlab.neighbors import ShardedSearcher, knn_graph_shards
    from embedlab.search import build_shard_indexes

    started = time.perf_counter()
    indexes = build_shard_indexes(sharded, work / "knn-indexes", k=10, target_recall=0.95, metric="l2")
    built = time.perf_counter()
    graph = knn_graph_shards(sharded, work / "knn-graph", k=10, metric="l2", searchers=indexes)
    done = time.perf_counter()
    sample = np.sort(np.random.default_rng(SEED).choice(sharded.n_rows, KNN_RECALL_QUERIES, replace=False))
    rows = np.load(path, mmap_mode="r")[sample]
    exact = ShardedSearcher(sharded, "l2").search(rows, 11).indices  # the row itself among them
    found = np.concatenate(
        [pq.read_table(Path(graph.path) / file, columns=["neighbor_rows"]).column(0).to_numpy() for file in graph.files]
    )
    hits = 0
    for query, row in enumerate(sample):
        truth = [int(r) for r in exact[query] if r != row][:10]
        hits += len(set(truth) & set(np.asarray(found[row]).tolist()))
    return {
        "params": indexes.params.to_dict(),
        "index_build_s": built - started,
        "graph_s": done - built,
        "recall_at_10": hits / (10 * sample.size),
    }


def run_ray(path: Path) -> dict:
    """k-means k = 100, 10 iterations: local, Ray tasks, Ray actors, a simulated two-node cluster."""
    import numpy as np
    import ray
    from ray.cluster_utils import Cluster

    from embedlab.cluster import KMeans
    from embedlab.io.shards import open_shards
    from embedlab.scale import RayBackend

    sharded = open_shards(path, shard_rows=62_500)  # 16 shards
    params = dict(n_clusters=100, metric="l2", max_iter=10, tol=0.0, random_state=SEED)

    def fit(backend) -> tuple[float, object]:
        started = time.perf_counter()
        model = KMeans(**params, backend=backend).fit(sharded)
        return time.perf_counter() - started, model

    local_s, local = fit("local")
    found = {"shards": len(sharded), "rows": sharded.n_rows, "local_s": local_s}

    def same(model) -> bool:
        return bool(
            np.array_equal(model.cluster_centers_, local.cluster_centers_)
            and np.array_equal(model.labels_, local.labels_)
        )

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        fit("ray")  # warm: workers started and embedlab imported in them
        tasks_s, tasks = fit("ray")
        actors = RayBackend(actors=2)
        try:
            actors.map(len, [[0]] * 2)  # warm: both actors started (their caches still empty)
            actors_s, on_actors = fit(actors)
            stats = actors.cache_stats()
        finally:
            actors.close()
    finally:
        ray.shutdown()
    found.update(
        ray_tasks_s=tasks_s,
        ray_actors_s=actors_s,
        tasks_ratio=tasks_s / local_s,
        actors_ratio=actors_s / local_s,
        tasks_identical=same(tasks),
        actors_identical=same(on_actors),
        actor_cache_hits=sum(s[0] for s in stats),
        actor_cache_misses=sum(s[1] for s in stats),
    )
    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    simulated.add_node(num_cpus=1)
    ray.init(address=simulated.address, include_dashboard=False, log_to_driver=False)
    try:
        two_node_s, two_node = fit("ray")
    finally:
        ray.shutdown()
        simulated.shutdown()
    found.update(two_node_s=two_node_s, two_node_identical=same(two_node))
    return found


def child(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.child == "generate":
        found = generate(Path(args.path), args.rows)
    elif args.child == "ray":
        found = run_ray(Path(args.path))
    else:
        found = run_step(args.child, Path(args.path), Path(args.work))
    found.update(seconds=time.perf_counter() - started, peak_rss_mb=peak_rss_mb())
    print(json.dumps(found))


# ------------------------------------------------------------------------------------------- parent


def in_child(*args: str) -> dict:
    """Run this script as a child with ``args``; its JSON line."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def dataset(n_rows: int) -> tuple[Path, dict | None]:
    """The cached planted set of ``n_rows`` rows, generated when missing."""
    SCALE_DIR.mkdir(parents=True, exist_ok=True)
    path = SCALE_DIR / f"planted-{n_rows}.npy"
    if path.exists() and path.with_name(path.stem + "-labels.npy").exists():
        return path, None
    log.info("generating %s (%d x %d float32)", path, n_rows, DIM)
    return path, in_child("--child", "generate", "--path", str(path), "--rows", str(n_rows))


def earlier_results() -> dict:
    """The results file of an earlier run (empty when there is none)."""
    try:
        return json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _outcome(step: str, found: dict, generated: dict | None) -> str:
    """What a step found, against what was planted where that is known."""
    if step == "describe":
        planted = "" if generated is None else f" (planted {generated['planted_duplicates']:,})"
        return f"{found['duplicate_rows']:,} duplicate rows{planted}"
    if step == "kmeans":
        per = found["seconds"] / max(found["n_iter"], 1)
        return (
            f"{found['n_iter']} iterations (~{per:.0f} s each with seeding and labels), ARI {found['ari_planted']:.3f}"
        )
    if step == "hierarchical":
        return f"levels {found['levels']}"
    if step == "knn":
        return (
            f"{found['rows']:,} rows: indexes {found['index_build_s']:.0f} s, graph {found['graph_s']:.0f} s, "
            f"recall@10 {found['recall_at_10']:.3f} ({found['params']})"
        )
    if step == "semdedup":
        removed = ", ".join(f"eps {eps}: {n:,}" for eps, n in found["removed"].items())
        planted = "" if generated is None else f" (planted duplicates {generated['planted_duplicates']:,})"
        return f"{found['n_clusters']:,} clusters (largest {found['largest_cluster']:,}); removed {removed}{planted}"
    return f"TwoNN {found['intrinsic_dimension']:.1f} [{found['ci'][0]:.1f}, {found['ci'][1]:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--knn-rows", type=int, default=2_000_000, help="rows of the kNN graph step")
    parser.add_argument("--ray-rows", type=int, default=1_000_000, help="0 skips the Ray comparison")
    parser.add_argument("--keep", action="store_true", help="keep the generated sets in benchmarks/.cache/scale")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    setup_logging()
    steps = [s for s in args.steps.split(",") if s]
    earlier = earlier_results()
    n_rows = args.rows if steps else earlier.get("rows")
    results: dict = {"load_average_at_start": warn_if_busy(), "rows": n_rows, "dim": DIM}
    # a step run again replaces its own figures; the others' stay when they are of the same number of rows
    results["steps"] = dict(earlier.get("steps") or {}) if earlier.get("rows") == n_rows else {}
    if "generated" in earlier and earlier.get("rows") == n_rows:
        results["generated"] = earlier["generated"]
    if "ray" in earlier and not args.ray_rows:
        results["ray"] = earlier["ray"]
    work = SCALE_DIR / "work"
    for step in steps:
        path, generated = dataset(args.knn_rows if step == "knn" else args.rows)
        if generated is not None and step != "knn":
            results["generated"] = generated
        log.info("%s on %s", step, path.name)
        results["steps"][step] = in_child("--child", step, "--path", str(path), "--work", str(work))
        results["steps"][step]["commit"] = library_version()
        log.info("%s: %s", step, results["steps"][step])
        write_results(NAME, results)
    if args.ray_rows:
        path, _ = dataset(args.ray_rows)
        results["ray"] = in_child("--child", "ray", "--path", str(path))
        results["ray"]["commit"] = library_version()
        log.info("ray: %s", results["ray"])
    results["library"] = library_version()
    write_results(NAME, results)
    if not args.keep:
        shutil.rmtree(SCALE_DIR, ignore_errors=True)
    rows = [
        [
            step,
            f"{found['seconds']:.0f}",
            f"{found['peak_rss_mb']:,.0f}",
            "yes" if found["peak_rss_mb"] <= RSS_TARGET_MB else "**no**",
            _outcome(step, found, results.get("generated")),
        ]
        for step, found in results["steps"].items()
    ]
    if rows:
        print(f"\nOut of core, {args.rows:,} x {DIM} float32 (local backend)\n")
        print(markdown_table(["step", "seconds", "peak RSS (MiB)", "<= 4 GB", "result"], rows))
    if "ray" in results:
        ray = results["ray"]
        print(f"\nRay against local, k-means k = 100, 10 iterations, {ray['rows']:,} rows in {ray['shards']} shards\n")
        print(
            markdown_table(
                ["backend", "seconds", "ratio to local", "identical to local"],
                [
                    ["local", f"{ray['local_s']:.1f}", "1.00", "-"],
                    ["ray tasks", f"{ray['ray_tasks_s']:.1f}", f"{ray['tasks_ratio']:.2f}", ray["tasks_identical"]],
                    ["ray actors", f"{ray['ray_actors_s']:.1f}", f"{ray['actors_ratio']:.2f}", ray["actors_identical"]],
                    ["two-node cluster", f"{ray['two_node_s']:.1f}", "-", ray["two_node_identical"]],
                ],
            )
        )


if __name__ == "__main__":
    main()
