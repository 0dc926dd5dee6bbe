"""What the clusters say about the folder's classes: count matrix, spread, oddballs, shared clusters, metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from ..cluster.stage import Clustering
from ..extract import Embeddings
from .clusters import DETAILED, Neighbours, nearest, top_predictions
from .makeup import material
from .records import ClassSpread, ClusterInfo, CountMatrix, Metrics, Oddball, SharedCluster

PART_MONTAGE_SIZE = 6
TYPICAL_SHOWN = 3


@dataclass(frozen=True)
class Comparison:
    """The label-based results (see the package docstring for the rules)."""

    metrics: Metrics
    count_matrix: CountMatrix
    spreads: tuple[ClassSpread, ...]
    n_oddballs: int  # every one
    oddballs: tuple[Oddball, ...]  # the first ``DETAILED``, most odd first
    is_oddball: np.ndarray
    shared: tuple[SharedCluster, ...]


def compare_with_labels(
    embeddings: Embeddings,
    x: np.ndarray,
    clustering: Clustering,
    clusters: tuple[ClusterInfo, ...],
    neighbours: Neighbours,
) -> Comparison:
    """Compare ``clustering`` with the folder labels of ``embeddings.images``."""
    images = embeddings.images
    labels = clustering.labels
    y = np.array(images.labels, dtype=object)
    counts = pd.crosstab(
        pd.Categorical(y, categories=images.classes),
        pd.Categorical(labels, categories=range(clustering.k)),
        dropna=False,
    ).to_numpy()
    spreads = tuple(_spread(cls, counts[j]) for j, cls in enumerate(images.classes))
    class_of = {cls: j for j, cls in enumerate(images.classes)}
    y_idx = np.array([class_of[v] for v in y])
    centres = np.stack([x[y_idx == j].mean(axis=0) for j in range(len(images.classes))])
    home = np.array([s.majority_cluster for s in spreads])[y_idx]
    odd_idx = np.flatnonzero(labels != home)
    d_class = np.linalg.norm(x[odd_idx] - centres[y_idx[odd_idx]], axis=1)
    found = [(int(i), float(dc), float(clustering.distances[i])) for i, dc in zip(odd_idx, d_class, strict=True)]
    found.sort(key=lambda o: (-(o[1] - o[2]), images.paths[o[0]]))
    typical_of_class = {
        j: nearest(np.flatnonzero(y_idx == j), x, centres[j], TYPICAL_SHOWN + 1) for j in range(len(images.classes))
    }
    typical_of_cluster = {c: _typical_of_cluster(clustering, clusters[c], y, x, c) for c in range(clustering.k)}
    oddballs = tuple(
        Oddball(
            path=images.paths[i],
            label=y[i],
            cluster=int(labels[i]),
            cluster_name=clusters[labels[i]].name,
            class_cluster=int(home[i]),
            d_class=dc,
            d_cluster=dk,
            margin=dc - dk,
            neighbours=neighbours.records(i),
            top_predictions=top_predictions(embeddings, i),
            index=i,
            typical_class=tuple(j for j in typical_of_class[y_idx[i]] if j != i)[:TYPICAL_SHOWN],
            typical_cluster=tuple(j for j in typical_of_cluster[int(labels[i])] if j != i)[:TYPICAL_SHOWN],
        )
        for i, dc, dk in found[:DETAILED]  # the rest are counted and marked, not detailed
    )
    is_oddball = np.zeros(len(y), dtype=bool)
    is_oddball[odd_idx] = True
    matrix = CountMatrix(images.classes, tuple(range(clustering.k)), counts.astype(int), _column_order(counts))
    return Comparison(
        metrics=label_metrics(y, labels),
        count_matrix=matrix,
        spreads=spreads,
        n_oddballs=len(found),
        oddballs=oddballs,
        is_oddball=is_oddball,
        shared=_shared(counts, images.classes, y, x, clustering, clusters),
    )


def label_metrics(y: np.ndarray, labels: np.ndarray) -> Metrics:
    """NMI, ARI and purity of ``labels`` against the class labels ``y``."""
    table = contingency_matrix(y, labels)
    return Metrics(
        nmi=float(normalized_mutual_info_score(y, labels)),
        ari=float(adjusted_rand_score(y, labels)),
        purity=float(table.max(axis=0).sum() / table.sum()),
    )


def _spread(label: str, row: np.ndarray) -> ClassSpread:
    size = int(row.sum())
    major = int(np.argmax(row))
    return ClassSpread(
        label=label,
        size=size,
        majority_cluster=major,
        majority_share=float(row[major] / size) if size else 0.0,
        n_clusters=int((row > 0).sum()),
        counts=tuple(int(v) for v in row),
    )


def _column_order(counts: np.ndarray) -> tuple[int, ...]:
    """Clusters ordered to match the classes (Hungarian matching on the counts), the rest by size."""
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = [int(c) for _, c in sorted(zip(rows, cols, strict=True))]
    rest = sorted(set(range(counts.shape[1])) - set(matched), key=lambda c: (-counts[:, c].sum(), c))
    return tuple(matched + rest)


def _typical_of_cluster(
    clustering: Clustering, info: ClusterInfo, y: np.ndarray, x: np.ndarray, c: int
) -> tuple[int, ...]:
    """The members of cluster ``c``'s largest class nearest its centre: what the cluster is mostly made of."""
    if not info.classes:
        return ()
    largest = next(iter(info.classes))
    members = np.flatnonzero((clustering.labels == c) & (y == largest))
    return nearest(members, x, clustering.centers[c], TYPICAL_SHOWN + 1)


def _shared(
    counts: np.ndarray,
    classes: tuple[str, ...],
    y: np.ndarray,
    x: np.ndarray,
    clustering: Clustering,
    clusters: tuple[ClusterInfo, ...],
) -> tuple[SharedCluster, ...]:
    """Clusters where two or more classes have a material share (:func:`makeup.material`), every such class
    listed with a montage of its part."""
    shared = []
    for c in range(counts.shape[1]):
        by_class = {cls: int(v) for cls, v in zip(classes, counts[:, c], strict=True) if v}
        members = sorted(material(by_class, int(counts[:, c].sum())), key=lambda t: (-t[1], t[0]))
        if len(members) >= 2:
            parts = tuple(
                nearest(
                    np.flatnonzero((clustering.labels == c) & (y == cls)), x, clustering.centers[c], PART_MONTAGE_SIZE
                )
                for cls, _ in members
            )
            shared.append(SharedCluster(c, clusters[c].name, dict(members), clusters[c].catch_all, parts))
    return tuple(shared)
