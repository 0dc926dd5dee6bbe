"""The records of the analysis stage, shaped as summary.json shows them (see :mod:`reportgen.run`).

Image indices that the page needs for thumbnails are kept beside the paths, left out of the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..schema import no_json


@dataclass(frozen=True)
class Share:
    """A name (an ImageNet class) and the share of images whose top-1 prediction it is."""

    name: str = field(metadata={"key": "class"})
    share: float


@dataclass(frozen=True)
class ClusterInfo:
    """One global cluster: its size, name, most common predictions and most typical members."""

    cluster: int
    name: str  # from its classes, else its predictions (analyze.makeup), unique in the run
    size: int
    silhouette: float | None  # mean silhouette of its members
    top_predictions: tuple[Share, ...]
    classes: dict[str, int]  # class -> images in the cluster, most common first (labeled only)
    montage: tuple[str, ...]  # paths of the images its montage shows (analyze.makeup)
    catch_all: bool  # groups many classes without telling them apart (unlabeled: large and loosely knit)
    nearest: tuple[int, ...] = no_json()  # the montage's image indices


@dataclass(frozen=True)
class ClassSpread:
    """How one class spreads over the clusters."""

    label: str
    size: int
    majority_cluster: int
    majority_share: float
    n_clusters: int  # clusters holding at least one of its images
    counts: tuple[int, ...] = no_json()  # per cluster (the count matrix's row), the noise group last
    noise: bool = no_json(default=False)  # the last count is the group of images in no cluster (number -1)
    ids: tuple[int, ...] = no_json(default=())  # the id of each count's cluster (empty: 0, 1, ..., -1 for noise)

    @property
    def column_ids(self) -> tuple[int, ...]:
        if self.ids:
            return self.ids
        return tuple(-1 if self.noise and c == len(self.counts) - 1 else c for c in range(len(self.counts)))

    @property
    def majority_column(self) -> int:
        """The position of the majority cluster in ``counts``."""
        return self.column_ids.index(self.majority_cluster) if self.counts else 0

    @property
    def tied_columns(self) -> tuple[int, ...]:
        """The positions in ``counts`` of every cluster holding as many of its images as the majority cluster."""
        top = max(self.counts, default=0)
        return tuple(c for c, n in enumerate(self.counts) if n == top and n) or (self.majority_column,)

    @property
    def tied_clusters(self) -> tuple[int, ...]:
        """Every cluster holding as many of its images as the majority cluster (one unless there is a tie)."""
        ids = self.column_ids
        return tuple(ids[c] for c in self.tied_columns) if self.counts else (self.majority_cluster,)


@dataclass(frozen=True)
class Neighbour:
    path: str
    label: str | None
    index: int = no_json()


@dataclass(frozen=True)
class Oddball:
    """An image whose label the evidence doubts (:mod:`.evidence`): it looks like another class."""

    path: str
    label: str
    looks_like: str  # the other class with the most evidence
    vote_margin: int  # of its evidence.VOTERS most similar images: how many more are looks_like than its label
    votes: dict[str, int]  # class -> how many of those images belong to it, most first
    classifier_margin: float  # cross-validated probability of looks_like minus that of its label
    p_label: float
    p_looks_like: float
    cluster: int
    cluster_name: str
    class_cluster: int  # its class's majority cluster
    d_class: float  # distance to the class centre
    d_cluster: float  # distance to the centre of the cluster it joined
    margin: float  # d_class - d_cluster: how much closer it sits to the cluster it joined
    neighbours: tuple[Neighbour, ...]  # its most similar images (the voters), nearest first
    top_predictions: tuple[tuple[str, float], ...]
    index: int = no_json()
    typical_class: tuple[int, ...] = no_json()  # its class's images nearest the class's centre
    typical_looks_like: tuple[int, ...] = no_json()  # the same for the class it looks like


@dataclass(frozen=True)
class LabelCheck:
    """Whether the features tell the classes apart at all (:mod:`.evidence`): no oddball is flagged otherwise."""

    classifier_accuracy: float  # cross-validated, on the images of classes of at least evidence.MIN_CLASS
    chance: float  # the largest class's share of those images
    beats_chance: bool  # one-sided binomial test at evidence.CHANCE_P


@dataclass(frozen=True)
class Outlier:
    """An image unusually far from its own cluster's centre (unlabeled folders)."""

    path: str
    cluster: int
    cluster_name: str
    distance: float
    threshold: float  # the cluster's Tukey fence
    neighbours: tuple[str, ...]  # paths of the nearest other images
    top_predictions: tuple[tuple[str, float], ...]
    index: int = no_json()
    neighbour_index: tuple[int, ...] = no_json()


@dataclass(frozen=True)
class SharedCluster:
    """A cluster that several classes share, with each class's count and most typical images in it."""

    cluster: int
    name: str
    classes: dict[str, int]  # every class with a material share, most first (a catch-all: at least its 3 largest)
    catch_all: bool
    n_classes: int  # classes with any image in the cluster
    parts: tuple[tuple[int, ...], ...] = no_json()  # per class: its images in the cluster nearest the centre


@dataclass(frozen=True)
class NullSilhouette:
    mean: float
    sd: float


@dataclass(frozen=True)
class WithinClass:
    """A class split into ``k`` sub-clusters, and whether the split is more than noise."""

    label: str
    k: int
    sizes: tuple[int, ...]
    silhouette: float
    null_silhouette: NullSilhouette  # the same split's silhouette on structureless data of the same shape
    split_score: float  # z-score of ``silhouette`` against ``null_silhouette``
    breadth: float  # the class's spread over the median class's spread in the folder (1: a typical class)
    meaningful: bool  # split_score >= within.MEANINGFUL_Z, breadth >= within.BROAD, no near-singleton
    top_predictions: tuple[tuple[Share, ...], ...]  # per sub-cluster
    indices: tuple[int, ...] = no_json()  # image indices of the class
    sub_labels: tuple[int, ...] = no_json()  # sub-cluster of each of ``indices``
    nearest: tuple[tuple[int, ...], ...] = no_json()  # per sub-cluster, image indices nearest its centre


@dataclass(frozen=True)
class Metrics:
    """Agreement between the clusters and the folder labels. ``accuracy`` matches clusters to classes one to one
    (Hungarian assignment) and counts the images in their class's matched cluster."""

    nmi: float
    ari: float
    purity: float
    accuracy: float


@dataclass(frozen=True)
class AtClassCount:
    """The same clustering method with K = the number of classes: what the labels would have asked for."""

    k: int
    nmi: float
    ari: float
    purity: float


@dataclass(frozen=True)
class RunnerUp:
    """The clustering at the K criteria's second choice, beside the chosen one (:mod:`.runner_up`)."""

    k: int
    mean_silhouette: float | None
    metrics: Metrics | None  # against the labels (None unlabeled)
    moved: int  # images in a different cluster once the two clusterings' clusters are matched one to one
    crosstab: tuple[tuple[int, ...], ...]  # images in chosen cluster i (rows) and runner-up cluster j (columns)
    clusters: tuple[ClusterInfo, ...]


@dataclass(frozen=True)
class CountMatrix:
    """Images of each class (rows) in each cluster (columns)."""

    classes: tuple[str, ...]
    clusters: tuple[int, ...]
    counts: np.ndarray  # int, classes x clusters
    column_order: tuple[int, ...]  # clusters in the order that best matches the classes
