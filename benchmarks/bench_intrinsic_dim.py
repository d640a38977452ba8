"""Intrinsic-dimension accuracy on scikit-dimension's 24 benchmark manifolds, embedlab against scikit-dimension.

The suite is ``skdim.datasets.BenchmarkManifolds`` (Hein and Audibert 2005; Campadelli et al. 2015): 24
manifolds of known dimension 1-70 in 3-96 ambient dimensions. Each is drawn with n = 2,500 and n = 10,000
points for several seeds, and every estimator's mean relative error |estimate - d| / d is taken over the
manifolds and seeds. The recommended estimate's interval coverage is the share of (manifold, seed) draws
whose interval holds d.

Targets (issue 23): mean relative error <= 0.10 for the recommended estimate (the one inspect and the report
lead with); its intervals cover d on at least 90% of the manifolds.

embedlab's estimators share one exact kNN graph (64 neighbours) per draw; scikit-dimension's run with their
own defaults (DANCo and MiND_ML with D = the ambient dimension), each on its own under a time limit (a run
over the limit is left out and counted). Results are kept per run in ``results/bench_intrinsic_dim_runs_*.json``
(one file per library) so that an interrupted run resumes and the two parts can run at once.

Run: ``.venv/bin/python benchmarks/bench_intrinsic_dim.py`` (options: ``--sizes 2500,10000``, ``--seeds
0,1,2``, ``--skdim-seeds 0,1,2``, ``--skdim-sizes 2500``, ``--limit 300``, ``--part embedlab|skdim|all``).
"""

from __future__ import annotations

import argparse
import json
import signal
import time
import warnings
from pathlib import Path

import numpy as np

from _common import RESULTS_DIR, log, markdown_table, setup_logging, warn_if_busy, write_results

