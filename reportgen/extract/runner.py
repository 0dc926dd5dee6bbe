"""Running any :class:`~reportgen.extract.base.Extractor` over image files: the one place that owns batching,
decoding (overlapped with the forward pass), the device, the precision, the runtime, top-5 classes and the
progress bar.

Imported only when some image needs computing, so a fully cached rerun never imports torch.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Full, Queue
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..cache import CacheEntry
from ..config import Config
from ..errors import BackboneError, InvalidOptionError
from . import runtime
from .base import TOP_K, Extractor
from .decode import DecodeDataset, collate, decode_jpegs, pick_jpeg_decoder

log = logging.getLogger(__name__)
T = TypeVar("T")


def pick_device(requested: str) -> str:
    """``cpu`` or ``cuda`` for ``--device``; ``auto`` picks CUDA when torch sees a device."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("--device cuda was given but torch sees no CUDA device")
    return requested


def pick_precision(requested: str, device: str) -> str:
    """``fp32`` or ``bf16`` for ``--precision`` on ``device``.

    ``auto`` is bf16 on a GPU, and on a CPU whose instruction set has native bfloat16 arithmetic (there the
    forward pass runs about twice as fast, docs/benchmarks.md; elsewhere bf16 would be emulated and slower).
    On sample_data, bf16 features agree with fp32 ones to a cosine similarity of 0.9995 (median; 0.997 at
    worst) and the clusters are the same.
    """
    if requested != "auto":
        return requested
    return "bf16" if device == "cuda" or cpu_has_bf16() else "fp32"


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has native bfloat16 instructions (AVX512-BF16 or AMX-BF16), from Linux's cpuinfo."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run(
    extractor: Extractor,
    root: Path,
    todo: dict[str, str],
    config: Config,
    device: str,
    on_entry: Callable[[str, CacheEntry], None] | None = None,
    precision: str = "fp32",
) -> Embedded:
    """Compute the entries of ``todo`` (content hash -> path) with ``extractor``.

    Parameters
    ----------
    extractor : the loaded model; its ``network`` is run on ``device`` by the runtime ``config.runtime`` picks
        (:func:`.runtime.pick`).
    root : the data folder the paths are relative to.
    todo : content hash -> relative path of one file with that content.
    config : batch size, workers, JPEG decoder, runtime, cache and progress options.
    device : ``cpu`` or ``cuda`` (see :func:`pick_device`).
    on_entry : called for each entry as soon as its batch is done (the cache stores it then, so a run killed
        half-way keeps what it computed).
    precision : ``fp32`` or ``bf16`` (see :func:`pick_precision`), the forward pass's arithmetic.

    Returns
    -------
    :class:`Embedded`: entries and failure reasons by content hash, and the runtime and precision that ran. An
    entry's top-5 arrays have shape ``(0,)`` when the extractor has no classifier head.

    Decoding overlaps the forward pass: in ``config.workers`` processes, or, with none and an ONNX runtime, in a
    background thread that decodes the next batches while the runtime computes this one (Pillow, torch and both
    ONNX runtimes release the GIL for their work). With ``config.jpeg_decoder`` resolving to ``torchvision``
    (:func:`pick_jpeg_decoder`), the workers only read JPEG files and the main process decodes each batch of them
    on ``device``; other formats take the Pillow path.
    """
    items = sorted(todo.items(), key=lambda kv: kv[1])
    batch_size = config.resolved_batch_size(device)
    workers = 0 if len(items) <= batch_size else config.resolved_workers
    prep = extractor.preprocessing
    raw_jpegs = pick_jpeg_decoder(config.jpeg_decoder, device) == "torchvision"
    loader = DataLoader(
        DecodeDataset(root, items, prep, raw_jpegs),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device == "cuda",
        persistent_workers=False,
        worker_init_fn=_leave_signals_to_the_parent,
    )
    cache_root = config.resolved_cache_dir if config.use_cache else None
    forward = runtime.pick(extractor, config.runtime, device, precision, cache_root, len(items), batch_size)
    entries: dict[str, CacheEntry] = {}
    failed: dict[str, str] = {}
    refused = 0
    bar = tqdm(total=len(items), desc="Embedding", unit="img", disable=not config.progress)
    # With an ONNX runtime and no decoding workers, decoding runs ahead in a thread while the runtime computes
    # (+8% here); torch's own threads wait actively and lose 3% to it, and workers already run ahead.
    ahead = forward.runtime != "torch" and workers == 0
    with bar, prefetched(loader, enabled=ahead) as parts:  # the bar ends its line even on Ctrl-C
        for part in parts:
            failed.update(part.failed)
            groups = [(part.keys, part.pixels, part.thumbnails)]
            if part.raw:
                decoded = decode_jpegs(part.raw, root, prep, device)
                failed.update(decoded.failed)
                refused += decoded.refused
                groups.append((decoded.keys, decoded.pixels, decoded.thumbnails))
            for keys, pixels, thumbs in groups:
                if pixels is None:
                    continue
                feats, top_i, top_p = outputs_of(extractor, forward.call(pixels))
                for j, key in enumerate(keys):
                    entries[key] = CacheEntry(feats[j], top_i[j], top_p[j], thumbs[j])
                    if on_entry is not None:
                        on_entry(key, entries[key])
            bar.update(len(part.keys) + len(part.raw) + len(part.failed))
    if refused:
        log.warning(
            "%d JPEG file%s refused by torchvision's decoder on %s went through Pillow in the main process "
            "(slower); --jpeg-decoder pillow decodes every file in the worker processes",
            refused,
            "s" if refused != 1 else "",
            device,
        )
    return Embedded(entries, failed, forward.runtime, forward.precision, device)


