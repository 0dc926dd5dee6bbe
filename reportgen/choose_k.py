"""Stage 4: choose the number of clusters K from several criteria, and say how sure the choice is.

The rule (also in the README; the study behind it is in docs/quality.md):

1. ``--k`` given: use it.
2. Sweep K over ``k_min..k_max`` (capped at N - 1) with seeded K-means on the **directions** of the clustering
   space (its rows scaled to unit length, :func:`reduce.directions`; the final clustering uses the space
   itself). On the projection, images that lie mostly outside the kept components sit near the origin and
   blur every criterion: there, the picks changed with the seed; on the directions they do not. For each K
   record: inertia, mean silhouette, Calinski-Harabasz, Davies-Bouldin and
   **stability** (the mean ARI between the full clustering and K-means on ``STABILITY_DRAWS`` random 80%
   subsamples: a K that describes real groups is found again on most of the data).
3. Each criterion picks its own K: the elbow of the inertia curve (kneed), the highest silhouette, the highest
   Calinski-Harabasz, the lowest Davies-Bouldin, the highest stability.
4. **Chosen K**: the lowest mean rank over the four curve criteria (silhouette, Calinski-Harabasz,
   Davies-Bouldin, stability; ties go to the smaller K). A consensus of rankings cannot be captured by one
   criterion's quirk (the silhouette climbing with K on weakly separated data, Davies-Bouldin drifting to the
   top of the range). The elbow is reported but does not vote: on the smooth inertia curves of CNN features
   kneed places the knee late (K=10 on sample_data, whose classes number 4). Stability's own pick is the
   largest K whose stability is within ``STABILITY_TIE`` of the best, since merging real groups is also
   perfectly reproducible (well-separated groups give stability 1.0 at the true K and below it).
5. **Candidates** are the two K with the best mean rank; the **plausible range** runs from the lowest to the
   highest of the candidates and the K whose mean rank is within ``RANGE_RANK`` of the best. **Confidence** is
   the share of the five picks (the elbow included when there is one) that lie within one of the chosen K:
   ``high`` from 0.8, ``medium`` from 0.5, else ``low``; the report says when the criteria disagree, and below
   ``high`` it also clusters at the runner-up and shows the two side by side (:mod:`.analyze.runner_up`).
   Measured leave-one-folder-out on 24 labeled folders (docs/quality.md), "high" was right every time it was
   said (3 of 3); no candidate criterion or combination chose K better than this rule on folders left out.
6. When every point is the same (the criteria are undefined) K is 1.
7. Past ``sampling.LARGE_N`` images the sweep runs on a seeded sample of that many (the criteria are
   properties of the groups' shapes, which a 20,000-image sample shows as well as the whole folder).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import sklearn
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score

from .cache import load_memo, memo_key, save_memo
from .cluster import KMEANS, N_INIT, MethodSpec, get_method, method_for, partition
from .config import Config
from .errors import InvalidOptionError
from .reduce import Reduced, directions
from .sampling import LARGE_N, seeded_sample

log = logging.getLogger(__name__)

STABILITY_DRAWS = 10
STABILITY_FRACTION = 0.8
STABILITY_N_INIT = 3
STABILITY_TIE = 0.02
RANGE_RANK = 1.0  # the plausible range of K: every K whose mean rank is within this of the best
SWEEP_SILHOUETTE_SAMPLE = 5_000  # the silhouette is quadratic in N: past this, a seeded sample estimates it
# Criterion name -> whether higher is better. The order is the order of the report's table.
CURVES = {"silhouette": True, "calinski_harabasz": True, "davies_bouldin": False, "stability": True}
LABELS = {
    "elbow": "elbow of inertia",
    "silhouette": "silhouette",
    "calinski_harabasz": "Calinski-Harabasz",
    "davies_bouldin": "Davies-Bouldin",
    "stability": "stability",
    "bic": "BIC",
}


@dataclass(frozen=True)
class Criterion:
    """One criterion's curve over the swept K (``None`` for the elbow, which has no curve of its own) and its K."""

    values: tuple[float, ...] | None
    k: int | None


