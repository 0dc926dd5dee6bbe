"""Stage 5: cluster every image at the chosen K with the configured method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Config
from ..reduce import Reduced
from ..sampling import CHUNK
from .methods import MethodSpec, get_method, partition


@dataclass(frozen=True)
class Clustering:
    """Cluster ``labels[i]`` of image ``i``, the centres, and each image's distance to its centre."""

    k: int
    method: str
    labels: np.ndarray = field(metadata={"json": False})  # int N
    centers: np.ndarray = field(metadata={"json": False})  # k x n_components
    distances: np.ndarray = field(metadata={"json": False})  # float N, Euclidean, to the own centre
    inertia: float  # within-cluster sum of squares (the method's label-free score)


def cluster(reduced: Reduced, k: int, config: Config, method: MethodSpec | None = None) -> Clustering:
    """Fit the clustering method with ``k`` clusters on the reduced features.

    Parameters
    ----------
    reduced : the clustering space.
    k : number of clusters.
    config : ``method`` and ``seed`` are read.
    method : a method to use instead of ``config.method``'s registered one.

    Returns
    -------
    :class:`Clustering`, clusters numbered by decreasing size (ties by first member) so that the numbering is
    stable and cluster 0 is the largest.
    """
    method = method or get_method(config.method)
    x = reduced.features
    found = partition(method, x, k, config.seed)
    distances = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        part = slice(start, start + CHUNK)
        distances[part] = np.linalg.norm(x[part] - found.centres[found.labels[part]], axis=1)
    return Clustering(k, method.name, found.labels, found.centres, distances, found.score)
