"""Choosing k (issue 19): ``select_k``'s combined rule on data with a known answer, and what it says on WordNet
and Fashion-MNIST.

Cases, all 384-d unless said, every one with ``select_k``'s defaults (10,000 evaluation rows at most, 5
resample pairs, 5 gap references, refinement) and ``random_state=0``:

* planted Gaussian mixtures, k = 2, 5, 10, 20, 50, 100, 200 (``--gaussian-k``): centres uniform on the unit
  sphere, noise 0.02 per coordinate (clusters of radius about 0.4, centres about 1.4 apart), max(20, 4000 // k)
  rows each;
* planted von Mises-Fisher mixtures, k = 5, 25, 100 (``--vmf-k``), concentration 2,000, the same row counts;
* uniform points on the sphere (5,000 rows): no k;
* nested: 4 groups of 5 clusters (800 rows): both levels should be supported;
* WordNet: the 117,659 MiniLM definitions (45 lexicographer files); Fashion-MNIST: the 70,000 images as pixels
  (10 classes). Labels only annotate the table.

Planted cases use the default candidates plus 150, 200, 250 and 300, so that k = 200 lies inside the range;
the real sets use the defaults (2-100). The k-selection curves of six cases are drawn in
``docs/bench_select_k.png``.

Run: ``.venv/bin/python benchmarks/bench_select_k.py [--cases planted uniform nested wordnet fmnist]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import vonmises_fisher

import embedlab
from _common import (
    REPO_ROOT,
    load_fashion_mnist,
    log,
    markdown_table,
    prepare_wordnet_embeddings,
    setup_logging,
    warn_if_busy,
    write_results,
)
from embedlab.cluster import DEFAULT_K_VALUES, select_k

DIM = 384
PLANTED_K_VALUES = (*DEFAULT_K_VALUES, 150, 200, 250, 300)
PLOT = REPO_ROOT / "docs" / "bench_select_k.png"
PLOTTED = ("gaussian k=20", "gaussian k=200", "nested 4x5", "uniform sphere", "WordNet", "Fashion-MNIST")


def _directions(rng: np.random.Generator, k: int) -> np.ndarray:
    centres = rng.normal(size=(k, DIM))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _rows_per_cluster(k: int) -> int:
    return max(20, 4000 // k)


def gaussian(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_per = _rows_per_cluster(k)
    noise = rng.normal(scale=0.02, size=(k * n_per, DIM))
    return (np.repeat(_directions(rng, k), n_per, axis=0) + noise).astype(np.float32)


def vmf(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_per = _rows_per_cluster(k)
    parts = [vonmises_fisher(c, 2_000.0).rvs(n_per, random_state=seed + i) for i, c in enumerate(_directions(rng, k))]
    return np.concatenate(parts).astype(np.float32)


def nested(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.concatenate([g + 0.35 * rng.normal(size=(5, DIM)) for g in rng.normal(size=(4, DIM))])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return (np.repeat(centres, 40, axis=0) + rng.normal(scale=0.01, size=(800, DIM))).astype(np.float32)


def cases(
    chosen: list[str], gaussian_ks: list[int], vmf_ks: list[int]
) -> list[tuple[str, int | None, object, tuple[int, ...] | None]]:
    """(name, planted k or None, a function giving the rows, candidates)."""
    out = []
    if "planted" in chosen:
        out += [(f"gaussian k={k}", k, lambda k=k: gaussian(k, k), PLANTED_K_VALUES) for k in gaussian_ks]
        out += [(f"vMF k={k}", k, lambda k=k: vmf(k, k), PLANTED_K_VALUES) for k in vmf_ks]
    if "uniform" in chosen:
        out.append(("uniform sphere", None, lambda: np.random.default_rng(1).normal(size=(5000, DIM)), None))
    if "nested" in chosen:
        out.append(("nested 4x5", None, lambda: nested(2), None))
    if "wordnet" in chosen:
        out.append(("WordNet", 45, lambda: embedlab.load(prepare_wordnet_embeddings()).vectors, None))
    if "fmnist" in chosen:
        out.append(("Fashion-MNIST", 10, lambda: load_fashion_mnist()[0], None))
    return out


def plot(results: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [name for name in PLOTTED if name in results]
    if not shown:
        return
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), squeeze=False)
    for ax, name in zip(axes.ravel(), shown, strict=False):
        curves = results[name]["selection"]["curves"]
        for criterion, colour in (("stability", "#4e79a7"), ("silhouette", "#f28e2b")):
            curve = curves[criterion]
            ax.plot(curve["k_values"], curve["scores"], marker=".", color=colour, label=criterion)
        ax.axhline(0.8, color="#59a14f", linestyle="--", linewidth=1, label="stability 0.8")
        best = results[name]["selection"]["best_k"]
        ax.axvline(best, color="#e15759", linewidth=1, label=f"chosen k = {best}")
        verdict = "clear" if results[name]["selection"]["clear"] else "no clear k"
        ax.set(xscale="log", title=f"{name}: {verdict}", xlabel="k", ylim=(-0.1, 1.05))
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(shown) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    log.info("wrote %s", PLOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = ["planted", "uniform", "nested", "wordnet", "fmnist"]
    parser.add_argument("--cases", nargs="+", default=choices, choices=choices)
    parser.add_argument("--gaussian-k", nargs="+", type=int, default=[2, 5, 10, 20, 50, 100, 200])
    parser.add_argument("--vmf-k", nargs="+", type=int, default=[5, 25, 100])
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    results, rows = {}, []
    for name, planted, make, k_values in cases(args.cases, args.gaussian_k, args.vmf_k):
        X = make()
        started = time.perf_counter()
        selection = select_k(X, k_values, random_state=0)
        seconds = time.perf_counter() - started
        within = None if planted is None else abs(selection.best_k - planted) <= max(1, 0.1 * planted)
        results[name] = {"rows": int(X.shape[0]), "planted_k": planted, "seconds": seconds, "within_10pct": within}
        results[name]["selection"] = selection.to_dict()
        log.info("%s: k=%d clear=%s in %.1f s: %s", name, selection.best_k, selection.clear, seconds, selection.reason)
        rows.append(
            [
                name,
                f"{X.shape[0]:,}",
                "-" if planted is None else planted,
                selection.best_k,
                "yes" if selection.clear else "**no clear k**",
                ", ".join(map(str, selection.supported)) or "-",
                "-" if within is None else ("yes" if within else "**no**"),
                f"{seconds:.0f} s",
            ]
        )
    table = markdown_table(
        ["case", "rows", "planted / labels", "chosen k", "clear", "supported", "within 10%", "time"], rows
    )
    print(table)
    for name, result in results.items():
        print(f"- {name}: {result['selection']['reason']}")
    plot(results)
    write_results("bench_select_k", {"load_average": load, "results": results, "table": table})


if __name__ == "__main__":
    main()
