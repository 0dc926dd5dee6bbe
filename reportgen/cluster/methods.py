"""The method registry, the one place K-means is built, and :func:`partition`, which fits any method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from ..errors import InvalidOptionError
from ..sampling import LARGE_N

KMEANS = "kmeans"
N_INIT = 10
MINIBATCH_N_INIT = 3
MINIBATCH_SIZE = 4096


class Estimator(Protocol):
    """What a clustering method must offer: scikit-learn's ``fit_predict`` (and ``get_params``/``set_params``)."""

    def fit_predict(self, x: np.ndarray) -> np.ndarray: ...


Factory = Callable[[int, int, int], Estimator]  # (k, seed, number of rows to cluster) -> an unfitted estimator


@dataclass(frozen=True)
class MethodSpec:
    """A registered clustering method.

    ``takes_k`` is false for a method that finds the number of clusters itself (HDBSCAN); ``k_by`` names the method
    whose K sweep chooses its K when sweeping it would cost too much (the ensemble); ``k_criterion`` names a
    curve the method's fits report (``Partition.criteria``) by which it chooses its own K (``"bic"``, lower is
    better); ``options`` are :class:`~reportgen.config.Config` fields passed to ``make`` as keyword arguments
    (:func:`method_for`).
    """

    name: str
    make: Factory
    description: str = ""
    takes_k: bool = True
    k_criterion: str | None = None
    options: tuple[str, ...] = ()
    k_by: str | None = None  # another method whose K sweep chooses this one's K (too costly to sweep itself)


@dataclass(frozen=True)
class Partition:
    """What one fit of a method gives, clusters numbered by decreasing size (ties: earliest first member).

    ``score`` is label-free: the within-cluster sum of squared distances to the clusters' centres (K-means'
    inertia), lower is tighter.
    """

    labels: np.ndarray  # int N
    centres: np.ndarray  # k x D: the method's own centres, else each cluster's mean
    score: float
    method: str
    parameters: dict[str, Any] = field(default_factory=dict)
    noise: np.ndarray | None = None  # bool N, for methods that leave points out of every cluster
    criteria: dict[str, float] = field(default_factory=dict)  # the fit's own K criteria (e.g. "bic")


_METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    make: Factory,
    description: str = "",
    *,
    takes_k: bool = True,
    k_criterion: str | None = None,
    options: tuple[str, ...] = (),
    k_by: str | None = None,
) -> MethodSpec:
    """Register (or replace) the clustering method ``name``; ``make(k, seed, n_rows)`` builds an estimator (see
    :class:`MethodSpec` for the keywords)."""
    spec = MethodSpec(name, make, description, takes_k, k_criterion, options, k_by)
    _METHODS[name] = spec
    return spec


def method_for(config: Any) -> MethodSpec:
    """``config.method``'s registered method with its options (Config fields) bound into its factory."""
    spec = get_method(config.method)
    if not spec.options:
        return spec
    return replace(spec, make=partial(spec.make, **{name: getattr(config, name) for name in spec.options}))


def method_names() -> list[str]:
    """The registered methods' names, in registration order."""
    return list(_METHODS)


def get_method(name: str) -> MethodSpec:
    """The method ``name``, or :class:`InvalidOptionError` naming the registered ones."""
    try:
        return _METHODS[name]
    except KeyError:
        raise InvalidOptionError(f"unknown method '{name}'; choose one of: {', '.join(_METHODS)}") from None


def kmeans(k: int, seed: int, n_rows: int = 0, n_init: int = N_INIT) -> Estimator:
    """Seeded K-means: scikit-learn's KMeans, or MiniBatchKMeans (3 starts, batches of 4,096) past
    ``sampling.LARGE_N`` rows, which scales to millions."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n_rows > LARGE_N:
        return MiniBatchKMeans(n_clusters=k, n_init=MINIBATCH_N_INIT, batch_size=MINIBATCH_SIZE, random_state=seed)
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed)


def partition(method: MethodSpec, x: np.ndarray, k: int, seed: int, *, n_init: int | None = None) -> Partition:
    """Fit ``method`` with ``k`` clusters on ``x``.

    ``n_init`` overrides the estimator's number of starts when it has one (``set_params``): K selection's
    stability refits use fewer.
    """
    estimator = method.make(k, seed, len(x))
    if n_init is not None and "n_init" in _params(estimator):
        estimator.set_params(n_init=n_init)  # type: ignore[attr-defined]
    raw = np.asarray(estimator.fit_predict(x)).astype(int)
    noise = raw < 0
    found = np.unique(raw[~noise])
    compact = np.full(len(raw), -1)
    compact[~noise] = np.searchsorted(found, raw[~noise])  # empty or skipped cluster numbers closed up
    own = getattr(estimator, "cluster_centers_", None)
    if own is not None and len(found) and len(own) > found.max():
        centres = np.asarray(own)[found]
    else:
        centres = _means(x, compact, len(found))
    labels, centres = renumber_by_size(compact, centres)
    inertia = getattr(estimator, "inertia_", None)
    exact = inertia is not None and not noise.any() and len(found) == k
    score = float(inertia) if exact else _sum_of_squares(x[~noise], labels[~noise], centres)
    bic = getattr(estimator, "bic", None)
    criteria = {"bic": float(bic(x))} if callable(bic) else {}
    return Partition(labels, centres, score, method.name, _params(estimator), noise if noise.any() else None, criteria)


def renumber_by_size(labels: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel clusters 0..k-1 by decreasing size (ties: earliest first member); centres follow. Noise (-1)
    stays -1."""
    k = centers.shape[0]
    kept = labels >= 0
    sizes = np.bincount(labels[kept], minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] if sizes[c] else len(labels) for c in range(k)])
    order = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    new_of_old = np.empty(k, dtype=int)
    new_of_old[order] = np.arange(k)
    out = np.full(len(labels), -1)
    out[kept] = new_of_old[labels[kept]]
    return out, centers[order]


def _params(estimator: Estimator) -> dict[str, Any]:
    get = getattr(estimator, "get_params", None)
    return dict(get(deep=False)) if get is not None else {}


def _means(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    if k == 0:
        return np.zeros((0, x.shape[1]))
    return np.stack([x[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(x.shape[1]) for c in range(k)])


def _sum_of_squares(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    return float(((x - centres[labels]) ** 2).sum())


register_method(KMEANS, lambda k, seed, n_rows: kmeans(k, seed, n_rows), "K-means (MiniBatchKMeans past 20,000 images)")
