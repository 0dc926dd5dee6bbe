"""Notebooks: a run shown as a compact HTML summary, and a finished run read back from its out folder.

In Jupyter, the :class:`~reportgen.pipeline.Result` that ``build_report`` returns and the :class:`Finished` run that
:func:`load` returns both display as the same summary: the title, K and how sure it is, the scores, each cluster
with a strip of its montage, the first findings and a link to report.html.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ReportgenError
from .explain import exemplars
from .freshness import recorded_data_dir

STRIP = 6  # montage images per cluster in the summary
STRIP_PX = 56


@dataclass(frozen=True)
class Finished:
    """A finished run read back by :func:`load`: summary.json as a dict, assignments.csv as a DataFrame (the
    ``cluster`` column an integer, ``within_cluster`` a nullable integer), and the data folder when its state
    file records one that still exists (the summary's strips are drawn from it)."""

    out_dir: Path
    summary: dict[str, Any]
    assignments: pd.DataFrame
    data_dir: Path | None

    @property
    def report(self) -> Path:
        return self.out_dir / "report.html"

    def _repr_html_(self) -> str:
        return summary_html(self.summary, self.report, self._thumbnail)

    def _thumbnail(self, path: str) -> str | None:
        return file_uri(self.data_dir, path)


def load(out_dir: str | Path) -> Finished:
    """The run whose outputs are in ``out_dir`` (summary.json and assignments.csv), or a one-line
    :class:`ReportgenError` saying which file is missing or unreadable."""
    out = Path(out_dir)
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assignments = pd.read_csv(out / "assignments.csv", keep_default_na=False, na_values={"within_cluster": [""]},
                                  dtype={"path": str, "label": str, "top1_class": str})  # fmt: skip
    except FileNotFoundError as exc:
        raise ReportgenError(f"'{out}' holds no finished run: {Path(exc.filename).name} is missing") from None
    except (OSError, ValueError) as exc:
        raise ReportgenError(f"cannot read the run in '{out}': {exc}") from None
    if not isinstance(summary, dict) or "chosen_k" not in summary:
        raise ReportgenError(f"'{out / 'summary.json'}' is not a reportgen summary")
    assignments["within_cluster"] = assignments["within_cluster"].astype("Int64")
    data_dir = recorded_data_dir(out)
    return Finished(out, summary, assignments, data_dir if data_dir is not None and data_dir.is_dir() else None)


def jpeg_uri(im: Any, px: int = STRIP_PX) -> str:  # noqa: ANN401 - a PIL image
    """``im`` shrunk to ``px`` as a JPEG data URI."""
    from PIL import Image

    im = im.copy()
    im.thumbnail((px, px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_uri(folder: Path | None, path: str, px: int = STRIP_PX) -> str | None:
    """The image ``folder/path`` shrunk to ``px`` as a JPEG data URI, or ``None`` when there is no folder or the file
    cannot be read any more."""
    if folder is None:
        return None
    try:
        from PIL import Image

        from .fsutil import on_disk

        with Image.open(on_disk(folder, path)) as im:
            im.draft("RGB", (px * 2, px * 2))
            return jpeg_uri(im.convert("RGB"), px)
    except (OSError, ValueError):
        return None


def summary_html(summary: dict[str, Any], report: Path, thumbnail: Callable[[str], str | None]) -> str:
    """The compact summary of a run (summary.json's content), its strips drawn by ``thumbnail(path)``."""
    from .report.page import environment

    clusters = summary.get("clusters") or []
    clusters = list(clusters.values()) if isinstance(clusters, dict) else clusters
    strips = []
    for c in clusters:  # each class of the cluster in turn, as its heat maps take them
        montage = list(c.get("montage", []))
        labels = [p.split("/", 1)[0] if summary.get("labeled") else None for p in montage]
        strips.append([(montage[i], thumbnail(montage[i])) for i in exemplars(range(len(montage)), labels, STRIP)])
    return (
        environment()
        .get_template("notebook.html")
        .render(
            s=summary,
            clusters=list(zip(clusters, strips, strict=True)),
            report=report,
            report_uri=report.resolve().as_uri(),
            px=STRIP_PX,
        )  # fmt: skip
    )
