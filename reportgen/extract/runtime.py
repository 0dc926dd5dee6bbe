"""Which runtime runs the extractor's forward pass: PyTorch, ONNX Runtime or OpenVINO (``--runtime``).

Every runtime takes the same input, a batch of uint8 crops (N x 3 x crop x crop), and gives the same outputs:
the features and, for a layer of a classifier, the head's input (the runner computes the class probabilities
from it in float64, whatever ran the network). ONNX Runtime and OpenVINO run the network exported once to ONNX
(:mod:`.export`); before either is used in a run, its outputs on a seeded probe batch are compared with
PyTorch's in float32, and it is used only when every row agrees to a cosine similarity above ``COSINE_MIN``.
Anything that goes wrong on the way (a package missing, a network the exporter cannot take, a file a runtime
cannot load, outputs that disagree) is one log line and the run goes on with PyTorch.

Both ONNX runtimes compute in float32 (``--precision bf16`` with either is refused by the options; with ``auto``
precision they run float32 and the run says so). ``auto`` keeps PyTorch on a GPU and in bf16, and for a
first export of a few images (exporting costs seconds: ``AUTO_EXPORT_MIN``). Otherwise it times each usable
runtime on one batch, keeps the fastest, and remembers the choice for this machine, batch size and model.

Imported only when some image needs computing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..fsutil import atomic_write
from . import export
from .base import Extractor

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime", "openvino")
PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
# Exporting EfficientNet-Lite0 takes about 7 s here and saves about 12 ms an image (docs/benchmarks.md): below
# this many images to embed, auto does not start an export (one already cached is used for any number).
AUTO_EXPORT_MIN = 500
COSINE_MIN = 0.9999

Outputs = tuple[torch.Tensor, torch.Tensor | None]  # features, and the head's input when it differs from them


@dataclass(frozen=True)
class Forward:
    """One runtime's forward pass: uint8 batch -> float32 outputs on the CPU."""

    runtime: str
    precision: str
    call: Callable[[torch.Tensor], Outputs]


def installed(runtime: str) -> bool:
    """Whether ``runtime``'s package can be imported (torch always can)."""
    return runtime == "torch" or importlib.util.find_spec(PACKAGES[runtime]) is not None


def pick(
    extractor: Extractor,
    requested: str,
    device: str,
    precision: str,
    cache_root: Path | None,
    n_images: int,
    batch_size: int,
) -> Forward:
    """The forward pass for ``--runtime requested`` (see the module's text), with one log line for a fallback.

    ``cache_root`` is where the export is kept (``None``, as with ``--no-cache``: a temporary folder, removed when
    the process ends); ``n_images`` and ``batch_size`` are the run's, for ``auto``.
    """
    if requested == "torch":
        return torch_pass(extractor, device, precision)
    if device != "cpu" or (requested == "auto" and precision == "bf16"):
        if requested != "auto":
            log.warning("--runtime %s runs on the CPU only; the model runs with torch on %s", requested, device)
        return torch_pass(extractor, device, precision)
    wanted = [requested] if requested != "auto" else [r for r in RUNTIMES[1:] if installed(r)]
    folder = export.folder_for(extractor, cache_root if cache_root is not None else _scratch())
    if requested == "auto" and wanted and not (folder / "meta.json").exists() and n_images < AUTO_EXPORT_MIN:
        log.debug("runtime torch: %d images to embed, too few to pay for exporting the model", n_images)
        wanted = []
    say = log.warning if requested != "auto" else log.info  # auto's fallbacks are its normal course
    forwards = [f for name in wanted if (f := _load(name, extractor, folder, precision, say)) is not None]
    if requested != "auto":
        return forwards[0] if forwards else torch_pass(extractor, device, precision)
    if not forwards:
        return torch_pass(extractor, device, precision)
    return _fastest(lambda: torch_pass(extractor, device, precision), forwards, folder, batch_size, extractor)


