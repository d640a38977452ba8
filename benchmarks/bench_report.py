"""The HTML report of the whole WordNet set, and the demo from a clean checkout.

Targets (issue 7):

* ``embedlab report`` of the 117,659 x 384 WordNet MiniLM set (labels = lexicographer file, text = definition)
  in at most 5 minutes on 2 cores, the HTML file at most 15 MB;
* the demo, from a clean checkout to an open report, in at most 10 minutes including installation: a fresh
  ``git clone`` of this repository, then ``make demo`` (virtual environment, torch CPU, the package and its
  ``text`` and ``viz`` extras, embedding the bundled 19,980 synsets, the report). pip's cache of this machine
  is used, as on any machine that has installed Python packages before; the figure says so.

Run: ``.venv/bin/python benchmarks/bench_report.py [--skip-demo]`` (about 12 minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import embedlab
from _common import (
    REPO_ROOT,
    log,
    markdown_table,
    prepare_wordnet_embeddings,
    setup_logging,
    warn_if_busy,
    write_results,
)
from embedlab.report import build_report, write_html

TARGET_REPORT_SECONDS = 300
TARGET_REPORT_MB = 15
TARGET_DEMO_SECONDS = 600


def measure_report(out_dir: Path) -> dict:
    """Load, measure and write the report of the whole WordNet set, as ``embedlab report`` does."""
    path = prepare_wordnet_embeddings()
    started = time.perf_counter()
    emb = embedlab.load(path)
    report = build_report(emb, name=path.name, labels="label", random_state=0)
    output = write_html(report, out_dir / "wordnet_report.html")
    seconds = time.perf_counter() - started
    size_mb = output.stat().st_size / 1e6
    log.info("report of %d rows in %.0f s, %.1f MB; steps %s", len(emb), seconds, size_mb, report.seconds)
    return {
        "rows": len(emb),
        "seconds": seconds,
        "steps": report.seconds,
        "megabytes": size_mb,
        "k": report.clusters.k,
        "well_supported": report.cluster_support["well_supported"],
        "map": report.to_dict()["map"],
        "recommendations": report.recommendations,
    }


def measure_demo() -> dict:
    """``git clone`` then ``make demo`` in a temporary folder, timed as a whole."""
    with tempfile.TemporaryDirectory(prefix="embedlab-demo-") as folder:
        checkout = Path(folder) / "embedlab"
        started = time.perf_counter()
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(checkout)], check=True)
        done = subprocess.run(["make", "demo"], cwd=checkout, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"make demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        report = checkout / "embedlab-demo" / "report.html"
        log.info("clean checkout to report in %.0f s (%s)", seconds, report)
        return {"seconds": seconds, "report_exists": report.exists(), "megabytes": report.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-demo", action="store_true", help="Leave out the clean-checkout demo.")
    args = parser.parse_args()
    setup_logging()
    load = warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="embedlab-report-") as folder:
        report = measure_report(Path(folder))
    demo = None if args.skip_demo else measure_demo()
    rows = [
        [
            "report of 117,659 x 384 (inspect, clusters, plan, map, HTML)",
            f"{report['seconds']:.0f} s",
            f"<= {TARGET_REPORT_SECONDS} s",
            report["seconds"] <= TARGET_REPORT_SECONDS,
        ],
        [
            "HTML file",
            f"{report['megabytes']:.1f} MB",
            f"<= {TARGET_REPORT_MB} MB",
            report["megabytes"] <= TARGET_REPORT_MB,
        ],
    ]
    if demo is not None:
        rows.append(
            [
                "clean clone -> make demo -> report.html (pip cache warm)",
                f"{demo['seconds']:.0f} s",
                f"<= {TARGET_DEMO_SECONDS} s",
                demo["seconds"] <= TARGET_DEMO_SECONDS and demo["report_exists"],
            ]
        )
    print(markdown_table(["target", "measured", "goal", "met"], rows))
    print(markdown_table(["step", "seconds"], [[step, f"{s:.1f}"] for step, s in report["steps"].items()]))
    # A run without the demo gets its own file, so that it never overwrites a full run's demo figure.
    name = "bench_report" if demo is not None else "bench_report_without_demo"
    write_results(name, {"load_average": load, "report": report, "demo": demo})


if __name__ == "__main__":
    main()