class Embedded(NamedTuple):
    """What :func:`run` computed, and with what."""

    entries: dict[str, CacheEntry]
    failed: dict[str, str]
    runtime: str
    precision: str
    device: str  # cpu or cuda: where the network ran (for the Ray engine, on its workers)
    engine: str = "local"  # --engine, and for ray how many workers ran where


def outputs_of(extractor: Extractor, outputs: runtime.Outputs) -> tuple[np.ndarray, ...]:
    """Features (float32 N x dim), top-5 class indices (int32) and probabilities (float32) from one batch's outputs.

    The class probabilities come from the float32 outputs on the CPU, outside autocast and outside the runtime,
    so that a head can compute them independently of the batch (the classifiers' float64 head does) and neither
    ``--batch-size`` nor ``--runtime`` changes them. Without a head the top-5 arrays are N x 0.
    """
    feats, head_input = outputs
    head_input = feats if head_input is None else head_input
    if feats.shape[1:] != (extractor.dim,):
        shape = tuple(feats.shape)
        raise BackboneError(f"backbone '{extractor.spec}' gave features of shape {shape}, not N x {extractor.dim}")
    probs = extractor.predictions(head_input)
    if probs is None:
        n = len(feats)
        return feats.numpy().astype(np.float32), np.zeros((n, 0), np.int32), np.zeros((n, 0), np.float32)
    top_p, top_i = probs.topk(TOP_K, dim=1)
    return feats.numpy().astype(np.float32), top_i.numpy().astype(np.int32), top_p.numpy()


@contextmanager
def prefetched(batches: Iterable[T], depth: int = 2, enabled: bool = True) -> Iterator[Iterator[T]]:
    """``batches`` drawn by a background thread up to ``depth`` ahead of the caller; an error in the thread is
    raised in the caller. Leaving the block (at the end, on an error or on Ctrl-C) stops the thread. Not
    ``enabled``: the caller draws them itself."""
    if not enabled:
        drawn = (batch for batch in batches)
        try:
            yield drawn
        finally:
            # Closing drops the batches' iterator now, not when the traceback of a Ctrl-C is freed: a DataLoader's
            # iterator stops its decoding workers when it goes (they ignore the signals that stop the run).
            drawn.close()
        return
    queue: Queue[tuple[str, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            put(("error", exc))

    def drain() -> Iterator[T]:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]

    thread = threading.Thread(target=produce, name="reportgen-decode", daemon=True)
    thread.start()
    try:
        yield drain()
    finally:
        stop.set()
        thread.join(timeout=5)


def _leave_signals_to_the_parent(worker: int) -> None:
    """Decoding workers ignore Ctrl-C and SIGTERM sent to the whole process group: the main process stops the run
    and shuts them down (a worker killed first would add a traceback to the one-line message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
