"""inspect on the whole WordNet set (117,659 x 384 MiniLM embeddings): time, memory, and TwoNN against
scikit-dimension.

Targets (issue 3): the complete ``inspect`` in at most 60 s on 2 cores; TwoNN at least 20 times faster than
scikit-dimension's TwoNN at an estimate within 3% of it; memory under twice the size of the data.

Each measurement runs in a fresh child process so that its peak resident memory is its own.

Run: ``.venv/bin/python benchmarks/bench_inspect.py`` (add ``--skip-skdim`` to leave out the ~4-minute
scikit-dimension run).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from _common import (
    log,
    markdown_table,
    prepare_wordnet_embeddings,
    setup_logging,
    warn_if_busy,
    write_results,
)

TWONN_QUERIES = 10_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_inspect(path: str) -> dict:
    """The complete inspect as a user runs it: a fresh process, libraries imported on first use."""
    import embedlab

    emb = embedlab.load(path)
    started = time.perf_counter()
    report = embedlab.inspect(emb, labels="label", random_state=0)
    seconds = time.perf_counter() - started
    document = report.to_dict()
    return {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "recommended": document["intrinsic_dimension"]["recommended"]["value"],
        "twonn": document["intrinsic_dimension"]["twonn"]["value"],
        "mle": document["intrinsic_dimension"]["mle"]["value"],
        "gride": document["intrinsic_dimension"]["gride"]["value"],
        "knn_graph": document["knn_graph"],
    }


def child_inspect_memory(path: str) -> dict:
    """Memory inspect adds on top of the loaded data: peak resident memory during the call minus before it.

    A warm-up call on 2,000 rows first imports the libraries and starts the thread pools, so that their code
    is not counted as memory used for the data. Linux's high-water mark (VmHWM) is reset just before the call.
    """
    import numpy as np

    import embedlab

    emb = embedlab.load(path)
    embedlab.inspect(emb.take(np.arange(2000)), labels="label", random_state=0)
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    embedlab.inspect(emb, labels="label", random_state=0)
    peak = _status_mb("VmHWM")
    data_mb = emb.vectors.nbytes / 2**20
    return {
        "data_mb": data_mb,
        "rss_before_mb": before,
        "peak_rss_during_mb": peak,
        "added_mb": peak - before,
        "ratio": (data_mb + peak - before) / data_mb,
    }


def child_twonn_embedlab(path: str) -> dict:
    import numpy as np

    import embedlab
    from embedlab.geometry import exact_duplicates, twonn

    X = embedlab.load(path).vectors
    started = time.perf_counter()
    X = X[exact_duplicates(X).keep_mask]  # zero distances carry no ratio; scikit-dimension drops them too
    queries = np.sort(np.random.default_rng(0).choice(len(X), TWONN_QUERIES, replace=False))
    distances = embedlab.knn(X, 2, query_rows=queries, metric="l2", method="exact").distances
    estimate = twonn(distances, n_boot=200)
    return {
        "seconds": time.perf_counter() - started,
        "value": estimate.value,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "queries": TWONN_QUERIES,
    }


def child_twonn_skdim(path: str) -> dict:
    import numpy as np
    import skdim

    import embedlab

    X = np.asarray(embedlab.load(path).vectors)
    started = time.perf_counter()
    value = skdim.id.TwoNN(discard_fraction=0.1).fit(X).dimension_
    return {"seconds": time.perf_counter() - started, "value": float(value)}


CHILDREN = {
    "inspect": child_inspect,
    "inspect-memory": child_inspect_memory,
    "twonn-embedlab": child_twonn_embedlab,
    "twonn-skdim": child_twonn_skdim,
}


def run_child(name: str, path: str) -> dict:
    log.info("running %s in a fresh process", name)
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, path], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    setup_logging()
    load = warn_if_busy()
    path = str(prepare_wordnet_embeddings())
    inspect = run_child("inspect", path)
    memory = run_child("inspect-memory", path)
    ours = run_child("twonn-embedlab", path)
    reference = None if "--skip-skdim" in sys.argv else run_child("twonn-skdim", path)
    rows = [
        ["complete inspect (labels, k=10)", f"{inspect['seconds']:.1f} s", "<= 60 s"],
        ["peak RSS of that process (load and imports included)", f"{inspect['peak_rss_mb']:.0f} MB", ""],
        [
            "RSS before inspect / peak during it / data",
            f"{memory['rss_before_mb']:.0f} / {memory['peak_rss_during_mb']:.0f} / {memory['data_mb']:.0f} MB",
            "",
        ],
        ["(data + memory inspect added) / data", f"{memory['ratio']:.2f}", "< 2"],
        [
            f"embedlab TwoNN ({TWONN_QUERIES:,} query points, neighbours among all)",
            f"{ours['seconds']:.1f} s, d = {ours['value']:.2f} [{ours['ci_low']:.2f}, {ours['ci_high']:.2f}]",
            "",
        ],
    ]
    result = {
        "data": "117,659 x 384 MiniLM embeddings of WordNet synsets",
        "inspect": inspect,
        "twonn_embedlab": ours,
        "inspect_memory": memory,
        "load_average_at_start": load,
    }
    if reference is not None:
        speedup = reference["seconds"] / ours["seconds"]
        difference = abs(ours["value"] - reference["value"]) / reference["value"]
        rows += [
            ["scikit-dimension TwoNN (all points)", f"{reference['seconds']:.1f} s, d = {reference['value']:.2f}", ""],
            ["TwoNN speed-up over scikit-dimension", f"{speedup:.1f}x", ">= 20x"],
            ["TwoNN relative difference", f"{difference:.2%}", "<= 3%"],
        ]
        result.update({"twonn_skdim": reference, "twonn_speedup": speedup, "twonn_difference": difference})
    write_results("bench_inspect", result)
    print(markdown_table(["measure", "figure", "target"], rows))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](sys.argv[3])))
    else:
        main()
