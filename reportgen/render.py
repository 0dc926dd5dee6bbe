"""Stage 7: write report.html, assignments.csv and summary.json, each atomically.

The report is a view over the same data that goes into summary.json and assignments.csv: summary.json is
built from the stage results, and the templates read that summary plus pictures (thumbnails and figures).

Size budget: thumbnails are re-encoded from the cached ones at a size chosen so the page stays under
``--max-report-mb``. Montage tiles come first (largest size whose estimated total fits half the budget),
then the map's hover thumbnails (largest size that fits what is left, else a seeded subset of images gets
one). If the rendered page is still over budget, everything steps down one size and it renders again. What
was trimmed is said in the report and in summary.json ``report.trimmed``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from PIL import Image

from .analyze import DETAILED, Analysis
from .cache import load_memo, save_memo
from .choose_k import LABELS, KSelection, disagreement
from .cluster import Clustering
from .config import Config
from .embed import Embeddings
from .freshness import output_digests, versions
from .fsutil import atomic_write, template_dir
from .maps import Map2D
from .reduce import Reduced
from .sampling import seeded_sample

log = logging.getLogger(__name__)

TILE_SIZES = (128, 96, 72, 56, 40)
HOVER_SIZES = (96, 64, 48, 32)
THUMB_QUALITY = 72
ODDBALLS_SHOWN = 60
TYPICAL_SHOWN = 3
MAP_MAX_POINTS = 20_000
SILHOUETTE_WEAK = 0.25  # Kaufman & Rousseeuw: below this, no substantial cluster structure
FIXED_OVERHEAD_BYTES = 600_000  # figures, CSS, JS and text, before any thumbnail


@dataclass(frozen=True)
class Outputs:
    """Where a run wrote its files."""

    report: Path
    assignments: Path
    summary: Path


@dataclass(frozen=True)
class Budget:
    """How big the thumbnails are and which images get a hover thumbnail on the map."""

    max_bytes: int
    tile_px: int
    hover_px: int
    hover_indices: tuple[int, ...]
    map_indices: tuple[int, ...]
    trimmed: tuple[str, ...]


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one jinja2 environment: autoescaped, trimmed, with the report's filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v: f"{v:.0%}"
    env.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{v:.{digits}f}"
    return env


def render_html(context: dict) -> str:
    """The report page for ``context`` (see :func:`report_context`)."""
    return environment().get_template("report.html").render(**context)


def write_outputs(
    config: Config,
    embeddings: Embeddings,
    reduced: Reduced,
    k_selection: KSelection,
    clustering: Clustering,
    analysis: Analysis,
    layout: Map2D,
    timings: dict[str, float],
    fingerprint: str,
) -> Outputs:
    """Write the three output files into ``config.out_dir``; each replaces its old copy only when complete.

    summary.json records ``fingerprint`` (what the outputs depend on) and the SHA-256 of the other two files,
    so that a rerun over unchanged inputs can keep them (:mod:`reportgen.freshness`).

    Returns
    -------
    :class:`Outputs` with the three paths.
    """
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    thumbs = _Thumbs(embeddings)
    budget = plan_budget(config, embeddings, analysis, clustering, thumbs)
    while True:
        summary = summary_dict(config, embeddings, reduced, k_selection, clustering, analysis, layout, timings, budget)
        context = report_context(config, embeddings, k_selection, clustering, analysis, layout, summary, budget, thumbs)
        html = render_html(context)
        smaller = _step_down(budget)
        if len(html.encode("utf-8")) <= budget.max_bytes or smaller is None:
            break
        log.info(
            "report is %.1f MB, over the %.1f MB budget: smaller thumbnails", len(html) / 1e6, budget.max_bytes / 1e6
        )
        budget = smaller
    if len(html.encode("utf-8")) > budget.max_bytes:
        log.warning(
            "report is %.1f MB even with the smallest thumbnails (budget %.1f MB)",
            len(html) / 1e6,
            budget.max_bytes / 1e6,
        )

    outputs = Outputs(out / "report.html", out / "assignments.csv", out / "summary.json")
    csv = assignments_table(embeddings, clustering, analysis).to_csv(index=False).encode("utf-8")
    page = html.encode("utf-8")
    summary["fingerprint"] = fingerprint
    summary["output_sha256"] = output_digests({outputs.report.name: page, outputs.assignments.name: csv})
    atomic_write(outputs.assignments, csv)
    atomic_write(outputs.report, page)
    atomic_write(outputs.summary, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    log.info(
        "wrote %s (%.1f MB), %s and %s", outputs.report, len(html) / 1e6, outputs.assignments.name, outputs.summary.name
    )
    return outputs


def assignments_table(embeddings: Embeddings, clustering: Clustering, analysis: Analysis) -> pd.DataFrame:
    """One row per embedded image, in the embeddings' order."""
    images = embeddings.images
    within = pd.array([int(v) if v >= 0 else None for v in analysis.within_labels], dtype="Int64")
    return pd.DataFrame(
        {
            "path": list(images.paths),
            "label": [lbl or "" for lbl in images.labels],
            "cluster": clustering.labels.astype(int),
            "within_cluster": within,
            "is_oddball": analysis.is_oddball.astype(bool),
            "distance": np.round(clustering.distances.astype(float), 6),
            "top1_class": list(analysis.top1),
            "top1_prob": np.round(embeddings.top5_prob[:, 0].astype(float), 6),
        }
    )


