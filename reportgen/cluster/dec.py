"""Deep Embedded Clustering's clustering layer, trained on frozen features.

Xie, Girshick and Farhadi (2016), "Unsupervised Deep Embedding for Clustering Analysis", ICML
(arXiv:1511.06335). The paper fine-tunes an autoencoder's encoder together with the cluster centres; here the
features are fixed (already L2-normalised PCA vectors), so only the K x D centres ``mu`` are trained.

Method. The centres start from scikit-learn's K-means. Each point's soft assignment to centre ``j`` is a
Student-t kernel, normalised over the centres::

    q_ij = (1 + ||x_i - mu_j||^2 / alpha) ** (-(alpha + 1) / 2) / sum_j' (same for j')

The target distribution sharpens ``q`` and divides by each cluster's soft frequency ``f_j = sum_i q_ij``, so
that large clusters do not swallow the rest::

    p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')

The centres minimise ``KL(P || Q)`` by SGD with momentum 0.9 over mini-batches shuffled by a generator seeded
with ``random_state``; ``P`` is held fixed and recomputed on the whole data every ``update_interval`` epochs.

Stopping rule. At each target update the hard labels (argmax of ``q``) are compared with those of the previous
update (the first time, with the labels of the K-means centres). Training stops, with ``converged_`` set, when
fewer than a fraction ``tol`` of the points changed label (``tol=0.001`` is 0.1 %), as in the paper; otherwise
it stops after ``max_iter`` epochs with ``converged_`` false.

Runs on the CPU in float32, leaves torch's global random state and thread count alone, and imports torch only
when fitting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """N x K squared Euclidean distances, computed in float64."""
    x64 = x.astype(np.float64, copy=False)
    c64 = centres.astype(np.float64, copy=False)
    d2 = (x64 * x64).sum(1)[:, None] - 2.0 * x64 @ c64.T + (c64 * c64).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def _log_q(x: Any, centres: Any, alpha: float) -> Any:
    """Torch: log of the normalised Student-t soft assignments q (N x K)."""
    import torch

    d2 = (x * x).sum(1, keepdim=True) - 2.0 * x @ centres.T + (centres * centres).sum(1)[None, :]
    log_kernel = -(alpha + 1.0) / 2.0 * torch.log1p(d2.clamp_min(0.0) / alpha)
    return torch.log_softmax(log_kernel, dim=1)


def _target(q: Any) -> Any:
    """Torch: DEC's target distribution P from Q (N x K)."""
    weight = q * q / q.sum(0, keepdim=True)
    return weight / weight.sum(1, keepdim=True)


class DEC(BaseEstimator, ClusterMixin):
    """DEC's clustering layer on frozen features: K-means centres refined by minimising KL(P || Q).

    Attributes after ``fit``: ``labels_`` (int N, argmax q), ``cluster_centers_`` (K x D float32, the trained
    centres), ``n_iter_`` (epochs run), ``converged_`` (whether the label-change rule stopped training) and
    ``inertia_`` (sum of squared distances of the points to their assigned trained centre).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        alpha: float = 1.0,
        tol: float = 0.001,
        max_iter: int = 200,
        update_interval: int = 1,
        lr: float = 0.01,
        batch_size: int = 256,
        n_init: int = 10,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.update_interval = update_interval
        self.lr = lr
        self.batch_size = batch_size
        self.n_init = n_init
        self.random_state = random_state

    def _check_params(self, n_rows: int) -> None:
        if not 1 <= int(self.n_clusters) <= n_rows:
            raise ValueError(f"n_clusters={self.n_clusters} must be between 1 and the number of rows ({n_rows})")
        if self.alpha <= 0 or self.lr <= 0 or self.tol < 0:
            raise ValueError("alpha and lr must be positive and tol non-negative")
        if self.max_iter < 0 or self.update_interval < 1 or self.batch_size < 1:
            raise ValueError("max_iter must be >= 0, update_interval and batch_size >= 1")

    def fit(self, x: np.ndarray, y: Any = None) -> DEC:
        """Initialise the centres with K-means, then train them with the DEC objective on ``x`` (N x D)."""
        import torch
        import torch.nn.functional as F

        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {x.shape}")
        n = x.shape[0]
        self._check_params(n)
        alpha = float(self.alpha)
        kmeans = KMeans(n_clusters=int(self.n_clusters), n_init=self.n_init, random_state=self.random_state).fit(x)

        generator = torch.Generator()
        if self.random_state is None:
            generator.seed()
        elif isinstance(self.random_state, (int, np.integer)):
            generator.manual_seed(int(self.random_state))
        else:  # a numpy RandomState
            generator.manual_seed(int(check_random_state(self.random_state).randint(2**31 - 1)))
        data = torch.from_numpy(x)
        centres = torch.nn.Parameter(torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)))
        optimizer = torch.optim.SGD([centres], lr=float(self.lr), momentum=0.9)

        with torch.no_grad():
            q = _log_q(data, centres, alpha).exp()
        target = _target(q)
        last_labels = q.argmax(1)
        converged, epochs = False, 0
        for epoch in range(1, int(self.max_iter) + 1):
            epochs = epoch
            for batch in torch.randperm(n, generator=generator).split(int(self.batch_size)):
                optimizer.zero_grad(set_to_none=True)
                loss = F.kl_div(_log_q(data[batch], centres, alpha), target[batch], reduction="batchmean")
                loss.backward()
                optimizer.step()
            if epoch % int(self.update_interval):
                continue
            with torch.no_grad():
                q = _log_q(data, centres, alpha).exp()
            labels = q.argmax(1)
            changed = float((labels != last_labels).sum()) / n
            last_labels = labels
            if changed < self.tol:
                converged = True
                break
            target = _target(q)

        self.cluster_centers_ = centres.detach().numpy().astype(np.float32, copy=True)
        self.n_features_in_ = x.shape[1]
        d2 = _squared_distances(x, self.cluster_centers_)
        self.labels_ = d2.argmin(1).astype(np.int64)
        self.inertia_ = float(d2[np.arange(n), self.labels_].sum())
        self.n_iter_ = epochs
        self.converged_ = converged
        return self

    def fit_predict(self, x: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit on ``x`` and return its labels."""
        return self.fit(x).labels_

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The label (argmax of q, i.e. the nearest trained centre) of each row of ``x``."""
        check_is_fitted(self, "cluster_centers_")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected shape (N, {self.n_features_in_}), got {x.shape}")
        return _squared_distances(x, self.cluster_centers_).argmin(1).astype(np.int64)
