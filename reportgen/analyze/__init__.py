"""Stage 6: what the clusters say about the classes.

Rules (also in the README):

* A class's **majority cluster** is the cluster holding most of its images (ties: the lower cluster number).
* An **oddball** is an image whose label the evidence doubts (:mod:`.evidence`): most of its 10 most similar
  images belong to one other class (at least 4 more than to its own), and a classifier trained on the folder's
  other images agrees (that class's probability at least 0.40 above its label's). Both thresholds were fitted
  leave-one-folder-out on planted mislabels (``bench/oddballs.py``). Oddballs are ranked by the vote margin, then
  the classifier margin. Each also records ``d_class`` (distance to its class's centre) and ``d_cluster``
  (distance to the centre of the cluster it joined) in the PCA space; images outside their class's majority
  cluster are counted (``n_outside_majority``) but are not oddballs for that alone.
* A cluster is **shared** ("classes grouped together") when at least two classes each have a material share of it
  (at least ``max(2, 10% of the cluster's size)`` images); names, catch-alls and montages follow the rules in
  :mod:`.makeup`.
* **Within-class** splits run K-means with ``within_k`` clusters (at most a third of the class's distinct images,
  ``within.MIN_PER_GROUP``) on one class's images in the same space. The **split score** compares the split's mean
  silhouette with the silhouettes the same K-means gets on structureless data: ``NULL_DRAWS`` samples from one
  Gaussian with the class's own mean and covariance (same size, same spread, no groups). The score is the z-score
  of the real silhouette against those. The **breadth** is the class's spread (mean squared distance to its
  centre, on unit-length rows) over the median class's. A split is **meaningful** when the score is at least
  ``MEANINGFUL_Z``, the breadth at least ``BROAD`` (both fitted leave-one-folder-out on merged classes,
  ``bench/splits.py``) and no sub-cluster is a near-singleton (under ``max(3, 5%)`` of the class); meaningful
  splits come first, then the broadest classes. For classes over
  ``SPLIT_SILHOUETTE_SAMPLE`` images, every one of those silhouettes is computed on a seeded sample of that many
  (the same estimator for the real split and the null draws); the null draws have at most ``NULL_MAX_POINTS``
  points, and a class over ``sampling.LARGE_N`` images is split by K-means fitted on a seeded sample of that many.
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

from dataclasses import dataclass

import numpy as np

from ..cluster import method_for
from ..cluster.stage import Clustering, cluster
from ..config import Config
from ..extract import Embeddings
from ..reduce import Reduced
from ..schema import keyed_by, no_json
from .baseline import BaselineCheck, baseline_check
from .clusters import DETAILED, Neighbours, cluster_infos, outliers, silhouettes
from .labels import compare_with_labels, label_metrics
from .records import (
    AtClassCount,
    ClassSpread,
    ClusterInfo,
    CountMatrix,
    LabelCheck,
    Metrics,
    Oddball,
    Outlier,
    RunnerUp,
    SharedCluster,
    WithinClass,
)
from .runner_up import runner_up
from .scores import LabelFree, label_free
from .within import split_classes

__all__ = ["DETAILED", "Analysis", "analyze"]


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows about the clustering; label-based parts are empty when unlabeled.

    ``oddballs`` and ``outliers`` hold the first ``DETAILED`` (most odd first) with their neighbours;
    ``n_oddballs``/``n_outliers`` and ``is_oddball`` count and mark every one.
    """

    metrics: Metrics | None
    label_free: LabelFree  # silhouette, Calinski-Harabasz and Davies-Bouldin of the clusters (no labels needed)
    baseline_check: BaselineCheck | None  # K-means on the raw pixels at the same K, beside these clusters
    at_class_count: AtClassCount | None  # the method at K = the class count (None unlabeled, or fewer than 2)
    clusters: tuple[ClusterInfo, ...]
    count_matrix: CountMatrix | None
    class_spread: tuple[ClassSpread, ...] = keyed_by("label")
    n_oddballs: int
    n_outside_majority: int  # images outside their class's majority cluster (0 unlabeled)
    label_check: LabelCheck | None  # do the features tell the classes apart (None unlabeled)
    n_outliers: int
    oddballs: tuple[Oddball, ...]
    outliers: tuple[Outlier, ...]
    shared_clusters: tuple[SharedCluster, ...]
    within_class: tuple[WithinClass, ...] = keyed_by("label")  # meaningful first, then broadest
    runner_up: RunnerUp | None  # the clustering at the runner-up K when the K choice is not sure, else None
    labeled: bool = no_json()
    top1: tuple[str, ...] = no_json()  # each image's top-1 ImageNet class ("" without a classifier head)
    silhouettes: np.ndarray | None = no_json()  # per image, NaN outside the sample (None when K < 2)
    mean_silhouette: float | None = no_json()
    is_oddball: np.ndarray = no_json()  # bool N: an oddball (labeled) or an outlier (unlabeled)
    within_labels: np.ndarray = no_json()  # int N, -1 where the image's class was not split
    notes: tuple[str, ...] = no_json()

    def cluster(self, cluster_id: int) -> ClusterInfo:
        """The cluster whose id is ``cluster_id`` (-1: the group of images in no cluster)."""
        return next(c for c in self.clusters if c.cluster == cluster_id)


