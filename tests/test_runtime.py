"""--runtime: ONNX Runtime and OpenVINO give torch's features; exports cached, checked, rebuilt; one-line fallbacks."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import InvalidOptionError
from reportgen.extract import (
    Preprocessing,
    base,
    export,
    extract,
    register_backbone,
    runner,
    runtime,
    simple_resolution,
)

LITE = "efficientnet-lite0"
ONNX_RUNTIMES = [
    pytest.param(name, marks=pytest.mark.skipif(not runtime.installed(name), reason=f"{name} is not installed"))
    for name in ("onnxruntime", "openvino")
]
TINY = "tiny-runtime"
TINY_PREP = Preprocessing(40, 32, (0.5, 0.45, 0.4), (0.25, 0.2, 0.3))


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


class _DataDependent(nn.Module):
    """A network the exporter cannot take: Python control flow on a tensor's value."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean((2, 3))
        if float(y.sum()) > 0:  # data-dependent: torch.export refuses it
            return y
        return -y


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_FACTORIES", dict(base._FACTORIES))
    register_backbone(TINY, simple_resolution(TINY, dim=8, preprocessing=TINY_PREP, build=_tiny))
    register_backbone("data-dependent", simple_resolution("data-dependent", 4, TINY_PREP, build=_DataDependent))


def _cfg(data: Path, cache: Path, backbone: str = LITE, **kw: object) -> Config:
    return Config(data, backbone=backbone, cache_dir=cache, progress=False, workers=0, batch_size=8, **kw)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("name", ONNX_RUNTIMES)
@pytest.mark.parametrize("spec", [LITE, f"{LITE}@_blocks.10:top10", f"{LITE}@_blocks.5:gem+{LITE}@_blocks.12:max"])
def test_every_runtime_gives_torchs_features_and_classes(
    labeled_dir: Path, tmp_path: Path, name: str, spec: str
) -> None:
    # the last batch has 2 images (18 = 8 + 8 + 2): the exported batch dimension is free
    want = extract(discover(cfg := _cfg(labeled_dir, tmp_path / "torch", spec, runtime="torch")), cfg)
    got = extract(discover(cfg := _cfg(labeled_dir, tmp_path / name, spec, runtime=name)), cfg)
    assert (want.runtime, got.runtime) == ("torch", name)
    assert got.device == "cpu (fp32)" and got.n_computed == 18
    assert _cosine(want.features, got.features).min() > 0.9999
    np.testing.assert_array_equal(want.top5_index, got.top5_index)
    np.testing.assert_allclose(want.top5_prob, got.top5_prob, atol=1e-4)
    assert got.thumbnails == want.thumbnails  # decoding does not depend on the runtime


