"""Label-free scores of one clustering, the same in the report and in ``reportgen compare``.

* silhouette: the mean of the per-image silhouettes the report shows (:func:`.clusters.silhouettes`: on the
  directions of the PCA space, a seeded sample past 10,000 images), −1 to 1, higher is better;
* Calinski-Harabasz: between-cluster over within-cluster dispersion, higher is better (it grows with the space,
  so compare it only within one feature spec);
* Davies-Bouldin: each cluster's similarity to its most similar one, averaged, lower is better (0 best).

Images in no cluster (noise) are left out; with fewer than two clusters none is defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from .clusters import silhouettes


@dataclass(frozen=True)
class LabelFree:
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None


def label_free(x: np.ndarray, labels: np.ndarray, k: int, seed: int, per_image: np.ndarray | None = None) -> LabelFree:
    """The three scores of ``labels`` (0..k-1 in a cluster, k or -1 in none) on the vectors ``x``; ``per_image``
    reuses silhouettes already computed."""
    kept = (labels >= 0) & (labels < k)
    found = len(np.unique(labels[kept]))
    if not 2 <= found < kept.sum():
        return LabelFree(None, None, None)
    if per_image is None:
        per_image = silhouettes(x, np.where(kept, labels, k), k, seed)
    mean = float(np.nanmean(per_image)) if per_image is not None and np.isfinite(per_image).any() else None
    return LabelFree(
        silhouette=mean,
        calinski_harabasz=float(calinski_harabasz_score(x[kept], labels[kept])),
        davies_bouldin=float(davies_bouldin_score(x[kept], labels[kept])),
    )
