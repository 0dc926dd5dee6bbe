"""Stage 6: what the clusters say about the classes.

Rules (also in the README):

* A class's **majority cluster** is the cluster holding most of its images (ties: the lower cluster number).
* An **oddball** is an image whose cluster is not its class's majority cluster. Oddballs are ranked by the
  margin ``d(x, centre of the class's majority cluster) - d(x, centre of its own cluster)``: how much closer
  the image sits to the cluster it joined than to where its class lives.
* A cluster is **shared** ("classes grouped together") when at least two classes each put at least
  ``max(2, 20% of the cluster's size)`` images in it.
* **Within-class** splits run K-means with ``within_k`` clusters on one class's images in the same reduced
  space; a class needs more than ``within_k`` images to be split.
* **Purity** is the share of images that belong to their cluster's most common class.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.metrics.cluster import contingency_matrix

from .choose_k import N_INIT
from .cluster import Clustering, renumber_by_size
from .config import Config
from .embed import Embeddings
from .errors import InvalidOptionError
from .reduce import Reduced

log = logging.getLogger(__name__)

SHARED_MIN_SHARE = 0.20
SHARED_MIN_COUNT = 2
MONTAGE_SIZE = 12


@dataclass(frozen=True)
class ClusterInfo:
    """One global cluster: its size, name, most common predictions and most typical members."""

    cluster: int
    size: int
    name: str
    top_predictions: tuple[tuple[str, float], ...]  # (ImageNet class, share of members whose top-1 it is)
    nearest: tuple[int, ...]  # image indices nearest the centre, nearest first
    class_counts: tuple[tuple[str, int], ...]  # most common class first (labeled only)


@dataclass(frozen=True)
class ClassSpread:
    """How one class spreads over the clusters."""

    label: str
    size: int
    counts: tuple[int, ...]  # per cluster
    majority_cluster: int
    majority_share: float
    n_clusters: int  # clusters holding at least one of its images


@dataclass(frozen=True)
class Oddball:
    """An image that landed away from its class's majority cluster."""

    index: int
    label: str
    cluster: int
    class_cluster: int
    margin: float


@dataclass(frozen=True)
class SharedCluster:
    """A cluster that several classes share, with each class's count in it."""

    cluster: int
    classes: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class WithinClass:
    """A class split into ``k`` sub-clusters."""

    label: str
    k: int
    indices: tuple[int, ...]  # image indices of the class
    sub_labels: tuple[int, ...]  # sub-cluster of each of ``indices``
    sizes: tuple[int, ...]
    silhouette: float | None
    top_predictions: tuple[tuple[tuple[str, float], ...], ...]  # per sub-cluster
    nearest: tuple[tuple[int, ...], ...]  # per sub-cluster, image indices nearest its centre


