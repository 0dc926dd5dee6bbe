"""Stage 6: what the clusters say about the classes.

Rules (also in the README):

* A class's **majority cluster** is the cluster holding most of its images (ties: the lower cluster number).
* An **oddball** is an image whose cluster is not its class's majority cluster. Each is measured by
  ``d_class`` (distance to its class's centre, the mean of the class's images) and ``d_cluster`` (distance to
  the centre of the cluster it joined), in the PCA space; oddballs are ranked by ``d_class - d_cluster``, how
  much closer the image sits to the cluster it joined than to its own class.
* A cluster is **shared** ("classes grouped together") when at least two classes each put at least
  ``max(2, 20% of the cluster's size)`` images in it.
* **Within-class** splits run K-means with ``within_k`` clusters on one class's images in the same space; a
  class needs more than ``within_k`` images. The **split score** compares the split's mean silhouette with the
  silhouettes the same K-means gets on structureless data: ``NULL_DRAWS`` samples from one Gaussian with the
  class's own mean and covariance (same size, same spread, no groups). The score is the z-score of the real
  silhouette against those; a split is **meaningful** when the score is at least ``MEANINGFUL_Z``. For classes
  over ``SPLIT_SILHOUETTE_SAMPLE`` images, every one of those silhouettes is computed on a seeded sample of
  that many (the same estimator for the real split and the null draws); the null draws have at most
  ``NULL_MAX_POINTS`` points, and a class over ``sampling.LARGE_N`` images is split by K-means fitted on a
  seeded sample of that many.
* **Silhouettes per image** (the knife plot, each cluster's silhouette) use a seeded sample of
  ``SILHOUETTE_SAMPLE`` images when there are more; images outside the sample have NaN.
* **Outliers** (unlabeled folders, instead of oddballs): images farther from their cluster's centre than
  Q3 + 3 IQR of that cluster's distances (Tukey's "far out" fence: distances to a centre are right-skewed, and
  the usual 1.5 IQR flags ordinary images), for clusters of at least 4 images.
* **Purity** is the share of images that belong to their cluster's most common class.
* The count matrix's columns are shown in the order that best matches the classes (Hungarian matching of
  classes to clusters on the counts), unmatched clusters last.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
    silhouette_samples,
    silhouette_score,
)
from sklearn.metrics.cluster import contingency_matrix
from sklearn.neighbors import NearestNeighbors

from .choose_k import N_INIT
from .cluster import Clustering, renumber_by_size
from .config import Config
from .embed import Embeddings
from .errors import InvalidOptionError
from .reduce import Reduced, directions
from .sampling import LARGE_N, seeded_sample

log = logging.getLogger(__name__)

SHARED_MIN_SHARE = 0.20
SHARED_MIN_COUNT = 2
MONTAGE_SIZE = 12
PART_MONTAGE_SIZE = 6
N_NEIGHBOURS = 3
NULL_DRAWS = 20
NULL_N_INIT = 3
MEANINGFUL_Z = 2.0
SPLIT_SILHOUETTE_SAMPLE = 1000
SILHOUETTE_SAMPLE = 10_000
# Oddballs and outliers whose 3 nearest images are found (the report shows 60; summary.json keeps these).
DETAILED = 200
NULL_MAX_POINTS = 2_000
TUKEY = 3.0
OUTLIER_MIN_CLUSTER = 4


@dataclass(frozen=True)
class ClusterInfo:
    """One global cluster: its size, name, most common predictions and most typical members."""

    cluster: int
    size: int
    name: str  # "<most common top-1 prediction> — <share that agrees>"
    top_predictions: tuple[tuple[str, float], ...]  # (ImageNet class, share of members whose top-1 it is)
    nearest: tuple[int, ...]  # image indices nearest the centre, nearest first
    class_counts: tuple[tuple[str, int], ...]  # most common class first (labeled only)
    silhouette: float | None  # mean silhouette of its members


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
    d_class: float  # distance to the class centre
    d_cluster: float  # distance to the centre of the cluster it joined
    neighbours: tuple[int, ...]  # nearest other images, nearest first (the first DETAILED oddballs only)

    @property
    def margin(self) -> float:
        return self.d_class - self.d_cluster


@dataclass(frozen=True)
class Outlier:
    """An image unusually far from its own cluster's centre (unlabeled folders)."""

    index: int
    cluster: int
    distance: float
    threshold: float  # the cluster's Tukey fence
    neighbours: tuple[int, ...]


@dataclass(frozen=True)
class SharedCluster:
    """A cluster that several classes share, with each class's count and most typical images in it."""

    cluster: int
    classes: tuple[tuple[str, int], ...]
    parts: tuple[tuple[int, ...], ...]  # per class in ``classes``: its images in the cluster nearest the centre


