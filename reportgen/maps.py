"""The 2-D map of all images: PCA (every image) and t-SNE (every image, or a seeded sample when there are many)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import sklearn

from .cache import load_memo, memo_key, save_memo
from .config import Config
from .reduce import Reduced
from .sampling import seeded_sample

log = logging.getLogger(__name__)

# t-SNE is quadratic-ish and slow on 2 cores: past this many images it places a seeded sample.
TSNE_MAX = 2000
TSNE_MIN = 6


@dataclass(frozen=True)
class Map2D:
    """2-D coordinates for the map view."""

    pca: np.ndarray  # N x 2, the first two PCA components
    tsne: np.ndarray | None  # len(tsne_indices) x 2
    tsne_indices: np.ndarray  # which images t-SNE placed
    note: str | None  # what was left out, if anything


def project_2d(reduced: Reduced, config: Config) -> Map2D:
    """PCA and t-SNE coordinates of the reduced features.

    Parameters
    ----------
    reduced : the clustering space (already PCA, so its first two columns are the PCA map).
    config : ``seed`` and the cache options are read; t-SNE coordinates are memoised in the cache folder.

    Returns
    -------
    :class:`Map2D`.
    """
    x = reduced.features
    n = len(x)
    pca = np.zeros((n, 2), dtype=np.float32)
    pca[:, : min(2, x.shape[1])] = x[:, :2]
    note = None
    indices = seeded_sample(n, TSNE_MAX, config.seed)
    if n > TSNE_MAX:
        note = f"the t-SNE view places a random sample of {TSNE_MAX:,} of the {n:,} images; the PCA view shows all"
    # t-SNE runs on the distinct points only (duplicates share a position); scikit-learn's Barnes-Hut
    # t-SNE crashes the process on a set of identical points.
    _, first, inverse = np.unique(x[indices].round(6), axis=0, return_index=True, return_inverse=True)
    if len(first) < TSNE_MIN:
        note = f"t-SNE needs at least {TSNE_MIN} distinct images ({len(first)} here); only the PCA view is shown"
        return Map2D(pca, None, np.arange(0), note)
    xy = _tsne(x[indices][first], config)[np.asarray(inverse).reshape(-1)]
    return Map2D(pca, xy, indices, note)


def _tsne(x: np.ndarray, config: Config) -> np.ndarray:
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    key = memo_key(x, "tsne", perplexity, config.seed, sklearn.__version__)
    if config.use_cache:
        memo = load_memo(config.resolved_cache_dir, "tsne", key)
        if memo and len(memo.get("xy", ())) == len(x):
            return np.asarray(memo["xy"], dtype=np.float32)
    from sklearn.manifold import TSNE

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=config.seed).fit_transform(x)
    xy = xy.astype(np.float32)
    if config.use_cache:
        save_memo(config.resolved_cache_dir, "tsne", key, {"xy": xy.tolist()})
    return xy
