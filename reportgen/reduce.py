"""Stage 3: L2-normalise the embeddings and project them with PCA."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from .config import Config
from .sampling import CHUNK, LARGE_N, seeded_sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reduced:
    """The clustering space: row ``i`` is image ``i`` of the embeddings."""

    features: np.ndarray  # float32 N x n_components
    n_components: int
    explained_variance_ratio: np.ndarray  # per component
    requested_dims: int

    @property
    def explained_variance(self) -> float:
        return float(self.explained_variance_ratio.sum())


def reduce(features: np.ndarray, config: Config) -> Reduced:
    """L2-normalise each row of ``features`` and keep ``config.pca_dims`` PCA components.

    Parameters
    ----------
    features : N x D embeddings (float32 or float16, possibly a memory-map).
    config : ``pca_dims`` and ``seed`` are read.

    Returns
    -------
    :class:`Reduced`; the component count is capped at ``min(N - 1, D)`` (at least 1).
    """
    n, d = features.shape
    n_components = max(1, min(config.pca_dims, n - 1, d))
    if n_components < config.pca_dims:
        log.info("PCA keeps %d components (asked for %d; the data has N=%d, D=%d)", n_components, config.pca_dims, n, d)
    fit_rows = seeded_sample(n, LARGE_N, config.seed)
    large = len(fit_rows) < n
    pca = PCA(n_components=n_components, svd_solver="randomized" if large else "auto", random_state=config.seed)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical rows: zero total variance
        pca.fit(_unit(features[fit_rows]))
        if large:
            log.info("PCA fitted on a seeded sample of %d of %d images, applied in chunks", len(fit_rows), n)
        # chunks: features may be a float16 memory-map far larger than a float32 copy would fit
        projected = np.empty((n, n_components), dtype=np.float32)
        for start in range(0, n, CHUNK):
            projected[start : start + CHUNK] = pca.transform(_unit(features[start : start + CHUNK]))
    return Reduced(
        features=projected,
        n_components=n_components,
        explained_variance_ratio=np.nan_to_num(pca.explained_variance_ratio_).astype(np.float64),
        requested_dims=config.pca_dims,
    )


def _unit(rows: np.ndarray) -> np.ndarray:
    return normalize(np.asarray(rows, dtype=np.float32), norm="l2")
