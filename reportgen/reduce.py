"""Stage 3: power-normalise and L2-normalise the embeddings, then project them with PCA.

The signed square root (``sign(x) * sqrt(|x|)``, "power normalisation") comes first: the pooled activations of a
CNN are bursty (a few channels fire very strongly on some images), and the square root stops those few from
dominating the distances. On every labeled set in docs/quality.md it helps or does not hurt; on sample_data it
lifts NMI at the chosen K from 0.745 to 0.840. ``--no-power-norm`` turns it off (the classic lab's plain L2 +
PCA).

:func:`directions` gives the rows of the projection scaled to unit length: the K criteria are measured there
(choose_k), while K-means clusters the projection itself.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from .config import Config
from .sampling import CHUNK, LARGE_N, seeded_sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reduced:
    """The clustering space: row ``i`` is image ``i`` of the embeddings."""

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("explained_variance",)

    features: np.ndarray = field(metadata={"json": False})  # float32 N x n_components
    n_components: int
    explained_variance_ratio: np.ndarray = field(metadata={"json": False})  # per component
    requested_dims: int
    power_norm: bool = True
    pca_mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), metadata={"json": False})  # D
    pca_components: np.ndarray = field(  # n_components x D: the projection is (row - pca_mean) @ pca_components.T
        default_factory=lambda: np.zeros((0, 0), np.float32), metadata={"json": False}
    )

    @property
    def explained_variance(self) -> float:
        return float(self.explained_variance_ratio.sum())


def reduce(features: np.ndarray, config: Config, blocks: Sequence[tuple[int, float]] = ()) -> Reduced:
    """Signed square root (unless ``config.power_norm`` is off), L2-normalise each row, keep ``config.pca_dims``
    PCA components.

    Parameters
    ----------
    features : N x D embeddings (float32 or float16, possibly a memory-map).
    config : ``pca_dims``, ``power_norm`` and ``seed`` are read.
    blocks : for a stack of feature specs, the (width, weight) of each spec's block of columns: each block is
        L2-normalised and weighted before the whole row is (:mod:`reportgen.extract.stack`).

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
        pca.fit(_prepare(features[fit_rows], config.power_norm, blocks))
        if large:
            log.info("PCA fitted on a seeded sample of %d of %d images, applied in chunks", len(fit_rows), n)
        # chunks: features may be a float16 memory-map far larger than a float32 copy would fit
        projected = np.empty((n, n_components), dtype=np.float32)
        for start in range(0, n, CHUNK):
            rows = _prepare(features[start : start + CHUNK], config.power_norm, blocks)
            projected[start : start + CHUNK] = pca.transform(rows)
    return Reduced(
        features=projected,
        n_components=n_components,
        explained_variance_ratio=np.nan_to_num(pca.explained_variance_ratio_).astype(np.float64),
        requested_dims=config.pca_dims,
        power_norm=config.power_norm,
        pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
    )


def directions(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero): the space where K is judged.

    In the projection, an image whose embedding lies mostly outside the kept components sits near the origin,
    between every cluster; the silhouette, Calinski-Harabasz, Davies-Bouldin and stability then blur. On unit
    length rows the criteria's picks no longer depend on the seed (docs/quality.md).
    """
    return normalize(np.asarray(x, dtype=np.float32), norm="l2")


def _prepare(rows: np.ndarray, power_norm: bool, blocks: Sequence[tuple[int, float]] = ()) -> np.ndarray:
    rows = np.array(rows, dtype=np.float32)  # a copy (rows may be a read-only memory-map): worked on in place
    if power_norm:
        magnitude = np.abs(rows)
        np.sqrt(magnitude, out=magnitude)
        np.copysign(magnitude, rows, out=rows)
    if len(blocks) > 1:
        start = 0
        for width, weight in blocks:
            block = rows[:, start : start + width]
            block[...] = normalize(block, norm="l2") * weight
            start += width
    return normalize(rows, norm="l2", copy=False)
