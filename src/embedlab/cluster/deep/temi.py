"""TEMI: an ensemble of student/teacher clustering heads trained with a weighted pointwise mutual information."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric
from embedlab.cluster.deep._base import DeepClusterMixin, mine_neighbours
from embedlab.cluster.deep._torch import (
    apply_in_batches,
    batches,
    head_stack,
    heads_forward,
    require_torch,
    seeded_torch,
    select_head,
)

if TYPE_CHECKING:
    import torch

__all__ = ["TEMI"]

logger = logging.getLogger(__name__)


def _logits(heads: torch.nn.ParameterDict, x: torch.Tensor) -> torch.Tensor:
    """Logits of every head, shape (heads, batch, n_clusters).

    A TEMI head is an MLP to a bottleneck with GELU, L2 normalisation, then a bias-free linear layer.
    """
    return heads_forward(heads, x, activation="gelu", normalize_last_hidden=True)


def _pmi_losses(
    log_student: torch.Tensor, log_teacher: torch.Tensor, log_prior: torch.Tensor, beta: float
) -> torch.Tensor:
    """``-log sum_c (q_s(c|x) q_t(c|x'))^beta / prior(c)`` per head and pair, shape (heads, batch)."""
    return -(beta * (log_student + log_teacher) - log_prior[:, None, :]).logsumexp(dim=2)


class TEMI(DeepClusterMixin):
    """TEMI clustering heads on frozen embeddings: teacher-ensemble-weighted pointwise mutual information.

    Each row is paired with one of its ``n_neighbors`` nearest neighbours (mined with embedlab's kNN engine,
    redrawn every epoch). ``n_heads`` student heads are trained and each has a teacher, the exponential
    moving average of its weights (``teacher_momentum``). For a pair (x, x') and head h the loss is::

        - w(x, x') log sum_c (q_s(c|x) q_t(c|x'))^beta / q_t(c)

    symmetrised over (x, x') and (x', x), where ``q_s`` and ``q_t`` are the student's and teacher's softmax
    (temperatures ``student_temperature``, ``teacher_temperature``), ``q_t(c)`` is the teacher's cluster
    prior (a moving average, momentum ``prior_momentum``, of its mean prediction over the batches), and
    ``w(x, x') = <q_t(.|x), q_t(.|x')>`` averaged over all teacher heads down-weights pairs the ensemble
    thinks belong to different clusters; ``beta < 1`` tempers the joint probability inside the PMI. The head
    of lowest mean loss over the last epoch is kept, and its teacher predicts.

    The heads are TEMI's (an MLP ``d - hidden_dim - bottleneck_dim`` with GELU, L2 normalisation, a
    bias-free linear layer to the clusters, without weight normalisation). Training uses AdamW at a constant
    learning rate, where the authors' code warms it up and decays it on a cosine schedule. The defaults are
    sized for CPUs (fewer heads and epochs than the paper, a larger learning rate); pass the paper's
    ``n_heads=50, epochs=200, learning_rate=1e-4`` where a GPU is available.

    Parameters
    ----------
    n_clusters : int, default=10
    n_neighbors : int, default=50
        Neighbours a row's partner is drawn from (the authors' training command uses 50).
    metric : {"cosine", "l2"}, default="cosine"
        Of the neighbour search; with cosine the heads also see unit-normalised rows.
    n_heads : int, default=4
        Heads trained side by side. The paper trains 50 and the authors' published command 16; training is
        compute-bound and linear in the heads (16 heads: about 17 s per epoch on 15,000 x 384 rows on 2
        cores, 4 heads: about 2.6 s), so the default is 4.
    hidden_dim : int, default=512
    bottleneck_dim : int, default=256
    epochs : int, default=25
        The authors train for 100 to 200 epochs on GPUs; 25 epochs of the default batch fit a 15,000 x 384
        set into about 70 s on 2 cores.
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Ten times the paper's 1e-4, for a quarter of its epochs (on 15,000 WordNet MiniLM rows the larger step
        clustered better: ``benchmarks/bench_cluster_wordnet.py`` notes the trial).
    weight_decay : float, default=1e-4
    beta : float, default=0.6
        Exponent of the joint probability in the PMI (the paper's 0.6).
    student_temperature, teacher_temperature : float, default=0.1
        Softmax temperatures (both 0.1 in the paper).
    teacher_momentum : float, default=0.996
        Of the teachers' weight average.
    prior_momentum : float, default=0.9
        Of the teachers' cluster prior.
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
    neighbors_ : ndarray of shape (n, n_neighbors), int64
    teacher_ : torch.nn.ParameterDict
        The kept head's teacher weights (a one-head stack), which give the predictions.
    best_head_ : int
    head_losses_ : ndarray of shape (n_heads,)
        Mean loss of each head over the last epoch.
    cluster_prior_ : ndarray of shape (n_clusters,)
        The kept head's teacher-estimated cluster prior.
    history_ : ndarray of shape (epochs,)
        Mean loss of the kept head per epoch.
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Adaloglou, Michels, Kalisch and Kollmann (2023), "Exploring the limits of deep image clustering using
    pretrained models", BMVC.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, 8) * 5, 60, axis=0) + rng.normal(size=(180, 8))
    >>> temi = TEMI(3, n_neighbors=5, n_heads=2, hidden_dim=32, bottleneck_dim=16, epochs=10, batch_size=32,
    ...             learning_rate=3e-3, teacher_momentum=0.9, random_state=0).fit(X)
    >>> sorted(np.bincount(temi.labels_).tolist())
    [60, 60, 60]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        n_neighbors: int = 50,
        metric: ClusterMetric = "cosine",
        n_heads: int = 4,
        hidden_dim: int = 512,
        bottleneck_dim: int = 256,
        epochs: int = 25,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        beta: float = 0.6,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.1,
        teacher_momentum: float = 0.996,
        prior_momentum: float = 0.9,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.n_heads = n_heads
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.beta = beta
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.teacher_momentum = teacher_momentum
        self.prior_momentum = prior_momentum
        self.random_state = random_state

    @property
    def _input_metric(self) -> str:
        return self.metric

    def _check_params(self) -> None:
        check_choice(self.metric, "metric", ("cosine", "l2"))
        for name in ("n_heads", "hidden_dim", "bottleneck_dim", "epochs", "batch_size"):
            check_int(getattr(self, name), name)
        for name in ("learning_rate", "beta", "student_temperature", "teacher_temperature"):
            check_positive(getattr(self, name), name)
        for name in ("teacher_momentum", "prior_momentum"):
            check_positive(getattr(self, name), name, upper=1.0)
        if self.weight_decay != 0:
            check_positive(self.weight_decay, "weight_decay")

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> TEMI:
        """Mine neighbours and train the heads; ``progress`` gets one step per epoch.

        Raises
        ------
        EmbeddingDataError
            On NaN/Inf rows (or zero rows under cosine).
        ConfigurationError
            On bad parameters, ``n_clusters`` larger than the number of rows or ``n_neighbors`` not below it.
        MissingDependencyError
            When torch is not installed.
        """
        self._check_params()
        rows = self._fit_rows(X)
        torch = require_torch("TEMI")
        rng = check_random_state(self.random_state)
        self.neighbors_ = mine_neighbours(rows, self.n_neighbors, self.metric, rng)
        widths = [rows.shape[1], self.hidden_dim, self.bottleneck_dim, self.n_clusters]
        with seeded_torch(rng):
            students = head_stack(self.n_heads, widths, last_bias=False)
        teachers = copy.deepcopy(students).requires_grad_(False)
        prior = torch.full((self.n_heads, self.n_clusters), 1.0 / self.n_clusters)
        with progress.task("TEMI: clustering heads", self.epochs) as advance:
            history = self._train(students, teachers, prior, rows, rng, advance)
        self.head_losses_ = history[-1]
        self.best_head_ = int(np.argmin(self.head_losses_))
        self.teacher_ = select_head(teachers, self.best_head_)
        self.cluster_prior_ = prior[self.best_head_].numpy().copy()
        self.history_ = history[:, self.best_head_]
        self.n_iter_ = len(history)
        self._set_assignments(self._proba(rows))
        logger.info("TEMI: kept head %d of %d, loss %.4f", self.best_head_, self.n_heads, self.head_losses_.min())
        return self

    def _train(
        self,
        students: torch.nn.ParameterDict,
        teachers: torch.nn.ParameterDict,
        prior: torch.Tensor,
        rows: np.ndarray,
        rng: np.random.RandomState,
        advance: Advance,
    ) -> np.ndarray:
        """Train the students, move the teachers and the prior (in place); mean loss per epoch and head."""
        import torch

        optimiser = torch.optim.AdamW(students.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        data = torch.from_numpy(rows)
        history = np.zeros((self.epochs, self.n_heads))
        for epoch in range(self.epochs):
            for anchors in batches(len(rows), self.batch_size, rng):
                partners = self.neighbors_[anchors, rng.randint(self.neighbors_.shape[1], size=len(anchors))]
                x, x_partner = data[anchors], data[partners]
                log_s = (_logits(students, x) / self.student_temperature).log_softmax(dim=2)
                log_s_partner = (_logits(students, x_partner) / self.student_temperature).log_softmax(dim=2)
                with torch.no_grad():
                    log_t = (_logits(teachers, x) / self.teacher_temperature).log_softmax(dim=2)
                    log_t_partner = (_logits(teachers, x_partner) / self.teacher_temperature).log_softmax(dim=2)
                    batch_prior = torch.cat([log_t, log_t_partner], dim=1).exp().mean(dim=1)
                    prior.mul_(self.prior_momentum).add_(batch_prior, alpha=1.0 - self.prior_momentum)
                    weight = (log_t + log_t_partner).exp().sum(dim=2).mean(dim=0)
                log_prior = prior.log()
                losses = 0.5 * (
                    (weight * _pmi_losses(log_s, log_t_partner, log_prior, self.beta)).mean(dim=1)
                    + (weight * _pmi_losses(log_s_partner, log_t, log_prior, self.beta)).mean(dim=1)
                )
                optimiser.zero_grad()
                losses.mean().backward()
                optimiser.step()
                self._update_teachers(students, teachers)
                history[epoch] += losses.detach().numpy() * len(anchors) / len(rows)
            advance(1)
        return history

    def _update_teachers(self, students: torch.nn.ParameterDict, teachers: torch.nn.ParameterDict) -> None:
        import torch

        with torch.no_grad():
            for teacher, student in zip(teachers.parameters(), students.parameters(), strict=True):
                teacher.mul_(self.teacher_momentum).add_(student, alpha=1.0 - self.teacher_momentum)

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        return apply_in_batches(
            lambda x: (_logits(self.teacher_, x)[0] / self.teacher_temperature).softmax(dim=1), rows
        )
