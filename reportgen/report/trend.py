"""The history section: K, NMI and the image count over the runs kept in the out folder (:mod:`reportgen.history`),
shown once there are three, this one included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..history import TREND_MIN
from .sections import Section, register_section

if TYPE_CHECKING:
    from ..run import Run
    from .page import Page


def _applies(run: Run) -> bool:
    return run.history.kept + 1 >= TREND_MIN


def _context(run: Run, page: Page) -> dict[str, Any]:
    metrics = run.analysis.metrics
    points = [(r.generated, r.chosen_k, r.nmi, r.n_images) for r in run.history.runs]
    nmi = round(float(metrics.nmi), 6) if metrics else None  # as summary.json gives it
    points.append((run.provenance.generated, run.chosen_k, nmi, run.dataset.n_images))
    dates = [p[0].replace("T", " ")[:16] for p in points]
    figure = page.figure("trend_plot", dates, [p[1] for p in points], [p[2] for p in points], [p[3] for p in points])
    return {"figure": figure, "n": len(points), "first": dates[0], "keep": run.config.keep}


register_section(Section("history", "History", "sections/history.html", _applies, _context), before="skipped")
