"""``--engine ray``: the options, the worker plan, and real runs on local Ray instances bound to 127.0.0.1.

The end-to-end tests need the ``ray`` extra; they are skipped without it unless REPORTGEN_REQUIRE_RAY=1 (CI sets
it), which makes a missing Ray fail the run instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA

from reportgen.config import Config
from reportgen.errors import EngineError, InvalidOptionError
from reportgen.extract.ray_engine import Plan, Resources, available

needs_ray = pytest.mark.skipif(
    not available() and os.environ.get("REPORTGEN_REQUIRE_RAY") != "1", reason="the ray extra is not installed"
)
EMBEDDER = "MapBatches(_Embedder)"  # in the title Ray gives a model actor's process


def _cli(out: Path, cache: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "reportgen", str(SAMPLE_DATA), "-o", str(out), "--cache-dir", str(cache)]
    args += ["--backbone", "efficientnet-lite0", "-q", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ options


def test_ray_options_need_the_ray_engine_and_a_well_formed_address(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match=r"^--ray-address is for --engine ray \(the engine is local\)$"):
        Config(data_dir=tmp_path, ray_address="auto")
    assert Config(data_dir=tmp_path, ray_workers=2).engine == "local"  # a settings file's workers, unused locally
    for bad in ("ray://", "ray://host", "http://host:10001", "host:10001", "ray://host:99999", "ray://host:port"):
        with pytest.raises(InvalidOptionError, match=r"^--ray-address '.*' is not auto or ray://HOST:PORT$"):
            Config(data_dir=tmp_path, engine="ray", ray_address=bad)
    assert Config(data_dir=tmp_path, engine="ray", ray_address="ray://10.0.0.5:10001").ray_address.endswith("10001")


def test_the_ray_engine_without_ray_installed_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(InvalidOptionError, match=r"^--engine ray needs Ray: pip install 'reportgen\[ray\]'$"):
        Config(data_dir=tmp_path, engine="ray")


def test_the_default_install_does_not_pull_ray() -> None:
    from importlib.metadata import requires

    core = [r for r in requires("reportgen") or [] if "extra ==" not in r]
    assert core and not any(r.lower().startswith("ray") for r in core)
    assert any(r.lower().startswith("ray") and 'extra == "ray"' in r for r in requires("reportgen") or [])


def test_a_failure_inside_ray_is_named_by_its_innermost_cause() -> None:
    from reportgen.extract.ray_engine import _first_line

    class Wrapped(Exception):  # how Ray hands back a task's exception: its own type, the original as .cause
        def __init__(self, cause: BaseException) -> None:
            super().__init__("ray::MapWorker(MapBatches(_Embedder)).submit() (pid=1)\n  File ...")
            self.cause = cause

    inner = OSError("no weights for resnet50 in /root/.cache/torch on this node")
    assert _first_line(Wrapped(Wrapped(inner))) == str(inner)
    assert _first_line(ValueError("one line\nand the rest")) == "one line"


# ------------------------------------------------------------------------------------------------- the plan


def _plan(cpus: float, gpus: float = 0, nodes: int = 1, **options: object) -> Plan:
    config = Config(data_dir=Path("."), engine="ray", **options) if available() else None
    if config is None:
        pytest.skip("the ray extra is not installed")
    return Plan.of(config, Resources(cpus, gpus, nodes, "the test cluster"))


@needs_ray
def test_one_gpu_actor_per_gpu_else_one_actor_per_node_using_its_cores() -> None:
    gpu = _plan(cpus=32, gpus=4, nodes=2)
    assert (gpu.workers, gpu.gpus_per_worker, gpu.device, gpu.batch_size) == (4, 1.0, "cuda", 256)
    cpu = _plan(cpus=32, nodes=4)
    assert (cpu.workers, cpu.threads, cpu.device, cpu.gpus_per_worker, cpu.batch_size) == (4, 8, "cpu", 0.0, 8)
    assert _plan(cpus=32, gpus=4, nodes=2, device="cpu").device == "cpu"
    with pytest.raises(EngineError, match="^--device cuda, but the test cluster has no GPUs$"):
        _plan(cpus=8, device="cuda")
    with pytest.raises(EngineError, match="^--ray-workers 5: the test cluster has 4 GPUs, one per worker$"):
        _plan(cpus=32, gpus=4, ray_workers=5)


@needs_ray
@pytest.mark.parametrize(("cpus", "workers"), [(2, 1), (2, 2), (2, 3), (2, 8), (16, 4), (64, 64)])
def test_cpu_actors_leave_room_for_decoding_tasks(cpus: int, workers: int) -> None:
    plan = _plan(cpus=cpus, ray_workers=workers)
    assert plan.workers == workers
    assert plan.threads >= 1 and plan.threads * workers <= max(cpus, workers)
    # every actor placed and at least one decoding task beside them, else the pipeline would wait for ever
    assert 0 < plan.cpus_per_worker <= 0.75 * plan.threads
    assert workers * plan.cpus_per_worker + plan.decode_cpus <= cpus + 1e-9


# -------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local engine on sample_data, with its own cache."""
    work = tmp_path_factory.mktemp("local")
    done = _cli(work / "out", work / "cache")
    assert done.returncode == 0, done.stderr
    return work / "out"


