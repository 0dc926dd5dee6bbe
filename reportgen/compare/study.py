"""``reportgen compare``: which representation and which method see the folder's groups?

Every feature spec is embedded once (the embedding cache is shared with reports; several layers of one backbone
share one forward pass) and reduced as a report would;
every method then clusters each spec's vectors once per seed, and every run is scored:

* against the labels, when there are labels: NMI, ARI, purity and Hungarian accuracy (noise, for HDBSCAN, counts
  as one more group);
* without them: silhouette, Calinski-Harabasz and Davies-Bouldin on the images in a cluster, as the report
  computes them (:mod:`reportgen.analyze.scores`).

The ensemble of one spec votes with K-means runs on that spec and on every other spec compared.

K: ``--k`` when given; else the report's own K choice (:func:`reportgen.choose_k.choose_k` with K-means and the
first seed) for each spec, so the methods of one spec are compared at the same K. The Gaussian mixture takes the K
of lowest BIC over the same range for each seed (its own criterion), and HDBSCAN finds its own.

The study also gives the agreement (ARI) between every two configurations (spec x method, first seed), each
flagged oddball of the best configuration (and a seeded sample of other images) with its cluster-mates under every
configuration, and a recommendation: the best configuration by mean NMI with labels, by mean silhouette without
(a label-free score, said so), with whether the runner-up is within the seeds' spread of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ..analyze.evidence import label_evidence
from ..analyze.labels import label_metrics
from ..analyze.scores import label_free
from ..choose_k import choose_k
from ..cluster import KMEANS, ensemble, get_method, partition
from ..config import Config
from ..discover import discover
from ..extract import Embeddings, extract
from ..reduce import Reduced, directions, reduce
from ..schema import no_json

LABEL_SCORES = ("nmi", "ari", "purity", "accuracy")
FREE_SCORES = ("silhouette", "calinski_harabasz", "davies_bouldin")
LOWER_IS_BETTER = {"davies_bouldin"}
MATES = 8  # cluster-mates shown per image and configuration
MATE_IMAGES = 6  # images whose cluster-mates are shown: the best configuration's oddballs first, then a sample
STACK = "+"


@dataclass(frozen=True)
class Trial:
    """One spec x method x seed: its K, noise, scores and time."""

    features: str
    method: str
    seed: int
    k: int
    n_noise: int
    scores: dict[str, float | None]
    seconds: float
    labels: np.ndarray = no_json()  # int N, -1 for noise


@dataclass(frozen=True)
class Cell:
    """One configuration (spec x method) over the seeds: mean and standard deviation of every score."""

    features: str
    method: str
    k: tuple[int, ...]  # per seed
    mean: dict[str, float | None]
    sd: dict[str, float | None]
    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("name",)

    @property
    def name(self) -> str:
        return f"{self.method} on {self.features}"


@dataclass(frozen=True)
class Mates:
    """An image and, per configuration, its cluster and its nearest cluster-mates there."""

    index: int
    path: str
    label: str | None
    why: str  # "oddball R of N of the best configuration" (the strongest first) or "sample"
    rows: tuple[tuple[str, int, tuple[int, ...]], ...]  # (configuration, cluster or -1, mates' indices)


@dataclass(frozen=True)
class Study:
    data: str
    n_images: int
    classes: tuple[str, ...]
    features: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    k_by_spec: dict[str, int]
    linkage: str  # agglomerative's --linkage in this study
    trials: tuple[Trial, ...]
    cells: tuple[Cell, ...]
    agreement: tuple[tuple[float, ...], ...]  # ARI between the cells' first-seed clusterings, in cell order
    best: str  # a cell's name
    ranking_score: str  # "nmi" or "silhouette"
    recommendation: str
    mates: tuple[Mates, ...]
    notes: tuple[str, ...]
    paths: tuple[str, ...] = no_json()
    thumbnails: tuple[bytes, ...] = no_json()
    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("labeled",)

    @property
    def labeled(self) -> bool:
        return bool(self.classes)


def scores(x: np.ndarray, labels: np.ndarray, y: np.ndarray | None, seed: int) -> dict[str, float | None]:
    """Every score of one clustering (``labels`` -1 for noise) of the vectors ``x``."""
    out: dict[str, float | None] = dict.fromkeys(LABEL_SCORES + FREE_SCORES)
    if y is not None:
        m = label_metrics(y, labels)
        out.update(nmi=m.nmi, ari=m.ari, purity=m.purity, accuracy=m.accuracy)
    free = label_free(x, labels, int(labels.max(initial=-1)) + 1, seed)
    out.update(silhouette=free.silhouette, calinski_harabasz=free.calinski_harabasz, davies_bouldin=free.davies_bouldin)
    return out


def run_study(config: Config, features: list[str], methods: list[str], seeds: list[int]) -> Study:
    """Embed each spec, cluster with each method and seed, score, compare (the module docstring says how)."""
    images = discover(config)
    notes: list[str] = []
    spaces: dict[str, tuple[Embeddings, np.ndarray]] = {}
    k_by_spec: dict[str, int] = {}
    if config.use_cache and len(features) > 1 and not any(STACK in spec for spec in features):
        # as one stack the layers of one backbone share a forward pass, each cached under its own spec
        extract(images, replace(config, backbone=STACK.join(features)))
    for spec in features:
        spec_config = replace(config, backbone=spec)
        embeddings = extract(images, spec_config)
        reduced = reduce(embeddings.features, spec_config, embeddings.block_weights)
        spaces[spec] = (embeddings, reduced.features)
        k_by_spec[spec] = _k_of(reduced, config)
    first = spaces[features[0]][0]
    paths = first.images.paths
    for spec, (embeddings, _) in spaces.items():
        if embeddings.images.paths != paths:
            notes.append(f"{spec} could not read some images the others could; every spec is scored on its own set")
    labeled = first.images.labeled
    y = np.array(first.images.labels, dtype=object) if labeled else None
    trials = []
    for spec in features:
        x = spaces[spec][1]
        yy = np.array(spaces[spec][0].images.labels, dtype=object) if labeled else None
        for name in methods:
            for seed in seeds:
                start = time.perf_counter()
                others = tuple(v for f, (_, v) in spaces.items() if f != spec and len(v) == len(x))
                labels, k = _fit(name, x, k_by_spec[spec], seed, config, others)
                trials.append(
                    Trial(spec, name, seed, k, int((labels < 0).sum()), scores(x, labels, yy, seed),
                          time.perf_counter() - start, labels)
                )  # fmt: skip
    cells = tuple(_cell(spec, name, [t for t in trials if (t.features, t.method) == (spec, name)])
                  for spec in features for name in methods)  # fmt: skip
    firsts = [next(t for t in trials if (t.features, t.method) == (c.features, c.method)) for c in cells]
    agreement = tuple(
        tuple(1.0 if i == j else _ari(a.labels, b.labels) for j, b in enumerate(firsts)) for i, a in enumerate(firsts)
    )
    ranking = "nmi" if labeled else "silhouette"
    best, text = _recommend(cells, ranking)
    best_cell = next(c for c in cells if c.name == best)
    mates = _mates(spaces, best_cell, cells, firsts, y, config.seed)
    return Study(
        data=config.data_dir.resolve().name, n_images=len(paths), classes=first.images.classes if labeled else (),
        features=tuple(features), methods=tuple(methods), seeds=tuple(seeds), k_by_spec=k_by_spec,
        linkage=config.linkage, trials=tuple(trials), cells=cells, agreement=agreement, best=best,
        ranking_score=ranking, recommendation=text, mates=mates, notes=tuple(notes), paths=tuple(paths),
        thumbnails=first.thumbnails,
    )  # fmt: skip


def _k_of(reduced: Reduced, config: Config) -> int:
    """``--k``, else the report's own choice with K-means."""
    if config.k is not None:
        return min(config.k, len(reduced.features) - 1)
    return choose_k(reduced, replace(config, method=KMEANS), get_method(KMEANS)).chosen_k


