"""The extractor's network as an ONNX file, exported once and cached beside the embedding cache.

The file is what ONNX Runtime and OpenVINO run (:mod:`.runtime`). It is keyed by the spec, the weights, the
preprocessing and the exporter's versions, and written as ``model.onnx`` then ``meta.json`` (the commit marker,
holding the file's size and hash). A file whose bytes no longer match its hash is exported again; a network the
exporter cannot take is remembered as such, so that later runs do not spend the export's time again to learn it.

Imported only when some image needs computing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..cache import content_hash
from ..fsutil import atomic_write, why
from .base import Extractor, Preprocessing

log = logging.getLogger(__name__)

FORMAT = 1
OPSET = 18  # the opset the exporter's op library is written for (no version conversion pass)
FOLDER = "exports"  # under the cache root
MIN_TORCH = (2, 7)  # the exporter's dynamic_shapes with named dimensions
PROBE_ROWS = 3  # not 2, the batch the export was traced with: the batch dimension must really be free


class Standardized(nn.Module):
    """``network`` on uint8 pixels: scaled to [0, 1], less the mean, over the standard deviation (``prep``).

    The decoder hands over uint8 crops, so that the scaling runs once per batch inside the forward pass (fused
    into the first convolution by the ONNX runtimes) rather than image by image while decoding.
    """

    def __init__(self, network: nn.Module, prep: Preprocessing) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(prep.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(prep.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.network((pixels.float() / 255.0 - self.mean) / self.std)


def split(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(features, head input or ``None``) from a network's one or two outputs, as float32 on the CPU."""
    feats, head = (out[0], out[1] if len(out) > 1 else None) if isinstance(out, tuple) else (out, None)
    return feats.float().cpu(), None if head is None else head.float().cpu()


@dataclass(frozen=True)
class Exported:
    """A usable exported model (``path``), or why there is none (``reason``)."""

    path: Path | None
    reason: str = ""


def folder_for(extractor: Extractor, cache_root: Path) -> Path:
    """Where ``extractor``'s export lives under ``cache_root``."""
    return cache_root / FOLDER / _key(extractor)


def exported(extractor: Extractor, folder: Path, rebuild: bool = False) -> Exported:
    """The cached export in ``folder`` when its bytes match its record, else a fresh export written there.

    ``rebuild`` exports again even over a matching file (a runtime could not load it). A network the exporter
    cannot take gives ``path=None`` and the reason, now and in later runs with the same torch.
    """
    meta = _read_meta(folder)
    model = folder / "model.onnx"
    if meta is not None and not rebuild:
        if meta.get("status") == "unexportable":
            return Exported(None, str(meta.get("reason", "could not be exported")))
        if _matches(model, meta):
            return Exported(model)
        log.warning("the cached export '%s' does not match its record; exporting again", model)
    if tuple(int(p) for p in torch.__version__.split(".")[:2]) < MIN_TORCH:
        return Exported(None, f"exporting needs torch {'.'.join(map(str, MIN_TORCH))} or later")
    try:
        import onnxscript  # noqa: F401 - torch's exporter needs it; checked here to say so in one line
    except ImportError:
        return Exported(None, "exporting needs the onnxscript package (pip install onnxscript)")
    start = time.perf_counter()
    try:
        data = _export(extractor)
    except Exception as exc:  # noqa: BLE001 - torch.export raises many kinds; any of them means "use torch"
        reason = _first_line(exc)
        _write_meta(folder, {"status": "unexportable", "reason": reason})
        return Exported(None, reason)
    seconds = time.perf_counter() - start
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(model, data)
        _write_meta(folder, {"status": "ok", "bytes": len(data), "hash": content_hash(data)})
    except OSError as exc:  # a full or read-only cache folder
        return Exported(None, f"cannot write the export in '{folder}' ({why(exc)})")
    log.info("exported '%s' for the ONNX runtimes in %.1f s", extractor.spec, seconds)
    return Exported(model)


