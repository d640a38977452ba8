"""One contract over every deep clustering estimator: scikit-learn conventions, soft assignments, seeding, errors."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingDataError, MissingDependencyError
from embedlab._optional import import_optional
from embedlab.cluster.deep import partial_sinkhorn, sinkhorn

NAMES = ["DEC", "IDEC", "N2D", "SCAN", "TEMI", "CPP", "SwAV"]


@pytest.mark.parametrize("name", NAMES)
def test_recovers_planted_blobs(fitted, blobs, name):
    model, _ = fitted[name]
    assert adjusted_rand_score(blobs[1], model.labels_) >= 0.9


@pytest.mark.parametrize("name", NAMES)
def test_assignments_follow_scikit_learn_conventions(fitted, blobs, name):
    X, _ = blobs
    model, _ = fitted[name]
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 4) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.labels_.dtype == np.int64 and model.labels_.shape == (len(X),)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_allclose(model.confidence_, proba.max(axis=1), atol=1e-6)
    assert model.n_features_in_ == X.shape[1]
    assert model.n_iter_ == len(model.history_) + len(getattr(model, "selflabel_history_", []))
    assert np.isfinite(model.history_).all()
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "labels_")


@pytest.mark.parametrize("name", NAMES)
def test_progress_reports_one_step_per_epoch(fitted, name):
    _, progress = fitted[name]
    assert progress.tasks
    for description, (total, steps) in progress.tasks.items():
        assert description.startswith(name) and steps <= total
    assert sum(steps for _, steps in progress.tasks.values()) > 0


@pytest.mark.parametrize("name", NAMES)
def test_a_fixed_seed_reproduces_the_fit(fitted, make, blobs, name):
    model, _ = fitted[name]
    again = make[name](0).fit(blobs[0])
    np.testing.assert_array_equal(again.labels_, model.labels_)
    np.testing.assert_array_equal(again.history_, model.history_)


@pytest.mark.parametrize("name", NAMES)
def test_pickled_model_predicts_the_same(fitted, blobs, name):
    model, _ = fitted[name]
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(blobs[0][:50]), model.predict_proba(blobs[0][:50]), atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_give_clear_errors(fitted, make, blobs, name):
    X, _ = blobs
    model, _ = fitted[name]
    with pytest.raises(EmbeddingDataError, match=r"X has 31 features, but \w+ is expecting 32 features"):
        model.predict(X[:, :31])
    with_nan = X[:20].copy()
    with_nan[3, 5] = np.nan
    with pytest.raises(EmbeddingDataError, match="NaN"):
        make[name](0).fit(with_nan)
    with pytest.raises(ConfigurationError, match="n_clusters=4 but X has only 3 rows"):
        make[name](0).fit(X[:3])
    with pytest.raises(ConfigurationError, match="n_clusters must be an integer >= 1"):
        clone(model).set_params(n_clusters=0).fit(X)
    with pytest.raises(ConfigurationError, match="batch_size"):
        clone(model).set_params(batch_size=0).fit(X)


@pytest.mark.parametrize("name", ["N2D", "SCAN", "TEMI", "SwAV"])
def test_too_many_neighbours(make, blobs, name):
    with pytest.raises(ConfigurationError, match=r"n_neighbors=\d+ but only 7 neighbour"):
        make[name](0).fit(blobs[0][:8])


def _without(monkeypatch, module: str, missing: str) -> None:
    """Patch ``import_optional`` as seen from ``module`` to raise, for ``missing``, what it raises when absent."""

    def fake(name, extra, *, purpose):
        with monkeypatch.context() as patch:
            if name == missing:
                patch.setitem(sys.modules, name, None)  # makes the import fail as for a package not installed
            return import_optional(name, extra, purpose=purpose)

    monkeypatch.setattr(f"{module}.import_optional", fake)


@pytest.mark.parametrize("name", NAMES)
def test_missing_torch(monkeypatch, make, blobs, name):
    _without(monkeypatch, "embedlab._torch", "torch")
    with pytest.raises(
        MissingDependencyError, match=rf"{name} needs the optional package 'torch'.*pip install \"embedlab\[deep\]\""
    ):
        make[name](0).fit(blobs[0])


@pytest.mark.parametrize("function", [sinkhorn, partial_sinkhorn])
def test_missing_torch_in_sinkhorn(monkeypatch, function):
    _without(monkeypatch, "embedlab._torch", "torch")
    with pytest.raises(MissingDependencyError, match="Sinkhorn pseudo-labels needs the optional package 'torch'"):
        function(np.zeros((3, 2)))


def test_missing_umap(monkeypatch, make, blobs):
    _without(monkeypatch, "embedlab.cluster.deep.n2d", "umap")
    with pytest.raises(
        MissingDependencyError, match=r"N2D needs the optional package 'umap'.*pip install \"embedlab\[deep\]\""
    ):
        make["N2D"](0).fit(blobs[0])


def test_the_package_imports_without_torch():
    """Importing embedlab.cluster.deep must not import torch or umap (they load when fitting)."""
    code = "import sys, embedlab.cluster.deep; print('torch' in sys.modules, 'umap' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
