"""Where outputs live and what happens when they cannot be written: an out folder inside the data folder, out and
cache folders that cannot be created or written, a disk that fills up, an unwritable home folder."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
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


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reportgen", *args, *FAST]


def _no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any image is embedded."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was embedded")

    monkeypatch.setattr("reportgen.extract.runner.run", refuse)


UNWRITABLE = [
    pytest.param(lambda tmp: tmp / "a-file" / "sub", "is not a folder", id="a-file-in-the-way"),
    pytest.param(lambda tmp: Path("/proc/self/reportgen"), "", id="proc", marks=pytest.mark.skipif(
        not Path("/proc/self").is_dir(), reason="no /proc")),
]  # fmt: skip


@pytest.mark.parametrize(("where", "said"), UNWRITABLE)
@pytest.mark.parametrize("option", ["-o", "--cache-dir"])
def test_an_out_or_cache_folder_that_cannot_be_written_stops_before_any_work(
    labeled_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: object,
    said: str,
    option: str,
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    folder = where(tmp_path)  # type: ignore[operator]
    _no_embedding(monkeypatch)
    defaults = {"-o": str(tmp_path / "out"), "--cache-dir": str(tmp_path / "cache")} | {option: str(folder)}
    assert main([str(labeled_dir), *(x for kv in defaults.items() for x in kv), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: ") and str(folder) in err and said in err
    assert not (tmp_path / "out" / "report.html").exists()


def test_a_disk_without_room_for_the_outputs_or_the_cache_stops_before_any_image_is_embedded(
    labeled_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil as real

    usage = real.disk_usage(tmp_path)
    full = {"out": usage._replace(free=3 * 1024 * 1024), "cache": usage}

    def disk_usage(path: object) -> object:
        return full[Path(str(path)).name]

    monkeypatch.setattr("reportgen.places.shutil.disk_usage", disk_usage)
    _no_embedding(monkeypatch)
    args = [str(labeled_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (f"Error: only 3.0 MB free on the disk of '{tmp_path / 'out'}', and the outputs need about 15.1 MB; "
                   "free some space or choose another --out\n")  # fmt: skip
    full = {"out": usage, "cache": usage._replace(free=100 * 1024)}
    assert main(args) == 2  # 18 images to embed need about 0.6 MB in the cache
    err = capsys.readouterr().err
    assert err.startswith(f"Error: only 0.1 MB free on the disk of '{tmp_path / 'cache'}', and the embeddings of 18 ")
    assert err.endswith("run with --no-cache\n") and err.count("\n") == 1


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_disk_that_fills_while_the_outputs_are_written_leaves_the_last_outputs_whole(
    labeled_dir: Path, tmp_path: Path
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main([str(data), "-o", str(out), "--cache-dir", str(cache), *FAST]) == 0
    before = _tree(out)
    make_image("squares", seed=91).save(data / "squares" / "more.png")

    def small_files() -> None:  # the kernel refuses to grow a file past 64 KB: report.html cannot be written
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    proc = subprocess.run(_cli(str(data), "-o", str(out), "--cache-dir", str(cache)), capture_output=True,
                          text=True, preexec_fn=small_files, timeout=600)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    *warnings, error = proc.stderr.splitlines()
    assert error == f"Error: cannot write '{out / 'report.html'}': File too large; the files there are unchanged"
    assert warnings == [f"WARNING: cannot write the cache in '{cache}' (File too large): this run's results are not "
                        "kept there"]  # the figures memoised there: once  # fmt: skip
    assert _tree(out) == before  # every output as it was, no temporary file, no new history entry


def test_a_cache_that_fills_up_is_said_once_and_the_run_completes(
    labeled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    from reportgen import cache

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "atomic_write", full)
    args = [str(labeled_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main(args) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"WARNING: cannot write the cache in '{tmp_path / 'cache'}' (No space left on device): this run's results "
        "are not kept there"
    ]
    assert _summary(tmp_path / "out")["n_images"] == 18


def test_an_unwritable_home_and_a_read_only_data_folder_give_no_library_warnings(
    labeled_dir: Path, tmp_path: Path
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    before = _tree(data)
    for path in [data, *data.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPL"))}
    env |= {"HOME": str(Path("/proc/self/no-home") if Path("/proc/self").is_dir() else tmp_path / "a-file"),
            "TMPDIR": str(tmp_path / "tmp")}  # fmt: skip
    (tmp_path / "a-file").write_text("not a home")
    (tmp_path / "tmp").mkdir()
    try:
        for _ in range(2):  # the second run reads the fallback cache
            proc = subprocess.run([sys.executable, "-m", "reportgen", str(data), "-o", str(tmp_path / "out"),
                                   "--backbone", "efficientnet-lite0", "-q", "--force"],
                                  capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            lines = proc.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("WARNING: the default cache folder"), proc.stderr
            assert f"this run caches its embeddings in '{tmp_path / 'tmp'}" in lines[0]
        summary = _summary(tmp_path / "out")
        assert summary["cache"]["cached"] == 18 and any("cannot be written" in n for n in summary["notes"])
    finally:
        for path in [data, *data.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert _tree(data) == before
