"""Notebooks: a run displays as a compact summary, and a finished run reads back from its out folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import reportgen


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, labeled_dir: Path) -> reportgen.Result:
    work = tmp_path_factory.mktemp("notebook")
    return reportgen.build_report(labeled_dir, out_dir=work / "out", cache_dir=work / "cache",
                                  backbone="efficientnet-lite0", explain=False, progress=False)  # fmt: skip


def test_a_result_displays_as_a_compact_summary(finished: reportgen.Result) -> None:
    html = finished._repr_html_()
    run = finished.run
    assert f"K = {run.chosen_k}" in html and f"{run.dataset.n_images} images in 3 classes" in html
    assert all(c.name in html for c in run.analysis.clusters)
    strips = html.count("<img ")
    assert strips == sum(min(6, len(c.montage)) for c in run.analysis.clusters) > 0
    assert finished.outputs.report.resolve().as_uri() in html and run.findings[0] in html


def test_load_reads_a_finished_run_back(finished: reportgen.Result, tmp_path: Path) -> None:
    loaded = reportgen.load(finished.outputs.report.parent)
    assert isinstance(loaded, reportgen.Finished)
    assert loaded.summary["chosen_k"] == finished.run.chosen_k and loaded.report == finished.outputs.report
    table = finished.run.images.table()
    assert list(loaded.assignments.columns) == list(table.columns)
    assert loaded.assignments["cluster"].tolist() == table["cluster"].tolist()
    assert loaded.assignments["path"].tolist() == list(table["path"])
    assert loaded.assignments["within_cluster"].dtype == pd.Int64Dtype()
    assert loaded.data_dir == finished.config.data_dir.resolve()
    assert loaded._repr_html_().count("<img ") == finished._repr_html_().count("<img ")  # drawn from the images
    moved = shutil.copytree(finished.outputs.report.parent, tmp_path / "moved")  # the data folder still recorded
    assert reportgen.load(moved).summary == loaded.summary


def test_load_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(reportgen.ReportgenError, match="holds no finished run: summary.json is missing"):
        reportgen.load(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "assignments.csv").write_text("path,cluster\n", encoding="utf-8")
    with pytest.raises(reportgen.ReportgenError, match="is not a reportgen summary"):
        reportgen.load(tmp_path)
