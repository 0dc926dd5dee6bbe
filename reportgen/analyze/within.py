"""Within-class splits: each class clustered on its own, scored against structureless data of its shape."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_score

from ..cluster import N_INIT, kmeans, renumber_by_size
from ..config import Config
from ..discover import ImageSet
from ..errors import InvalidOptionError
from ..reduce import directions
from ..sampling import LARGE_N, seeded_sample
from .clusters import nearest, top_shares
from .records import NullSilhouette, WithinClass

NULL_DRAWS = 20
NULL_N_INIT = 3
# Fitted leave-one-folder-out on classes made by merging two real classes (bench/splits.py, docs/quality.md).
MEANINGFUL_Z = 2.0
BROAD = 0.95  # a real split needs a class about as broad as the folder's median class, or broader
SPLIT_SILHOUETTE_SAMPLE = 1000
NULL_MAX_POINTS = 2_000
MIN_PER_GROUP = 3  # a class of n images is split into at most n // 3 sub-clusters
MIN_GROUP_SHARE = 0.05  # a sub-cluster under max(3 images, 5% of the class) is a near-singleton, never a real group


def split_classes(
    images: ImageSet, x: np.ndarray, top1: tuple[str, ...], config: Config, notes: list[str]
) -> tuple[tuple[WithinClass, ...], np.ndarray]:
    """Split each chosen class into ``config.within_k`` (at most a third of its distinct images); the splits
    (meaningful ones first, then broadest first) and each image's sub-cluster (-1 where its class was not split).
    A split is meaningful when its score is at least ``MEANINGFUL_Z``, the class's breadth at least ``BROAD``, and
    no sub-cluster is a near-singleton. Classes too small to split, or split into fewer than asked, add a sentence
    to ``notes``."""
    classes = images.classes
    y = np.array(images.labels, dtype=object)
    chosen = config.within_classes if config.within_classes is not None else classes
    unknown = [c for c in chosen if c not in classes]
    if unknown:
        raise InvalidOptionError(
            f"unknown class(es) {', '.join(repr(c) for c in unknown)} in --within-classes; "
            f"classes are: {', '.join(classes)}"
        )
    within_labels = np.full(len(y), -1)
    breadth = class_breadth(x, y, classes)
    results = []
    for cls in chosen:
        idx = np.flatnonzero(y == cls)
        xs = x[idx]
        n_distinct = len(np.unique(xs.round(6), axis=0))
        k = min(config.within_k, max(2, n_distinct // MIN_PER_GROUP))
        if len(idx) <= k or n_distinct <= k:
            notes.append(
                f"class '{cls}' has {len(idx)} image{'s' if len(idx) != 1 else ''}"
                f"{f' ({n_distinct} distinct)' if n_distinct < len(idx) else ''}: too few to split into {k}"
            )
            continue
        if k < config.within_k:
            notes.append(
                f"class '{cls}' has {n_distinct} distinct images: split into {k}, not {config.within_k} "
                f"(a sub-cluster needs {MIN_PER_GROUP} images on average)"
            )
        raw, sil = split_silhouette(xs, k, config.seed)
        centres = np.stack([xs[raw == j].mean(axis=0) for j in range(k)])
        sub, centres = renumber_by_size(raw, centres)
        within_labels[idx] = sub
        null = null_silhouettes(xs[seeded_sample(len(xs), NULL_MAX_POINTS, config.seed)], k, config.seed)
        sd = float(null.std(ddof=1)) if len(null) > 1 else 0.0
        score = (sil - float(null.mean())) / max(sd, 1e-9)
        sizes = np.bincount(sub, minlength=k)
        results.append(
            WithinClass(
                label=cls,
                k=k,
                sizes=tuple(int(s) for s in sizes),
                silhouette=sil,
                null_silhouette=NullSilhouette(float(null.mean()), sd),
                split_score=float(score),
                breadth=breadth[cls],
                meaningful=meaningful(float(score), breadth[cls], sizes),
                top_predictions=tuple(top_shares([top1[i] for i in idx[sub == j]]) for j in range(k)),
                indices=tuple(int(i) for i in idx),
                sub_labels=tuple(int(s) for s in sub),
                nearest=tuple(nearest(idx[sub == j], x, centres[j]) for j in range(k)),
            )
        )
    results.sort(key=rank)
    return tuple(results), within_labels


def near_singleton(sizes: np.ndarray) -> bool:
    """Whether a sub-cluster has under ``max(MIN_PER_GROUP, MIN_GROUP_SHARE of the class)`` images."""
    return bool(sizes.min() < max(MIN_PER_GROUP, MIN_GROUP_SHARE * sizes.sum()))


def meaningful(score: float, breadth: float, sizes: np.ndarray, z: float = MEANINGFUL_Z, broad: float = BROAD) -> bool:
    """Whether a split with this score, class breadth and sub-cluster sizes is real (the defaults are the fitted
    thresholds): distinct halves, a broad class, and no near-singleton."""
    return bool(score >= z and breadth >= broad and not near_singleton(sizes))


def order_key(real: bool, breadth: float, label: str) -> tuple[bool, float, str]:
    """The order of the splits: real (meaningful) ones first, then the broadest classes."""
    return not real, -breadth, label


def rank(w: WithinClass) -> tuple[bool, float, str]:
    """:func:`order_key` of a split."""
    return order_key(w.meaningful, w.breadth, w.label)


def class_breadth(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Each class's spread (mean squared distance to its centre, on :func:`reduce.directions`) over the median
    spread of the folder's classes of two or more images: a class made of two kinds of image is broader than
    one made of a single kind."""
    d = directions(x)
    spread = {}
    for cls in classes:
        rows = d[y == cls]
        spread[cls] = float(((rows - rows.mean(axis=0)) ** 2).sum(axis=1).mean()) if len(rows) else 0.0
    typical = float(np.median([spread[c] for c in classes if (y == c).sum() >= 2] or [0.0]))
    return {cls: spread[cls] / typical if typical > 0 else 1.0 for cls in classes}


def split_silhouette(xs: np.ndarray, k: int, seed: int, n_init: int = N_INIT) -> tuple[np.ndarray, float]:
    """K-means sub-cluster labels and their mean silhouette (K-means fitted on a seeded sample past
    ``sampling.LARGE_N`` rows, the rest assigned to its centres)."""
    fit = seeded_sample(len(xs), LARGE_N, seed)
    km = kmeans(k, seed, n_init=n_init).fit(xs[fit])
    labels = km.labels_ if len(fit) == len(xs) else km.predict(xs)
    sample = min(len(xs), SPLIT_SILHOUETTE_SAMPLE)
    return labels, float(silhouette_score(xs, labels, sample_size=sample, random_state=seed))


def null_silhouettes(xs: np.ndarray, k: int, seed: int, draws: int = NULL_DRAWS) -> np.ndarray:
    """Silhouettes of the same K-means on ``draws`` structureless samples shaped like ``xs``.

    Each sample has as many points as ``xs``, drawn from one Gaussian with the mean and covariance of ``xs``
    (through its SVD, so it works when there are fewer points than dimensions).
    """
    rng = np.random.default_rng(seed)
    n = len(xs)
    centred = xs - xs.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    scale = s / np.sqrt(max(n - 1, 1))
    out = []
    for d in range(draws):
        sample = xs.mean(axis=0) + (rng.standard_normal((n, len(s))) * scale) @ vt
        out.append(split_silhouette(sample, k, seed + d, NULL_N_INIT)[1])
    return np.array(out)