@dataclass(frozen=True)
class Metrics:
    """Agreement between the clusters and the folder labels."""

    nmi: float
    ari: float
    purity: float


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows about the clustering; label-based parts are empty when unlabeled."""

    labeled: bool
    top1: tuple[str, ...]  # each image's top-1 ImageNet class
    clusters: tuple[ClusterInfo, ...]
    counts: pd.DataFrame | None  # classes x clusters
    spreads: tuple[ClassSpread, ...]
    oddballs: tuple[Oddball, ...]  # most odd first
    is_oddball: np.ndarray  # bool N
    shared: tuple[SharedCluster, ...]
    within: tuple[WithinClass, ...]
    within_labels: np.ndarray  # int N, -1 where the image's class was not split
    metrics: Metrics | None
    notes: tuple[str, ...]


def analyze(embeddings: Embeddings, reduced: Reduced, clustering: Clustering, config: Config) -> Analysis:
    """Compare clusters with classes and split classes.

    Parameters
    ----------
    embeddings : images, labels and top-5 predictions.
    reduced : the clustering space.
    clustering : the global clusters.
    config : ``within_k``, ``within_classes`` and ``seed`` are read.

    Returns
    -------
    :class:`Analysis`, by the rules in this module's docstring.
    """
    images = embeddings.images
    n = len(images)
    top1 = tuple(embeddings.categories[i] for i in embeddings.top5_index[:, 0])
    labels = clustering.labels
    x = reduced.features
    notes: list[str] = []

    clusters = tuple(
        _cluster_info(c, labels, clustering, x, top1, images.labels if images.labeled else None)
        for c in range(clustering.k)
    )
    if not images.labeled:
        return Analysis(
            labeled=False,
            top1=top1,
            clusters=clusters,
            counts=None,
            spreads=(),
            oddballs=(),
            is_oddball=np.zeros(n, dtype=bool),
            shared=(),
            within=(),
            within_labels=np.full(n, -1),
            metrics=None,
            notes=tuple(notes),
        )

    y = np.array(images.labels, dtype=object)
    counts = pd.crosstab(
        pd.Categorical(y, categories=images.classes),
        pd.Categorical(labels, categories=range(clustering.k)),
        dropna=False,
    )
    counts.index.name, counts.columns.name = "class", "cluster"
    spreads = tuple(_spread(cls, counts.loc[cls].to_numpy()) for cls in images.classes)
    majority = {s.label: s.majority_cluster for s in spreads}

    oddballs: list[Oddball] = []
    for i in range(n):
        home = majority[y[i]]
        if labels[i] != home:
            margin = float(np.linalg.norm(x[i] - clustering.centers[home]) - clustering.distances[i])
            oddballs.append(Oddball(i, y[i], int(labels[i]), home, margin))
    oddballs.sort(key=lambda o: (-o.margin, images.paths[o.index]))
    is_oddball = np.zeros(n, dtype=bool)
    is_oddball[[o.index for o in oddballs]] = True

    within, within_labels = _within(images.classes, y, x, top1, config, notes)
    return Analysis(
        labeled=True,
        top1=top1,
        clusters=clusters,
        counts=counts,
        spreads=spreads,
        oddballs=tuple(oddballs),
        is_oddball=is_oddball,
        shared=_shared(counts),
        within=within,
        within_labels=within_labels,
        metrics=_metrics(y, labels),
        notes=tuple(notes),
    )


def _top_shares(names: list[str], limit: int = 3) -> tuple[tuple[str, float], ...]:
    total = len(names)
    return tuple((name, count / total) for name, count in Counter(names).most_common(limit)) if total else ()


def _nearest(members: np.ndarray, x: np.ndarray, centre: np.ndarray, limit: int = MONTAGE_SIZE) -> tuple[int, ...]:
    dist = np.linalg.norm(x[members] - centre, axis=1)
    order = np.lexsort((members, dist))
    return tuple(int(members[j]) for j in order[:limit])


def _cluster_info(
    c: int, labels: np.ndarray, clustering: Clustering, x: np.ndarray, top1: tuple[str, ...], y: tuple | None
) -> ClusterInfo:
    members = np.flatnonzero(labels == c)
    preds = _top_shares([top1[i] for i in members])
    name = f"{preds[0][0]} — {preds[0][1]:.0%}" if preds else "empty"
    class_counts = tuple(Counter(y[i] for i in members).most_common()) if y is not None else ()
    return ClusterInfo(
        cluster=c,
        size=len(members),
        name=name,
        top_predictions=preds,
        nearest=_nearest(members, x, clustering.centers[c]),
        class_counts=class_counts,
    )


def _spread(label: str, row: np.ndarray) -> ClassSpread:
    size = int(row.sum())
    major = int(np.argmax(row))
    return ClassSpread(
        label=label,
        size=size,
        counts=tuple(int(v) for v in row),
        majority_cluster=major,
        majority_share=float(row[major] / size) if size else 0.0,
        n_clusters=int((row > 0).sum()),
    )


def _shared(counts: pd.DataFrame) -> tuple[SharedCluster, ...]:
    shared = []
    for c in counts.columns:
        col = counts[c]
        threshold = max(SHARED_MIN_COUNT, SHARED_MIN_SHARE * col.sum())
        members = sorted(((str(cls), int(v)) for cls, v in col.items() if v >= threshold), key=lambda t: (-t[1], t[0]))
        if len(members) >= 2:
            shared.append(SharedCluster(int(c), tuple(members)))
    return tuple(shared)


def _metrics(y: np.ndarray, labels: np.ndarray) -> Metrics:
    table = contingency_matrix(y, labels)
    return Metrics(
        nmi=float(normalized_mutual_info_score(y, labels)),
        ari=float(adjusted_rand_score(y, labels)),
        purity=float(table.max(axis=0).sum() / table.sum()),
    )


def _within(
    classes: tuple[str, ...], y: np.ndarray, x: np.ndarray, top1: tuple[str, ...], config: Config, notes: list[str]
) -> tuple[tuple[WithinClass, ...], np.ndarray]:
    chosen = config.within_classes if config.within_classes is not None else classes
    unknown = [c for c in chosen if c not in classes]
    if unknown:
        raise InvalidOptionError(
            f"unknown class(es) {', '.join(repr(c) for c in unknown)} in --within-classes; "
            f"classes are: {', '.join(classes)}"
        )
    k = config.within_k
    within_labels = np.full(len(y), -1)
    results = []
    for cls in chosen:
        idx = np.flatnonzero(y == cls)
        xs = x[idx]
        n_distinct = len(np.unique(xs.round(6), axis=0))
        if len(idx) <= k or n_distinct < k:
            notes.append(
                f"class '{cls}' has {len(idx)} image{'s' if len(idx) != 1 else ''}"
                f"{f' ({n_distinct} distinct)' if n_distinct < len(idx) else ''}: too few to split into {k}"
            )
            continue
        km = KMeans(n_clusters=k, n_init=N_INIT, random_state=config.seed).fit(xs)
        sub, centers = renumber_by_size(km.labels_, km.cluster_centers_)
        sizes = np.bincount(sub, minlength=k)
        within_labels[idx] = sub
        sil = float(silhouette_score(xs, sub)) if k < len(idx) else None
        results.append(
            WithinClass(
                label=cls,
                k=k,
                indices=tuple(int(i) for i in idx),
                sub_labels=tuple(int(s) for s in sub),
                sizes=tuple(int(s) for s in sizes),
                silhouette=sil,
                top_predictions=tuple(_top_shares([top1[i] for i in idx[sub == j]]) for j in range(k)),
                nearest=tuple(_nearest(idx[sub == j], x, centers[j]) for j in range(k)),
            )
        )
    return tuple(results), within_labels
