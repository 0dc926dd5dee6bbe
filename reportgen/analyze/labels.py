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
from .clusters import DETAILED, NOISE, nearest, top_predictions
from .evidence import Evidence, label_evidence
from .makeup import CATCH_ALL_CLASSES, material
from .records import (
    ClassSpread,
    ClusterInfo,
    CountMatrix,
    LabelCheck,
    Metrics,
    Neighbour,
    Oddball,
    SharedCluster,
)

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
    n_outside_majority: int  # images outside their class's majority cluster
    label_check: LabelCheck
    shared: tuple[SharedCluster, ...]


def compare_with_labels(
    embeddings: Embeddings,
    x: np.ndarray,
    clustering: Clustering,
    clusters: tuple[ClusterInfo, ...],
    seed: int,
) -> Comparison:
    """Compare ``clustering`` with the folder labels of ``embeddings.images``."""
    images = embeddings.images
    labels = clustering.labels
    y = np.array(images.labels, dtype=object)
    counts = pd.crosstab(
        pd.Categorical(y, categories=images.classes),
        pd.Categorical(labels, categories=range(clustering.n_groups)),
        dropna=False,
    ).to_numpy()
    ids = clustering.cluster_ids  # the count matrix's columns: every group, the noise group last
    spreads = tuple(_spread(cls, counts[j], ids) for j, cls in enumerate(images.classes))
    class_of = {cls: j for j, cls in enumerate(images.classes)}
    y_idx = np.array([class_of[v] for v in y])
    centres = np.stack([x[y_idx == j].mean(axis=0) for j in range(len(images.classes))])
    home = np.array([s.majority_column for s in spreads])[y_idx]  # each image's class's majority group
    evidence = label_evidence(x, y_idx, len(images.classes), seed)
    is_oddball = evidence.flagged()
    found = evidence.order(np.flatnonzero(is_oddball))
    detailed = found[:DETAILED]  # the rest are counted and marked, not detailed
    shown = set(y_idx[detailed].tolist()) | set(evidence.looks_like[detailed].tolist())
    typical_of_class = {j: nearest(np.flatnonzero(y_idx == j), x, centres[j], TYPICAL_SHOWN + 1) for j in shown}
    oddballs = tuple(
        _oddball(int(i), int(y_idx[i]), embeddings, evidence, x, clustering, clusters, centres, home, typical_of_class)
        for i in detailed
    )
    order = _column_order(counts[:, : clustering.k]) + tuple(range(clustering.k, clustering.n_groups))  # noise last
    matrix = CountMatrix(images.classes, ids, counts.astype(int), order)
    return Comparison(
        metrics=label_metrics(y, labels),
        count_matrix=matrix,
        spreads=spreads,
        n_oddballs=len(found),
        oddballs=oddballs,
        is_oddball=is_oddball,
        n_outside_majority=int((labels != home).sum()),  # the noise group counts as a group here
        label_check=LabelCheck(evidence.accuracy, evidence.chance, evidence.beats_chance),
        shared=_shared(counts, images.classes, y, x, clustering, clusters),
    )