@dataclass(frozen=True)
class KSelection:
    """The K sweep, each criterion's curve and pick, and the decision made from them."""

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("silhouette", "elbow_k", "silhouette_k", "criteria", "at_edge")

    ks: tuple[int, ...] = field(metadata={"key": "k"})
    inertia: tuple[float, ...]
    curves: dict[str, tuple[float, ...]] = field(metadata={"json": False})  # criterion -> value per K
    picks: dict[str, int | None] = field(metadata={"json": False})  # criterion (and "elbow") -> its K
    mean_rank: tuple[float, ...]  # per K, over the curve criteria
    candidates: tuple[int, ...]  # the two K with the best mean rank, best first
    k_range: tuple[int, ...]  # (lowest, highest) of the candidates and the K ranked within RANGE_RANK of the best
    agreement: float  # share of picks within one of the chosen K
    confidence: str  # "high", "medium", "low", "given" (--k) or "data" (the method finds K)
    chosen_k: int = field(metadata={"json": False})  # the Run's ``chosen_k``
    reason: str
    forced: bool
    disagreement: str | None  # a sentence naming the criteria far from the chosen K, or None
    mean_silhouette: float | None = None  # over the images at the chosen K, once clustered (see pipeline)

    @property
    def silhouette(self) -> tuple[float, ...]:
        return self.curves.get("silhouette", ())

    @property
    def elbow_k(self) -> int | None:
        return self.picks.get("elbow")

    @property
    def silhouette_k(self) -> int | None:
        return self.picks.get("silhouette")

    @property
    def second_opinion(self) -> int | None:
        """The runner-up K when the criteria are not sure of the chosen one (confidence medium or low): the
        report then clusters at it too and shows the two side by side."""
        if self.confidence in ("medium", "low") and len(self.candidates) > 1:
            return self.candidates[1]
        return None

    @property
    def agreeing(self) -> tuple[str, ...]:
        """The criteria whose K is within one of the chosen K."""
        return agreeing(self.picks, self.chosen_k)

    @property
    def at_edge(self) -> tuple[str, ...]:
        """The criteria that pick an end of the swept range (the top, or the bottom when it is above 2): such a
        pick says the criterion kept improving up to the end, not that the data has that many groups."""
        if len(self.ks) < 3:
            return ()
        ends = {self.ks[-1]} | ({self.ks[0]} if self.ks[0] > 2 else set())
        return tuple(name for name, k in self.picks.items() if k in ends)

    @property
    def criteria(self) -> dict[str, Criterion]:
        """Every criterion's curve and K, in the report's order, the elbow first."""
        return {name: Criterion(self.curves.get(name), k) for name, k in self.picks.items()}