@needs_ray
@pytest.mark.e2e
def test_ray_and_local_engines_give_identical_assignments_and_share_the_cache(tmp_path: Path, local_run: Path) -> None:
    cache = tmp_path / "cache"
    done = _cli(tmp_path / "ray", cache, "--engine", "ray")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ray" / "assignments.csv").read_bytes() == (local_run / "assignments.csv").read_bytes()
    summary = _summary(tmp_path / "ray")
    assert summary["engine"] == "ray: 1 worker (2 threads each) on a local Ray instance"
    assert summary["cache"]["computed"] == 122 and summary["runtime"] == "torch"
    report = (tmp_path / "ray" / "report.html").read_text(encoding="utf-8")
    assert "<th>engine</th><td>ray: 1 worker (2 threads each) on a local Ray instance</td>" in report

    # the local engine reads what the Ray engine stored: nothing is computed again
    again = _cli(tmp_path / "local", cache)
    assert again.returncode == 0, again.stderr
    reused = _summary(tmp_path / "local")["cache"]
    assert (reused["computed"], reused["cached"]) == (0, 122)
    assert (tmp_path / "local" / "assignments.csv").read_bytes() == (local_run / "assignments.csv").read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedders() -> list[int]:
    """The pids of the model actors running now."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if EMBEDDER in title:
                pids.append(int(proc.name))
    return pids


@needs_ray
@pytest.mark.e2e
def test_a_model_worker_killed_mid_run_leaves_the_result_of_a_clean_run(tmp_path: Path, local_run: Path) -> None:
    """The model actor is killed (SIGKILL) once some images are cached. Ray restarts it and gives it its batch
    again: the run completes, every image is embedded once (no entry lost, none twice) and the assignments are
    the clean run's."""
    killed: list[int] = []
    cache = tmp_path / "cache"

    def kill_once_some_are_cached() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            pids = _embedders()
            if pids and len(list(cache.rglob("*.npz"))) >= 16:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    killer = threading.Thread(target=kill_once_some_are_cached, daemon=True)
    killer.start()
    done = _cli(tmp_path / "out", cache, "--engine", "ray")
    killer.join(timeout=5)
    assert done.returncode == 0, done.stderr
    assert killed, "the model actor was never seen running"
    assert not _embedders()  # the local Ray instance is gone with the run
    assert len(list(cache.rglob("*.npz"))) == 122  # each image once
    assert _summary(tmp_path / "out")["cache"]["computed"] == 122
    assert (tmp_path / "out" / "assignments.csv").read_bytes() == (local_run / "assignments.csv").read_bytes()


@needs_ray
def test_an_unreachable_cluster_is_one_line_and_exit_2_within_30_seconds(tmp_path: Path) -> None:
    address = f"ray://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    done = _cli(tmp_path / "out", tmp_path / "cache", "--engine", "ray", "--ray-address", address)
    assert time.monotonic() - start < 30
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"Error: cannot reach the Ray cluster at {address}: Connection refused"]
    assert not (tmp_path / "out" / "report.html").exists()