def _oddball(
    i: int,
    own: int,
    embeddings: Embeddings,
    evidence: Evidence,
    x: np.ndarray,
    clustering: Clustering,
    clusters: tuple[ClusterInfo, ...],
    centres: np.ndarray,
    home: np.ndarray,
    typical_of_class: dict[int, tuple[int, ...]],
) -> Oddball:
    images = embeddings.images
    classes = images.classes
    other = int(evidence.looks_like[i])
    joined = int(clustering.labels[i])
    d_class = float(np.linalg.norm(x[i] - centres[own]))
    d_cluster = float(clustering.distances[i])
    votes = evidence.votes[i]
    return Oddball(
        path=images.paths[i],
        label=classes[own],
        looks_like=classes[other],
        vote_margin=int(evidence.vote_margin[i]),
        votes={classes[j]: int(votes[j]) for j in sorted(np.flatnonzero(votes), key=lambda j: (-votes[j], classes[j]))},
        classifier_margin=float(evidence.classifier_margin[i]),
        p_label=float(evidence.probabilities[i, own]),
        p_looks_like=float(evidence.probabilities[i, other]),
        cluster=clusters[joined].cluster,
        cluster_name=clusters[joined].name,
        class_cluster=clusters[int(home[i])].cluster,
        d_class=d_class,
        d_cluster=d_cluster,
        margin=d_class - d_cluster,
        neighbours=tuple(Neighbour(images.paths[j], images.labels[j], int(j)) for j in evidence.voters[i]),
        top_predictions=top_predictions(embeddings, i),
        index=i,
        typical_class=tuple(j for j in typical_of_class[own] if j != i)[:TYPICAL_SHOWN],
        typical_looks_like=typical_of_class[other][:TYPICAL_SHOWN],
    )


def label_metrics(y: np.ndarray, labels: np.ndarray) -> Metrics:
    """NMI, ARI, purity and Hungarian accuracy of ``labels`` against the class labels ``y``."""
    table = contingency_matrix(y, labels)
    rows, cols = linear_sum_assignment(-table)  # classes x clusters: the one-to-one match keeping most images
    return Metrics(
        nmi=float(normalized_mutual_info_score(y, labels)),
        ari=float(adjusted_rand_score(y, labels)),
        purity=float(table.max(axis=0).sum() / table.sum()),
        accuracy=float(table[rows, cols].sum() / table.sum()),
    )


def _spread(label: str, row: np.ndarray, ids: tuple[int, ...]) -> ClassSpread:
    """``row``: the class's count per group, whose ids are ``ids`` (the noise group's, -1, last)."""
    size = int(row.sum())
    major = int(np.argmax(row))
    return ClassSpread(
        label=label,
        size=size,
        majority_cluster=ids[major],
        majority_share=float(row[major] / size) if size else 0.0,
        n_clusters=int((row > 0).sum()),
        counts=tuple(int(v) for v in row),
        noise=ids[-1] == NOISE,
        ids=ids,
    )


def _column_order(counts: np.ndarray) -> tuple[int, ...]:
    """Clusters ordered to match the classes (Hungarian matching on the counts), the rest by size."""
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = [int(c) for _, c in sorted(zip(rows, cols, strict=True))]
    rest = sorted(set(range(counts.shape[1])) - set(matched), key=lambda c: (-counts[:, c].sum(), c))
    return tuple(matched + rest)


def _shared(
    counts: np.ndarray,
    classes: tuple[str, ...],
    y: np.ndarray,
    x: np.ndarray,
    clustering: Clustering,
    clusters: tuple[ClusterInfo, ...],
) -> tuple[SharedCluster, ...]:
    """Clusters where two or more classes have a material share (:func:`makeup.material`), and every catch-all,
    each such class listed with a montage of its part (a catch-all with fewer than two material classes lists
    its ``CATCH_ALL_CLASSES`` largest)."""
    shared = []
    for c in range(clustering.k):  # the noise group is not a cluster: never shared
        by_class = {cls: int(v) for cls, v in zip(classes, counts[:, c], strict=True) if v}
        ranked = sorted(by_class.items(), key=lambda t: (-t[1], t[0]))
        members = sorted(material(by_class, int(counts[:, c].sum())), key=lambda t: (-t[1], t[0]))
        if clusters[c].catch_all and len(members) < 2:
            members = ranked[:CATCH_ALL_CLASSES]
        if len(members) >= 2:
            parts = tuple(
                nearest(
                    np.flatnonzero((clustering.labels == c) & (y == cls)), x, clustering.centers[c], PART_MONTAGE_SIZE
                )
                for cls, _ in members
            )
            shared.append(
                SharedCluster(
                    clusters[c].cluster, clusters[c].name, dict(members), clusters[c].catch_all, len(ranked), parts
                )
            )
    return tuple(shared)
