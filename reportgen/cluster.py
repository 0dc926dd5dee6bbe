"""Stage 5: global K-means over every image at the chosen K."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from .choose_k import N_INIT
from .config import Config
from .reduce import Reduced
from .sampling import CHUNK, LARGE_N

MINIBATCH_N_INIT = 3
MINIBATCH_SIZE = 4096


@dataclass(frozen=True)
class Clustering:
    """Cluster ``labels[i]`` of image ``i``, the centres, and each image's distance to its centre."""

    k: int
    labels: np.ndarray  # int N
    centers: np.ndarray  # k x n_components
    distances: np.ndarray  # float N, Euclidean distance to the own centre in the reduced space
    inertia: float


def cluster(reduced: Reduced, k: int, config: Config) -> Clustering:
    """Run seeded K-means with ``k`` clusters on the reduced features.

    Parameters
    ----------
    reduced : the clustering space.
    k : number of clusters.
    config : ``seed`` is read.

    Returns
    -------
    :class:`Clustering`, with clusters numbered by decreasing size (ties by first member) so that the
    numbering is stable and cluster 0 is the largest. Past ``sampling.LARGE_N`` images it uses seeded
    MiniBatchKMeans (3 initialisations, batches of 4,096), which scales to millions of rows.
    """
    x = reduced.features
    if len(x) > LARGE_N:
        km = MiniBatchKMeans(
            n_clusters=k, n_init=MINIBATCH_N_INIT, batch_size=MINIBATCH_SIZE, random_state=config.seed
        ).fit(x)
    else:
        km = KMeans(n_clusters=k, n_init=N_INIT, random_state=config.seed).fit(x)
    labels, centers = renumber_by_size(km.labels_, km.cluster_centers_)
    distances = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        part = slice(start, start + CHUNK)
        distances[part] = np.linalg.norm(x[part] - centers[labels[part]], axis=1)
    return Clustering(k=k, labels=labels, centers=centers, distances=distances, inertia=float(km.inertia_))


def renumber_by_size(labels: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel clusters 0..k-1 by decreasing size (ties: earliest first member); centres follow."""
    k = centers.shape[0]
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] if sizes[c] else len(labels) for c in range(k)])
    order = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    new_of_old = np.empty(k, dtype=int)
    new_of_old[order] = np.arange(k)
    return new_of_old[labels], centers[order]