def _fit(
    name: str, x: np.ndarray, k: int, seed: int, config: Config, others: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, int]:
    """One clustering of ``x``; the ensemble also votes with the ``others`` specs' vectors."""
    method = get_method(name)
    if method.options:
        from ..cluster import method_for

        method = method_for(replace(config, method=name))
    if name == ensemble.NAME:
        method = replace(method, make=partial(ensemble.make, spaces=others))
    if method.k_criterion and config.k is None:  # the mixture's own K: lowest BIC over the report's range
        distinct = len(np.unique(x.round(6), axis=0))  # as the report's sweep: never more clusters than points
        ks = range(config.k_min, max(config.k_min, min(config.k_max, len(x) - 1, distinct)) + 1)
        fits = [partition(method, x, kk, seed) for kk in ks]
        found = min(fits, key=lambda p: p.criteria[method.k_criterion])
    else:
        found = partition(method, x, k, seed)
    return found.labels, int(found.centres.shape[0])


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    return float(adjusted_rand_score(a, b))


def _cell(spec: str, name: str, trials: list[Trial]) -> Cell:
    mean: dict[str, float | None] = {}
    sd: dict[str, float | None] = {}
    for score in LABEL_SCORES + FREE_SCORES:
        values = [t.scores[score] for t in trials if t.scores[score] is not None]
        mean[score] = float(np.mean(values)) if values else None
        sd[score] = float(np.std(values)) if values else None
    return Cell(spec, name, tuple(t.k for t in trials), mean, sd)


