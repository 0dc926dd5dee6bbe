"""Clustering methods: a registry of estimators that take K, and the :class:`Partition` each one returns.

A method is anything with scikit-learn's estimator conventions: built by a factory ``make(k, seed, n_rows)``
with its parameters set in ``__init__``, fitted by ``fit_predict(x)``. K selection receives the factory, so
every registered method can have its K chosen. Adding one is a single call, from anywhere::

    from sklearn.cluster import AgglomerativeClustering
    from reportgen.cluster import register_method

    register_method("ward", lambda k, seed, n_rows: AgglomerativeClustering(n_clusters=k), "Ward linkage")

after which ``Config(method="ward")`` (or ``--method ward`` once registered before the CLI parses) clusters with
it. Methods without centres get their clusters' means; without ``inertia_``, the within-cluster sum of
squares is computed. This module imports no scientific library until something is fitted.
"""

from __future__ import annotations

from . import library  # noqa: F401  (registers the methods beside K-means)
from .methods import (
    KMEANS,
    N_INIT,
    MethodSpec,
    Partition,
    get_method,
    kmeans,
    method_for,
    method_names,
    partition,
    register_method,
    renumber_by_size,
)

__all__ = [
    "KMEANS",
    "N_INIT",
    "MethodSpec",
    "Partition",
    "get_method",
    "kmeans",
    "method_for",
    "method_names",
    "partition",
    "register_method",
    "renumber_by_size",
]
