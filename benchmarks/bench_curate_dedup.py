"""Near duplicates planted in clustered rows: embedlab's ``deduplicate`` against SemHash and Cleanlab, quality and time.

Data (seeded, cached in ``benchmarks/.cache/curate/``), one set of n x 384 float32 unit rows per size n:
1,000 Gaussian clusters around random unit centres (noise of norm 0.6, so that the nearest unrelated row of a row
has cosine about 0.75, logged), then 5% of the final rows planted as copies: each chosen original gets 1-4 copies
``cos * x + sin * u`` (``u`` a random unit vector orthogonal to ``x``), each copy at a level drawn from
0.95 ... 0.999, so its cosine to its original is exactly that level. The rows are shuffled. Truth at a threshold T:
the pairs inside one planted group whose exact cosine is >= T, and their connected components (the true groups).
Every method and the truth use ``T - 1e-5``, so a copy planted exactly at T is not a float32 coin flip.

Methods, each in a fresh child process on the same set, reporting the wall seconds of the call, its CPU seconds
(all threads; less disturbed by other load) and the child's peak RSS (``getrusage``; the data itself, ``n x 1.5
KB``, is in it):

* ``embedlab-near``: ``deduplicate(X, method="near", threshold=T, k=10)``; its pairs are those of
  ``duplicate_groups`` on the exact ``threshold_neighbors`` links the call made (made again, untimed);
* ``embedlab-semdedup``: ``deduplicate(X, method="semdedup", eps=1 - T)``, scored on the rows it removes only;
* ``semhash``: ``SemHash.from_embeddings(X, records, model=...)`` then ``self_deduplicate(threshold=T)``; its
  groups are the kept records with the records filtered as their duplicates, its pairs the neighbours at >= T
  that its ANN threshold query found (default usearch index, which stores bfloat16);
* ``semhash-exact``: the same with ``ann_backend="basic"`` (exhaustive search), up to ``--exact-max-rows``;
* ``cleanlab``: ``Datalab.find_issues(features=X, issue_types={"near_duplicate": {"k": 10}})``, whose rule is
  cosine distance < threshold x the median nearest-neighbour distance, so it runs once, reads that median and runs
  again (on its stored kNN graph) at ``threshold = (1 - T) / median``; groups are connected components of its
  ``near_duplicate_sets``, of which all rows but the first would be removed. Only up to ``--exact-max-rows``.
  (Datalab needs the ``datasets`` package, which the ``bench`` extra installs.)

Scores: pair precision / recall (a predicted pair outside the truth counts as right when its cosine is >= T after
all), true groups recovered exactly, predicted groups that are exactly a true group, adjusted Rand index, and the
removed rows (right: at most all but one of each true group; wrong: the rest), and the true pairs left with both
rows kept (zero for a method that keeps no two rows at >= T, though it may keep more than one row of a group, as
SemHash and SemDeDup do: two copies of one original are about level^2 apart). Goals: pair recall >= 0.99 at
precision >= 0.99, and embedlab-near >= 5x faster than the fastest anchor of equal quality (within 0.01).

Run from the repository root (nothing else running)::

    .venv/bin/python benchmarks/bench_curate_dedup.py [--rows 1000000] [--sizes 100000,1000000]
        [--thresholds 0.95,0.98]
        [--methods embedlab-near,embedlab-semdedup,semhash,semhash-exact,cleanlab] [--exact-max-rows 100000]
        [--timeout 1800]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import (
    CACHE_DIR,
    RESULTS_DIR,
    load_average,
    log,
    markdown_table,
    setup_logging,
    warn_if_busy,
    write_results,
)

NAME = "bench_curate_dedup"
DIM = 384
CLUSTERS = 1000
NOISE = 0.6
COPY_SHARE = 0.05
LEVELS = (0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
K = 10
SEED = 0
TOL = 1e-5
PIECE_ROWS = 65_536
GOAL_RECALL = GOAL_PRECISION = 0.99
GOAL_SPEEDUP = 5.0
METHODS = ("embedlab-near", "embedlab-semdedup", "semhash", "semhash-exact", "cleanlab")
ANCHORS = ("semhash", "semhash-exact", "cleanlab")
EXACT = ("semhash-exact", "cleanlab")  # exhaustive search: run up to --exact-max-rows only
DATA_DIR = CACHE_DIR / "curate"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clock(since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """(wall, CPU of all this process's threads) seconds, less ``since``: CPU time is the figure less disturbed
    by other processes competing for the cores."""
    return time.perf_counter() - since[0], time.process_time() - since[1]


# ------------------------------------------------------------------------------------- child: the data


def generate(path: Path, n_rows: int) -> dict:
    """The clustered rows with planted copies, shuffled, to ``path``; group ids and copy levels beside it."""
    rng = np.random.default_rng(SEED)
    n_copies = round(COPY_SHARE * n_rows)
    counts = rng.integers(1, 5, n_copies)  # more than enough originals; cut where the copies add up
    counts = counts[: int(np.searchsorted(np.cumsum(counts), n_copies)) + 1]
    counts[-1] -= counts.sum() - n_copies
    n_base, n_orig = n_rows - n_copies, counts.size
    centres = rng.standard_normal((CLUSTERS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cluster = rng.integers(0, CLUSTERS, n_base)
    rows = np.empty((n_rows, DIM), dtype=np.float32)
    for start in range(0, n_base, PIECE_ROWS):
        stop = min(start + PIECE_ROWS, n_base)
        piece = centres[cluster[start:stop]] + rng.standard_normal((stop - start, DIM)) * (NOISE / np.sqrt(DIM))
        rows[start:stop] = piece / np.linalg.norm(piece, axis=1, keepdims=True)
    originals = rng.choice(n_base, n_orig, replace=False)
    x = rows[np.repeat(originals, counts)].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    level = rng.choice(LEVELS, n_copies)
    u = rng.standard_normal((n_copies, DIM))
    u -= np.einsum("ij,ij->i", u, x)[:, None] * x
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    rows[n_base:] = level[:, None] * x + np.sqrt(1.0 - level**2)[:, None] * u
    group = np.full(n_rows, -1, dtype=np.int64)
    group[originals] = np.arange(n_orig)
    group[n_base:] = np.repeat(np.arange(n_orig), counts)
    levels = np.full(n_rows, np.nan)
    levels[n_base:] = level
    order = rng.permutation(n_rows)
    tmp = path.with_name(path.name + ".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_rows, DIM))
    for start in range(0, n_rows, PIECE_ROWS):
        out[start : start + PIECE_ROWS] = rows[order[start : start + PIECE_ROWS]]
    out.flush()
    group, levels = group[order], levels[order]
    # the nearest row outside its own planted group, for 2,000 sampled rows: the threshold must sit well above it
    sample = rng.choice(n_rows, 2000, replace=False)
    queries, nearest = np.asarray(out[sample]), np.full(sample.size, -np.inf)
    for start in range(0, n_rows, PIECE_ROWS):
        sim = np.asarray(out[start : start + PIECE_ROWS]) @ queries.T
        ids = np.arange(start, start + sim.shape[0])
        same = (ids[:, None] == sample) | ((group[ids, None] == group[sample]) & (group[sample] >= 0))
        nearest = np.maximum(nearest, np.where(same, -np.inf, sim).max(axis=0))
    del out
    np.savez(path.with_name(path.stem + "-truth.npz"), group=group, level=levels)
    tmp.replace(path)
    quantiles = {f"q{q:g}": float(np.quantile(nearest, q)) for q in (0, 0.5, 0.99, 0.999, 1)}
    return {"rows": n_rows, "copies": n_copies, "originals": n_orig, "nearest_unrelated_cosine": quantiles}


# ---------------------------------------------------------------------------------- child: the methods


def pairs_from_lists(lists: list, scores: list | None, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Unique pairs (a < b) of per-row neighbour lists (at ``scores >= threshold`` when scores are given)."""
    lengths = np.array([len(ids) for ids in lists])
    a = np.repeat(np.arange(len(lists)), lengths)
    b = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in lists]) if len(a) else np.zeros(0, np.int64)
    if scores is not None:
        ok = np.concatenate([np.asarray(s) for s in scores]) >= threshold if len(a) else np.zeros(0, bool)
        a, b = a[ok], b[ok]
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1)[a != b], axis=0).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the pairs; -1 for a row in no pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, label = connected_components(coo_matrix((np.ones(a.size), (a, b)), shape=(n, n)), directed=False)
    in_pair = np.zeros(n, dtype=bool)
    in_pair[a] = in_pair[b] = True
    out = np.full(n, -1, dtype=np.int64)
    out[in_pair] = np.unique(label[in_pair], return_inverse=True)[1]
    return out


