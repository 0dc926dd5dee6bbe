"""Per-cluster facts that need no labels: silhouettes, names, typical members, neighbours and outliers."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.metrics import silhouette_samples
from sklearn.neighbors import NearestNeighbors

from ..cluster.stage import Clustering
from ..discover import ImageSet
from ..extract import Embeddings
from ..reduce import directions
from ..sampling import seeded_sample
from . import makeup
from .records import ClusterInfo, Neighbour, Outlier, Share

MONTAGE_SIZE = 12
NOISE = -1  # the number the outputs give the group of images in no cluster (Clustering's noise group)
NOISE_NAME = "not in any cluster"
N_NEIGHBOURS = 3
SILHOUETTE_SAMPLE = 10_000
# Oddballs and outliers whose 3 nearest images are found (the report shows 60; summary.json keeps these).
DETAILED = 200
TUKEY = 3.0
OUTLIER_MIN_CLUSTER = 4


class Neighbours:
    """The nearest other images of an image, in the clustering space."""

    def __init__(self, x: np.ndarray, images: ImageSet) -> None:
        self.x = x
        self.images = images
        self.index = NearestNeighbors(n_neighbors=min(N_NEIGHBOURS + 1, len(x))).fit(x)

    def of(self, i: int) -> tuple[int, ...]:
        """Indices of the ``N_NEIGHBOURS`` images nearest image ``i``, nearest first."""
        idx = self.index.kneighbors(self.x[i : i + 1], return_distance=False)[0]
        return tuple(int(j) for j in idx if j != i)[:N_NEIGHBOURS]

    def records(self, i: int) -> tuple[Neighbour, ...]:
        return tuple(Neighbour(self.images.paths[j], self.images.labels[j], j) for j in self.of(i))


def silhouettes(x: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray | None:
    """Per-image silhouettes, on a seeded sample of ``SILHOUETTE_SAMPLE`` images when there are more.

    Measured on :func:`reduce.directions`, as the silhouette curve of the K choice is, so the two agree.
    """
    n = len(x)
    if not 2 <= k <= n - 1:
        return None
    sample = seeded_sample(n, SILHOUETTE_SAMPLE, seed)
    sample = sample[labels[sample] < k]  # images in no cluster (the noise group, number k) have none
    if len(np.unique(labels[sample])) < 2:
        return None
    values = np.full(n, np.nan)
    values[sample] = silhouette_samples(directions(x[sample]), labels[sample])
    return values


def top_shares(names: list[str], limit: int = 3) -> tuple[Share, ...]:
    """The ``limit`` most common of ``names`` with their shares (empty names, from a headless model, skipped)."""
    names = [name for name in names if name]
    total = len(names)
    return tuple(Share(name, count / total) for name, count in Counter(names).most_common(limit)) if total else ()


def nearest(members: np.ndarray, x: np.ndarray, centre: np.ndarray, limit: int = MONTAGE_SIZE) -> tuple[int, ...]:
    """The ``limit`` of ``members`` nearest ``centre``, nearest first (ties: lower index)."""
    dist = np.linalg.norm(x[members] - centre, axis=1)
    order = np.lexsort((members, dist))
    return tuple(int(members[j]) for j in order[:limit])


def cluster_infos(
    clustering: Clustering, x: np.ndarray, top1: tuple[str, ...], images: ImageSet, per_image: np.ndarray | None
) -> tuple[ClusterInfo, ...]:
    """Each cluster's size, name, predictions, classes, whether it is a catch-all, and its montage
    (the rules are in :mod:`.makeup`)."""
    overall = None if per_image is None else _nanmean(per_image)
    mean_size = int(clustering.in_cluster.sum()) / max(clustering.k, 1)
    parts = []
    for c in range(clustering.n_groups):
        members = np.flatnonzero(clustering.labels == c)
        dist = np.linalg.norm(x[members] - clustering.centers[c], axis=1)
        preds = top_shares([top1[i] for i in members])
        silhouette = _nanmean(per_image[members]) if per_image is not None and c < clustering.k else None
        if c == clustering.k:  # the noise group: what the method left out of every cluster
            classes = dict(Counter(images.labels[i] for i in members).most_common()) if images.labeled else {}
            shown = makeup.spread_montage(members, dist, MONTAGE_SIZE)
            parts.append((members, preds, None, classes, NOISE_NAME, False, shown))
            continue
        if images.labeled:
            classes = dict(Counter(images.labels[i] for i in members).most_common())
            name = makeup.labeled_name(classes, len(members))
            loose = makeup.is_catch_all(classes, len(members))
            shown = makeup.labeled_montage(members, images.labels, dist, classes, MONTAGE_SIZE)
        else:
            classes = {}
            name = (
                makeup.prediction_name([(p.name, p.share) for p in preds])
                if preds
                else f"cluster {clustering.id_of(c)}"
            )
            loose = makeup.is_loose(len(members), mean_size, silhouette, overall)
            shown = makeup.spread_montage(members, dist, MONTAGE_SIZE)
        parts.append((members, preds, silhouette, classes, name, loose, shown))
    hints = [preds[0].name if preds else "" for _, preds, *_ in parts]
    ids = clustering.cluster_ids
    kept = [clustering.kept_name(c) for c in range(len(parts))]
    names = makeup.unique_names([part[4] for part in parts], hints, ids, kept)
    return tuple(
        ClusterInfo(
            cluster=ids[c],
            name=names[c],
            size=len(members),
            silhouette=silhouette,
            top_predictions=preds,
            classes=classes,
            montage=tuple(images.paths[i] for i in shown),
            catch_all=loose,
            nearest=shown,
        )
        for c, (members, preds, silhouette, classes, _, loose, shown) in enumerate(parts)
    )


def outliers(
    clustering: Clustering, clusters: tuple[ClusterInfo, ...], neighbours: Neighbours, embeddings: Embeddings
) -> tuple[tuple[Outlier, ...], np.ndarray]:
    """Images beyond their cluster's Tukey fence: the first ``DETAILED`` (farthest beyond first) in detail, and
    the indices of every one."""
    found = []
    for c in range(clustering.k):
        members = np.flatnonzero(clustering.labels == c)
        if len(members) < OUTLIER_MIN_CLUSTER:
            continue
        d = clustering.distances[members]
        q1, q3 = np.percentile(d, [25, 75])
        fence = float(q3 + TUKEY * (q3 - q1))
        found.extend((int(i), c, float(clustering.distances[i]), fence) for i in members[d > fence])
    found.sort(key=lambda o: (-(o[2] - o[3]), o[0]))
    paths = embeddings.images.paths
    out = []
    for i, c, distance, fence in found[:DETAILED]:
        near = neighbours.of(i)
        out.append(
            Outlier(
                path=paths[i],
                cluster=clusters[c].cluster,
                cluster_name=clusters[c].name,
                distance=distance,
                threshold=fence,
                neighbours=tuple(paths[j] for j in near),
                top_predictions=top_predictions(embeddings, i),
                index=i,
                neighbour_index=near,
            )
        )
    return tuple(out), np.array([o[0] for o in found], dtype=int)


def top_predictions(embeddings: Embeddings, i: int, n: int = 3) -> tuple[tuple[str, float], ...]:
    """Image ``i``'s ``n`` most probable ImageNet classes with their probabilities."""
    return predictions_of(embeddings.top5_index, embeddings.top5_prob, embeddings.categories, i, n)


def predictions_of(
    top5_index: np.ndarray, top5_prob: np.ndarray, categories: tuple[str, ...], i: int, n: int = 3
) -> tuple[tuple[str, float], ...]:
    """Row ``i``'s ``n`` most probable classes with their probabilities (rounded to 6 decimals)."""
    pairs = zip(top5_index[i, :n], top5_prob[i, :n], strict=True)
    return tuple((categories[j], round(float(p), 6)) for j, p in pairs)


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
