"""What changed between runs: the report's "Since the last run" section and ``reportgen diff``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import make_image
from helpers import validate_summary

import reportgen
from reportgen.cli import main


def _build(data: Path, tmp_path: Path, **options: object) -> reportgen.Result:
    return reportgen.build_report(data, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                  backbone="efficientnet-lite0", explain=False, progress=False, **options)  # fmt: skip


def test_five_added_three_removed_one_changed_are_counted_exactly(labeled_dir: Path, tmp_path: Path) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    first = _build(data, tmp_path)
    assert first.run.changes is None  # nothing to compare with
    removed = ["circles/img_0.jpg", "stripes/img_1.png", "squares/img_2.jpg"]
    for rel in removed:
        (data / rel).unlink()
    added = [f"{style}/new_{i}.png" for i, style in enumerate(["circles", "circles", "stripes", "squares", "squares"])]
    for i, rel in enumerate(added):
        make_image(rel.split("/")[0], seed=200 + i).save(data / rel)
    make_image("stripes", seed=300).save(data / "stripes" / "img_3.png")  # same name, new content
    second = _build(data, tmp_path)
    changes = second.run.changes
    assert changes is not None
    assert sorted(changes.added) == sorted(added) and sorted(changes.removed) == sorted(removed)
    assert changes.changed == ("stripes/img_3.png",)
    assert changes.counts["added"] == 5 and changes.counts["removed"] == 3 and changes.counts["changed"] == 1
    summary = json.loads(second.outputs.summary.read_text(encoding="utf-8"))
    validate_summary(summary)
    assert summary["changes"]["counts"] == changes.counts
    page = second.outputs.report.read_text(encoding="utf-8")
    assert '<section id="since-last-run">' in page and "5 added · 3 removed · 1 changed" in page

    history = sorted((tmp_path / "out" / "history").iterdir())
    assert main(["diff", str(history[0]), str(tmp_path / "out"), "-o", str(tmp_path / "d")]) == 0
    written = json.loads((tmp_path / "d" / "diff.json").read_text(encoding="utf-8"))
    assert written["counts"] == changes.counts  # the command says the same for any two runs
    assert sorted(written["added"]) == sorted(added) and sorted(written["removed"]) == sorted(removed)
    assert "5 added · 3 removed · 1 changed" in (tmp_path / "d" / "diff.html").read_text(encoding="utf-8")


def test_a_rerun_with_no_change_keeps_every_cluster_and_moves_nothing(labeled_dir: Path, tmp_path: Path) -> None:
    first = _build(labeled_dir, tmp_path)
    again = _build(labeled_dir, tmp_path, force=True)
    changes = again.run.changes
    assert changes is not None and changes.nothing
    assert changes.moved == () and changes.new_clusters == () and changes.gone_clusters == ()
    assert changes.matches == {c: c for c in range(first.run.chosen_k)}
    assert again.run.lineage.basis == "previous" and again.run.lineage.kept == tuple(range(first.run.chosen_k))
    assert again.run.lineage.new == () and again.run.lineage.renamed == ()
    assert again.run.images.cluster.tolist() == first.run.images.cluster.tolist()
    assert "nothing changed" in again.outputs.report.read_text(encoding="utf-8")


def test_diff_needs_two_finished_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no finished run" in err
