"""The outputs of ``reportgen compare``: compare.html (one self-contained page), compare.json and compare.csv,
written together (:func:`reportgen.fsutil.write_together`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..fsutil import template_dir, write_together
from ..report.budget import Thumbs
from ..report.page import environment
from ..schema import encode
from .study import FREE_SCORES, LABEL_SCORES, LOWER_IS_BETTER, Study

THUMB_PX = 88
SCORE_NAMES = {
    "nmi": "NMI",
    "ari": "ARI",
    "purity": "purity",
    "accuracy": "accuracy (Hungarian)",
    "silhouette": "silhouette",
    "calinski_harabasz": "Calinski-Harabasz",
    "davies_bouldin": "Davies-Bouldin (lower is better)",
}
CSV_COLUMNS = ("features", "method", "seed", "k", "n_noise", *LABEL_SCORES, *FREE_SCORES, "seconds")


def write_compare(study: Study, out_dir: Path) -> dict[str, Path]:
    """Write the three files into ``out_dir`` (created) and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "compare.html": render(study).encode("utf-8"),
        "compare.json": (json.dumps(encode(study), indent=1, ensure_ascii=False) + "\n").encode("utf-8"),
        "compare.csv": _csv(study).encode("utf-8"),
    }
    write_together(out_dir, files)
    return {name: out_dir / name for name in files}


def _csv(study: Study) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in study.trials:
        values = [t.scores[s] for s in LABEL_SCORES + FREE_SCORES]
        writer.writerow([t.features, t.method, t.seed, t.k, t.n_noise,
                         *("" if v is None else round(v, 6) for v in values), round(t.seconds, 3)])  # fmt: skip
    return buf.getvalue()


def heat(values: list[float | None], lower_is_better: bool) -> list[str]:
    """A background colour per value: the better, the deeper the blue (blank where there is no value)."""
    known = [v for v in values if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    out = []
    for v in values:
        if v is None:
            out.append("transparent")
            continue
        t = 0.5 if hi == lo else (v - lo) / (hi - lo)
        t = 1 - t if lower_is_better else t
        out.append(f"rgba(43, 108, 176, {0.08 + 0.6 * t:.2f})")
    return out


def _tables(study: Study) -> list[dict[str, Any]]:
    """One spec x method table per score, each cell its mean, sd and colour."""
    shown = (LABEL_SCORES if study.labeled else ()) + FREE_SCORES
    cells = {(c.features, c.method): c for c in study.cells}
    tables = []
    for score in shown:
        means = [cells[(f, m)].mean[score] for f in study.features for m in study.methods]
        colours = iter(heat(means, score in LOWER_IS_BETTER))
        rows = [
            {"features": f,
             "cells": [(cells[(f, m)].mean[score], cells[(f, m)].sd[score], next(colours)) for m in study.methods]}
            for f in study.features
        ]  # fmt: skip
        tables.append({"score": score, "title": SCORE_NAMES[score], "rows": rows})
    return tables


def render(study: Study) -> str:
    """compare.html: the recommendation, a heatmap table per score, the agreement, the cluster-mates."""
    thumbs = Thumbs(study.thumbnails)
    agreement_colours = [heat(list(row), False) for row in study.agreement]
    folder = template_dir()
    return (
        environment()
        .get_template("compare.html")
        .render(
            study=study,
            tables=_tables(study),
            agreement=list(zip(study.cells, study.agreement, agreement_colours, strict=True)),
            thumb=lambda i: thumbs.uri(i, THUMB_PX),
            css=(folder / "report.css").read_text(encoding="utf-8"),
        )
    )