def _recommend(cells: tuple[Cell, ...], score: str) -> tuple[str, str]:
    """The best cell by ``score`` and a sentence: how far the runner-up is, in the seeds' spread."""
    scored = [c for c in cells if c.mean[score] is not None]
    if not scored:
        return cells[0].name, f"No configuration could be scored by {score} (each found fewer than two clusters)."
    ranked = sorted(scored, key=lambda c: -(c.mean[score] or 0.0))
    top = ranked[0]
    by = "agreement with the folder labels (NMI)" if score == "nmi" else "silhouette, a label-free score (no labels)"
    text = f"Best by {by}: {top.name}, {score.upper() if score == 'nmi' else score} {top.mean[score]:.3f}"
    text += f" ± {top.sd[score]:.3f} over the seeds." if top.sd[score] else "."
    if len(ranked) > 1:
        second = ranked[1]
        gap = (top.mean[score] or 0.0) - (second.mean[score] or 0.0)
        spread = max(top.sd[score] or 0.0, second.sd[score] or 0.0)
        if gap <= spread:
            text += (f" The runner-up, {second.name} ({second.mean[score]:.3f}), is within the seeds' spread of it: "
                     "the data cannot tell the two apart.")  # fmt: skip
        else:
            text += f" The runner-up, {second.name}, scores {second.mean[score]:.3f} ({gap:.3f} lower)."
    return top.name, text


def _mates(
    spaces: dict[str, tuple[Embeddings, np.ndarray]],
    best: Cell,
    cells: tuple[Cell, ...],
    firsts: list[Trial],
    y: np.ndarray | None,
    seed: int,
) -> tuple[Mates, ...]:
    """The best configuration's oddballs (labels), then a seeded sample, with their cluster-mates everywhere."""
    embeddings, x = spaces[best.features]
    n = len(x)
    chosen: list[tuple[int, str]] = []
    if y is not None:
        classes = list(embeddings.images.classes)
        evidence = label_evidence(x, np.array([classes.index(v) for v in y]), len(classes), seed)
        odd = evidence.order(np.flatnonzero(evidence.flagged()))
        shown = odd[: MATE_IMAGES // 2]
        chosen += [(int(i), f"oddball {r + 1} of {len(odd)} of the best configuration") for r, i in enumerate(shown)]
    for i in np.random.default_rng(seed).permutation(n):
        if len(chosen) >= MATE_IMAGES:
            break
        if all(int(i) != j for j, _ in chosen):
            chosen.append((int(i), "sample"))
    unit = {spec: directions(x) for spec, (_, x) in spaces.items()}  # once per spec, not per image and cell
    out = []
    for i, why in chosen:
        rows = []
        for cell, trial in zip(cells, firsts, strict=True):
            space = unit[cell.features]
            own = int(trial.labels[i])
            if own < 0:
                rows.append((cell.name, -1, ()))
                continue
            members = np.flatnonzero((trial.labels == own) & (np.arange(n) != i))
            d = np.linalg.norm(space[members] - space[i], axis=1)
            rows.append((cell.name, own, tuple(int(members[j]) for j in np.argsort(d, kind="stable")[:MATES])))
        label = embeddings.images.labels[i]
        out.append(Mates(i, embeddings.images.paths[i], label, why, tuple(rows)))
    return tuple(out)