def run_method(method: str, X: np.ndarray, threshold: float) -> tuple[tuple[float, float], dict, dict]:
    """((wall, CPU) seconds of the method's own call, its groups / keep / pairs, the settings it ran with)."""
    n = len(X)
    if method.startswith("embedlab"):
        from embedlab.curate import deduplicate, duplicate_groups
        from embedlab.io import EmbeddingSet
        from embedlab.neighbors import threshold_neighbors

        started = clock()
        emb = EmbeddingSet(X)
        if method == "embedlab-semdedup":
            found = deduplicate(emb, method="semdedup", eps=1.0 - threshold)
            return clock(started), {"keep": found.keep}, found.parameters
        found = deduplicate(emb, method="near", threshold=threshold, k=K)
        seconds = clock(started)
        graph = threshold_neighbors(X, threshold, K, random_state=0)  # the links deduplicate made, again, untimed
        groups = duplicate_groups(graph, threshold)
        assert np.array_equal(groups.group, found.group)
        params = {**found.parameters, "links": "threshold_neighbors (exact)"}
        return seconds, {"group": found.group, "keep": found.keep, "a": groups.a, "b": groups.b}, params
    if method.startswith("semhash"):
        from semhash import SemHash

        class Precomputed:  # the encoder SemHash asks for; self-deduplication of given embeddings never calls it
            def encode(self, inputs, **kwargs):
                raise RuntimeError("the embeddings are precomputed")

        started = clock()
        backend = "basic" if method == "semhash-exact" else "usearch"
        semhash = SemHash.from_embeddings(X, [str(i) for i in range(n)], model=Precomputed(), ann_backend=backend)
        result = semhash.self_deduplicate(threshold=threshold)
        seconds = clock(started)
        keep = np.zeros(n, dtype=bool)
        keep[np.array(result.selected, dtype=np.int64)] = True
        of = np.arange(n)
        for dup in result.filtered:
            of[int(dup.record)] = int(dup.duplicate_of)
        group = np.full(n, -1, dtype=np.int64)
        group[~keep] = of[~keep]
        group[of[~keep]] = of[~keep]
        _, neighbours, _ = result._selection_inputs  # (items, per-item neighbour ids and scores, vectors)
        a, b = pairs_from_lists([ids for ids, _ in neighbours], [s for _, s in neighbours], threshold)
        return seconds, {"group": group, "keep": keep, "a": a, "b": b}, {"threshold": threshold, "ann_backend": backend}
    if method == "cleanlab":
        from cleanlab import Datalab

        started = clock()
        lab = Datalab(data={"row": np.arange(n)})
        with contextlib.redirect_stdout(sys.stderr):
            lab.find_issues(features=X, issue_types={"near_duplicate": {"k": K}})
            first_info = lab.get_info("near_duplicate")
            median = float(first_info["median_distance_to_nearest_neighbor"])
            relative = (1.0 - threshold) / median
            lab.find_issues(features=X, issue_types={"near_duplicate": {"k": K, "threshold": relative}})
        seconds = clock(started)
        info = lab.get_info("near_duplicate")
        a, b = pairs_from_lists(info["near_duplicate_sets"], None, threshold)
        group = components(n, a, b)
        keep = group < 0
        first = np.flatnonzero(group >= 0)[np.unique(group[group >= 0], return_index=True)[1]]
        keep[first] = True
        params = {"k": K, "threshold": relative, "median_nn_distance": median, "metric": first_info["metric"],
                  "rule": "cosine distance < threshold x median_nn_distance, i.e. < 1 - T"}  # fmt: skip
        return seconds, {"group": group, "keep": keep, "a": a, "b": b}, params
    raise SystemExit(f"unknown method {method!r}")


