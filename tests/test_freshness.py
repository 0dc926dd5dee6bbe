"""Reruns over unchanged inputs keep the outputs; any change to the inputs, the options or the files rebuilds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_image

from reportgen.cli import main
from reportgen.config import Config
from reportgen.freshness import STATE_FILE, current_outputs, fingerprint


def _run(data: Path, out: Path, cache: Path, *extra: str) -> None:
    args = [str(data), "-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(cache), "-q"]
    assert main([*args, *extra]) == 0


def _written(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each output: an atomic rewrite changes the inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(out.iterdir())}


@pytest.fixture
def folder(tmp_path: Path, labeled_dir: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(labeled_dir, data)
    return data


def test_an_unchanged_rerun_keeps_the_outputs_and_says_so(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    _run(folder, out, cache)
    before = _written(out)
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("report.html", "assignments.csv", "summary.json"):  # shared files: the umask, not 0600
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert not {"fingerprint", "output_sha256"} & set(summary)  # the rerun state is not a public output
    state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    assert len(state["fingerprint"]) == 64
    assert set(state["output_sha256"]) == {"report.html", "assignments.csv", "summary.json"}
    capsys.readouterr()
    assert main([str(folder), "-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(cache)]) == 0
    assert _written(out) == before
    err = capsys.readouterr().err
    assert err == f"Unchanged since the last run: kept {out / 'report.html'} (--force rebuilds)\n"  # one line
    assert main([str(folder), "-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(cache), "-q"]) == 0
    assert capsys.readouterr().err.startswith("Unchanged since the last run")  # even -q says it: cron logs it
    # --workers and --batch-size do not change the outputs, so they do not force a rebuild either
    _run(folder, out, cache, "--workers", "0", "--batch-size", "3")
    assert _written(out) == before
    _run(folder, out, cache, "--force")
    assert _written(out) != before


@pytest.mark.parametrize(
    "change",
    ["add an image", "edit an image", "remove an image", "another option", "report edited", "csv deleted", "no cache"],
)
def test_any_change_rebuilds(change: str, folder: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    _run(folder, out, cache)
    before = _written(out)
    extra: list[str] = []
    target = folder / "stripes" / "img_0.jpg"
    if change == "add an image":
        make_image("stripes", seed=77).save(folder / "stripes" / "new.png")
    elif change == "edit an image":
        make_image("stripes", seed=78).save(target)
        os.utime(target, ns=(before["summary.json"][1], before["summary.json"][1]))  # even with an old mtime
    elif change == "remove an image":
        target.unlink()
    elif change == "another option":
        extra = ["--k", "2"]
    elif change == "report edited":
        with (out / "report.html").open("a", encoding="utf-8") as fh:
            fh.write("<!-- edited -->")
    elif change == "csv deleted":
        (out / "assignments.csv").unlink()
    else:
        extra = ["--no-cache"]
    _run(folder, out, cache, *extra)
    after = _written(out)
    assert after["summary.json"] != before["summary.json"]
    assert after["report.html"] != before["report.html"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    if change == "add an image":
        assert summary["n_images"] == 19 and summary["cache"] == {"computed": 1, "cached": 18}


def test_fingerprint_follows_inputs_not_run_settings(folder: Path, tmp_path: Path) -> None:
    base = Config(folder, backbone="efficientnet-lite0")
    same = fingerprint(base)
    assert fingerprint(Config(folder, backbone="efficientnet-lite0", workers=0, batch_size=2, progress=False)) == same
    assert fingerprint(Config(folder, backbone="efficientnet-lite0", cache_dir=tmp_path / "c")) == same
    assert fingerprint(Config(folder, backbone="efficientnet-lite0", runtime="onnxruntime")) == same  # same features
    assert fingerprint(Config(folder, backbone="efficientnet-lite0", seed=1)) != same
    assert fingerprint(Config(folder, backbone="efficientnet-lite0", power_norm=False)) != same
    (folder / ".hidden").write_text("ignored, as discovery ignores it")
    assert fingerprint(base) == same
    (folder / "stripes" / "notes.txt").write_text("any visible file counts")
    assert fingerprint(base) != same


def test_no_outputs_or_a_broken_state_means_build(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = Config(folder, out_dir=out, backbone="efficientnet-lite0")
    inputs = fingerprint(config)
    assert current_outputs(config, inputs) is None
    out.mkdir()
    (out / STATE_FILE).write_text("{not json")
    assert current_outputs(config, inputs) is None
    (out / STATE_FILE).write_text(json.dumps({"format": 2, "fingerprint": inputs}))
    assert current_outputs(config, inputs) is None  # no output digests
    (out / STATE_FILE).write_text(json.dumps({"format": 2, "fingerprint": inputs, "output_sha256": {}}))
    assert current_outputs(config, inputs) is None  # digests of nothing keep nothing


def test_keeping_the_outputs_loads_no_scientific_library(folder: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    _run(folder, out, cache)
    args = [str(folder), "-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(cache), "-q"]
    probe = (
        "import sys; from reportgen.cli import main; assert main(sys.argv[1:]) == 0; "
        "heavy = sorted({'sklearn', 'torch', 'pandas', 'scipy', 'matplotlib'} & set(sys.modules)); print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def test_a_state_that_vouches_for_fewer_outputs_keeps_nothing(folder: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    _run(folder, out, cache)
    config = Config(folder, out_dir=out, backbone="efficientnet-lite0", cache_dir=cache)
    inputs = fingerprint(config)
    assert current_outputs(config, inputs) == out / "report.html"
    state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    del state["output_sha256"]["summary.json"]  # summary.json could then be anything
    (out / STATE_FILE).write_text(json.dumps(state))
    assert current_outputs(config, inputs) is None
