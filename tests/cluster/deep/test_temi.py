from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.cluster.deep import TEMI
from embedlab.cluster.deep.temi import _pmi_losses

torch = pytest.importorskip("torch")


def test_teacher_heads_and_prior(fitted, blobs):
    model, _ = fitted["TEMI"]
    assert model.head_losses_.shape == (3,) and model.best_head_ == int(np.argmin(model.head_losses_))
    assert model.history_.shape == (10,) and model.history_[-1] < model.history_[0]
    assert model.history_[-1] == pytest.approx(model.head_losses_[model.best_head_])
    assert model.cluster_prior_.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(model.cluster_prior_, 0.25, atol=0.05)  # four blobs of equal size
    assert all(value.shape[0] == 1 for value in model.teacher_.values())  # one head kept
    assert model.neighbors_.shape == (len(blobs[0]), 10)


def test_pmi_loss_matches_its_definition():
    rng = np.random.default_rng(0)
    student, teacher = rng.dirichlet(np.ones(5), size=(2, 3, 4))
    prior = rng.dirichlet(np.ones(5), size=3)
    expected = -np.log(((student * teacher) ** 0.6 / prior[:, None, :]).sum(axis=2))
    logs = (torch.from_numpy(np.log(array)) for array in (student, teacher, prior))
    np.testing.assert_allclose(_pmi_losses(*logs, 0.6).numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("params", "match"),
    [({"teacher_momentum": 1.5}, "teacher_momentum"), ({"beta": 0}, "beta"), ({"epochs": 0}, "epochs")],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ConfigurationError, match=match):
        TEMI(4, **params).fit(blobs[0])