# ---------------------------------------------------------------------------------------------- budget


def plan_budget(
    config: Config, embeddings: Embeddings, analysis: Analysis, clustering: Clustering, thumbs: _Thumbs
) -> Budget:
    """Thumbnail sizes and hover subset that fit ``config.max_report_mb`` by estimate."""
    max_bytes = int(config.max_report_mb * 1_000_000)
    n = len(embeddings.images)
    trimmed: list[str] = []
    map_indices = np.arange(n)
    if n > MAP_MAX_POINTS:
        map_indices = seeded_sample(n, MAP_MAX_POINTS, config.seed)
        trimmed.append(f"the map shows a random sample of {MAP_MAX_POINTS:,} of the {n:,} images")
    tiles = _tile_occurrences(analysis, clustering)
    room = max(max_bytes - FIXED_OVERHEAD_BYTES - 220 * len(map_indices), 0)

    tile_px = TILE_SIZES[-1]
    for px in TILE_SIZES:
        if tiles * thumbs.estimate(px) <= room / 2 or px == TILE_SIZES[-1]:
            tile_px = px
            break
    if tile_px != TILE_SIZES[0]:
        trimmed.append(_tile_note(tile_px))
    left = room - tiles * thumbs.estimate(tile_px)

    hover_px = HOVER_SIZES[-1]
    for px in HOVER_SIZES:
        if len(map_indices) * thumbs.estimate(px) <= left:
            hover_px = px
            hover = tuple(int(i) for i in map_indices)
            break
    else:
        fit = max(int(left // thumbs.estimate(hover_px)), 0)
        rng = np.random.default_rng(config.seed + 1)
        hover = tuple(int(i) for i in np.sort(rng.choice(map_indices, min(fit, len(map_indices)), replace=False)))
        trimmed.append(_hover_note(len(hover), len(map_indices)))
    return Budget(max_bytes, tile_px, hover_px, hover, tuple(int(i) for i in map_indices), tuple(trimmed))


def _step_down(budget: Budget) -> Budget | None:
    """The next smaller budget plan, or ``None`` when nothing is left to shrink."""
    tile_i, hover_i = TILE_SIZES.index(budget.tile_px), HOVER_SIZES.index(budget.hover_px)
    old_notes = (_tile_note(budget.tile_px), _hover_note(len(budget.hover_indices), len(budget.map_indices)))
    keep = [t for t in budget.trimmed if t not in old_notes]
    if tile_i + 1 < len(TILE_SIZES):
        tile_px = TILE_SIZES[tile_i + 1]
        keep.append(_tile_note(tile_px))
    else:
        tile_px = budget.tile_px
    hover = budget.hover_indices
    if hover_i + 1 < len(HOVER_SIZES):
        hover_px = HOVER_SIZES[hover_i + 1]
    else:
        hover_px = budget.hover_px
        hover = hover[: len(hover) // 2]
    if len(hover) < len(budget.map_indices):
        keep.append(_hover_note(len(hover), len(budget.map_indices)))
    if (tile_px, hover_px, len(hover)) == (budget.tile_px, budget.hover_px, len(budget.hover_indices)):
        return None
    return replace(budget, tile_px=tile_px, hover_px=hover_px, hover_indices=hover, trimmed=tuple(keep))


def _tile_note(px: int) -> str:
    return f"montage thumbnails are {px} px (not {TILE_SIZES[0]} px) to keep the report small"


def _hover_note(shown: int, total: int) -> str:
    return f"map hover thumbnails are shown for {shown:,} of the {total:,} images"


def _tile_occurrences(analysis: Analysis, clustering: Clustering) -> int:
    """How many montage tiles the report shows (each is its own data URI)."""
    count = sum(len(c.nearest) for c in analysis.clusters)
    count += sum(1 + len(o.neighbours) + 2 * TYPICAL_SHOWN for o in analysis.oddballs[:ODDBALLS_SHOWN])
    count += sum(1 + len(o.neighbours) for o in analysis.outliers[:ODDBALLS_SHOWN])
    count += sum(len(p) for s in analysis.shared for p in s.parts)
    count += sum(len(n) for w in analysis.within for n in w.nearest)
    return count


class _Thumbs:
    """Report-sized JPEG data URIs re-encoded from the cached thumbnails, each made once per size."""

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self.made: dict[tuple[int, int], str] = {}
        self.sizes: dict[int, float] = {}

    def uri(self, i: int, px: int) -> str:
        if (i, px) not in self.made:
            with Image.open(io.BytesIO(self.embeddings.thumbnails[i])) as im:
                im = im.convert("RGB")
                im.thumbnail((px, px), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=THUMB_QUALITY)
            self.made[(i, px)] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        return self.made[(i, px)]

    def estimate(self, px: int) -> float:
        """Mean size in bytes of one data URI at ``px``, from a sample of up to 24 images."""
        if px not in self.sizes:
            n = len(self.embeddings.thumbnails)
            sample = np.linspace(0, n - 1, min(n, 24)).astype(int)
            self.sizes[px] = float(np.mean([len(self.uri(int(i), px)) for i in sample])) + 80
        return self.sizes[px]


# ---------------------------------------------------------------------------------------------- summary


def summary_dict(
    config: Config,
    embeddings: Embeddings,
    reduced: Reduced,
    k_selection: KSelection,
    clustering: Clustering,
    analysis: Analysis,
    layout: Map2D,
    timings: dict[str, float],
    budget: Budget,
) -> dict:
    """Every number and list the report shows, as JSON-ready data."""
    images = embeddings.images
    paths = images.paths
    metrics = analysis.metrics
    summary = {
        "title": _title(config),
        "dataset": config.data_dir.resolve().name,
        "labeled": images.labeled,
        "classes": list(images.classes),
        "n_images": len(images),
        "n_skipped": len(images.skipped),
        "skipped": [{"path": s.path, "reason": s.reason} for s in images.skipped],
        "notes": [*embeddings.notes, *images.notes, *analysis.notes, *([layout.note] if layout.note else [])],
        "backbone": embeddings.backbone,
        "weights": embeddings.weights,
        "preprocessing": embeddings.preprocessing,
        "device": embeddings.device,
        "embedding_dim": int(embeddings.features.shape[1]),
        "cache": {"computed": embeddings.n_computed, "cached": embeddings.n_cached},
        "pca": {
            "requested_dims": reduced.requested_dims,
            "n_components": reduced.n_components,
            "explained_variance": round(reduced.explained_variance, 6),
            "power_norm": reduced.power_norm,
        },
        "chosen_k": clustering.k,
        "k_selection": {
            "k": list(k_selection.ks),
            "inertia": [round(v, 6) for v in k_selection.inertia],
            "silhouette": [round(v, 6) for v in k_selection.silhouette],
            "elbow_k": k_selection.elbow_k,
            "silhouette_k": k_selection.silhouette_k,
            "criteria": {
                name: {
                    "values": [round(v, 6) for v in k_selection.curves.get(name, ())]
                    if name in k_selection.curves
                    else None,
                    "k": k,
                }
                for name, k in k_selection.picks.items()
            },
            "mean_rank": [round(v, 4) for v in k_selection.mean_rank],
            "candidates": list(k_selection.candidates),
            "agreement": round(k_selection.agreement, 4),
            "confidence": k_selection.confidence,
            "disagreement": disagreement(k_selection),
            "forced": k_selection.forced,
            "reason": k_selection.reason,
            "mean_silhouette": _round(
                None if analysis.silhouettes is None else float(np.nanmean(analysis.silhouettes))
            ),
        },
        "metrics": (
            {"nmi": round(metrics.nmi, 6), "ari": round(metrics.ari, 6), "purity": round(metrics.purity, 6)}
            if metrics
            else None
        ),
        "clusters": [
            {
                "cluster": c.cluster,
                "name": c.name,
                "size": c.size,
                "silhouette": _round(c.silhouette),
                "top_predictions": [{"class": n, "share": round(s, 4)} for n, s in c.top_predictions],
                "classes": {lbl: cnt for lbl, cnt in c.class_counts},
                "montage": [paths[i] for i in c.nearest],
            }
            for c in analysis.clusters
        ],
        "count_matrix": (
            {
                "classes": [str(i) for i in analysis.counts.index],
                "clusters": [int(c) for c in analysis.counts.columns],
                "counts": analysis.counts.to_numpy().astype(int).tolist(),
                "column_order": list(analysis.column_order),
            }
            if analysis.counts is not None
            else None
        ),
        "class_spread": {
            s.label: {
                "size": s.size,
                "majority_cluster": s.majority_cluster,
                "majority_share": round(s.majority_share, 4),
                "n_clusters": s.n_clusters,
            }
            for s in analysis.spreads
        },
        "n_oddballs": len(analysis.oddballs),
        "n_outliers": len(analysis.outliers),
        "oddballs": [
            {
                "path": paths[o.index],
                "label": o.label,
                "cluster": o.cluster,
                "cluster_name": analysis.clusters[o.cluster].name,
                "class_cluster": o.class_cluster,
                "d_class": round(o.d_class, 6),
                "d_cluster": round(o.d_cluster, 6),
                "margin": round(o.margin, 6),
                "neighbours": [{"path": paths[j], "label": images.labels[j]} for j in o.neighbours],
                "top_predictions": _top_predictions(embeddings, o.index, 3),
            }
            for o in analysis.oddballs[:DETAILED]
        ],
        "outliers": [
            {
                "path": paths[o.index],
                "cluster": o.cluster,
                "cluster_name": analysis.clusters[o.cluster].name,
                "distance": round(o.distance, 6),
                "threshold": round(o.threshold, 6),
                "neighbours": [paths[j] for j in o.neighbours],
                "top_predictions": _top_predictions(embeddings, o.index, 3),
            }
            for o in analysis.outliers[:DETAILED]
        ],
        "shared_clusters": [
            {
                "cluster": s.cluster,
                "name": analysis.clusters[s.cluster].name,
                "classes": {lbl: cnt for lbl, cnt in s.classes},
            }
            for s in analysis.shared
        ],
        "within_class": {
            w.label: {
                "k": w.k,
                "sizes": list(w.sizes),
                "silhouette": round(w.silhouette, 6),
                "null_silhouette": {"mean": round(w.null_silhouette_mean, 6), "sd": round(w.null_silhouette_sd, 6)},
                "split_score": round(w.split_score, 4),
                "meaningful": w.meaningful,
                "top_predictions": [
                    [{"class": n, "share": round(s, 4)} for n, s in preds] for preds in w.top_predictions
                ],
            }
            for w in analysis.within
        },
        "report": {
            "max_mb": config.max_report_mb,
            "tile_px": budget.tile_px,
            "hover_px": budget.hover_px,
            "map_points": len(budget.map_indices),
            "hover_thumbnails": len(budget.hover_indices),
            "tsne_points": int(len(layout.tsne_indices)),
            "trimmed": list(budget.trimmed),
        },
        "seed": config.seed,
        "parameters": _parameters(config),
        "versions": versions(),
        "timings": {stage: round(sec, 3) for stage, sec in timings.items()},
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    summary["findings"] = findings(summary, analysis)
    return summary


def findings(summary: dict, analysis: Analysis) -> list[str]:
    """Sentences about the result, each backed by numbers in ``summary``; the report prints them as a paragraph."""
    out = []
    n, k = summary["n_images"], summary["chosen_k"]
    if summary["labeled"]:
        m = summary["metrics"]
        out.append(
            f"The {n} images of {len(summary['classes'])} classes fall into {k} clusters, which agree with the "
            f"folder labels at NMI {m['nmi']:.2f}, ARI {m['ari']:.2f} and purity {m['purity']:.0%}."
        )
        pure = [s for s in analysis.spreads if s.majority_share >= 0.9]
        spread = sorted((s for s in analysis.spreads if s.majority_share < 0.75), key=lambda s: s.majority_share)
        if pure:
            out.append(
                "Each almost entirely in one cluster (90% or more): "
                + ", ".join(f"{s.label} ({s.majority_share:.0%} in cluster {s.majority_cluster})" for s in pure)
                + "."
            )
        if spread:
            out.append(
                "Spread over several clusters: "
                + ", ".join(
                    f"{s.label} (largest share {s.majority_share:.0%}, over {s.n_clusters} clusters)" for s in spread
                )
                + "."
            )
        for sh in analysis.shared:
            names = " and ".join(f"{lbl} ({cnt})" for lbl, cnt in sh.classes)
            out.append(f"Cluster {sh.cluster} ({analysis.clusters[sh.cluster].name}) groups {names} together.")
        if not analysis.shared:
            out.append("No cluster is shared by several classes.")
        if analysis.oddballs:
            top = analysis.oddballs[0]
            where = (
                "1 oddball image sits outside its class's main cluster; it is"
                if len(analysis.oddballs) == 1
                else f"{len(analysis.oddballs)} oddball images sit outside their class's main cluster; the oddest is"
            )
            out.append(
                f"{where} {summary['oddballs'][0]['path']}, a {top.label} image "
                f"that joined cluster {top.cluster} ({analysis.clusters[top.cluster].name})."
            )
        else:
            out.append("Every image sits in its class's main cluster.")
        real = [w for w in analysis.within if w.meaningful]
        if real:
            out.append(
                "Splits that look real (split score 2 or more): "
                + ", ".join(
                    f"{w.label} ({' / '.join(str(s) for s in w.sizes)}, score {w.split_score:.1f})" for w in real
                )
                + "."
            )
        elif analysis.within:
            out.append("No class splits into groups more distinct than the same split of structureless data.")
    else:
        out.append(f"The {n} unlabeled images fall into {k} clusters.")
        if analysis.outliers:
            out.append(
                f"{len(analysis.outliers)} image{'s' if len(analysis.outliers) != 1 else ''} lie unusually far "
                "from their cluster's centre."
            )
    out.append(_k_confidence(summary))
    return out


def _k_confidence(summary: dict) -> str:
    sel = summary["k_selection"]
    k = summary["chosen_k"]
    if sel["forced"]:
        sentence = f"K={k} was fixed with --k."
    elif not sel["k"]:
        sentence = sel["reason"][0].upper() + sel["reason"][1:] + "."
    else:
        agree = sum(1 for c in sel["criteria"].values() if c["k"] is not None and abs(c["k"] - k) <= 1)
        voters = sum(1 for c in sel["criteria"].values() if c["k"] is not None)
        sentence = (
            f"Confidence in K={k} is {sel['confidence']}: {agree} of {voters} criteria pick it or a neighbour"
            + (f"; the runner-up is K={sel['candidates'][1]}." if len(sel["candidates"]) > 1 else ".")
        )
        if sel["disagreement"]:
            sentence += " " + sel["disagreement"]
    mean = sel.get("mean_silhouette")
    if mean is not None and mean < SILHOUETTE_WEAK:
        sentence += (
            f" The clusters overlap (mean silhouette {mean:.2f}; under {SILHOUETTE_WEAK} means weak separation),"
            " so read cluster borders as soft."
        )
    return sentence


# ---------------------------------------------------------------------------------------------- context


def report_context(
    config: Config,
    embeddings: Embeddings,
    k_selection: KSelection,
    clustering: Clustering,
    analysis: Analysis,
    layout: Map2D,
    summary: dict,
    budget: Budget,
    thumbs: _Thumbs,
) -> dict:
    """The data the templates read: ``summary`` plus thumbnails, figures and display rows."""
    images = embeddings.images
    names = [c.name for c in analysis.clusters]
    shown: set[int] = set()

    def tile(i: int) -> dict:
        shown.add(i)
        return {
            "i": i,
            "src": thumbs.uri(i, budget.tile_px),
            "path": images.paths[i],
            "label": images.labels[i],
            "cluster": int(clustering.labels[i]),
            "top1": analysis.top1[i],
        }

    plots = {}
    if k_selection.ks:
        plots["elbow"] = _figure(config, "elbow_plot", k_selection)
        plots["silhouette"] = _figure(config, "silhouette_plot", k_selection)
        plots["criteria"] = _figure(config, "criteria_plot", k_selection)
    if analysis.silhouettes is not None:
        sampled = np.isfinite(analysis.silhouettes)
        plots["knife"] = _figure(
            config,
            "silhouette_knife",
            analysis.silhouettes[sampled].round(6).tolist(),
            clustering.labels[sampled].tolist(),
            clustering.k,
        )

    context = {
        "s": summary,
        "title": summary["title"],
        "plots": plots,
        "names": names,
        "criterion_labels": LABELS,
        "clusters": [{"info": c, "tiles": [tile(i) for i in c.nearest]} for c in analysis.clusters],
        "css": (template_dir() / "report.css").read_text(encoding="utf-8"),
        "js": (template_dir() / "report.js").read_text(encoding="utf-8"),
    }
    if analysis.labeled:
        context |= _labeled_context(config, embeddings, analysis, names, tile)
    else:
        context["outliers"] = [
            {
                "o": o,
                "tile": tile(o.index),
                "name": names[o.cluster],
                "neighbours": [tile(j) for j in o.neighbours],
                "top3": _top_predictions(embeddings, o.index, 3),
            }
            for o in analysis.outliers[:ODDBALLS_SHOWN]
        ]
    context["map_data"] = _map_data(embeddings, clustering, analysis, layout, budget, thumbs, shown)
    return context


def _labeled_context(config: Config, embeddings: Embeddings, analysis: Analysis, names: list[str], tile) -> dict:  # noqa: ANN001
    images = embeddings.images
    order = list(analysis.column_order)
    counts = analysis.counts.to_numpy()
    oddballs = []
    for o in analysis.oddballs[:ODDBALLS_SHOWN]:
        home, joined = analysis.clusters[o.class_cluster], analysis.clusters[o.cluster]
        oddballs.append(
            {
                "o": o,
                "tile": tile(o.index),
                "name": names[o.cluster],
                "home_name": names[o.class_cluster],
                "closer": 1 - o.d_cluster / o.d_class if o.d_class > 0 else 0.0,
                "top3": _top_predictions(embeddings, o.index, 3),
                "neighbours": [tile(j) for j in o.neighbours],
                "typical_class": [tile(i) for i in home.nearest if images.labels[i] == o.label][:TYPICAL_SHOWN],
                "typical_cluster": [tile(i) for i in joined.nearest if i != o.index][:TYPICAL_SHOWN],
            }
        )
    return {
        "heatmap": _figure(config, "count_heatmap", counts[:, order].tolist(), list(images.classes), order),
        "histograms": _figure(
            config, "class_histograms", [(s.label, s.counts, s.majority_cluster) for s in analysis.spreads]
        ),
        "spreads": analysis.spreads,
        "column_order": order,
        "count_rows": [
            {
                "label": s.label,
                "size": s.size,
                "cells": [
                    (s.counts[c], s.counts[c] / s.size if s.size else 0.0, c == s.majority_cluster) for c in order
                ],
            }
            for s in analysis.spreads
        ],
        "oddballs": oddballs,
        "shared": [
            {
                "sh": sh,
                "name": names[sh.cluster],
                "parts": [
                    (lbl, cnt, [tile(i) for i in part]) for (lbl, cnt), part in zip(sh.classes, sh.parts, strict=True)
                ],
            }
            for sh in analysis.shared
        ],
        "within": [
            {
                "w": w,
                "subs": [
                    {"size": w.sizes[j], "preds": w.top_predictions[j], "tiles": [tile(i) for i in w.nearest[j]]}
                    for j in range(w.k)
                ],
            }
            for w in analysis.within
        ],
    }


def _map_data(
    embeddings: Embeddings,
    clustering: Clustering,
    analysis: Analysis,
    layout: Map2D,
    budget: Budget,
    thumbs: _Thumbs,
    tiles: set[int],
) -> dict:
    """Everything the map and the image viewer need, as one JSON-ready dict (per image shown, by index)."""
    images = embeddings.images
    hover = set(budget.hover_indices)
    tsne_pos = {int(i): j for j, i in enumerate(layout.tsne_indices)}
    points = []
    for i in budget.map_indices:
        j = tsne_pos.get(int(i))
        points.append(
            [
                int(i),
                round(float(layout.pca[i, 0]), 4),
                round(float(layout.pca[i, 1]), 4),
                None if j is None else round(float(layout.tsne[j, 0]), 3),
                None if j is None else round(float(layout.tsne[j, 1]), 3),
            ]
        )
    shown = set(budget.map_indices) | tiles
    details = {
        str(i): {
            "p": images.paths[i],
            "l": images.labels[i],
            "c": int(clustering.labels[i]),
            "t": [[name, round(p, 3)] for name, p in _top_predictions(embeddings, i, 3)],
            "o": bool(analysis.is_oddball[i]),
            "h": thumbs.uri(i, budget.hover_px) if i in hover else None,
        }
        for i in sorted(shown)
    }
    return {
        "points": points,
        "images": details,
        "classes": list(images.classes),
        "clusters": [c.name for c in analysis.clusters],
        "has_tsne": layout.tsne is not None,
    }


def _top_predictions(embeddings: Embeddings, i: int, n: int) -> list[tuple[str, float]]:
    return [
        (embeddings.categories[j], round(float(p), 6))
        for j, p in zip(embeddings.top5_index[i, :n], embeddings.top5_prob[i, :n], strict=True)
    ]


def _figure(config: Config, name: str, *args: object) -> str:
    """``figures.<name>(*args)``, memoised in the cache folder so an unchanged rerun never imports matplotlib.

    The key covers the arguments, the source of figures.py and matplotlib's version.
    """
    source = Path(__file__).with_name("figures.py").read_bytes()
    digest = hashlib.blake2b(source, digest_size=20)
    digest.update(repr((name, args, metadata.version("matplotlib"))).encode())
    key = digest.hexdigest()
    if config.use_cache:
        memo = load_memo(config.resolved_cache_dir, "figures", key)
        if memo and isinstance(memo.get("uri"), str):
            return memo["uri"]
    from . import figures

    uri = getattr(figures, name)(*args)
    if config.use_cache:
        save_memo(config.resolved_cache_dir, "figures", key, {"uri": uri})
    return uri


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _title(config: Config) -> str:
    return config.title or f"Image clusters: {config.data_dir.resolve().name}"


def _parameters(config: Config) -> dict:
    return {
        "backbone": config.backbone,
        "weights": config.weights.name if config.weights else None,
        "k": config.k,
        "k_min": config.k_min,
        "k_max": config.k_max,
        "within_k": config.within_k,
        "within_classes": list(config.within_classes) if config.within_classes is not None else None,
        "pca_dims": config.pca_dims,
        "power_norm": config.power_norm,
        "seed": config.seed,
        "device": config.device,
        "precision": config.precision,
        "jpeg_decoder": config.jpeg_decoder,
        "batch_size": config.batch_size,  # None: the per-device default
        "workers": config.resolved_workers,
        "offline": config.offline,
        "max_report_mb": config.max_report_mb,
    }