def analyze(
    embeddings: Embeddings, reduced: Reduced, clustering: Clustering, config: Config, runner_up_k: int | None = None
) -> Analysis:
    """Compare clusters with classes, find oddballs or outliers, and split classes.

    Parameters
    ----------
    embeddings : images, labels and top-5 predictions.
    reduced : the clustering space.
    clustering : the global clusters.
    config : ``within_k``, ``within_classes`` and ``seed`` are read.
    runner_up_k : a second K to cluster at and compare with (``KSelection.second_opinion``), or ``None``.

    Returns
    -------
    :class:`Analysis`, by the rules in this package's docstring.
    """
    images = embeddings.images
    n = len(images)
    x = reduced.features
    top1 = (
        tuple(embeddings.categories[i] for i in embeddings.top5_index[:, 0])
        if embeddings.has_predictions
        else ("",) * n
    )
    per_image = silhouettes(x, clustering.labels, clustering.k, config.seed)
    clusters = cluster_infos(clustering, x, top1, images, per_image)
    mean = None if per_image is None else float(np.nanmean(per_image))
    free = label_free(x, clustering.labels, clustering.k, config.seed, per_image)
    second = None if runner_up_k is None else runner_up(runner_up_k, reduced, clustering, images, top1, config)
    if not images.labeled:
        detailed, every = outliers(clustering, clusters, Neighbours(x, images), embeddings)
        is_outlier = np.zeros(n, dtype=bool)
        is_outlier[every] = True
        return Analysis(
            metrics=None,
            label_free=free,
            baseline_check=baseline_check(embeddings.thumbnails, clustering.labels, clustering.k, None, mean, config),
            at_class_count=None,
            clusters=clusters,
            count_matrix=None,
            class_spread=(),
            n_oddballs=0,
            n_outside_majority=0,
            label_check=None,
            n_outliers=len(every),
            oddballs=(),
            outliers=detailed,
            shared_clusters=(),
            within_class=(),
            runner_up=second,
            labeled=False,
            top1=top1,
            silhouettes=per_image,
            mean_silhouette=mean,
            is_oddball=is_outlier,
            within_labels=np.full(n, -1),
            notes=(),
        )

    compared = compare_with_labels(embeddings, x, clustering, clusters, config.seed)
    notes: list[str] = []
    within, within_labels = split_classes(images, x, top1, config, notes)
    return Analysis(
        metrics=compared.metrics,
        label_free=free,
        baseline_check=baseline_check(
            embeddings.thumbnails,
            clustering.labels,
            clustering.k,
            np.array(images.labels, dtype=object),
            compared.metrics.nmi,
            config,
        ),  # fmt: skip
        at_class_count=_at_class_count(embeddings, reduced, clustering, config, compared.metrics),
        clusters=clusters,
        count_matrix=compared.count_matrix,
        class_spread=compared.spreads,
        n_oddballs=compared.n_oddballs,
        n_outside_majority=compared.n_outside_majority,
        label_check=compared.label_check,
        n_outliers=0,
        oddballs=compared.oddballs,
        outliers=(),
        shared_clusters=compared.shared,
        within_class=within,
        runner_up=second,
        labeled=True,
        top1=top1,
        silhouettes=per_image,
        mean_silhouette=mean,
        is_oddball=compared.is_oddball,
        within_labels=within_labels,
        notes=tuple(notes),
    )


def _at_class_count(
    embeddings: Embeddings, reduced: Reduced, clustering: Clustering, config: Config, at_k: Metrics
) -> AtClassCount | None:
    """The agreement with the labels had K been the class count (reusing the clustering when it is), so the
    report can put the two side by side; labels never choose K."""
    k = len(embeddings.images.classes)
    if not 2 <= k < len(embeddings.images) or not method_for(config).takes_k:
        return None
    if k == clustering.k:
        return AtClassCount(k, at_k.nmi, at_k.ari, at_k.purity)
    m = label_metrics(np.array(embeddings.images.labels, dtype=object), cluster(reduced, k, config).labels)
    return AtClassCount(k, m.nmi, m.ari, m.purity)