def probe(extractor: Extractor, folder: Path) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor | None]]:
    """A seeded uint8 batch and torch's float32 outputs on it, to check a runtime against: computed with the
    unoptimised network once per export and kept beside it (``probe.pt``)."""
    crop = extractor.preprocessing.crop
    generator = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (PROBE_ROWS, 3, crop, crop), dtype=torch.uint8, generator=generator)
    path = folder / "probe.pt"
    try:
        kept = torch.load(path, weights_only=True)
        if torch.equal(kept["batch"], batch):
            return batch, (kept["features"], kept.get("head_input"))
    except Exception:  # noqa: BLE001 - absent or unreadable: computed again
        pass
    with torch.inference_mode():
        out = Standardized(extractor.network, extractor.preprocessing).eval()(batch)
    feats, head = split(out)
    want = (feats.clone(), None if head is None else head.clone())
    try:
        import io

        buf = io.BytesIO()
        torch.save({"batch": batch, "features": want[0], **({"head_input": want[1]} if head is not None else {})}, buf)
        atomic_write(path, buf.getvalue())
    except OSError as exc:
        log.debug("cannot keep the probe in '%s': %s", folder, exc)
    return batch, want


def forget(folder: Path) -> None:
    """Remove an export (a runtime refused it, or its outputs did not match torch's)."""
    shutil.rmtree(folder, ignore_errors=True)


def refuse(folder: Path, runtime: str, version: str, reason: str) -> None:
    """Remember that ``runtime`` (at ``version``) gives other outputs than torch on this export, so that later runs
    use torch without loading it (another version of the runtime is tried again)."""
    try:
        text = json.dumps({"version": version, "reason": reason})
        atomic_write(folder / f"refused-{runtime}.json", text.encode())
    except OSError as exc:
        log.debug("cannot record the refusal in '%s': %s", folder, exc)


def refused(folder: Path, runtime: str, version: str) -> str | None:
    """Why ``runtime`` at ``version`` was refused on this export, or ``None``."""
    try:
        record = json.loads((folder / f"refused-{runtime}.json").read_text(encoding="utf-8"))
        return str(record["reason"]) if record.get("version") == version else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _export(extractor: Extractor) -> bytes:
    """The ONNX bytes of ``extractor.network`` behind :class:`Standardized`, batch dimension free (its outputs: the
    features, and the classifier head's input for a layer of a classifier)."""
    crop = extractor.preprocessing.crop
    # A copy: torch.export can leave traced state on the module it exports, and the runner optimises the original.
    net = Standardized(copy.deepcopy(extractor.network).float().eval(), extractor.preprocessing)
    example = (torch.zeros(2, 3, crop, crop, dtype=torch.uint8),)  # 2: a batch of 1 would be fixed to 1
    with warnings.catch_warnings(), torch.no_grad(), _quiet("onnxscript", "onnx_ir", "torch.onnx", "torch.export"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            example,
            dynamo=True,
            dynamic_shapes=({0: "batch"},),
            input_names=["pixels"],
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    with tempfile.TemporaryDirectory(prefix="reportgen-export-") as tmp:
        path = Path(tmp) / "model.onnx"
        program.save(str(path), external_data=False)
        data = path.read_bytes()
    return data


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The exporter's passes log each step at INFO: only their warnings reach the run's log."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _key(extractor: Extractor) -> str:
    """What the exported file depends on: the network, its weights, its input, and the exporter."""
    try:
        from importlib.metadata import version

        exporter = version("onnxscript")
    except Exception:  # noqa: BLE001 - absent: the export says so
        exporter = "none"
    text = "|".join(
        (
            f"format {FORMAT}",
            extractor.spec,
            extractor.weights_id,
            extractor.preprocessing.key,
            f"torch {torch.__version__}",
            f"onnxscript {exporter}",
            f"opset {OPSET}",
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _matches(model: Path, meta: dict) -> bool:
    try:
        return model.stat().st_size == meta.get("bytes") and content_hash(model) == meta.get("hash")
    except OSError:
        return False


def _read_meta(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def _write_meta(folder: Path, meta: dict) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "meta.json", json.dumps({"format": FORMAT, **meta}, indent=1).encode())
    except OSError as exc:
        log.debug("cannot record the export in '%s': %s", folder, exc)


def _first_line(exc: BaseException) -> str:
    """The first line of the error at the bottom of ``exc``'s chain (the exporter wraps the one that says why),
    without terminal colours, at most 200 characters."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(exc).__name__}: {exc}").strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), type(exc).__name__)
    return line if len(line) <= 200 else line[:197] + "..."