def test_the_export_is_cached_and_a_damaged_one_is_rebuilt(
    labeled_dir: Path, tmp_path: Path, registry: None, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    cfg = _cfg(labeled_dir, cache, TINY, runtime="onnxruntime", use_cache=True)
    caplog.set_level(logging.INFO)
    first = extract(discover(cfg), cfg)
    assert first.runtime == "onnxruntime"
    (folder,) = (cache / export.FOLDER).iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "ok" and meta["bytes"] == (folder / "model.onnx").stat().st_size
    assert sum("exported 'tiny-runtime'" in r.message for r in caplog.records) == 1

    def rerun() -> list[str]:
        caplog.clear()
        shutil.rmtree(cache / "v3")  # the embeddings, not the export, are forgotten
        cfg2 = _cfg(labeled_dir, cache, TINY, runtime="onnxruntime")
        again = extract(discover(cfg2), cfg2)
        assert again.runtime == "onnxruntime" and again.n_computed == 18
        assert _cosine(first.features, again.features).min() > 0.9999
        said = [r.message for r in caplog.records if r.name.startswith("reportgen.extract.")]
        return [line for line in said if "export" in line or "torch" in line]

    assert rerun() == []  # the cached export is used as it is
    model = folder / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    said = rerun()
    assert said[0] == f"the cached export '{model}' does not match its record; exporting again"
    assert any("exported 'tiny-runtime'" in line for line in said)
    model.write_bytes(model.read_bytes()[:1000])
    (folder / "meta.json").write_text(json.dumps({**meta, "bytes": 1000, "hash": export.content_hash(model)}))
    said = rerun()  # the record matches a truncated file: the runtime refuses it, it is exported once more
    assert sum("exported 'tiny-runtime'" in line for line in said) == 1
    assert not any("using torch" in line for line in said)


def test_a_network_that_cannot_be_exported_runs_with_torch_after_one_line(
    labeled_dir: Path, tmp_path: Path, registry: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cfg = _cfg(labeled_dir, cache, "data-dependent", runtime="onnxruntime")
    with caplog.at_level(logging.WARNING):
        got = extract(discover(cfg), cfg)
    assert got.runtime == "torch" and got.n_computed == 18
    lines = [r.message for r in caplog.records if "runtime" in r.message]
    assert len(lines) == 1 and lines[0].startswith("runtime onnxruntime: 'data-dependent' cannot be exported (")
    assert lines[0].endswith("); using torch") and "\n" not in lines[0]

    # the next run remembers it: no second export attempt
    monkeypatch.setattr(export, "_export", lambda extractor: pytest.fail("exported again"))
    caplog.clear()
    shutil.rmtree(cache / "v3")
    again = extract(discover(cfg := _cfg(labeled_dir, cache, "data-dependent", runtime="onnxruntime")), cfg)
    assert again.runtime == "torch"
    assert [r.message for r in caplog.records if "runtime" in r.message] == lines


def test_a_runtime_whose_outputs_differ_from_torchs_is_not_used(
    labeled_dir: Path, tmp_path: Path, registry: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runtime._SESSIONS["onnxruntime"]

    def off(*args: object) -> object:
        call = real(*args)
        return lambda batch: (call(batch)[0] + torch.linspace(0, 1, 8), None)  # outputs shifted: a wrong export

    monkeypatch.setitem(runtime._SESSIONS, "onnxruntime", off)
    cfg = _cfg(labeled_dir, tmp_path / "cache", TINY, runtime="onnxruntime")
    with caplog.at_level(logging.WARNING):
        got = extract(discover(cfg), cfg)
    assert got.runtime == "torch"
    (line,) = [r.message for r in caplog.records if r.name == "reportgen.extract.runtime"]
    assert line.startswith("runtime onnxruntime gives other features than torch for 'tiny-runtime' (features: cosine")
    (folder,) = (tmp_path / "cache" / export.FOLDER).iterdir()
    assert json.loads((folder / "refused-onnxruntime.json").read_text())["reason"].startswith("features: cosine")
    caplog.clear()
    shutil.rmtree(tmp_path / "cache" / "v3")
    with caplog.at_level(logging.WARNING):
        assert extract(discover(cfg), cfg).runtime == "torch"  # remembered: not loaded again
    (line,) = [r.message for r in caplog.records if r.name == "reportgen.extract.runtime"]
    assert line.startswith("runtime onnxruntime gave other features than torch for 'tiny-runtime' (features: cos")


def test_auto_keeps_torch_for_a_first_export_of_few_images_and_times_the_runtimes_once_exported(
    labeled_dir: Path, tmp_path: Path, registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cfg = _cfg(labeled_dir, cache, TINY)
    assert extract(discover(cfg), cfg).runtime == "torch"  # 18 images: not worth an export
    assert not (cache / export.FOLDER).exists()

    monkeypatch.setattr(runtime, "AUTO_EXPORT_MIN", 10)
    timed: list[str] = []
    rates = {"torch": 10.0, "onnxruntime": 30.0, "openvino": 20.0}

    def rate(forward: runtime.Forward, batch: torch.Tensor, budget: float = 0.5) -> float:
        timed.append(forward.runtime)
        return rates[forward.runtime]

    monkeypatch.setattr(runtime, "_rate", rate)
    fresh = _cfg(labeled_dir, tmp_path / "cache2", TINY)
    got = extract(discover(fresh), fresh)
    usable = ["torch", *(r for r in ("onnxruntime", "openvino") if runtime.installed(r))]
    assert sorted(timed) == sorted(usable)
    assert got.runtime == max(usable, key=rates.__getitem__)
    (folder,) = ((tmp_path / "cache2") / export.FOLDER).iterdir()
    (record,) = folder.glob("timing-*.json")
    assert json.loads(record.read_text())["runtime"] == got.runtime

    # the choice is remembered for this machine: no timing, and a few images now use the cached export
    monkeypatch.setattr(runtime, "AUTO_EXPORT_MIN", 500)
    timed.clear()
    shutil.rmtree(tmp_path / "cache2" / "v3")
    again = extract(discover(fresh), fresh)
    assert again.runtime == got.runtime and timed == []


def test_auto_keeps_torch_in_bf16_and_explicit_choices_are_checked_before_any_work(
    labeled_dir: Path, tmp_path: Path, registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "AUTO_EXPORT_MIN", 1)
    cfg = _cfg(labeled_dir, tmp_path / "cache", TINY, precision="bf16")
    got = extract(discover(cfg), cfg)
    assert (got.runtime, got.device) == ("torch", "cpu (bf16)")
    assert not (tmp_path / "cache" / export.FOLDER).exists()

    with pytest.raises(InvalidOptionError, match="--runtime must be auto, torch, onnxruntime or openvino, got 'tvm'"):
        Config(tmp_path, runtime="tvm")
    for name in ("onnxruntime", "openvino"):
        with pytest.raises(InvalidOptionError, match=rf"^--runtime {name} computes in fp32; with --precision bf16"):
            Config(tmp_path, runtime=name, precision="bf16")
    real = runtime.importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(InvalidOptionError, match=r"^--runtime openvino needs the openvino package: pip install "):
        Config(tmp_path, runtime="openvino")
    assert not runtime.installed("openvino") and runtime.installed("torch")


def test_without_the_cache_the_export_lives_in_a_temporary_folder(
    labeled_dir: Path, tmp_path: Path, registry: None
) -> None:
    cfg = _cfg(labeled_dir, tmp_path / "cache", TINY, runtime="onnxruntime", use_cache=False)
    got = extract(discover(cfg), cfg)
    assert got.runtime == "onnxruntime" and not (tmp_path / "cache").exists()


def test_decoding_runs_ahead_in_a_thread_and_its_errors_reach_the_caller() -> None:
    seen: list[str] = []

    def batches():  # noqa: ANN202
        for i in range(3):
            seen.append(threading.current_thread().name)
            yield i
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"), runner.prefetched(batches()) as parts:
        assert list(parts) == [0, 1, 2]
    assert set(seen) == {"reportgen-decode"}

    def endless():  # noqa: ANN202
        i = 0
        while True:
            yield i
            i += 1

    with runner.prefetched(endless(), depth=2) as parts:
        assert next(parts) == 0  # leaving early stops the thread
    assert not any(t.name == "reportgen-decode" for t in threading.enumerate())


@pytest.mark.e2e
def test_the_report_on_sample_data_is_the_same_with_every_runtime(tmp_path: Path) -> None:
    from conftest import SAMPLE_DATA

    from reportgen.cli import main

    def run(name: str) -> tuple[list[dict[str, str]], dict]:
        out = tmp_path / name
        args = [str(SAMPLE_DATA), "-o", str(out), "--cache-dir", str(tmp_path / f"cache-{name}"), "--runtime", name]
        assert main([*args, "--backbone", LITE, "--no-explain", "-q"]) == 0
        with (out / "assignments.csv").open(newline="") as fh:
            return list(csv.DictReader(fh)), json.loads((out / "summary.json").read_text())

    rows, summary = run("torch")
    assert summary["runtime"] == "torch"
    for name in [r for r in ("onnxruntime", "openvino") if runtime.installed(r)]:
        other_rows, other = run(name)
        assert other["runtime"] == name and other["device"] == "cpu (fp32)"
        for key in ("chosen_k", "metrics", "clusters", "count_matrix", "oddballs", "class_spread", "n_outliers"):
            _same(other[key], summary[key], key)
        assert [r["path"] for r in other_rows] == [r["path"] for r in rows]
        for a, b in zip(rows, other_rows, strict=True):
            for column, value in a.items():
                if column in ("distance", "top1_prob"):  # float32 sums in another order: the 6th decimal
                    assert float(b[column]) == pytest.approx(float(value), abs=1e-4)
                else:
                    assert b[column] == value, (a["path"], column)


def _same(a: object, b: object, where: str) -> None:
    """``a`` and ``b`` equal, floats to 1e-4 (float32 sums in another order move the 6th decimal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-4), where
    else:
        assert a == b, where
