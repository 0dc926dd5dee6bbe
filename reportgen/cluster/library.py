"""The clustering methods beside K-means, each a registered factory around a maintained implementation.

* ``agglomerative``: scikit-learn's AgglomerativeClustering. ``--linkage ward`` (the default) merges the pair of
  clusters that least increases the within-cluster sum of squares, on the reduced vectors; ``average`` and
  ``complete`` use the cosine distance between images.
* ``gmm``: a Gaussian mixture (scikit-learn's GaussianMixture, diagonal covariances, 2 starts): each image goes
  to its most probable component. Its K is chosen by the Bayesian information criterion (BIC, lower is better),
  which the K sweep records as one more criterion.
* ``hdbscan``: scikit-learn's HDBSCAN. It finds the number of clusters from the density of the data and leaves
  images in no dense region out of every cluster (noise, "not in any cluster"). Smallest cluster:
  ``max(5, 1% of the images)``.
* ``dec``: Deep Embedded Clustering's clustering layer trained on the frozen features (:mod:`.dec`).

Agglomerative clustering and HDBSCAN need memory quadratic in the number of images (the linkage) or close to it:
past ``sampling.LARGE_N`` images they are fitted on a seeded sample of that many, and every other image joins
the cluster whose mean is nearest (:class:`Subsampled`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sampling import LARGE_N, seeded_sample
from . import ensemble
from .methods import Estimator, register_method

LINKAGES = ("ward", "average", "complete")
GMM_N_INIT = 2
GMM_REG_COVAR = 1e-4  # unit-length rows in 50 dimensions have per-axis variances near 0.02: keep them off zero
HDBSCAN_MIN_SIZE = 5
HDBSCAN_MIN_SHARE = 0.01
DEC_BATCH = 256
DEC_UPDATE_STEPS = 140  # Xie et al.'s target update interval on MNIST, in mini-batch steps


class Subsampled:
    """Fit ``estimator`` on a seeded sample of at most ``limit`` rows; the other rows join the nearest cluster
    mean. Up to ``limit`` rows it is the estimator itself. Parameters are the estimator's."""

    def __init__(self, estimator: Any, limit: int, seed: int) -> None:
        self.estimator, self.limit, self.seed = estimator, limit, seed

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return dict(self.estimator.get_params(deep=deep)) | {"fitted_on_at_most": self.limit}

    def set_params(self, **params: Any) -> Subsampled:
        self.estimator.set_params(**params)
        return self

    def fit_predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) <= self.limit:
            return np.asarray(self.estimator.fit_predict(x))
        sample = seeded_sample(len(x), self.limit, self.seed)
        fitted = np.asarray(self.estimator.fit_predict(x[sample]))
        found = np.unique(fitted[fitted >= 0])
        if not len(found):
            return np.full(len(x), -1)
        means = np.stack([x[sample][fitted == c].mean(axis=0) for c in found])
        labels = np.empty(len(x), dtype=int)
        for start in range(0, len(x), 10_000):
            part = x[start : start + 10_000]
            d = (part**2).sum(1)[:, None] - 2 * part @ means.T + (means**2).sum(1)[None, :]
            labels[start : start + 10_000] = found[np.argmin(d, axis=1)]
        labels[sample] = fitted  # the sample keeps its own labels, noise included
        return labels


def agglomerative(k: int, seed: int, n_rows: int, linkage: str = "ward") -> Estimator:
    """Agglomerative clustering: ward on the vectors, or average/complete linkage of cosine distances."""
    from sklearn.cluster import AgglomerativeClustering

    metric = "euclidean" if linkage == "ward" else "cosine"
    return Subsampled(AgglomerativeClustering(n_clusters=k, linkage=linkage, metric=metric), LARGE_N, seed)


def gmm(k: int, seed: int, n_rows: int) -> Estimator:
    """A seeded Gaussian mixture with diagonal covariances."""
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        n_components=k, covariance_type="diag", n_init=GMM_N_INIT, reg_covar=GMM_REG_COVAR, random_state=seed
    )


def hdbscan(k: int, seed: int, n_rows: int) -> Estimator:
    """HDBSCAN; ``k`` is ignored (the method finds it)."""
    from sklearn.cluster import HDBSCAN

    size = min(max(HDBSCAN_MIN_SIZE, round(HDBSCAN_MIN_SHARE * min(n_rows, LARGE_N))), max(2, n_rows))
    return Subsampled(HDBSCAN(min_cluster_size=size, copy=True), LARGE_N, seed)


def dec(k: int, seed: int, n_rows: int) -> Estimator:
    """DEC's clustering layer on the frozen features, initialised from K-means; the target distribution is
    updated every ``DEC_UPDATE_STEPS`` mini-batch steps or so (the paper's T), counted in whole epochs."""
    from .dec import DEC

    steps_per_epoch = max(1, -(-n_rows // DEC_BATCH))
    every = max(1, round(DEC_UPDATE_STEPS / steps_per_epoch))
    return DEC(n_clusters=k, batch_size=DEC_BATCH, update_interval=every, random_state=seed)


register_method(
    "agglomerative",
    agglomerative,
    "agglomerative clustering (--linkage ward on the vectors, or average/complete on cosine distances)",
    options=("linkage",),
)
register_method("gmm", gmm, "Gaussian mixture, K chosen by BIC", k_criterion="bic")
register_method("hdbscan", hdbscan, "HDBSCAN: K from the data, images in no dense region left out", takes_k=False)
register_method(
    "ensemble",
    ensemble.make,
    "co-association of K-means over the report's vectors and two earlier layers (or --ensemble-features)",
    k_by="kmeans",
)
register_method("dec", dec, "DEC: a clustering layer trained on the frozen features, from K-means")
