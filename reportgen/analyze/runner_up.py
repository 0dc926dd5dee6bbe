"""The runner-up K, clustered beside the chosen one, when the K criteria are not sure of their choice.

When the K selection's confidence is ``medium`` or ``low`` (:attr:`KSelection.second_opinion`), the report shows
the clusters at the two candidates side by side: the runner-up's clusters (named and with montages by the same
rules as the chosen ones), their silhouette and agreement with the labels, how the two clusterings correspond
(the images of each chosen cluster in each runner-up cluster) and how many images would change cluster. Clusters
are matched one to one by the Hungarian algorithm on that table (scipy); ``moved`` counts the images outside the
matched pairs. Oddballs and within-class splits do not depend on K and are the same at both.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..cluster.stage import Clustering, cluster
from ..config import Config
from ..discover import ImageSet
from ..reduce import Reduced
from .clusters import cluster_infos, silhouettes
from .labels import label_metrics
from .records import RunnerUp


def runner_up(
    k: int, reduced: Reduced, chosen: Clustering, images: ImageSet, top1: tuple[str, ...], config: Config
) -> RunnerUp:
    """The clustering at ``k`` by the run's method, compared with ``chosen``."""
    other = cluster(reduced, k, config)
    per_image = silhouettes(reduced.features, other.labels, other.k, config.seed)
    table = np.zeros((chosen.k, other.k), dtype=int)  # a row and a column for every cluster number
    np.add.at(table, (chosen.labels, other.labels), 1)
    rows, cols = linear_sum_assignment(-table)
    metrics = label_metrics(np.array(images.labels, dtype=object), other.labels) if images.labeled else None
    return RunnerUp(
        k=other.k,
        mean_silhouette=None if per_image is None else float(np.nanmean(per_image)),
        metrics=metrics,
        moved=int(len(chosen.labels) - table[rows, cols].sum()),
        crosstab=tuple(tuple(int(v) for v in row) for row in table),
        clusters=cluster_infos(other, reduced.features, top1, images, per_image),
    )
