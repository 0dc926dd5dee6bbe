"""Stage 4: choose the number of clusters K from the elbow of the inertia curve and the silhouette.

The rule (also in the README):

1. ``--k`` given: use it.
2. Sweep K over ``k_min..k_max`` (capped at N - 1) with seeded K-means; record inertia and silhouette.
3. Find the elbow of the inertia curve with kneed (convex, decreasing). If there is a knee, choose the K
   with the best silhouette among K <= knee: past the elbow extra clusters stop paying for themselves and
   mostly split real groups, and below it the silhouette picks the best-separated K. If there is no knee,
   say so and choose the K with the best silhouette over the whole sweep.
4. When every point is the same (the silhouette is undefined) K is 1.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from .cache import load_memo, memo_key, save_memo
from .config import Config
from .errors import InvalidOptionError
from .reduce import Reduced

log = logging.getLogger(__name__)

N_INIT = 10


@dataclass(frozen=True)
class KSelection:
    """The K sweep and the decision made from it."""

    ks: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    elbow_k: int | None
    silhouette_k: int | None
    chosen_k: int
    reason: str
    forced: bool


def choose_k(reduced: Reduced, config: Config) -> KSelection:
    """Sweep K and pick one by the rule in this module's docstring.

    Parameters
    ----------
    reduced : the clustering space.
    config : ``k``, ``k_min``, ``k_max`` and ``seed`` are read.

    Returns
    -------
    :class:`KSelection` with the curves, each criterion's pick, the chosen K and a sentence saying why.
    """
    x = reduced.features
    n = x.shape[0]
    if config.k is not None and config.k > n:
        raise InvalidOptionError(f"--k {config.k} is larger than the number of usable images ({n})")
    n_distinct = len(np.unique(x.round(6), axis=0))
    k_hi = min(config.k_max, n - 1, n_distinct)
    ks = tuple(range(config.k_min, k_hi + 1))
    inertia, silhouette, elbow_k = _sweep(x, ks, config)
    silhouette_k = ks[int(np.argmax(silhouette))] if ks else None

    if config.k is not None:
        chosen, reason = config.k, f"K={config.k} was given with --k"
    elif not ks:
        chosen = 1
        reason = (
            f"K cannot be chosen: only {n_distinct} distinct image{'s' if n_distinct != 1 else ''} among {n} "
            f"(need at least {config.k_min + 1} for a K={config.k_min} sweep with a silhouette); using K=1"
        )
    elif elbow_k is None:
        chosen = silhouette_k  # type: ignore[assignment]
        reason = (
            f"the inertia curve has no clear knee over K={ks[0]}..{ks[-1]}, so K={chosen} was chosen "
            f"for the best silhouette ({max(silhouette):.3f})"
        )
    else:
        upto = [k for k in ks if k <= elbow_k]
        chosen = max(upto, key=lambda k: silhouette[ks.index(k)])
        sil = silhouette[ks.index(chosen)]
        if chosen == elbow_k:
            reason = (
                f"elbow of the inertia curve at K={elbow_k}, which also has the best silhouette up to it ({sil:.3f})"
            )
        else:
            reason = (
                f"elbow of the inertia curve at K={elbow_k}; K={chosen} has the best silhouette up to the elbow "
                f"({sil:.3f} vs {silhouette[ks.index(elbow_k)]:.3f} at the elbow)"
            )
        if silhouette_k != chosen:
            reason += f"; the best silhouette over the whole sweep is at K={silhouette_k}"
    log.info("chose K=%d: %s", chosen, reason)
    return KSelection(
        ks=ks,
        inertia=tuple(inertia),
        silhouette=tuple(silhouette),
        elbow_k=elbow_k,
        silhouette_k=silhouette_k,
        chosen_k=int(chosen),
        reason=reason,
        forced=config.k is not None,
    )


def _sweep(x: np.ndarray, ks: tuple[int, ...], config: Config) -> tuple[list[float], list[float], int | None]:
    """Inertia and mean silhouette for each K, and the elbow, memoised in the cache folder.

    The sweep is deterministic for the same features, Ks, seed and scikit-learn version, so a rerun over an
    unchanged folder reads it back instead of running K-means again.
    """
    key = memo_key(x, ks, config.seed, N_INIT, sklearn.__version__)
    if config.use_cache:
        memo = load_memo(config.resolved_cache_dir, "ksweep", key)
        if memo and len(memo.get("inertia", ())) == len(ks) == len(memo.get("silhouette", ())) and "elbow" in memo:
            elbow = memo["elbow"]
            return [float(v) for v in memo["inertia"]], [float(v) for v in memo["silhouette"]], elbow
    inertia: list[float] = []
    silhouette: list[float] = []
    for k in ks:
        labels, km_inertia = _kmeans(x, k, config.seed)
        inertia.append(km_inertia)
        silhouette.append(float(silhouette_score(x, labels)))
    elbow = _elbow(ks, inertia)
    if config.use_cache and ks:
        memo = {"inertia": inertia, "silhouette": silhouette, "elbow": elbow}
        save_memo(config.resolved_cache_dir, "ksweep", key, memo)
    return inertia, silhouette, elbow


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(x)
    return km.labels_, float(km.inertia_)


def _elbow(ks: tuple[int, ...], inertia: list[float]) -> int | None:
    """The knee of the inertia curve, or ``None`` (with a log line) when kneed finds none."""
    if len(ks) < 3:
        log.info("no elbow: the sweep has only %d values of K", len(ks))
        return None
    from kneed import KneeLocator  # imports matplotlib: only when a sweep really runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns "no knee/elbow found"; we report that ourselves
        knee = KneeLocator(list(ks), inertia, curve="convex", direction="decreasing").knee
    if knee is None:
        log.warning("no knee found in the inertia curve over K=%d..%d", ks[0], ks[-1])
        return None
    return int(knee)