def torch_pass(extractor: Extractor, device: str, precision: str) -> Forward:
    """PyTorch: the network with batch-norm folded (where it may be), channels-last, autocast for bf16."""
    net = export.Standardized(_fused(extractor.network), extractor.preprocessing)
    # channels-last doubles CPU throughput for these CNNs (docs/benchmarks.md) and is what GPUs want too.
    net = net.to(device, memory_format=torch.channels_last)

    def call(batch: torch.Tensor) -> Outputs:
        if device == "cuda":
            batch = batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        else:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return export.split(net(batch))

    return Forward("torch", precision, call)


def _load(
    name: str, extractor: Extractor, folder: Path, precision: str, say: Callable[..., None] = log.warning
) -> Forward | None:
    """``name``'s forward pass on the export in ``folder`` (exported now if need be), checked against torch's, or
    ``None`` after one line (``say``) saying why torch runs instead."""
    made = export.exported(extractor, folder)
    if made.path is None:
        say("runtime %s: '%s' cannot be exported (%s); using torch", name, extractor.spec, made.reason)
        return None
    refused = export.refused(folder, name, _version(name))
    if refused is not None:
        say("runtime %s gave other features than torch for '%s' (%s); using torch", name, extractor.spec, refused)
        return None
    threads = torch.get_num_threads()
    try:
        call = _SESSIONS[name](made.path, folder, threads)
    except Exception:  # noqa: BLE001 - a file the runtime cannot load: export once more, then give up
        made = export.exported(extractor, folder, rebuild=True)
        try:
            call = _SESSIONS[name](made.path, folder, threads) if made.path is not None else None
        except Exception as exc:  # noqa: BLE001
            say("runtime %s cannot load the model of '%s' (%s); using torch", name, extractor.spec, exc)
            return None
        if call is None:
            return None
    far = _disagreement(extractor, folder, call)
    if far is not None:
        say("runtime %s gives other features than torch for '%s' (%s); using torch", name, extractor.spec, far)
        export.refuse(folder, name, _version(name), far)
        return None
    return Forward(name, "fp32", call)


def _disagreement(extractor: Extractor, folder: Path, call: Callable[[torch.Tensor], Outputs]) -> str | None:
    """``None`` when ``call`` and torch in float32 give the same outputs on a seeded probe batch, else how far apart."""
    probe, want = export.probe(extractor, folder)
    got = call(probe)
    for name, a, b in (("features", got[0], want[0]), ("head input", got[1], want[1])):
        if (a is None) != (b is None):
            return f"{name}: present in one only"
        if a is None:
            continue
        if a.shape != b.shape:
            return f"{name}: shape {tuple(a.shape)}, not {tuple(b.shape)}"
        low = _min_cosine(a.numpy(), b.numpy())
        if not low > COSINE_MIN:
            return f"{name}: cosine similarity {low:.6f}"
    return None


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The lowest row-wise cosine similarity of ``a`` and ``b`` (1 for two zero rows, 0 for one)."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    cos = np.where(both_zero, 1.0, (a * b).sum(1) / np.maximum(na * nb, np.finfo(float).tiny))
    return float(cos.min())


def _onnxruntime(model: Path, folder: Path, threads: int) -> Callable[[torch.Tensor], Outputs]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings go to stderr otherwise
    # Idle pool threads would spin and take the cores from the decoding thread (docs/benchmarks.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def call(batch: torch.Tensor) -> Outputs:
        outs = session.run(None, {name: batch.contiguous().numpy()})  # releases the GIL: decoding goes on
        return export.split(tuple(torch.from_numpy(o) for o in outs))

    return call