def choose_k(reduced: Reduced, config: Config, method: MethodSpec | None = None) -> KSelection:
    """Sweep K and pick one by the rule in this module's docstring.

    Parameters
    ----------
    reduced : the clustering space.
    config : ``k``, ``k_min``, ``k_max``, ``method`` and ``seed`` are read; the sweep is memoised in the cache
        folder.
    method : the clustering method whose K is chosen (default: ``config.method``); each K is fitted with it,
        so any registered method can have its K chosen.

    Returns
    -------
    :class:`KSelection` with every criterion's curve and pick, the candidates, the confidence, the chosen K
    and a sentence saying why.
    """
    method = method or method_for(config)
    if not method.takes_k:  # the method finds K itself: K-means' criteria are shown for reference
        reference = choose_k(reduced, replace(config, k=None), get_method(KMEANS))
        return replace(
            reference,
            reason=f"{method.name} finds the number of clusters from the data; the criteria below are K-means' "
            "at each K, for reference",
            confidence="data",
            disagreement=None,
            forced=False,
        )
    if method.k_by and config.k is None:  # chosen by another method's sweep, which says so
        chosen = choose_k(reduced, replace(config, method=method.k_by), get_method(method.k_by))
        return replace(chosen, reason=chosen.reason + f" (with {method.k_by}'s sweep; {method.name} clusters at it)")
    n = reduced.features.shape[0]
    if config.k is not None and config.k > n:
        raise InvalidOptionError(f"--k {config.k} is larger than the number of usable images ({n})")
    x = directions(reduced.features[seeded_sample(n, LARGE_N, config.seed)])
    n = len(x)
    n_distinct = len(np.unique(x.round(6), axis=0))
    k_hi = min(config.k_max, n - 1, n_distinct)
    ks = tuple(range(config.k_min, k_hi + 1))
    inertia, curves, elbow = _sweep(x, ks, method, config)

    picks: dict[str, int | None] = {"elbow": elbow}
    for name, higher in CURVES.items():
        values = np.asarray(curves[name])
        picks[name] = ks[int(np.argmax(values) if higher else np.argmin(values))] if ks else None
    if method.k_criterion and curves.get(method.k_criterion):
        picks[method.k_criterion] = ks[int(np.argmin(curves[method.k_criterion]))]
    if ks:
        stability = np.asarray(curves["stability"])
        picks["stability"] = max(k for k, v in zip(ks, stability, strict=True) if v >= stability.max() - STABILITY_TIE)
    mean_rank = _mean_rank(curves, len(ks))
    order = sorted(range(len(ks)), key=lambda j: (mean_rank[j], ks[j]))
    candidates = tuple(ks[j] for j in order[:2])
    plausible = [k for k, rank in zip(ks, mean_rank, strict=True) if rank <= min(mean_rank) + RANGE_RANK]
    plausible += list(candidates)
    k_range = (min(plausible), max(plausible)) if plausible and config.k is None else ()

    if config.k is not None:
        chosen, reason = config.k, f"K={config.k} was given with --k"
    elif not ks:
        chosen = 1
        reason = (
            f"K cannot be chosen: only {n_distinct} distinct image{'s' if n_distinct != 1 else ''} among {n} "
            f"(need at least {config.k_min + 1} distinct images for a K={config.k_min} sweep); using K=1"
        )
    elif method.k_criterion and picks.get(method.k_criterion) is not None:
        chosen = picks[method.k_criterion]
        best_rank = candidates[0]
        candidates = (chosen, best_rank if best_rank != chosen else candidates[-1])[: len(set(candidates) | {chosen})]
        k_range = (min(k_range[0], chosen), max(k_range[1], chosen)) if k_range else k_range
        reason = (
            f"K={chosen} has the lowest {LABELS[method.k_criterion]} of the {method.name} fits (the method's own "
            f"criterion); the four criteria's best mean rank is K={best_rank}"
        )
    else:
        chosen = candidates[0]
        best = mean_rank[ks.index(chosen)]
        reason = f"K={chosen} has the best mean rank over the four criteria ({best:.1f})"
        if len(candidates) > 1:
            second = mean_rank[ks.index(candidates[1])]
            reason += f"; runner-up K={candidates[1]} ({second:.1f})"
            if np.isclose(best, second):
                reason = (
                    f"K={chosen} and K={candidates[1]} tie for the best mean rank over the four criteria ({best:.1f}); "
                    f"the smaller, K={chosen}, is chosen and K={candidates[1]} is the runner-up"
                )
    voters = [k for k in picks.values() if k is not None]
    agreement = len(agreeing(picks, chosen)) / len(voters) if voters else 0.0
    if config.k is not None:
        confidence = "given"
    elif not ks:
        confidence = "low"
    else:
        confidence = "high" if agreement >= 0.8 else "medium" if agreement >= 0.5 else "low"
    log.info("chose K=%d (%s confidence): %s", chosen, confidence, reason)
    return KSelection(
        ks=ks,
        inertia=tuple(inertia),
        curves={name: tuple(values) for name, values in curves.items()},
        picks=picks,
        mean_rank=tuple(float(v) for v in mean_rank),
        candidates=candidates,
        k_range=k_range,
        agreement=float(agreement),
        confidence=confidence,
        chosen_k=int(chosen),
        reason=reason,
        forced=config.k is not None,
        disagreement=None if config.k is not None else disagreement(picks, int(chosen)),
    )


