"""Running a backbone over image files: decoding in DataLoader workers, batched inference, top-5 classes.

Imported only when some image needs embedding, so a fully cached rerun never imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from .backbones import LoadedBackbone, Preprocessing
from .cache import CacheEntry
from .config import Config
from .errors import DecodeError, InvalidOptionError
from .images import load_rgb, thumbnail_jpeg

log = logging.getLogger(__name__)

TOP_K = 5


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


class _DecodeDataset(Dataset):
    """Decodes, preprocesses and thumbnails one image per item; a failure becomes a reason, not an error."""

    def __init__(self, root: Path, items: list[tuple[str, str]], prep: Preprocessing) -> None:
        self.root = root
        self.items = items
        self.prep = prep

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, torch.Tensor | None, bytes, str | None]:
        key, rel = self.items[i]
        try:
            im = load_rgb(self.root / rel, draft_size=self.prep.resize)
            return key, preprocess(im, self.prep), thumbnail_jpeg(im), None
        except DecodeError as exc:
            return key, None, b"", str(exc)


MAX_ASPECT = 4.0


def preprocess(im: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """The backbone's input tensor (3 x crop x crop) for one RGB PIL image.

    The center crop only ever keeps a square from the middle, so an extreme panorama (10000 x 10) is first
    cut to ``MAX_ASPECT`` times its short side: the same pixels reach the model without resizing the short side
    to ``prep.resize`` and the long side to hundreds of thousands of pixels.
    """
    w, h = im.size
    short = min(w, h)
    if max(w, h) > MAX_ASPECT * short:
        side = int(MAX_ASPECT * short)
        im = TF.center_crop(im, [min(h, side), min(w, side)])
    im = TF.resize(im, [prep.resize], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    im = TF.center_crop(im, [prep.crop])
    x = TF.to_dtype(TF.pil_to_tensor(im), torch.float32, scale=True)
    return TF.normalize(x, list(prep.mean), list(prep.std))


def _collate(batch: list[tuple[str, torch.Tensor | None, bytes, str | None]]):  # noqa: ANN202
    ok = [b for b in batch if b[1] is not None]
    failed = [(b[0], b[3]) for b in batch if b[1] is None]
    tensor = torch.stack([b[1] for b in ok]) if ok else None
    return [b[0] for b in ok], tensor, [b[2] for b in ok], failed


def run_model(
    model: LoadedBackbone,
    root: Path,
    todo: dict[str, str],
    config: Config,
    device: str,
    on_entry: Callable[[str, CacheEntry], None] | None = None,
    precision: str = "fp32",
) -> tuple[dict[str, CacheEntry], dict[str, str]]:
    """Embed ``todo`` (content hash -> path); returns entries by hash and failure reasons by hash.

    ``precision`` (``fp32`` or ``bf16``, see :func:`pick_precision`) is the forward pass's arithmetic.

    ``on_entry`` is called for each entry as soon as its batch is done (the cache stores it then, so a run
    killed half-way keeps what it embedded).
    """
    items = sorted(todo.items(), key=lambda kv: kv[1])
    batch_size = config.resolved_batch_size(device)
    workers = 0 if len(items) <= batch_size else config.resolved_workers
    loader = DataLoader(
        _DecodeDataset(root, items, model.spec.preprocessing),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device == "cuda",
        persistent_workers=False,
    )
    # channels-last doubles CPU throughput for these CNNs (docs/benchmarks.md) and is what GPUs want too.
    trunk = _fused(model.trunk).to(device, memory_format=torch.channels_last)
    head64 = (model.head.weight.detach().double().cpu(), model.head.bias.detach().double().cpu())
    entries: dict[str, CacheEntry] = {}
    failed: dict[str, str] = {}
    bar = tqdm(total=len(items), desc="Embedding", unit="img", disable=not config.progress)
    with torch.inference_mode():
        for keys, batch, thumbs, bad in loader:
            failed.update(bad)
            if batch is not None:
                feats, probs = _forward(trunk, head64, batch, device, precision)
                top_p, top_i = probs.topk(TOP_K, dim=1)
                for j, key in enumerate(keys):
                    entries[key] = CacheEntry(feats[j], top_i[j].numpy().astype(np.int32), top_p[j].numpy(), thumbs[j])
                    if on_entry is not None:
                        on_entry(key, entries[key])
            bar.update(len(keys) + len(bad))
    bar.close()
    return entries, failed


def _fused(trunk: torch.nn.Module) -> torch.nn.Module:
    """The trunk with batch-norm folded into its convolutions (torch.fx), or unchanged if it cannot be traced."""
    import torch.fx.experimental.optimization as fx_optimization

    try:
        return fx_optimization.fuse(trunk.eval())
    except Exception as exc:  # noqa: BLE001 - tracing fails on some models; the plain one is still correct
        log.debug("conv/batch-norm fusion skipped: %s", exc)
        return trunk


def _forward(trunk, head64: tuple[torch.Tensor, torch.Tensor], batch: torch.Tensor, device: str, precision: str):  # noqa: ANN001, ANN202
    """Features (float32 numpy) and class probabilities (float32 CPU tensor) for one batch.

    The classifier head runs on the CPU in float64 from the float32 features: a float32 matrix product
    rounds differently with the batch's size, and the probabilities must not depend on ``--batch-size``.
    """
    if device == "cuda":
        batch = batch.to(device, non_blocking=True, memory_format=torch.channels_last)
    else:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
        feats = trunk(batch)
    feats = feats.float().cpu()
    weight, bias = head64
    logits = torch.nn.functional.linear(feats.double(), weight, bias)
    probs = torch.softmax(logits, dim=1).float()
    return feats.numpy().astype(np.float32), probs