def child(args: argparse.Namespace) -> None:
    path = Path(args.path)
    if args.child == "generate":
        started = time.perf_counter()
        found = generate(path, args.rows)
        found.update(seconds=time.perf_counter() - started, peak_rss_mb=peak_rss_mb())
    else:
        X = np.ascontiguousarray(np.load(path))
        loaded = peak_rss_mb()
        (seconds, cpu), arrays, params = run_method(args.child, X, args.threshold)
        found = {"seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": loaded}
        found["params"] = params
        np.savez(args.out, **arrays)
    print(json.dumps(found, default=float))


# ------------------------------------------------------------------------------------------- parent


def in_child(*args: str, timeout: float | None = None) -> dict:
    """Run this script as a child; its last JSON line, or a status when it timed out or failed."""
    try:
        done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "timeout_s": timeout}
    if done.returncode != 0:
        log.warning("child %s failed:\n%s", args[:2], done.stderr[-3000:])
        return {"status": "failed", "returncode": done.returncode, "stderr": done.stderr[-2000:]}
    return {"status": "ok", **json.loads(done.stdout.strip().splitlines()[-1])}


def dataset(n_rows: int) -> tuple[Path, dict]:
    """The cached planted set, generated when missing, and what its generation found."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"planted-{n_rows}.npy"
    stats = path.with_name(path.stem + ".json")
    if not (path.exists() and stats.exists()):
        log.info("generating %s (%d x %d float32)", path, n_rows, DIM)
        found = in_child("--child", "generate", "--path", str(path), "--rows", str(n_rows))
        if found.pop("status") != "ok":
            raise SystemExit("generation failed")
        stats.write_text(json.dumps(found, indent=2), encoding="utf-8")
    return path, json.loads(stats.read_text(encoding="utf-8"))


def truth(X: np.ndarray, group: np.ndarray, level: np.ndarray, threshold: float) -> dict:
    """True pairs (inside one planted group, cosine >= threshold) of the first ``len(group)`` rows, their groups,
    and each pair's planted level (0 for two copies of one original)."""
    n = group.size
    planted = np.flatnonzero(group >= 0)
    planted = planted[np.argsort(group[planted], kind="stable")]
    starts = np.flatnonzero(np.r_[True, np.diff(group[planted]) != 0])
    a, b = [], []
    for members in np.split(planted, starts[1:]):
        for i in range(members.size):
            a += [members[i]] * (members.size - i - 1)
            b += members[i + 1 :].tolist()
    a, b = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
    ok = cosine(X, a, b) >= threshold
    a, b = a[ok], b[ok]
    pair_level = np.where(np.isnan(level[a]), level[b], np.where(np.isnan(level[b]), level[a], 0.0))
    return {"a": a, "b": b, "keys": a * n + b, "level": pair_level, "group": components(n, a, b)}