def _openvino(model: Path, folder: Path, threads: int) -> Callable[[torch.Tensor], Outputs]:
    import openvino as ov

    core = ov.Core()
    settings = {
        "PERFORMANCE_HINT": "LATENCY",  # one stream with every thread: one batch at a time
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",  # else it may pick bf16 on its own, and the features would differ
        "ENABLE_CPU_PINNING": False,  # decoding shares the cores
    }
    blobs = folder / "openvino"
    try:
        compiled = core.compile_model(str(model), "CPU", {**settings, "CACHE_DIR": str(blobs)})
    except Exception:  # noqa: BLE001 - a damaged compiled blob: compile without it
        shutil.rmtree(blobs, ignore_errors=True)
        compiled = core.compile_model(str(model), "CPU", settings)
    request = compiled.create_infer_request()

    def call(batch: torch.Tensor) -> Outputs:
        results = request.infer({0: batch.contiguous().numpy()})
        # copies: the request reuses its output buffers for the next batch
        return export.split(tuple(torch.from_numpy(np.array(results[o])) for o in compiled.outputs))

    return call


_SESSIONS = {"onnxruntime": _onnxruntime, "openvino": _openvino}


def _fastest(
    with_torch: Callable[[], Forward], forwards: list[Forward], folder: Path, batch_size: int, extractor: Extractor
) -> Forward:
    """The forward pass (``forwards`` or torch's) that runs one batch fastest here, from this machine's remembered
    timing or a new one."""
    names = {"torch", *(f.runtime for f in forwards)}
    record = folder / f"timing-{_machine(batch_size)}.json"
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if set(known["rates"]) == names:
            chosen = known["runtime"]
            return with_torch() if chosen == "torch" else next(f for f in forwards if f.runtime == chosen)
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        pass
    forwards = [with_torch(), *forwards]
    by_name = {f.runtime: f for f in forwards}
    crop = extractor.preprocessing.crop
    batch = torch.randint(0, 256, (batch_size, 3, crop, crop), dtype=torch.uint8)
    rates = {f.runtime: _rate(f, batch) for f in forwards}
    best = max(rates, key=rates.__getitem__)
    text = ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items())
    log.info("runtime %s: the fastest here (images per second on one batch: %s)", best, text)
    try:
        atomic_write(record, json.dumps({"runtime": best, "rates": rates}, indent=1).encode())
    except OSError as exc:
        log.debug("cannot remember the runtime timing in '%s': %s", record, exc)
    return by_name[best]


def _rate(forward: Forward, batch: torch.Tensor, budget: float = 0.5) -> float:
    """Images per second of ``forward`` on ``batch``: the best of a few timed calls after a warm-up call."""
    forward.call(batch)
    best, spent = float("inf"), 0.0
    for _ in range(5):
        start = time.perf_counter()
        forward.call(batch)
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent > budget:
            break
    return len(batch) / best


def _machine(batch_size: int) -> str:
    """This machine, as far as the runtimes' speed goes: processor, threads, batch size and package versions."""
    try:
        cpu = next(
            (line for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines() if "model name" in line),
            platform.processor(),
        )
    except OSError:
        cpu = platform.processor()
    versions = [f"{name} {_version(name)}" for name in PACKAGES]
    text = f"{cpu}|{os.cpu_count()}|{torch.get_num_threads()}|{batch_size}|{torch.__version__}|{'|'.join(versions)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _version(runtime: str) -> str:
    """The installed version of ``runtime``'s package, or ``none``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGES[runtime])
    except PackageNotFoundError:
        return "none"


def _fused(network: torch.nn.Module) -> torch.nn.Module:
    """The network with batch-norm folded into its convolutions (torch.fx), or unchanged if it cannot be traced or
    says it must not be (``fusable = False``)."""
    import torch.fx.experimental.optimization as fx_optimization

    if not getattr(network, "fusable", True):
        return network
    try:
        return fx_optimization.fuse(network.eval())
    except Exception as exc:  # noqa: BLE001 - tracing fails on some models; the plain one is still correct
        log.debug("conv/batch-norm fusion skipped: %s", exc)
        return network


_SCRATCH: list[Path] = []


def _scratch() -> Path:
    """A temporary cache root for a run without the cache, removed when the process ends."""
    if not _SCRATCH:
        import atexit
        import tempfile

        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="reportgen-exports-")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]