def agreeing(picks: dict[str, int | None], chosen: int) -> tuple[str, ...]:
    """The criteria whose pick is within one of ``chosen`` (what "agrees" means everywhere)."""
    return tuple(name for name, k in picks.items() if k is not None and abs(k - chosen) <= 1)


def disagreement(picks: dict[str, int | None], chosen: int) -> str | None:
    """A sentence naming the criteria that pick K more than one away from ``chosen``, or ``None``."""
    near = agreeing(picks, chosen)
    away = [f"{LABELS[name]} K={k}" for name, k in picks.items() if k is not None and name not in near]
    if not away:
        return None
    return "The criteria disagree: " + ", ".join(away) + f" (chosen K={chosen})."


def _mean_rank(curves: dict[str, list[float]], n_ks: int) -> np.ndarray:
    """Mean over the curve criteria of each K's rank (0 = best); equal values share the better rank."""
    if not n_ks:
        return np.zeros(0)
    ranks = []
    for name, higher in CURVES.items():
        v = np.asarray(curves[name], dtype=float)
        key = -v if higher else v
        ranks.append(np.array([np.sum(key < key[j] - 1e-12) for j in range(n_ks)], dtype=float))
    return np.mean(ranks, axis=0)


def _sweep(
    x: np.ndarray, ks: tuple[int, ...], method: MethodSpec, config: Config
) -> tuple[list[float], dict[str, list[float]], int | None]:
    """Inertia, every criterion's curve, and the elbow, memoised in the cache folder.

    The sweep is deterministic for the same features, Ks, seed and scikit-learn version, so a rerun over an
    unchanged folder reads it back instead of running K-means again.
    """
    key = memo_key(x, ks, config.seed, N_INIT, STABILITY_DRAWS, sklearn.__version__, method.name)
    if config.use_cache:
        memo = load_memo(config.resolved_cache_dir, "ksweep-v2", key)
        expected = set(CURVES) | ({method.k_criterion} if method.k_criterion else set())
        if memo and len(memo.get("inertia", ())) == len(ks) and set(memo.get("curves", {})) == expected:
            return memo["inertia"], memo["curves"], memo["elbow"]
    inertia: list[float] = []
    curves: dict[str, list[float]] = {name: [] for name in CURVES}
    if method.k_criterion:
        curves[method.k_criterion] = []
    rng = np.random.default_rng(config.seed)
    subsamples = [
        np.sort(rng.choice(len(x), int(STABILITY_FRACTION * len(x)), replace=False)) for _ in range(STABILITY_DRAWS)
    ]
    for k in ks:
        fitted = partition(method, x, k, config.seed)
        labels = fitted.labels
        inertia.append(fitted.score)
        sample = min(len(x), SWEEP_SILHOUETTE_SAMPLE)
        curves["silhouette"].append(float(silhouette_score(x, labels, sample_size=sample, random_state=config.seed)))
        curves["calinski_harabasz"].append(float(calinski_harabasz_score(x, labels)))
        curves["davies_bouldin"].append(float(davies_bouldin_score(x, labels)))
        curves["stability"].append(_stability(x, labels, k, subsamples, method, config.seed))
        if method.k_criterion:
            curves[method.k_criterion].append(fitted.criteria[method.k_criterion])
    elbow = _elbow(ks, inertia)
    if config.use_cache and ks:
        memo = {"inertia": inertia, "curves": curves, "elbow": elbow}
        save_memo(config.resolved_cache_dir, "ksweep-v2", key, memo)
    return inertia, curves, elbow


def _stability(
    x: np.ndarray, labels: np.ndarray, k: int, subsamples: list[np.ndarray], method: MethodSpec, seed: int
) -> float:
    """Mean ARI between ``labels`` and the method refitted on each subsample (restricted to the subsample)."""
    scores = []
    for j, sub in enumerate(subsamples):
        if len(sub) <= k:
            continue
        refit = partition(method, x[sub], k, seed + 1 + j, n_init=STABILITY_N_INIT)
        scores.append(adjusted_rand_score(labels[sub], refit.labels))
    return float(np.mean(scores)) if scores else 0.0


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
