"""Stage 5: cluster every image at the chosen K with the configured method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Config
from ..reduce import Reduced
from ..sampling import CHUNK
from .methods import MethodSpec, method_for, partition


@dataclass(frozen=True)
class Clustering:
    """Cluster ``labels[i]`` of image ``i``, the centres, and each image's distance to its centre.

    A method that leaves images out of every cluster (HDBSCAN's noise) gets one more group, number ``k``, after
    the ``k`` clusters: "not in any cluster". Every section shows it as a group of its own; the outputs number it
    -1. Its centre is its members' mean, and its members' distances are to the nearest real cluster's centre.

    ``labels`` number the clusters 0..k-1 by size; the outputs show each one's **id**, ``ids[c]``: the same number
    unless :mod:`reportgen.identity` carried the previous run's ids over (then ``names[c]`` is its kept name, or
    "" to name it from its content).
    """

    k: int
    method: str
    labels: np.ndarray = field(metadata={"json": False})  # int N: 0..k-1, or k for the noise group
    centers: np.ndarray = field(metadata={"json": False})  # n_groups x n_components
    distances: np.ndarray = field(metadata={"json": False})  # float N, Euclidean, to the own (nearest) centre
    inertia: float  # within-cluster sum of squares (the method's label-free score)
    n_noise: int = 0  # images in no cluster
    combined: tuple[str, ...] = ()  # the feature specs an ensemble combined, the report's own first
    ids: tuple[int, ...] = ()  # each cluster's id in the outputs (empty: 0..k-1)
    names: tuple[str, ...] = field(default=(), metadata={"json": False})  # kept names ("" or empty: from content)

    @property
    def n_groups(self) -> int:
        """The clusters, plus the noise group when there is one."""
        return self.k + (1 if self.n_noise else 0)

    @property
    def in_cluster(self) -> np.ndarray:
        """bool N: the image is in a cluster (not noise)."""
        return self.labels < self.k

    @property
    def cluster_ids(self) -> tuple[int, ...]:
        """The id of each group in the outputs, the noise group's (-1) last."""
        ids = self.ids or tuple(range(self.k))
        return ids + ((-1,) if self.n_noise else ())

    def id_of(self, c: int) -> int:
        """Group ``c``'s id in the outputs."""
        return self.cluster_ids[c]

    def public(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` as the outputs number them: each cluster's id, the noise group as -1."""
        table = np.array(self.cluster_ids + (-1,), dtype=int)  # one spare: labels of k without noise stay -1
        return table[np.minimum(np.asarray(labels, dtype=int), self.k)]

    def kept_name(self, c: int) -> str:
        """Cluster ``c``'s name kept from the previous run ("" when it has none)."""
        return self.names[c] if c < len(self.names) else ""


def cluster(
    reduced: Reduced, k: int, config: Config, method: MethodSpec | None = None, combined: tuple[str, ...] = ()
) -> Clustering:
    """Fit the clustering method with ``k`` clusters on the reduced features.

    Parameters
    ----------
    reduced : the clustering space.
    k : number of clusters.
    config : ``method`` and ``seed`` are read.
    method : a method to use instead of ``config.method``'s registered one.
    combined : the feature specs an ensemble ``method`` combines (recorded).

    Returns
    -------
    :class:`Clustering`, clusters numbered by decreasing size (ties by first member) so that the numbering is
    stable and cluster 0 is the largest.
    """
    method = method or method_for(config)
    x = reduced.features
    found = partition(method, x, k, config.seed)
    k_found = found.centres.shape[0]
    labels, centres = found.labels.copy(), found.centres
    noise = found.noise if found.noise is not None else np.zeros(len(x), dtype=bool)
    if noise.any():
        labels[noise] = k_found
        centres = np.vstack([centres, x[noise].mean(axis=0)])
    distances = np.zeros(len(x), dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        part = slice(start, start + CHUNK)
        own = labels[part]
        d = np.linalg.norm(x[part] - centres[own], axis=1)
        lost = np.flatnonzero(own == k_found)
        if len(lost) and k_found:
            rows = x[part][lost]
            d[lost] = np.sqrt(((rows[:, None, :] - found.centres[None]) ** 2).sum(-1)).min(axis=1)
        distances[part] = d
    return Clustering(k_found, method.name, labels, centres, distances, found.score, int(noise.sum()), combined)
