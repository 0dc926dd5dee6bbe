"""Ctrl-C (SIGINT) and SIGTERM at any stage: one line, exit 130 or 143, the cache keeps finished work, no
traceback, and the previous outputs stay whole."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLASS_STYLES, make_image

from reportgen.cli import main
from reportgen.errors import Terminated

FAST = ["--backbone", "efficientnet-lite0", "--no-explain", "-q"]
# Every stage the pipeline runs after embedding, and the writing of the outputs.
LATER = ["reduce", "choose_k", "cluster", "analyze", "explain", "project_2d", "assemble", "write_outputs", "export"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _consistent(out: Path) -> bool:
    """Whether the outputs are the set the state file names (each file's SHA-256), with no temporary file."""
    import hashlib

    digests = json.loads((out / ".reportgen-state.json").read_text())["output_sha256"]
    names = {p.name for p in out.iterdir() if p.is_file()}
    same = all(hashlib.sha256((out / n).read_bytes()).hexdigest() == d for n, d in digests.items())
    return same and names == {*digests, ".reportgen-state.json"}


def _stop_at(monkeypatch: pytest.MonkeyPatch, name: str, stop: type[BaseException]) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise stop

    monkeypatch.setattr(f"reportgen.pipeline.{name}", interrupted)


@pytest.mark.parametrize("stage", LATER)
@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt, 130), (Terminated, 143)])
def test_an_interrupt_after_embedding_says_every_image_is_cached(
    labeled_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    stop: type[BaseException],
    code: int,
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [str(labeled_dir), "-o", str(out), "--cache-dir", str(cache), *FAST]
    assert main(args) == 0
    before = _tree(out)
    _stop_at(monkeypatch, stage, stop)
    assert main([*args, "--force", "--seed", "3"]) == code
    assert capsys.readouterr().err == "interrupted; 18 images cached, rerun to continue\n"
    if stage == "export":  # after the outputs were replaced: the new set, whole
        assert _tree(out) != before and _consistent(out)
    else:
        assert _tree(out) == before  # the outputs are replaced together or not at all, no temporary file left
    monkeypatch.undo()
    assert main([*args, "--force"]) == 0
    assert json.loads((out / "summary.json").read_text())["cache"] == {"computed": 0, "cached": 18}


@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt, 130), (Terminated, 143)])
def test_an_interrupt_while_embedding_keeps_the_finished_batches(
    labeled_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stop: type[BaseException],
    code: int,
) -> None:
    from reportgen.extract import runner

    forward, calls = runner.outputs_of, []

    def second_batch_interrupted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise stop
        return forward(*args, **kwargs)

    monkeypatch.setattr(runner, "outputs_of", second_batch_interrupted)
    args = [str(labeled_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main([*args, "--batch-size", "4"]) == code
    assert capsys.readouterr().err == "interrupted; 4 images cached, rerun to continue\n"
    monkeypatch.undo()
    assert main(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["cache"] == {"computed": 14, "cached": 4}


def test_an_interrupt_before_embedding_or_without_a_cache(
    labeled_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [str(labeled_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *FAST]
    _stop_at(monkeypatch, "discover", KeyboardInterrupt)
    assert main(args) == 130
    assert capsys.readouterr().err == "interrupted before any image was embedded; rerun to start\n"
    monkeypatch.undo()
    _stop_at(monkeypatch, "cluster", KeyboardInterrupt)
    assert main([*args, "--no-cache"]) == 130
    assert capsys.readouterr().err == "interrupted; nothing is kept with --no-cache, rerun to start over\n"
    monkeypatch.setattr("reportgen.cli.fingerprint", lambda config: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(args) == 130  # while the folder is walked, before the pipeline starts
    assert capsys.readouterr().err == "interrupted before any image was embedded; rerun to start\n"


def test_other_commands_stop_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reportgen.diff.write_diff", lambda *a: (_ for _ in ()).throw(Terminated))
    assert main(["diff", str(tmp_path), str(tmp_path)]) == 143
    assert capsys.readouterr().err == "interrupted\n"


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough images (larger ones) that embedding takes a few seconds."""
    root = tmp_path_factory.mktemp("big")
    for style in CLASS_STYLES:
        (root / style).mkdir()
        for i in range(80):
            make_image(style, seed=2000 + i, size=200).save(root / style / f"img_{i}.png")
    return root


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_real_signal_to_the_process_group_while_embedding(
    big_dir: Path, tmp_path: Path, sig: int, code: int, workers: str
) -> None:
    """As a terminal's Ctrl-C does, the signal goes to every process (decoding workers too)."""
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "reportgen", str(big_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(cache),
           "--backbone", "efficientnet-lite0", "--no-explain", "--workers", workers]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait for the embedding to start, then for its first batch in the cache
        if "embedding 240 images" in line:
            break
    deadline = time.monotonic() + 120
    while not any(cache.rglob("*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == code, rest
    assert "Traceback" not in rest and rest.count("\n") == 1, rest
    found = re.fullmatch(r"interrupted; (\d+) images? cached, rerun to continue\n", rest)
    assert found, rest
    n = int(found.group(1))
    assert 0 < n < 240
    assert main([str(big_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(cache), *FAST]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["cache"] == {"computed": 240 - n, "cached": n}
