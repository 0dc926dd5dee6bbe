"""Bad input never crashes a run, interruptions lose nothing, reruns are identical, nothing touches the network."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from badfiles import write_bad_files
from conftest import SAMPLE_DATA, make_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reportgen
from reportgen.cli import main
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import DecodeError
from reportgen.extract import extract as embed
from reportgen.extract import resolve, stage
from reportgen.extract.decode import preprocess
from reportgen.images import load_rgb

# How a run computed, not what it concluded: the page shows timings, and a run that finds every image already in
# the cache (another run sharing it got there first) ran no forward pass, so its runtime reads "none (...)".
VOLATILE = {"timings", "generated", "cache", "device", "parameters", "runtime"}


def _cli(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reportgen",
        str(data),
        "-o",
        str(out),
        "--backbone",
        "efficientnet-lite0",
        "--cache-dir",
        str(cache),
        "-q",
        *extra,
    ]


def _stable(out: Path) -> tuple[dict, bytes]:
    """summary.json without the parts that legitimately change between runs, and assignments.csv's bytes."""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    stable = {k: v for k, v in summary.items() if k not in VOLATILE}
    if stable.get("explanations"):  # how many maps came from the cache depends on who got there first
        stable["explanations"] = {k: v for k, v in stable["explanations"].items() if k not in ("computed", "cached")}
    return stable, (out / "assignments.csv").read_bytes()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run on sample_data with its own cache."""
    work = tmp_path_factory.mktemp("baseline")
    subprocess.run(_cli(SAMPLE_DATA, work / "out", work / "cache"), check=True, timeout=600)
    return work / "out"


# ------------------------------------------------------------------------------------------- bad files


def test_every_bad_file_is_skipped_with_its_reason_and_the_rest_are_used(tmp_path: Path, labeled_dir: Path) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    expected = write_bad_files(data)
    cfg = Config(data, backbone="efficientnet-lite0", cache_dir=tmp_path / "cache", progress=False)
    emb = embed(discover(cfg), cfg)
    reasons = {s.path: s.reason for s in emb.images.skipped}
    used = set(emb.images.paths)
    for path, reason in expected.items():
        if reason is None:
            assert path in used, path
        else:
            assert reason in reasons[path], (path, reasons.get(path))
    assert len(used) == 18 + sum(1 for r in expected.values() if r is None)
    dup = [emb.images.paths.index(f"oddities/duplicate-{x}.jpg") for x in "ab"]
    assert (emb.features[dup[0]] == emb.features[dup[1]]).all()
    assert emb.n_computed == len(used) - 1  # the duplicate's content is embedded once


def test_odd_images_decode_as_expected(tmp_path: Path) -> None:
    write_bad_files(tmp_path)
    d = tmp_path / "oddities"
    assert load_rgb(d / "exif-rotated.jpg").size == (72, 96)
    tiff = load_rgb(d / "multipage.tiff")
    assert tiff.size == (96, 72) and tiff.mode == "RGB"
    prep = resolve("efficientnet-lite0", None, offline=True).preprocessing
    assert tuple(preprocess(load_rgb(d / "panorama-10000x10.png"), prep).shape) == (3, 224, 224)
    assert tuple(preprocess(load_rgb(d / "one-pixel.png"), prep).shape) == (3, 224, 224)


def test_unreadable_file_is_skipped(tmp_path: Path, labeled_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    locked = data / "circles" / "img_0.jpg"
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads anything: make the read fail as it does for everyone else
        real = stage.content_hash

        def denied(path: Path) -> str:
            if path == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(stage, "content_hash", denied)
    cfg = Config(data, backbone="efficientnet-lite0", cache_dir=tmp_path / "cache", progress=False)
    emb = embed(discover(cfg), cfg)
    assert {s.path: s.reason for s in emb.images.skipped} == {"circles/img_0.jpg": "permission denied"}
    assert len(emb.images) == 17


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a"]).flatmap(
            lambda head: st.binary(max_size=1024).map(lambda tail: head + tail)
        ),
    )
)
def test_decoding_random_bytes_gives_an_image_or_a_reason(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.jpg"
    path.write_bytes(data)
    try:
        im = load_rgb(path)
    except DecodeError as exc:
        assert str(exc)
    else:
        assert im.mode == "RGB" and im.size[0] >= 1 and im.size[1] >= 1


@pytest.mark.e2e
def test_bad_files_beside_sample_data_give_a_complete_report(tmp_path: Path) -> None:
    data = shutil.copytree(SAMPLE_DATA, tmp_path / "data")
    expected = write_bad_files(data)
    out = tmp_path / "out"
    proc = subprocess.run(_cli(data, out, tmp_path / "cache"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    skipped = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {p for p, r in expected.items() if r is not None}
    for path, reason in skipped.items():
        assert expected[path] in reason
    rows = {r["path"] for r in csv.DictReader((out / "assignments.csv").open(encoding="utf-8"))}
    assert {p for p, r in expected.items() if r is None} <= rows
    assert len(rows) == 122 + sum(1 for r in expected.values() if r is None)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.rstrip().endswith("</html>")
    for path in skipped:
        assert (
            path.replace("&", "&amp;")
            .replace("'", "&#39;")
            .replace('"', "&#34;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            in html
        )


# --------------------------------------------------------------------------------------- degenerate data


def test_a_class_with_one_image_is_not_split_and_the_report_says_so(tmp_path: Path, labeled_dir: Path) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    (data / "lonely").mkdir()
    make_image("circles", seed=99).save(data / "lonely" / "only.png")
    (data / "empty").mkdir()
    result = reportgen.build_report(
        data, out_dir=tmp_path / "out", backbone="efficientnet-lite0", cache_dir=tmp_path / "cache", progress=False
    )
    assert "lonely" not in {w.label for w in result.analysis.within_class}
    notes = json.loads(result.outputs.summary.read_text())["notes"]
    assert "class 'lonely' has 1 image: too few to split into 2" in notes
    assert "class folder 'empty' has no images and was ignored" in notes
    html = result.outputs.report.read_text(encoding="utf-8")
    assert "class &#39;lonely&#39; has 1 image: too few to split into 2" in html


def test_identical_images_report_that_k_cannot_be_chosen(tmp_path: Path) -> None:
    for i in range(8):
        make_image("squares", seed=1).save(tmp_path / f"same_{i}.png")
    result = reportgen.build_report(
        tmp_path, out_dir=tmp_path / "out", backbone="efficientnet-lite0", cache_dir=tmp_path / "cache", progress=False
    )
    assert result.clustering.k == 1
    summary = json.loads(result.outputs.summary.read_text())
    assert summary["chosen_k"] == 1
    assert summary["k_selection"]["reason"].startswith("K cannot be chosen: only 1 distinct image among 8")
    assert "K cannot be chosen" in result.outputs.report.read_text(encoding="utf-8")


def test_k_larger_than_the_number_of_images_is_a_clear_error(
    tmp_path: Path, labeled_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            str(labeled_dir),
            "-o",
            str(tmp_path / "o"),
            "--backbone",
            "efficientnet-lite0",
            "--cache-dir",
            str(tmp_path / "c"),
            "-q",
            "--k",
            "100",
        ]
    )
    assert (code, capsys.readouterr().err) == (2, "Error: --k 100 is larger than the number of usable images (18)\n")


def test_a_file_given_as_the_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.jpg").write_bytes(b"x")
    code = main([str(tmp_path / "x.jpg")])
    assert (code, capsys.readouterr().err) == (2, f"Error: data folder '{tmp_path / 'x.jpg'}' is not a folder\n")


# ------------------------------------------------------------------------------ interruption, concurrency


@pytest.mark.e2e
def test_kill_9_at_any_moment_then_a_rerun_equals_an_uninterrupted_run(tmp_path: Path, baseline: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    shutil.copytree(baseline, out)  # a previous complete report must survive every killed run
    previous = (out / "report.html").read_bytes()
    for delay in (1.0, 3.0, 4.5, 6.0, 7.5):
        proc = subprocess.Popen(_cli(SAMPLE_DATA, out, cache), start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        html = (out / "report.html").read_bytes()
        assert html == previous or html.rstrip().endswith(b"</html>")
        json.loads((out / "summary.json").read_text(encoding="utf-8"))
    subprocess.run(_cli(SAMPLE_DATA, out, cache), check=True, timeout=600)
    assert _stable(out) == _stable(baseline)


@pytest.mark.e2e
def test_two_runs_sharing_one_cache_both_complete_correctly(tmp_path: Path, baseline: Path) -> None:
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(_cli(SAMPLE_DATA, tmp_path / f"out{i}", cache)) for i in range(2)]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    assert _stable(tmp_path / "out0") == _stable(baseline)
    assert _stable(tmp_path / "out1") == _stable(baseline)
    runtimes = {json.loads((tmp_path / f"out{i}" / "summary.json").read_text())["runtime"] for i in range(2)}
    assert runtimes <= {"torch", "none (every image was in the cache)"}, runtimes


@pytest.mark.e2e
def test_results_do_not_depend_on_workers_or_batch_size(tmp_path: Path, baseline: Path) -> None:
    for i, extra in enumerate((("--workers", "0", "--batch-size", "7"), ("--workers", "2", "--batch-size", "64"))):
        out = tmp_path / f"out{i}"
        subprocess.run(_cli(SAMPLE_DATA, out, tmp_path / f"cache{i}", *extra), check=True, timeout=600)
        assert _stable(out) == _stable(baseline)


# ----------------------------------------------------------------------------------------- no network


def test_offline_and_bundled_runs_open_no_connection(
    tmp_path: Path, labeled_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list = []
    real_connect = socket.socket.connect

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        attempts.append(args)
        raise OSError("network blocked by the test")

    def connect(sock: socket.socket, address):  # noqa: ANN001, ANN202
        # Local Unix sockets are how DataLoader workers hand tensors back; only the network is refused.
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return refuse(sock, address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", connect)
    for name, options in {"bundled": {"backbone": "efficientnet-lite0"}, "offline": {"offline": True}}.items():
        result = reportgen.build_report(
            labeled_dir,
            out_dir=tmp_path / name,
            cache_dir=tmp_path / f"c-{name}",
            progress=False,
            workers=2,
            batch_size=4,
            **options,
        )
        assert result.embeddings.backbone == "efficientnet-lite0"
    assert attempts == []
    # the blocker does see a real attempt: backbone auto without --offline asks for resnet50's server
    reportgen.build_report(labeled_dir, out_dir=tmp_path / "auto", cache_dir=tmp_path / "c-auto", progress=False)
    assert attempts and "download.pytorch.org" in str(attempts[0])
