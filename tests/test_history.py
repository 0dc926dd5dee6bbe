"""History: each run keeps its small files under history/, pruned by --keep; a hand-edited or older entry is
skipped with a note; the report draws the trend from three runs; an out folder of another data folder is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import validate_summary

import reportgen
from reportgen import history
from reportgen.cli import main


def _build(data: Path, tmp_path: Path, **options: object) -> reportgen.Result:
    return reportgen.build_report(data, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                  backbone="efficientnet-lite0", explain=False, progress=False, **options)  # fmt: skip


def test_runs_are_kept_pruned_and_drawn(labeled_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "out" / "history"
    first = _build(labeled_dir, tmp_path, keep=2)
    assert first.run.history.kept == 0 and "history" not in [s.id for s in _sections(first)]
    entries = sorted(root.iterdir())
    assert len(entries) == 1 and history.NAME.match(entries[0].name)
    kept = entries[0]
    assert sorted(p.name for p in kept.iterdir()) == ["assignments.csv", "summary.json"]  # small files only
    assert (kept / "summary.json").read_bytes() == (tmp_path / "out" / "summary.json").read_bytes()
    second = _build(labeled_dir, tmp_path, keep=2, force=True)
    assert second.run.history.kept == 1 and "history" not in [s.id for s in _sections(second)]
    third = _build(labeled_dir, tmp_path, keep=2)
    assert third.run.history.kept == 2 and "history" in [s.id for s in _sections(third)]
    page = third.outputs.report.read_text(encoding="utf-8")
    assert '<section id="history">' in page and "The 3 runs kept in this out folder" in page
    assert len(list(root.iterdir())) == 2 and not (root / kept.name).exists()  # the oldest pruned
    summary = json.loads(third.outputs.summary.read_text(encoding="utf-8"))
    validate_summary(summary)
    assert summary["history"] == {"notes": [], "kept": 2} and summary["parameters"]["keep"] == 2


def test_a_bad_history_entry_is_skipped_with_a_note(labeled_dir: Path, tmp_path: Path) -> None:
    _build(labeled_dir, tmp_path)
    root = tmp_path / "out" / "history"
    good = next(root.iterdir())
    edited = shutil.copytree(good, root / "2020-01-01T00-00-00Z")
    (edited / "summary.json").write_text("{ half a file", encoding="utf-8")
    older = shutil.copytree(good, root / "2020-01-02T00-00-00Z")
    summary = json.loads((older / "summary.json").read_text(encoding="utf-8"))
    (older / "summary.json").write_text(json.dumps(summary | {"schema_version": 2}), encoding="utf-8")
    (root / "my notes").mkdir()
    result = _build(labeled_dir, tmp_path, force=True)
    notes = result.run.history.notes
    assert result.run.history.kept == 1
    assert any("skipped '2020-01-01T00-00-00Z'" in n for n in notes)
    assert any("skipped '2020-01-02T00-00-00Z' (summary schema 2" in n for n in notes)
    assert any("'my notes' is not a run this tool kept" in n for n in notes)
    assert all(n in result.run.dataset.notes for n in notes)
    assert (root / "my notes").is_dir()  # never deleted: not of our name pattern


def test_keep_zero_keeps_nothing_and_same_second_runs_both_stay(labeled_dir: Path, tmp_path: Path) -> None:
    _build(labeled_dir, tmp_path, keep=0)
    assert not (tmp_path / "out" / "history").exists()
    files = {"summary.json": b"{}", "assignments.csv": b"path\n"}
    a = history.record(tmp_path / "h", files, "2026-11-24T07:36:49+00:00", 5)
    b = history.record(tmp_path / "h", files, "2026-11-24T07:36:49+00:00", 5)
    assert a is not None and b is not None
    assert (a.name, b.name) == ("2026-11-24T07-36-49Z", "2026-11-24T07-36-49Z-2")


def test_an_out_folder_of_another_data_folder_is_refused(labeled_dir: Path, unlabeled_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "out"
    base = ["-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(tmp_path / "cache"), "-q",
            "--no-explain"]  # fmt: skip
    assert main([str(labeled_dir), *base]) == 0
    before = (out / "summary.json").read_bytes()
    capsys.readouterr()
    assert main([str(unlabeled_dir), *base]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds the report of another data folder" in err and str(labeled_dir) in err
    assert (out / "summary.json").read_bytes() == before  # untouched
    assert main([str(unlabeled_dir), *base, "--force"]) == 0
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["labeled"] is False


def _sections(result: reportgen.Result) -> list:
    from reportgen.report.sections import applicable

    return applicable(result.run)