def cosine(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="stable")  # memory-map reads in row order
    out = np.empty(a.size)
    for chunk in np.array_split(order, max(1, a.size // 200_000)):
        out[chunk] = np.einsum("ij,ij->i", X[a[chunk]].astype(np.float64), X[b[chunk]].astype(np.float64))
    return out


def score(X: np.ndarray, true: dict, found: dict, threshold: float) -> dict:
    """Pairs, groups and removed rows of one method against the truth."""
    from sklearn.metrics import adjusted_rand_score

    n = true["group"].size
    t_group = true["group"]
    sizes_t = np.bincount(t_group[t_group >= 0])
    out: dict = {}
    if "a" in found:
        keys = found["a"] * n + found["b"]
        hit = np.isin(keys, true["keys"])
        found_true = np.isin(true["keys"], keys)
        out["recall_by_level"] = {
            f"{lv:g}" if lv else "copy-copy": float(found_true[true["level"] == lv].mean())
            for lv in np.unique(true["level"])
        }
        extra = cosine(X, found["a"][~hit], found["b"][~hit]) >= threshold  # right after all, though unplanted
        out.update(
            pairs=int(keys.size),
            unplanted_true_pairs=int(extra.sum()),
            pair_precision=(hit.sum() + extra.sum()) / max(keys.size, 1),
            pair_recall=hit.sum() / max(true["keys"].size, 1),
        )
    if "group" in found:
        p_group = found["group"]
        sizes_p = np.bincount(p_group[p_group >= 0])
        both = (p_group >= 0) & (t_group >= 0)
        cells, n_pt = np.unique(np.stack([p_group[both], t_group[both]]), axis=1, return_counts=True)
        exact = (n_pt == sizes_p[cells[0]]) & (n_pt == sizes_t[cells[1]])
        choose2 = lambda c: (c * (c - 1) // 2).sum()  # noqa: E731
        out.update(
            groups_true=int((sizes_t >= 2).sum()),
            groups_found=int((sizes_p >= 2).sum()),
            true_groups_recovered=exact.sum() / max((sizes_t >= 2).sum(), 1),
            found_groups_exact=exact.sum() / max((sizes_p >= 2).sum(), 1),
            comember_precision=choose2(n_pt) / max(choose2(sizes_p), 1),
            comember_recall=choose2(n_pt) / max(choose2(sizes_t), 1),
            ari=adjusted_rand_score(
                np.where(t_group >= 0, t_group, n + np.arange(n)), np.where(p_group >= 0, p_group, n + np.arange(n))
            ),
        )
    removed = ~found["keep"]
    out["pairs_left"] = int((found["keep"][true["a"]] & found["keep"][true["b"]]).sum())  # both rows kept
    in_true = np.bincount(t_group[removed & (t_group >= 0)], minlength=sizes_t.size)
    right = int(np.minimum(in_true, sizes_t - 1).sum())
    should = int((sizes_t - 1).clip(0).sum())
    out.update(
        removed=int(removed.sum()),
        removed_right=right,
        removed_wrong=int(removed.sum()) - right,
        missed=should - right,
        should_remove=should,
    )
    return {key: float(value) if isinstance(value, np.floating) else value for key, value in out.items()}


YES_NO = {True: "yes", False: "**no**", None: "-"}
HEADERS = (
    "rows|T|method|seconds|CPU s|peak RSS (MiB)|pair P|pair R|true groups exact|found groups exact|ARI|removed right|"
)
HEADERS += "removed wrong|pairs >= T left|P, R >= 0.99"


def fmt(value: object, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def table_row(run: dict) -> list:
    s = run.get("scores", {})
    met = s.get("pair_recall", 0) >= GOAL_RECALL and s.get("pair_precision", 0) >= GOAL_PRECISION
    run["quality_goal_met"] = met if "pair_recall" in s else None
    seconds = fmt(run.get("seconds"), ".1f") if run["status"] == "ok" else run["status"]
    cells = [fmt(s.get(key)) for key in ("pair_precision", "pair_recall", "true_groups_recovered")]
    cells += [fmt(s.get(key)) for key in ("found_groups_exact", "ari")]
    removal = [f"{s['removed_right']:,} / {s['should_remove']:,}", f"{s['removed_wrong']:,}", f"{s['pairs_left']:,}"]
    head = [f"{run['rows']:,}", run["threshold"], run["method"], seconds, fmt(run.get("cpu_s"), ".1f")]
    head.append(fmt(run.get("peak_rss_mb"), ",.0f"))
    return head + cells + (removal if s else ["-"] * 3) + [YES_NO[run["quality_goal_met"]]]


def speed_entry(here: dict) -> dict:
    """embedlab-near's time against the fastest anchor whose pair precision and recall are within 0.01 of its."""
    ours = here["embedlab-near"]["scores"]

    def equal(s: dict) -> bool:
        return s["pair_recall"] >= ours["pair_recall"] - 0.01 and s["pair_precision"] >= ours["pair_precision"] - 0.01

    anchors = [here[m] for m in ANCHORS if m in here and equal(here[m]["scores"])]
    anchor = min(anchors, key=lambda r: r["seconds"]) if anchors else None
    seconds = here["embedlab-near"]["seconds"]
    ratio = anchor["seconds"] / seconds if anchor else None
    cpu = anchor["cpu_s"] / here["embedlab-near"]["cpu_s"] if anchor and "cpu_s" in anchor else None
    met = None if ratio is None else ratio >= GOAL_SPEEDUP
    return {"embedlab_s": seconds, "anchor": anchor and anchor["method"], "anchor_s": anchor and anchor["seconds"],
            "speedup": ratio, "cpu_speedup": cpu, "speed_goal_met": met}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="the largest set")
    parser.add_argument("--sizes", default="100000,1000000", help="sets run (those <= --rows; else --rows)")
    parser.add_argument("--thresholds", default="0.95,0.98")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--exact-max-rows", type=int, default=100_000, help="largest size for " + ", ".join(EXACT))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a method's child is killed")
    for hidden in ("--child", "--path", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    setup_logging()
    results: dict = {"load_average_at_start": warn_if_busy(), "dim": DIM, "k": K, "tolerance": TOL}
    sizes = sorted({int(s) for s in args.sizes.split(",") if s and int(s) <= args.rows}) or [args.rows]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    planned = {(n, t, m) for n in sizes for t in thresholds for m in args.methods.split(",")}
    try:  # an earlier run's figures stay beside this one's, except those run again
        earlier = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = {}
    runs = [r for r in earlier.get("runs", []) if (r["rows"], r["threshold"], r["method"]) not in planned]
    results["runs"], results["generated"] = runs, earlier.get("generated", {})
    work = DATA_DIR / "work"
    work.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        path, results["generated"][str(n)] = dataset(n)
        log.info("generated: %s", results["generated"][str(n)])
        X = np.load(path, mmap_mode="r")
        with np.load(path.with_name(path.stem + "-truth.npz")) as planted:
            planted_group, planted_level = planted["group"], planted["level"]
        for nominal in thresholds:
            threshold = nominal - TOL
            true = truth(X, planted_group, planted_level, threshold)
            groups = int((np.bincount(true["group"][true["group"] >= 0]) >= 2).sum())
            log.info("%d rows, T = %g: %d true pairs in %d groups", n, nominal, true["keys"].size, groups)
            for method in args.methods.split(","):
                if method in EXACT and n > args.exact_max_rows:
                    continue
                out = work / f"{method}-{n}-{nominal}.npz"
                log.info("%s on %d rows at T = %g", method, n, nominal)
                argv = f"--child {method} --path {path} --threshold {threshold!r} --out {out}".split()
                run = {"rows": n, "threshold": nominal, "method": method, "load_average_before": load_average()}
                run.update(in_child(*argv, timeout=args.timeout))
                if run["status"] == "ok":
                    with np.load(out) as arrays:
                        run["scores"] = score(X, true, dict(arrays), threshold)
                    out.unlink()
                log.info("%s", {k: v for k, v in run.items() if k != "stderr"})
                runs.append(run)
                write_results(NAME, results)
    runs.sort(key=lambda r: (r["rows"], r["threshold"], METHODS.index(r["method"])))
    results["speed"] = speed = []
    for n, nominal in sorted({(r["rows"], r["threshold"]) for r in runs}):
        here = {r["method"]: r for r in runs if r["rows"] == n and r["threshold"] == nominal and "scores" in r}
        if "embedlab-near" in here:
            speed.append({"rows": n, "threshold": nominal, **speed_entry(here)})
    table = [table_row(run) for run in runs]
    log.info("wrote %s", write_results(NAME, results))
    print(f"\nNear duplicates planted in n x {DIM} rows, 5% copies, k = {K}, every threshold T less {TOL:g}\n")
    print(markdown_table(HEADERS.split("|"), table))
    if speed:
        print(f"\nembedlab-near against the fastest anchor of equal quality (goal >= {GOAL_SPEEDUP:g}x)\n")
        rows = [
            [f"{e['rows']:,}", e["threshold"], fmt(e["embedlab_s"], ".1f"), e["anchor"] or "none of equal quality",
             fmt(e["anchor_s"], ".1f"), fmt(e["speedup"], ".2f"), fmt(e.get("cpu_speedup"), ".2f"),
             YES_NO[e["speed_goal_met"]]]
            for e in speed
        ]  # fmt: skip
        print(
            markdown_table(["rows", "T", "embedlab s", "anchor", "anchor s", "speedup", "CPU speedup", ">= 5x"], rows)
        )


if __name__ == "__main__":
    main()