LIBRARIES = ("embedlab", "skdim")
SKDIM = ("TwoNN", "MLE", "MADA", "lPCA", "CorrInt", "MiND_ML", "TLE", "DANCo", "ESS")
EMBEDLAB = ("twonn", "mle", "gride", "tle", "danco", "twonn_corrected", "mle_corrected", "recommended")


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _manifolds(n: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    import skdim

    bench = skdim.datasets.BenchmarkManifolds(random_state=seed)
    data = bench.generate(n=n)
    return data, {name: int(bench.truth.loc[name].values[0]) for name in data}


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def embedlab_draw(X: np.ndarray, seed: int) -> dict:
    """Every embedlab estimator on one draw: estimates, intervals and seconds."""
    from embedlab.geometry import danco, gride, mle_id, recommended_id, tle, twonn, twonn_decimation
    from embedlab.neighbors import knn

    X = X.astype(np.float32)
    n = len(X)
    graph, knn_seconds = _timed(lambda: knn(X, 64, metric="l2", method="exact", recall_sample=0))
    d = graph.distances
    out = {"knn_seconds": knn_seconds}

    def record(name, fn):
        estimate, seconds = _timed(fn)
        entry = {"value": estimate.value, "seconds": seconds}
        if hasattr(estimate, "ci_low"):
            entry.update(ci_low=estimate.ci_low, ci_high=estimate.ci_high)
        out[name] = entry
        return estimate

    record("twonn", lambda: twonn(d, random_state=seed))
    record("mle", lambda: mle_id(d, 20, random_state=seed))
    record("gride", lambda: gride(d, random_state=seed))
    record("tle", lambda: tle(X, graph.indices, d, 20, random_state=seed))
    record("twonn_corrected", lambda: twonn(d, n_points=n, random_state=seed))
    record("mle_corrected", lambda: mle_id(d, 10, scales=(), n_points=n, random_state=seed))
    recommended = record(
        "recommended",
        lambda: recommended_id(d, n, decimation=twonn_decimation(X, random_state=seed), random_state=seed),
    )
    out["recommended"].update(agree=recommended.agree, fraction=recommended.fraction, estimates=recommended.estimates)
    value, seconds = _timed(lambda: danco(X, random_state=seed)[0])
    out["danco"] = {"value": value, "seconds": seconds}
    return out


def skdim_run(name: str, X: np.ndarray, limit: int) -> dict:
    """One scikit-dimension estimator with its defaults, under ``limit`` seconds."""
    import skdim

    options = {"DANCo": {"D": X.shape[1], "random_state": 0}, "MiND_ML": {"D": X.shape[1]}}
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(getattr(skdim.id, name)(**options.get(name, {})).fit(X).dimension_)
        return {"value": value, "seconds": time.perf_counter() - started}
    except _Timeout:
        return {"value": None, "seconds": float(limit), "timeout": True}
    except Exception as error:  # a reference estimator that fails is recorded, not fatal
        return {"value": None, "seconds": time.perf_counter() - started, "error": repr(error)[:200]}
    finally:
        signal.alarm(0)


def _runs_path(library: str, n: int) -> Path:
    return RESULTS_DIR / f"bench_intrinsic_dim_runs_{library}_{n}.json"


def _load_runs() -> dict:
    runs = {}
    for path in sorted(RESULTS_DIR.glob("bench_intrinsic_dim_runs*.json")):
        runs.update(json.loads(path.read_text()))
    return runs


def _save_runs(runs: dict, library: str, n: int) -> None:
    """Each library's runs at each size in a file of its own, so that parts can run at once."""
    path = _runs_path(library, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {key: entry for key, entry in runs.items() if key.startswith(f"{library}/{n}/")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(mine, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def measure(part: str, sizes, seeds, skdim_sizes, skdim_seeds, limit: int, estimators=SKDIM) -> dict:
    runs = _load_runs()
    plan = []
    if part in ("embedlab", "all"):
        plan += [("embedlab", n, s) for n in sizes for s in seeds]
    if part in ("skdim", "all"):
        plan += [("skdim", n, s) for n in skdim_sizes for s in skdim_seeds]
    for library, n, seed in plan:
        data, truth = _manifolds(n, seed)
        for manifold, X in data.items():
            key = f"{library}/{n}/{seed}/{manifold}"
            if library == "embedlab":
                if key in runs:
                    continue
                runs[key] = {"truth": truth[manifold], **embedlab_draw(X, seed)}
                log.info(f"{key}: recommended {runs[key]['recommended']['value']:.2f} (d = {truth[manifold]})")
            else:
                entry = runs.setdefault(key, {"truth": truth[manifold]})
                for name in estimators:
                    if name not in entry:
                        entry[name] = skdim_run(name, X, limit)
                        log.info(f"{key} {name}: {entry[name]['value']} in {entry[name]['seconds']:.1f} s")
                        _save_runs(runs, library, n)
            _save_runs(runs, library, n)
    return runs


def summarise(runs: dict) -> dict:
    """Mean relative error per (library, estimator, n), coverage, and the per-manifold means."""
    table: dict = {}
    for key, entry in runs.items():
        library, n, seed, manifold = key.split("/")
        for name, result in entry.items():
            if not isinstance(result, dict) or "seconds" not in result or name == "truth":
                continue
            cell = table.setdefault(
                (library, name, int(n)), {"errors": [], "seed0": [], "seconds": [], "missing": 0, "by": {}}
            )
            if result.get("value") is None:
                cell["missing"] += 1
                continue
            error = abs(result["value"] - entry["truth"]) / entry["truth"]
            cell["errors"].append(error)
            if seed == "0":
                cell["seed0"].append(error)
            cell["seconds"].append(result["seconds"])
            cell["by"].setdefault(manifold, []).append(result["value"])
            if "ci_low" in result:
                cell.setdefault("covered", []).append(result["ci_low"] <= entry["truth"] <= result["ci_high"])
    summary = {}
    for (library, name, n), cell in sorted(table.items()):
        summary[f"{library}/{name}/{n}"] = {
            "mre": float(np.mean(cell["errors"])) if cell["errors"] else None,
            "mre_seed0": float(np.mean(cell["seed0"])) if cell["seed0"] else None,
            "draws": len(cell["errors"]),
            "missing": cell["missing"],
            "seconds_per_draw": float(np.mean(cell["seconds"])) if cell["seconds"] else None,
            "coverage": float(np.mean(cell["covered"])) if cell.get("covered") else None,
            "by_manifold": {m: float(np.mean(v)) for m, v in cell["by"].items()},
        }
    return summary


#: Columns of the per-manifold table: (summary key, heading).
COLUMNS = (
    ("embedlab/recommended", "embedlab recommended"),
    ("embedlab/twonn", "embedlab TwoNN"),
    ("embedlab/twonn_corrected", "embedlab TwoNN corrected"),
    ("embedlab/mle_corrected", "embedlab MLE corrected"),
    ("embedlab/danco", "embedlab DANCo"),
    ("embedlab/tle", "embedlab TLE"),
    ("skdim/TwoNN", "skdim TwoNN"),
    ("skdim/MLE", "skdim MLE"),
    ("skdim/DANCo", "skdim DANCo"),
    ("skdim/MiND_ML", "skdim MiND_ML"),
    ("skdim/TLE", "skdim TLE"),
    ("skdim/CorrInt", "skdim CorrInt"),
    ("skdim/MADA", "skdim MADA"),
    ("skdim/lPCA", "skdim lPCA"),
    ("skdim/ESS", "skdim ESS"),
)


def per_manifold(summary: dict, truth: dict, n: int) -> str:
    """Markdown: a row per manifold, its mean estimate under each estimator, and the MRE row."""
    present = [(key, head) for key, head in COLUMNS if f"{key}/{n}" in summary]
    rows = []
    for manifold in sorted(truth, key=lambda m: (truth[m], m)):
        cells = []
        for key, _ in present:
            value = summary[f"{key}/{n}"]["by_manifold"].get(manifold)
            cells.append("-" if value is None else f"{value:.2f}")
        rows.append([manifold, truth[manifold], *cells])
    rows.append(["**MRE**", "", *(f"**{summary[f'{key}/{n}']['mre']:.3f}**" for key, _ in present)])
    return markdown_table(["manifold", "d", *(head for _, head in present)], rows)


def plot(summary: dict, truth: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(truth, key=lambda m: (truth[m], m))
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), sharey=True)
    series = [
        ("embedlab/recommended", "embedlab recommended", "C3", "o"),
        ("embedlab/twonn", "embedlab TwoNN", "C0", "."),
        ("skdim/TwoNN", "skdim TwoNN", "C1", "x"),
        ("skdim/DANCo", "skdim DANCo", "C2", "+"),
        ("embedlab/danco", "embedlab DANCo", "C4", "^"),
    ]
    for ax, n in zip(axes, (2500, 10000), strict=True):
        for key, label, color, marker in series:
            row = summary.get(f"{key}/{n}")
            if not row:
                continue
            xs = [i for i, m in enumerate(names) if m in row["by_manifold"]]
            ys = [row["by_manifold"][names[i]] / truth[names[i]] for i in xs]
            ax.plot(xs, ys, marker, color=color, label=f"{label} (MRE {row['mre']:.3f})")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(names)), [f"{m} ({truth[m]})" for m in names], rotation=90, fontsize=7)
        ax.set_title(f"n = {n:,}: estimate / true dimension")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("embedlab", "skdim", "all", "summary"), default="all")
    parser.add_argument("--sizes", default="2500,10000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--skdim-sizes", default="2500,10000")
    parser.add_argument("--skdim-seeds", default="0,1,2")
    parser.add_argument("--limit", type=int, default=300, help="seconds per scikit-dimension run")
    parser.add_argument("--skdim-estimators", default=",".join(SKDIM))
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()

    def ints(text):
        return [int(v) for v in text.split(",") if v]

    runs = (
        _load_runs()
        if args.part == "summary"
        else measure(
            args.part,
            ints(args.sizes),
            ints(args.seeds),
            ints(args.skdim_sizes),
            ints(args.skdim_seeds),
            args.limit,
            args.skdim_estimators.split(","),
        )
    )
    summary = summarise(runs)
    truth = {key.split("/")[3]: entry["truth"] for key, entry in runs.items()}
    rows = [
        [
            key.rsplit("/", 1)[0],
            key.rsplit("/", 1)[1],
            f"{row['mre']:.3f}" if row["mre"] is not None else "-",
            f"{row['mre_seed0']:.3f}" if row["mre_seed0"] is not None else "-",
            row["draws"],
            row["missing"],
            f"{row['seconds_per_draw']:.2f}" if row["seconds_per_draw"] is not None else "-",
            f"{row['coverage']:.2f}" if row["coverage"] is not None else "-",
        ]
        for key, row in summary.items()
    ]
    print(markdown_table(["estimator", "n", "MRE", "MRE seed 0", "draws", "left out", "s per draw", "coverage"], rows))
    for n in (2500, 10000):
        print(f"\nn = {n:,}: mean estimate over the seeds")
        print(per_manifold(summary, truth, n))
    plot(summary, truth, RESULTS_DIR / "bench_intrinsic_dim.png")
    write_results("bench_intrinsic_dim", {"load_average_at_start": load, "summary": summary, "truth": truth})


if __name__ == "__main__":
    main()
