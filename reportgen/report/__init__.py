"""The outputs of a Run: report.html (a view of it), assignments.csv (its per-image table) and summary.json
(its JSON encoding), written together by :func:`write_outputs`.

The page is made of registered sections (:mod:`reportgen.report.sections`); the size budget
(:mod:`~reportgen.report.budget`), the findings prose (:mod:`~reportgen.report.findings`), the figures
(:mod:`~reportgen.report.figures`) and the page (:mod:`~reportgen.report.page`) are modules of their own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .. import history
from ..explain.overlay import Overlays
from ..freshness import state
from ..fsutil import STATE_FILE, write_together
from ..run import Run
from . import changes, dendrogram, trend  # noqa: E402, F401  (register their sections)
from .budget import Budget, Thumbs, plan_budget, step_down
from .page import render_html
from .sections import SECTIONS, Section, applicable, register_section

__all__ = ["SECTIONS", "Outputs", "Section", "register_section", "write_outputs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outputs:
    """Where a run wrote its files."""

    report: Path
    assignments: Path
    summary: Path


def write_outputs(run: Run, inputs: str) -> Outputs:
    """Write report.html, assignments.csv and summary.json into ``run.config.out_dir``, together.

    The page is rendered at the largest thumbnails that keep it under ``--max-report-mb`` (see
    :mod:`~reportgen.report.budget`). Beside the outputs, the rerun state (:data:`fsutil.STATE_FILE`)
    records ``inputs`` (what the outputs depend on) and the outputs' SHA-256, so that a rerun over unchanged
    inputs can keep them.

    Returns
    -------
    :class:`Outputs` with the three paths.
    """
    out = run.config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    html, budget = _fitted_page(run)
    outputs = Outputs(out / "report.html", out / "assignments.csv", out / "summary.json")
    summary = run.summary(report=budget)
    files = {
        outputs.assignments.name: run.images.table().to_csv(index=False).encode("utf-8"),
        outputs.report.name: html.encode("utf-8"),
        outputs.summary.name: (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
    }
    files[STATE_FILE] = state(inputs, files, run.config.data_dir)  # last: a set is only current once its state names it
    write_together(out, files)
    history.record(out, files, run.provenance.generated, run.config.keep)
    log.info(
        "wrote %s (%.1f MB), %s and %s", outputs.report, len(html) / 1e6, outputs.assignments.name, outputs.summary.name
    )
    return outputs


def _fitted_page(run: Run) -> tuple[str, Budget]:
    """The page at the largest thumbnails that fit the budget, and that budget."""
    thumbs = Thumbs(run.images.thumbnails)
    cache_root = run.config.resolved_cache_dir if run.config.use_cache else None
    overlays = Overlays(run.images.thumbnails, run.explanations, cache_root)
    tiles = sum(len(list(s.images(run))) for s in applicable(run))
    budget = plan_budget(run.config, len(run.images.path), tiles, len(run.layout.tsne_indices), thumbs, overlays)
    while True:
        html = render_html(run, budget, thumbs, overlays)
        size = len(html.encode("utf-8"))
        smaller = step_down(budget)
        if size <= budget.max_bytes or smaller is None:
            break
        log.info("report is %.1f MB, over the %.1f MB budget: smaller thumbnails", size / 1e6, budget.max_mb)
        budget = smaller
    if size > budget.max_bytes:
        log.warning("report is %.1f MB even with the smallest thumbnails (budget %.1f MB)", size / 1e6, budget.max_mb)
    return html, budget