@dataclass(frozen=True)
class WithinClass:
    """A class split into ``k`` sub-clusters, and whether the split is more than noise."""

    label: str
    k: int
    indices: tuple[int, ...]  # image indices of the class
    sub_labels: tuple[int, ...]  # sub-cluster of each of ``indices``
    sizes: tuple[int, ...]
    silhouette: float
    null_silhouette_mean: float
    null_silhouette_sd: float
    split_score: float  # z-score of ``silhouette`` against the structureless reference
    meaningful: bool
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
    silhouettes: np.ndarray | None  # per image at the chosen K, NaN outside the sample (None when K < 2)
    counts: pd.DataFrame | None  # classes x clusters
    column_order: tuple[int, ...]  # clusters in the order that best matches the classes
    spreads: tuple[ClassSpread, ...]
    oddballs: tuple[Oddball, ...]  # most odd first
    outliers: tuple[Outlier, ...]  # unlabeled only, farthest beyond the fence first
    is_oddball: np.ndarray  # bool N: an oddball (labeled) or an outlier (unlabeled)
    shared: tuple[SharedCluster, ...]
    within: tuple[WithinClass, ...]  # highest split score first
    within_labels: np.ndarray  # int N, -1 where the image's class was not split
    metrics: Metrics | None
    notes: tuple[str, ...]


