"""The report's sections: each one object (id, title, when it applies, its context, its partial) in one list.

The page shows the sections in :data:`SECTIONS` order, each one that applies to the Run, with a table of
contents built from the same list. A section is::

    Section(id="sizes", title="Cluster sizes", template="sections/sizes.html",
            applies=lambda run: run.chosen_k > 1,
            context=lambda run, page: {"largest": run.analysis.clusters[0]},
            images=lambda run: run.analysis.clusters[0].nearest)

``context`` returns what its partial reads as ``c`` (besides ``run``, ``report`` and ``page``); ``images``
lists the image indices it shows as tiles, so that the size budget counts them and the viewer has their
details before anything is drawn. Its partial is a ``<section id="...">`` under ``templates/sections/``; a
section registered from outside the package gives its partial's absolute path. :func:`register_section` adds
one before or after a named section.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analyze.evidence import CLASSIFIER_MARGIN, VOTE_MARGIN, VOTERS
from ..analyze.records import Oddball, WithinClass
from ..analyze.within import BROAD, MEANINGFUL_Z, near_singleton
from ..choose_k import LABELS, RANGE_RANK
from ..explain import ODDBALL_MAPS

if TYPE_CHECKING:
    from ..run import Run
    from .page import Page

ODDBALL_CARDS = ODDBALL_MAPS  # oddballs or outliers shown as cards with pictures; the rest of the detailed ones as rows
# the maps a tile can switch to, by the role it plays (reportgen.explain)
CLUSTER_VIEWS = ("prediction", "cluster")
ODDBALL_VIEWS = ("prediction", "cluster", "class")
PART_VIEWS = ("prediction", "part")


def _always(run: Run) -> bool:
    return True


def _nothing(run: Run, page: Page) -> dict[str, Any]:
    return {}


def _no_images(run: Run) -> Iterable[int]:
    return ()


@dataclass(frozen=True)
class Section:
    """One section of the report (see the module docstring)."""

    id: str
    title: str
    template: str
    applies: Callable[[Run], bool] = _always
    context: Callable[[Run, Page], dict[str, Any]] = _nothing
    images: Callable[[Run], Iterable[int]] = _no_images
    uses_k: bool = False  # what it shows depends on the global K (named when the K choice is not sure)


def _has_sweep(run: Run) -> bool:
    return bool(run.k_selection.ks)


def _labeled(run: Run) -> bool:
    return run.dataset.labeled


def _unlabeled(run: Run) -> bool:
    return not run.dataset.labeled


# ------------------------------------------------------------------------------------------- choose K


def _choose_k(run: Run, page: Page) -> dict[str, Any]:
    sel, analysis = run.k_selection, run.analysis
    plots = {
        "elbow": page.figure("elbow_plot", sel),
        "silhouette": page.figure("silhouette_plot", sel),
        "criteria": page.figure("criteria_plot", sel),
    }
    if analysis.silhouettes is not None:
        sampled = np.isfinite(analysis.silhouettes)
        values = analysis.silhouettes[sampled].round(6).tolist()
        labels = run.clustering.labels[sampled].tolist()
        plots["knife"] = page.figure(
            "silhouette_knife", values, labels, list(run.clustering.cluster_ids[: run.chosen_k])
        )
    else:
        plots["knife"] = None  # K = 1 or too few distinct images: no silhouette
    return {
        "plots": plots,
        "labels": LABELS,
        "runner_up": _runner_up(run, page),
        "range_rank": RANGE_RANK,
        "source_share": RUNNER_UP_SOURCE,
    }


RUNNER_UP_TILES = 4  # images per cluster in the side-by-side of the two candidate K
RUNNER_UP_SOURCE = 0.1  # a chosen cluster is named as a source of a runner-up cluster from this share of it


def _runner_up(run: Run, page: Page) -> dict[str, Any] | None:
    """The chosen and the runner-up clusterings side by side, and which sections would change between them."""
    second = run.analysis.runner_up
    if second is None:
        return None
    crosstab = np.array(second.crosstab)
    others = []
    for info in second.clusters:
        column = crosstab[:, info.cluster]
        sources = [(run.clustering.id_of(int(i)), int(column[i])) for i in np.argsort(-column, kind="stable")]
        sources = [(i, n) for i, n in sources if n and n >= RUNNER_UP_SOURCE * column.sum()]
        others.append({"info": info, "tiles": page.tiles(info.nearest[:RUNNER_UP_TILES]), "sources": sources})
    shown = [s for s in applicable(run) if s.id not in ("choose-k", "skipped", "run-details")]
    return {
        "info": second,
        "chosen": [
            {"info": c, "tiles": page.tiles(c.nearest[:RUNNER_UP_TILES]), "sources": []} for c in run.analysis.clusters
        ],
        "other": others,
        "changing": [s.title for s in shown if s.uses_k],
        "unchanged": [s.title for s in shown if not s.uses_k],
    }


def _choose_k_images(run: Run) -> Iterable[int]:
    second = run.analysis.runner_up
    if second is None:
        return ()
    clusters = (*run.analysis.clusters, *second.clusters)
    return [i for c in clusters for i in c.nearest[:RUNNER_UP_TILES]]


# ------------------------------------------------------------------------------------------- clusters


def _clusters(run: Run, page: Page) -> dict[str, Any]:
    return {"clusters": [{"info": c, "tiles": page.tiles(c.nearest, CLUSTER_VIEWS)} for c in run.analysis.clusters]}


def _cluster_images(run: Run) -> Iterable[int]:
    return [i for c in run.analysis.clusters for i in c.nearest]


# ------------------------------------------------------------------------------------------- labels


def _count_matrix(run: Run, page: Page) -> dict[str, Any]:
    matrix = run.analysis.count_matrix
    order = list(matrix.column_order)
    rows = [
        {
            "label": s.label,
            "size": s.size,
            "cells": [
                (s.counts[c], s.counts[c] / s.size if s.size else 0.0, matrix.clusters[c] in s.tied_clusters)
                for c in order
            ],
        }
        for s in run.analysis.class_spread
    ]
    ticks = [str(matrix.clusters[c]) if matrix.clusters[c] >= 0 else "none" for c in order]
    heatmap = page.figure("count_heatmap", matrix.counts[:, order].tolist(), list(matrix.classes), ticks)
    names = [c.name for c in run.analysis.clusters]
    return {"heatmap": heatmap, "order": order, "rows": rows, "names": names, "ids": list(matrix.clusters)}


def _histograms(run: Run, page: Page) -> dict[str, Any]:
    spreads = [(s.label, s.counts, s.tied_columns) for s in run.analysis.class_spread]
    return {"figure": page.figure("class_histograms", spreads, 4, list(run.clustering.cluster_ids))}


def _oddballs(run: Run, page: Page) -> dict[str, Any]:
    items = []
    tied_homes = {s.label: s.tied_clusters for s in run.analysis.class_spread}
    for o in run.analysis.oddballs[:ODDBALL_CARDS]:
        items.append(
            {
                "o": o,
                "tile": page.tile(o.index, ODDBALL_VIEWS),
                "home_name": run.analysis.cluster(o.class_cluster).name,
                "homes": tied_homes.get(o.label, (o.class_cluster,)),
                "neighbours": page.tiles(n.index for n in o.neighbours),
                "typical_class": page.tiles(o.typical_class),
                "typical_looks_like": page.tiles(o.typical_looks_like),
            }
        )
    keys = [_evidence(o) for o in run.analysis.oddballs]
    tied = {key for key in keys if keys.count(key) > 1}
    return {
        "oddballs": items,
        "rest": run.analysis.oddballs[ODDBALL_CARDS:],
        "tied": tied,
        "evidence": _evidence,
        "voters": VOTERS,
        "vote_margin": VOTE_MARGIN,
        "classifier_margin": f"{CLASSIFIER_MARGIN:.2f}",
    }


def _evidence(o: Oddball) -> tuple[int, float]:
    """What oddballs are ranked by (equal keys are ties)."""
    return o.vote_margin, round(o.classifier_margin, 6)


def _oddball_images(run: Run) -> Iterable[int]:
    out = []
    for o in run.analysis.oddballs[:ODDBALL_CARDS]:
        out += [o.index, *(n.index for n in o.neighbours), *o.typical_class, *o.typical_looks_like]
    return out


SKIPPED_SHOWN = 200  # rows of the skipped files' table (summary.json lists every one)


def _skipped(run: Run, page: Page) -> dict[str, Any]:
    reasons = Counter(s.reason for s in run.dataset.skipped)
    return {"reasons": sorted(reasons.items(), key=lambda t: (-t[1], t[0])), "shown": SKIPPED_SHOWN}


def _shared(run: Run, page: Page) -> dict[str, Any]:
    items = []
    for sh in run.analysis.shared_clusters:
        parts = zip(sh.classes.items(), sh.parts, strict=True)
        items.append({"sh": sh, "parts": [(label, n, page.tiles(part)) for (label, n), part in parts]})
    return {"shared": items}


def _shared_images(run: Run) -> Iterable[int]:
    return [i for sh in run.analysis.shared_clusters for part in sh.parts for i in part]


def _within(run: Run, page: Page) -> dict[str, Any]:
    return {
        "within": [
            {
                "w": w,
                "why": _split_verdict(w),
                "subs": [
                    {"size": w.sizes[j], "preds": w.top_predictions[j], "tiles": page.tiles(w.nearest[j], PART_VIEWS)}
                    for j in range(w.k)
                ],
            }
            for w in run.analysis.within_class
        ],
        "z": f"{MEANINGFUL_Z:g}",
        "broad": f"{BROAD:g}",
    }


def _split_verdict(w: WithinClass) -> str:
    """Why a split is or is not marked real, in the words of the rule (analyze.within)."""
    if w.meaningful:
        return f"score {w.split_score:.1f} (at least {MEANINGFUL_Z:g}) and breadth {w.breadth:.2f} (at least {BROAD:g})"
    if near_singleton(np.array(w.sizes)):
        return "a sub-cluster is a near-singleton"
    if w.split_score < MEANINGFUL_Z:
        return (
            f"score {w.split_score:.1f}, under {MEANINGFUL_Z:g}: the sub-clusters are not clearly more distinct than "
            "those of structureless data of this shape, so the features see a continuum; judge the montages"
        )
    return (
        f"its halves are distinct (score {w.split_score:.1f}), but the class is no broader than a typical one "
        f"(breadth {w.breadth:.2f}, under {BROAD:g})"
    )


def _within_images(run: Run) -> Iterable[int]:
    return [i for w in run.analysis.within_class for part in w.nearest for i in part]


# ------------------------------------------------------------------------------------------- unlabeled


def _outliers(run: Run, page: Page) -> dict[str, Any]:
    return {
        "outliers": [
            {"o": o, "tile": page.tile(o.index, CLUSTER_VIEWS), "neighbours": page.tiles(o.neighbour_index)}
            for o in run.analysis.outliers[:ODDBALL_CARDS]
        ],
        "rest": run.analysis.outliers[ODDBALL_CARDS:],
    }


def _outlier_images(run: Run) -> Iterable[int]:
    return [i for o in run.analysis.outliers[:ODDBALL_CARDS] for i in (o.index, *o.neighbour_index)]


def _summary(run: Run, page: Page) -> dict[str, Any]:
    sizes = run.analysis.class_spread
    largest = max((s.size for s in sizes), default=0)
    return {"largest_class_share": largest / run.dataset.n_images if sizes else 0.0}


SECTIONS: list[Section] = [
    Section("summary", "Summary", "sections/summary.html", context=_summary, uses_k=True),
    Section("choose-k", "Choosing K", "sections/choose_k.html", _has_sweep, _choose_k, _choose_k_images),
    Section("clusters", "Clusters", "sections/clusters.html", context=_clusters, images=_cluster_images, uses_k=True),
    Section("map", "Map", "sections/map.html", uses_k=True),
    Section("count-matrix", "Count matrix", "sections/count_matrix.html", _labeled, _count_matrix, uses_k=True),
    Section("histograms", "Class histograms", "sections/histograms.html", _labeled, _histograms, uses_k=True),
    Section("oddballs", "Oddballs", "sections/oddballs.html", _labeled, _oddballs, _oddball_images),
    Section(
        "shared", "Classes grouped together", "sections/shared.html", _labeled, _shared, _shared_images, uses_k=True
    ),
    Section("within-class", "Within-class splits", "sections/within_class.html", _labeled, _within, _within_images),
    Section("outliers", "Outliers", "sections/outliers.html", _unlabeled, _outliers, _outlier_images, uses_k=True),
    Section("skipped", "Skipped and duplicate files", "sections/skipped.html", context=_skipped),
    Section("run-details", "Run details", "sections/run_details.html"),
]


def register_section(section: Section, *, before: str | None = None, after: str | None = None) -> None:
    """Add ``section`` to the report (replacing one with the same id), before or after the section with that
    id, else at the end. Its ``template`` is a partial under the package's templates, or an absolute path."""
    SECTIONS[:] = [s for s in SECTIONS if s.id != section.id]
    anchor = before or after
    ids = [s.id for s in SECTIONS]
    if anchor is not None and anchor not in ids:
        raise ValueError(f"no report section '{anchor}'; sections are: {', '.join(ids)}")
    at = len(SECTIONS) if anchor is None else ids.index(anchor) + (1 if after else 0)
    SECTIONS.insert(at, section)


def applicable(run: Run) -> list[Section]:
    """The sections the report of ``run`` shows, in order."""
    return [s for s in SECTIONS if s.applies(run)]


def partial_source(name: str) -> Path | None:
    """The file of a partial registered from outside the package by its absolute path, else ``None``."""
    path = Path(name)
    if path.is_absolute() and any(s.template == name for s in SECTIONS):
        return path
    return None
