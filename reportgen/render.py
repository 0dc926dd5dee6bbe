"""Stage 7: write report.html, assignments.csv and summary.json, each atomically.

The report is a view over the same data that goes into summary.json and assignments.csv: the context the
templates read is built from the stage results, and summary.json is built from the same results.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from PIL import Image

from .analyze import Analysis
from .cache import load_memo, save_memo
from .choose_k import KSelection
from .cluster import Clustering
from .config import Config
from .embed import Embeddings
from .fsutil import atomic_write
from .reduce import Reduced

log = logging.getLogger(__name__)

REPORT_THUMB = 128
REPORT_THUMB_QUALITY = 75
VERSIONED_PACKAGES = ("reportgen", "torch", "torchvision", "numpy", "scikit-learn", "kneed", "pandas", "Pillow")
ODDBALLS_SHOWN = 60
TYPICAL_SHOWN = 3


@dataclass(frozen=True)
class Outputs:
    """Where a run wrote its files."""

    report: Path
    assignments: Path
    summary: Path


def template_dir() -> Path:
    """The templates folder: inside the installed package, else the source checkout's top-level one."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


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
    timings: dict[str, float],
) -> Outputs:
    """Write the three output files into ``config.out_dir``; each replaces its old copy only when complete.

    Returns
    -------
    :class:`Outputs` with the three paths.
    """
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(config, embeddings, reduced, k_selection, clustering, analysis, timings)
    table = assignments_table(embeddings, clustering, analysis)
    html = render_html(report_context(config, embeddings, reduced, k_selection, clustering, analysis, summary))

    outputs = Outputs(out / "report.html", out / "assignments.csv", out / "summary.json")
    atomic_write(outputs.assignments, table.to_csv(index=False).encode("utf-8"))
    atomic_write(outputs.summary, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    atomic_write(outputs.report, html.encode("utf-8"))
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


def summary_dict(
    config: Config,
    embeddings: Embeddings,
    reduced: Reduced,
    k_selection: KSelection,
    clustering: Clustering,
    analysis: Analysis,
    timings: dict[str, float],
) -> dict:
    """Every number and list the report shows, as JSON-ready data."""
    images = embeddings.images
    paths = images.paths
    metrics = analysis.metrics
    return {
        "title": _title(config),
        "dataset": config.data_dir.resolve().name,
        "labeled": images.labeled,
        "classes": list(images.classes),
        "n_images": len(images),
        "n_skipped": len(images.skipped),
        "skipped": [{"path": s.path, "reason": s.reason} for s in images.skipped],
        "notes": [*embeddings.notes, *images.notes, *analysis.notes],
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
        },
        "chosen_k": clustering.k,
        "k_selection": {
            "k": list(k_selection.ks),
            "inertia": [round(v, 6) for v in k_selection.inertia],
            "silhouette": [round(v, 6) for v in k_selection.silhouette],
            "elbow_k": k_selection.elbow_k,
            "silhouette_k": k_selection.silhouette_k,
            "forced": k_selection.forced,
            "reason": k_selection.reason,
        },
        "metrics": (
            {"nmi": round(metrics.nmi, 6), "ari": round(metrics.ari, 6), "purity": round(metrics.purity, 6)}
            if metrics
            else None
        ),
        "clusters": [
            {
                "cluster": c.cluster,
                "size": c.size,
                "name": c.name,
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
        "oddballs": [
            {
                "path": paths[o.index],
                "label": o.label,
                "cluster": o.cluster,
                "class_cluster": o.class_cluster,
                "margin": round(o.margin, 6),
            }
            for o in analysis.oddballs
        ],
        "shared_clusters": [
            {"cluster": s.cluster, "classes": {lbl: cnt for lbl, cnt in s.classes}} for s in analysis.shared
        ],
        "within_class": {
            w.label: {
                "k": w.k,
                "sizes": list(w.sizes),
                "silhouette": None if w.silhouette is None else round(w.silhouette, 6),
                "top_predictions": [
                    [{"class": n, "share": round(s, 4)} for n, s in preds] for preds in w.top_predictions
                ],
            }
            for w in analysis.within
        },
        "seed": config.seed,
        "parameters": _parameters(config),
        "versions": versions(),
        "timings": {stage: round(sec, 3) for stage, sec in timings.items()},
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def report_context(
    config: Config,
    embeddings: Embeddings,
    reduced: Reduced,
    k_selection: KSelection,
    clustering: Clustering,
    analysis: Analysis,
    summary: dict,
) -> dict:
    """The data the templates read: ``summary`` plus thumbnails, figures and display rows."""
    images = embeddings.images
    thumbs = _Thumbs(embeddings)
    categories = embeddings.categories

    def tile(i: int) -> dict:
        return {
            "src": thumbs[i],
            "path": images.paths[i],
            "label": images.labels[i],
            "top1": analysis.top1[i],
            "cluster": int(clustering.labels[i]),
        }

    cluster_names = [c.name for c in analysis.clusters]
    clusters = [{"info": c, "tiles": [tile(i) for i in c.nearest]} for c in analysis.clusters]
    plots = {}
    if k_selection.ks:
        plots = {
            "elbow": _figure(config, "elbow_plot", k_selection),
            "silhouette": _figure(config, "silhouette_plot", k_selection),
        }

    oddballs = []
    for o in analysis.oddballs[:ODDBALLS_SHOWN]:
        home = analysis.clusters[o.class_cluster]
        joined = analysis.clusters[o.cluster]
        oddballs.append(
            {
                "odd": o,
                "tile": tile(o.index),
                "cluster_name": joined.name,
                "class_cluster_name": home.name,
                "top3": [
                    (categories[j], float(p))
                    for j, p in zip(embeddings.top5_index[o.index, :3], embeddings.top5_prob[o.index, :3], strict=True)
                ],
                "typical_class": [tile(i) for i in home.nearest if images.labels[i] == o.label][:TYPICAL_SHOWN],
                "typical_cluster": [tile(i) for i in joined.nearest if i != o.index][:TYPICAL_SHOWN],
            }
        )
    count_rows = []
    heatmap = histograms = None
    if analysis.counts is not None:
        heatmap = _figure(config, "count_heatmap", analysis.counts.to_numpy().tolist(), list(images.classes))
        histograms = _figure(
            config, "class_histograms", [(s.label, s.counts, s.majority_cluster) for s in analysis.spreads]
        )
        for s in analysis.spreads:
            count_rows.append(
                {
                    "label": s.label,
                    "counts": s.counts,
                    "size": s.size,
                    "shares": [v / s.size if s.size else 0 for v in s.counts],
                    "majority": s.majority_cluster,
                }
            )
    within = [
        {
            "w": w,
            "subs": [
                {"size": w.sizes[j], "preds": w.top_predictions[j], "tiles": [tile(i) for i in w.nearest[j]]}
                for j in range(w.k)
            ],
        }
        for w in analysis.within
    ]
    return {
        "s": summary,
        "title": summary["title"],
        "findings": findings(summary, analysis),
        "plots": plots,
        "clusters": clusters,
        "cluster_names": cluster_names,
        "heatmap": heatmap,
        "count_rows": count_rows,
        "histograms": histograms,
        "spreads": analysis.spreads,
        "oddballs": oddballs,
        "n_oddballs": len(analysis.oddballs),
        "shared": analysis.shared,
        "within": within,
        "css": (template_dir() / "report.css").read_text(encoding="utf-8"),
    }


def findings(summary: dict, analysis: Analysis) -> list[str]:
    """Plain sentences about the result, each backed by a number in ``summary``."""
    out = []
    n, k = summary["n_images"], summary["chosen_k"]
    if summary["labeled"]:
        m = summary["metrics"]
        out.append(
            f"{n} images in {len(summary['classes'])} classes fall into {k} clusters; agreement with the folder "
            f"labels: NMI {m['nmi']:.2f}, ARI {m['ari']:.2f}, purity {m['purity']:.0%}."
        )
        pure = [s.label for s in analysis.spreads if s.majority_share >= 0.9]
        spread = [s for s in analysis.spreads if s.majority_share < 0.6]
        if pure:
            out.append(f"Mostly in one cluster (90% or more): {', '.join(pure)}.")
        for s in spread:
            out.append(
                f"'{s.label}' spreads over {s.n_clusters} clusters; its largest share is {s.majority_share:.0%} "
                f"in cluster {s.majority_cluster}."
            )
        out.append(f"{len(analysis.oddballs)} oddball image(s) sit outside their class's main cluster.")
        for sh in analysis.shared:
            names = ", ".join(f"{lbl} ({cnt})" for lbl, cnt in sh.classes)
            out.append(f"Cluster {sh.cluster} groups several classes together: {names}.")
    else:
        out.append(f"{n} unlabeled images fall into {k} clusters.")
    out.append(f"K: {summary['k_selection']['reason']}.")
    return out


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


class _Thumbs:
    """Report-sized JPEG data URIs, each made once per image."""

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self.made: dict[int, str] = {}

    def __getitem__(self, i: int) -> str:
        if i not in self.made:
            with Image.open(io.BytesIO(self.embeddings.thumbnails[i])) as im:
                im = im.convert("RGB")
                im.thumbnail((REPORT_THUMB, REPORT_THUMB), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=REPORT_THUMB_QUALITY)
            self.made[i] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        return self.made[i]


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
        "seed": config.seed,
        "device": config.device,
        "batch_size": config.batch_size,
        "workers": config.resolved_workers,
        "offline": config.offline,
    }


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the result."""
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
