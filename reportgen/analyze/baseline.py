"""The pixel baseline check: would clustering the raw pixels group the images better than the network's features?

Every report clusters a cheap baseline at the same K, with the same method family (K-means, seed ``seed``): the
16 x 16 grayscale pixels of each image (the ``pixels`` spec's vector), taken from the thumbnails the run already
holds rather than from the files, then reduced as any spec is (signed square root, L2, PCA). With labels the two
are compared by NMI against the folder labels; the baseline **wins clearly** when its NMI is at least ``MARGIN``
above the features'. ``MARGIN`` was fitted leave-one-folder-out on the benchmark folders (``bench/baseline.py``,
docs/quality.md). Without labels the two are compared by silhouette, each in its own space, which says how well
each space separates its own clusters, not which groups are right: the report says so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..cluster import kmeans
from ..config import Config
from ..reduce import reduce
from .clusters import silhouettes
from .labels import label_metrics

SIZE = 16
LUMA = (0.299, 0.587, 0.114)
MARGIN = 0.12  # NMI points; fitted on 24 benchmark folders, 23 of 24 right left-out (bench/baseline.py)


@dataclass(frozen=True)
class BaselineCheck:
    """The pixel baseline at the report's K beside the report's own clusters."""

    k: int
    labeled: bool
    score: str  # "nmi" with labels, "silhouette" without
    features: float | None  # the report's clusters
    pixels: float | None  # the pixel baseline's
    margin: float  # the threshold the baseline must clear
    wins: bool  # labeled only: the baseline's NMI is at least ``margin`` above the features'


def pixel_vectors(thumbnails: tuple[bytes, ...], size: int = SIZE) -> np.ndarray:
    """N x size² grayscale pixels, 0..1, of the centre square of each thumbnail resized to ``size``."""
    out = np.empty((len(thumbnails), size * size), dtype=np.float32)
    for i, data in enumerate(thumbnails):
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (2 * size, 2 * size))  # JPEG: decode at a reduced scale, still at least twice the size
            rgb = im.convert("RGB")
            side = min(rgb.size)
            left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
            square = rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
            out[i] = (np.asarray(square, dtype=np.float32) / 255 @ np.asarray(LUMA, dtype=np.float32)).ravel()
    return out


def baseline_check(
    thumbnails: tuple[bytes, ...],
    labels: np.ndarray,
    k: int,
    y: np.ndarray | None,
    features_score: float | None,
    config: Config,
) -> BaselineCheck | None:
    """The check for a run whose clusters are ``labels`` (``k`` of them) and whose own score is
    ``features_score`` (NMI with labels ``y``, else the mean silhouette); ``None`` below two clusters."""
    if k < 2 or len(thumbnails) <= k:
        return None
    x = reduce(pixel_vectors(thumbnails), config).features  # reduce reads pca_dims, power_norm and seed only
    found = np.asarray(kmeans(k, config.seed, len(x)).fit_predict(x))
    if y is not None:
        pixels = label_metrics(y, found).nmi
        wins = features_score is not None and pixels >= features_score + MARGIN
        return BaselineCheck(k, True, "nmi", features_score, float(pixels), MARGIN, bool(wins))
    per_image = silhouettes(x, found, k, config.seed)
    pixels_sil = float(np.nanmean(per_image)) if per_image is not None else None
    return BaselineCheck(k, False, "silhouette", features_score, pixels_sil, MARGIN, False)