def analyze(embeddings: Embeddings, reduced: Reduced, clustering: Clustering, config: Config) -> Analysis:
    """Compare clusters with classes, find oddballs or outliers, and split classes.

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
    silhouettes = _silhouettes(x, labels, clustering.k, config.seed)
    neighbours = NearestNeighbors(n_neighbors=min(N_NEIGHBOURS + 1, n)).fit(x)

    def nearest_others(i: int) -> tuple[int, ...]:
        idx = neighbours.kneighbors(x[i : i + 1], return_distance=False)[0]
        return tuple(int(j) for j in idx if j != i)[:N_NEIGHBOURS]

    def with_neighbours(found: list) -> tuple:  # noqa: ANN001
        """The most odd first, neighbours filled in for the first ``DETAILED`` (each costs a pass over N)."""
        return tuple(replace(o, neighbours=nearest_others(o.index)) if r < DETAILED else o for r, o in enumerate(found))

    clusters = tuple(
        _cluster_info(c, labels, clustering, x, top1, images.labels if images.labeled else None, silhouettes)
        for c in range(clustering.k)
    )
    if not images.labeled:
        outliers = with_neighbours(_outliers(clustering))
        is_outlier = np.zeros(n, dtype=bool)
        is_outlier[[o.index for o in outliers]] = True
        return Analysis(
            labeled=False,
            top1=top1,
            clusters=clusters,
            silhouettes=silhouettes,
            counts=None,
            column_order=tuple(range(clustering.k)),
            spreads=(),
            oddballs=(),
            outliers=outliers,
            is_oddball=is_outlier,
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
    class_of = {cls: j for j, cls in enumerate(images.classes)}
    y_idx = np.array([class_of[v] for v in y])
    centres = np.stack([x[y_idx == j].mean(axis=0) for j in range(len(images.classes))])
    home = np.array([majority[cls] for cls in images.classes])[y_idx]
    odd_idx = np.flatnonzero(labels != home)
    d_class = np.linalg.norm(x[odd_idx] - centres[y_idx[odd_idx]], axis=1)
    found = [
        Oddball(int(i), y[i], int(labels[i]), int(home[i]), float(dc), float(clustering.distances[i]), ())
        for i, dc in zip(odd_idx, d_class, strict=True)
    ]
    found.sort(key=lambda o: (-o.margin, images.paths[o.index]))
    oddballs = with_neighbours(found)
    is_oddball = np.zeros(n, dtype=bool)
    is_oddball[odd_idx] = True

    within, within_labels = _within(images.classes, y, x, top1, config, notes)
    return Analysis(
        labeled=True,
        top1=top1,
        clusters=clusters,
        silhouettes=silhouettes,
        counts=counts,
        column_order=_column_order(counts.to_numpy()),
        spreads=spreads,
        oddballs=oddballs,
        outliers=(),
        is_oddball=is_oddball,
        shared=_shared(counts, y, labels, x, clustering),
        within=within,
        within_labels=within_labels,
        metrics=label_metrics(y, labels),
        notes=tuple(notes),
    )


def _silhouettes(x: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray | None:
    """Per-image silhouettes, on a seeded sample of ``SILHOUETTE_SAMPLE`` images when there are more.

    Measured on :func:`reduce.directions`, as the silhouette curve of the K choice is, so the two agree.
    """
    n = len(x)
    if not 2 <= k <= n - 1:
        return None
    sample = seeded_sample(n, SILHOUETTE_SAMPLE, seed)
    if len(np.unique(labels[sample])) < 2:
        return None
    values = np.full(n, np.nan)
    values[sample] = silhouette_samples(directions(x[sample]), labels[sample])
    return values


def _top_shares(names: list[str], limit: int = 3) -> tuple[tuple[str, float], ...]:
    total = len(names)
    return tuple((name, count / total) for name, count in Counter(names).most_common(limit)) if total else ()


def _nearest(members: np.ndarray, x: np.ndarray, centre: np.ndarray, limit: int = MONTAGE_SIZE) -> tuple[int, ...]:
    dist = np.linalg.norm(x[members] - centre, axis=1)
    order = np.lexsort((members, dist))
    return tuple(int(members[j]) for j in order[:limit])


def _cluster_info(
    c: int,
    labels: np.ndarray,
    clustering: Clustering,
    x: np.ndarray,
    top1: tuple[str, ...],
    y: tuple | None,
    silhouettes: np.ndarray | None,
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
        silhouette=_nanmean(silhouettes[members]) if silhouettes is not None else None,
    )


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


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


def _column_order(counts: np.ndarray) -> tuple[int, ...]:
    """Clusters ordered to match the classes (Hungarian matching on the counts), the rest by size."""
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = [int(c) for _, c in sorted(zip(rows, cols, strict=True))]
    rest = sorted(set(range(counts.shape[1])) - set(matched), key=lambda c: (-counts[:, c].sum(), c))
    return tuple(matched + rest)


def _shared(
    counts: pd.DataFrame, y: np.ndarray, labels: np.ndarray, x: np.ndarray, clustering: Clustering
) -> tuple[SharedCluster, ...]:
    shared = []
    for c in counts.columns:
        col = counts[c]
        threshold = max(SHARED_MIN_COUNT, SHARED_MIN_SHARE * col.sum())
        members = sorted(((str(cls), int(v)) for cls, v in col.items() if v >= threshold), key=lambda t: (-t[1], t[0]))
        if len(members) >= 2:
            parts = tuple(
                _nearest(np.flatnonzero((labels == c) & (y == cls)), x, clustering.centers[c], PART_MONTAGE_SIZE)
                for cls, _ in members
            )
            shared.append(SharedCluster(int(c), tuple(members), parts))
    return tuple(shared)


def _outliers(clustering: Clustering) -> list[Outlier]:
    found = []
    for c in range(clustering.k):
        members = np.flatnonzero(clustering.labels == c)
        if len(members) < OUTLIER_MIN_CLUSTER:
            continue
        d = clustering.distances[members]
        q1, q3 = np.percentile(d, [25, 75])
        fence = float(q3 + TUKEY * (q3 - q1))
        for i in members[d > fence]:
            found.append(Outlier(int(i), c, float(clustering.distances[i]), fence, ()))
    found.sort(key=lambda o: (-(o.distance - o.threshold), o.index))
    return found


def label_metrics(y: np.ndarray, labels: np.ndarray) -> Metrics:
    """NMI, ARI and purity of ``labels`` against the class labels ``y``."""
    table = contingency_matrix(y, labels)
    return Metrics(
        nmi=float(normalized_mutual_info_score(y, labels)),
        ari=float(adjusted_rand_score(y, labels)),
        purity=float(table.max(axis=0).sum() / table.sum()),
    )


def split_silhouette(xs: np.ndarray, k: int, seed: int, n_init: int = N_INIT) -> tuple[np.ndarray, float]:
    """K-means sub-cluster labels (numbered by size) and their mean silhouette."""
    fit = seeded_sample(len(xs), LARGE_N, seed)
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(xs[fit])
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
        if len(idx) <= k or n_distinct <= k:
            notes.append(
                f"class '{cls}' has {len(idx)} image{'s' if len(idx) != 1 else ''}"
                f"{f' ({n_distinct} distinct)' if n_distinct < len(idx) else ''}: too few to split into {k}"
            )
            continue
        raw, sil = split_silhouette(xs, k, config.seed)
        centres = np.stack([xs[raw == j].mean(axis=0) for j in range(k)])
        sub, centres = renumber_by_size(raw, centres)
        within_labels[idx] = sub
        null = null_silhouettes(xs[seeded_sample(len(xs), NULL_MAX_POINTS, config.seed)], k, config.seed)
        sd = float(null.std(ddof=1)) if len(null) > 1 else 0.0
        score = (sil - float(null.mean())) / max(sd, 1e-9)
        results.append(
            WithinClass(
                label=cls,
                k=k,
                indices=tuple(int(i) for i in idx),
                sub_labels=tuple(int(s) for s in sub),
                sizes=tuple(int(s) for s in np.bincount(sub, minlength=k)),
                silhouette=sil,
                null_silhouette_mean=float(null.mean()),
                null_silhouette_sd=sd,
                split_score=float(score),
                meaningful=bool(score >= MEANINGFUL_Z),
                top_predictions=tuple(_top_shares([top1[i] for i in idx[sub == j]]) for j in range(k)),
                nearest=tuple(_nearest(idx[sub == j], x, centres[j]) for j in range(k)),
            )
        )
    results.sort(key=lambda w: (-w.split_score, w.label))
    return tuple(results), within_labels
