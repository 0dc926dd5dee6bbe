"""Where outputs live and what happens when they cannot be written: an out folder inside the data folder, out and
cache folders that cannot be created or written, a disk that fills up, an unwritable home folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import make_image

from reportgen.cli import main

FAST = ["--backbone", "efficientnet-lite0", "--no-explain", "-q"]


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("exports", ["copy", "link"])
def test_an_out_folder_inside_the_data_folder_is_never_read_as_images(
    labeled_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], exports: str
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    out, cache = data / "report", str(tmp_path / "cache")
    args = [str(data), "-o", str(out), "--cache-dir", cache, "--export-folders", exports, *FAST]
    assert main(args) == 0
    first = _summary(out)
    assert main([*args, "--force"]) == 0  # the report folder, its history and exported copies are now in DATA
    again = _summary(out)
    assert again["n_images"] == first["n_images"] == 18 and again["classes"] == ["circles", "squares", "stripes"]
    assert "'report' holds reportgen's own outputs or cache and was not read for images" in again["notes"]
    capsys.readouterr()
    assert main(args) == 0  # the outputs written inside DATA are not a change of the folder
    assert capsys.readouterr().err.startswith("Unchanged since the last run")
    make_image("circles", seed=77).save(data / "circles" / "new.png")
    assert main(args) == 0
    assert _summary(out)["n_images"] == 19


def test_outputs_written_into_the_data_folder_itself_are_passed_over(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(6):
        make_image(["circles", "stripes"][i % 2], seed=i).save(data / f"p{i}.png")
    args = [str(data), "-o", str(data), "--cache-dir", str(data / "cache"), "--export-folders", "copy", *FAST]
    assert main(args) == 0
    assert main([*args, "--force"]) == 0
    summary = _summary(data)
    assert summary["n_images"] == 6 and summary["n_skipped"] == 0
    passed = [n for n in summary["notes"] if "reportgen's own outputs" in n]
    assert sorted(n.split("'")[1] for n in passed) == ["cache", "clusters", "history"]


def test_another_runs_out_folder_inside_the_data_folder_is_passed_over(labeled_dir: Path, tmp_path: Path) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    cache = str(tmp_path / "cache")
    assert main([str(data / "circles"), "-o", str(data / "circles" / "old-report"), "--cache-dir", cache, *FAST]) == 0
    assert main([str(data), "-o", str(tmp_path / "out"), "--cache-dir", cache, *FAST]) == 0
    summary = _summary(tmp_path / "out")
    assert summary["n_images"] == 18
    assert "'circles/old-report' holds reportgen's own outputs or cache and was not read for images" in summary["notes"]
