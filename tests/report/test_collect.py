from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet
from embedlab.report import build_report, map_points, quick_anchors, quick_codecs
from tests.report.conftest import N_DUPLICATES, N_PER_CLUSTER, known_set

K_VALUES = [2, 3, 4, 5, 6]


@pytest.fixture(scope="module")
def report(small_set):
    return build_report(small_set, name="known", labels="label", k_values=K_VALUES, compression_queries=50)


def test_the_report_finds_what_the_set_is_known_to_hold(report, small_set):
    assert report.clusters.k == 3 and report.k_selection.best_k == 3
    assert report.cluster_support["well_supported"] == 3
    assert report.clusters.external.ari > 0.99  # the 3 clusters are the 3 labels (plus one outlier row)
    duplicates = report.geometry.exact_duplicates.to_dict()
    assert duplicates["rows"] == N_DUPLICATES and duplicates["groups"] == N_DUPLICATES
    assert f"row-{len(small_set) - 1}" in report.geometry.outliers.to_dict()["ids"]
    assert len(report.map.rows) == len(small_set) and not report.map.sampled
    assert report.map.method == "umap"


def test_recommendations_quote_the_measured_figures(report):
    document = report.to_dict()
    text = "\n".join(report.recommendations)
    assert f"Remove {N_DUPLICATES} exact duplicate rows ({N_DUPLICATES} groups) before indexing" in text
    assert "1 outlier far from their neighbours" in text
    assert "3 clusters (kmeans). k = 3: k-means clusterings of resamples agree (stability 1.00" in text
    assert "3 of them are well supported" in text
    best = min(
        (p for p in document["compression"]["points"] if p["rescore"] is None and p["recall_at_k"] >= 0.99),
        key=lambda p: p["bytes_per_vector"],
    )
    assert f"Store {best['codec']} codes: {best['bytes_per_vector']:,} B per vector" in text


def test_the_label_advice_compares_with_always_answering_the_largest_label(report):
    advice = next(line for line in report.recommendations if line.startswith("Neighbours predict the labels"))
    largest = (N_PER_CLUSTER + N_DUPLICATES) / 605  # alpha: its 200 rows and the 4 duplicated ones
    assert advice.endswith(f"against {largest:.3f} for always answering the largest label.")


def test_missing_texts_are_empty_and_long_ones_are_cut_and_counts_agree_in_number():
    from embedlab.report._collect import _count, _text

    assert (_count(1, "exact duplicate row"), _count(2, "group"), _count(1200, "pair")) == (
        "1 exact duplicate row",
        "2 groups",
        "1,200 pairs",
    )
    assert _text(None, 10) == "" and _text("short", 10) == "short"
    assert _text("x" * 20, 10) == "x" * 9 + "\u2026"


def test_the_compression_plan_is_quick_with_anchors(report):
    plan = report.compression
    measured = {p.codec.split("+rescore")[0] for p in plan.points}
    assert measured == set(quick_codecs(32))
    assert [a.codec for a in plan.anchors] == [f"faiss:{name}" for name in quick_anchors(32)]
    assert plan.n_queries == 50


def test_documents_are_json_and_the_page_data_has_one_entry_per_point(report, small_set):
    summary = json.loads(json.dumps(report.to_dict()))
    assert "points" not in summary and summary["map"]["n_points"] == len(small_set)
    assert summary["texts"]["row-0"] == {"text": "alpha item 0", "label": "alpha"}  # a duplicate, named in a table
    page = report.page_data()
    points = page["points"]
    assert {len(points[key]) for key in ("x", "y", "cluster", "id", "text", "label")} == {len(small_set)}
    assert min(points["x"]) == 0 and max(max(points["x"]), max(points["y"])) == 10_000
    assert sorted(page["points"]["label_names"]) == ["alpha", "bravo", "charlie", "outlier"]


def test_the_map_samples_uniformly_beyond_max_points_and_is_seeded(small_set):
    first = map_points(small_set, max_points=100, random_state=3)
    again = map_points(small_set, max_points=100, random_state=3)
    assert len(first.rows) == 100 and first.sampled and np.array_equal(first.rows, again.rows)
    np.testing.assert_allclose(first.xy, again.xy)
    assert "uniform random sample of 100 of 605 rows" in first.note
    per_cluster = np.bincount(np.minimum(first.rows // N_PER_CLUSTER, 3), minlength=4)[:3]
    assert per_cluster.min() > 20  # every region keeps roughly its third of the points


def test_without_umap_the_map_is_pca_and_says_why(small_set, monkeypatch):
    from embedlab.exceptions import MissingDependencyError
    from embedlab.report import _collect

    real = _collect.reduce_dimensions

    def no_umap(X, *, method, **kwargs):
        if method == "umap":
            raise MissingDependencyError('UMAP needs umap-learn: pip install "embedlab[viz]"')
        return real(X, method=method, **kwargs)

    monkeypatch.setattr(_collect, "reduce_dimensions", no_umap)
    layout = map_points(small_set, max_points=300)
    assert layout.method == "pca" and "UMAP unavailable" in layout.note and layout.xy.shape == (300, 2)


def test_tiny_sets_skip_the_plan_and_say_why():
    emb = known_set(n_per_cluster=8)
    result = build_report(emb, k_values=[2, 3], compression=True)
    assert result.compression is None and "too few" in result.compression_note
    assert result.to_dict()["compression_note"] == result.compression_note


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"labels": "colour"}, EmbeddingDataError, "has no column 'colour'; its columns are: label, text"),
        ({"text_column": "body"}, EmbeddingDataError, "has no column 'body'"),
        ({"metric": "ip"}, ConfigurationError, "metric must be one of 'cosine', 'l2', got 'ip'"),
        ({"max_map_points": 2}, ConfigurationError, "max_map_points must be an integer >= 3, got 2"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(small_set, kwargs, error, message):
    with pytest.raises(error, match=message):
        build_report(small_set, name="known.parquet", **kwargs)


def test_too_few_rows_are_refused_naming_the_set():
    with pytest.raises(EmbeddingDataError, match="tiny.npy: a report needs at least 10 rows, got 5"):
        build_report(EmbeddingSet(np.eye(5, dtype=np.float32)), name="tiny.npy")


def test_the_curation_section_finds_the_planted_duplicates(report):
    curation = report.to_dict()["curation"]
    near = curation["near_duplicates"]
    assert near["n_groups"] == 4 and [g["size"] for g in near["largest"]] == [2, 2, 2, 2]
    assert {g["ids"][0] for g in near["largest"]} == {"row-0", "row-1", "row-2", "row-3"}
    assert curation["semdedup"]["removed_fraction"][0] == pytest.approx(4 / 605)
    balanced = curation["balanced"]
    assert sum(c["balanced"] for c in balanced["clusters"]) == balanced["target"] == 60
    assert report.to_dict()["texts"]["row-600"]["text"] == "alpha item 600"  # a duplicate's text, for its table
