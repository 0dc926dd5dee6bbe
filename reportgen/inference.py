"""Running a backbone over image files: decoding in DataLoader workers, batched inference, top-5 classes.

Imported only when some image needs embedding, so a fully cached rerun never imports torch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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
from .images import THUMBNAIL_QUALITY, load_rgb, tensor_decodable_jpeg, thumbnail_jpeg, thumbnail_size

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


def pick_jpeg_decoder(requested: str, device: str) -> str:
    """``pillow`` or ``torchvision`` for ``--jpeg-decoder``; ``auto`` decodes JPEGs on the GPU when the model
    runs there (nvJPEG: the CPU decoder is the bottleneck of a GPU run), else with Pillow."""
    if requested != "auto":
        return requested
    return "torchvision" if device == "cuda" else "pillow"


class _Item(NamedTuple):
    """One decoded image (``pixels`` preprocessed, ``thumbnail`` made), or a JPEG's raw bytes still to decode
    on the model's device (``raw``), or a failure (``reason``)."""

    key: str
    rel: str
    pixels: torch.Tensor | None = None
    thumbnail: bytes = b""
    raw: torch.Tensor | None = None
    reason: str | None = None


class _Batch(NamedTuple):
    keys: list[str]
    pixels: torch.Tensor | None  # N x 3 x crop x crop, decoded on the CPU
    thumbnails: list[bytes]
    raw: list[_Item]  # JPEGs for the tensor decoder
    failed: list[tuple[str, str]]


class _DecodeDataset(Dataset):
    """Decodes, preprocesses and thumbnails one image per item; a failure becomes a reason, not an error.

    With ``raw_jpegs``, a JPEG that the tensor decoder can take is passed on as its file's bytes instead.
    """

    def __init__(self, root: Path, items: list[tuple[str, str]], prep: Preprocessing, raw_jpegs: bool) -> None:
        self.root = root
        self.items = items
        self.prep = prep
        self.raw_jpegs = raw_jpegs

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> _Item:
        key, rel = self.items[i]
        if self.raw_jpegs:
            try:
                data = (self.root / rel).read_bytes()
            except OSError:
                data = b""  # load_rgb below says why
            if tensor_decodable_jpeg(data):
                return _Item(key, rel, raw=torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return _decode_with_pillow(self.root, key, rel, self.prep)


def _decode_with_pillow(root: Path, key: str, rel: str, prep: Preprocessing) -> _Item:
    try:
        im = load_rgb(root / rel, draft_size=prep.resize)
        return _Item(key, rel, pixels=preprocess(im, prep), thumbnail=thumbnail_jpeg(im))
    except DecodeError as exc:
        return _Item(key, rel, reason=str(exc))


MAX_ASPECT = 4.0


def preprocess(im: Image.Image | torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """The backbone's input tensor (3 x crop x crop) for one RGB PIL image or uint8 3 x H x W tensor.

    The center crop only ever keeps a square from the middle, so an extreme panorama (10000 x 10) is first
    cut to ``MAX_ASPECT`` times its short side: the same pixels reach the model without resizing the short side
    to ``prep.resize`` and the long side to hundreds of thousands of pixels. A tensor is processed on its own
    device with the same operations.
    """
    h, w = (im.shape[-2], im.shape[-1]) if isinstance(im, torch.Tensor) else (im.size[1], im.size[0])
    short = min(w, h)
    if max(w, h) > MAX_ASPECT * short:
        side = int(MAX_ASPECT * short)
        im = TF.center_crop(im, [min(h, side), min(w, side)])
    im = TF.resize(im, [prep.resize], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    im = TF.center_crop(im, [prep.crop])
    x = im if isinstance(im, torch.Tensor) else TF.pil_to_tensor(im)
    x = TF.to_dtype(x, torch.float32, scale=True)
    return TF.normalize(x, list(prep.mean), list(prep.std))


def _collate(items: list[_Item]) -> _Batch:
    ok = [b for b in items if b.pixels is not None]
    return _Batch(
        keys=[b.key for b in ok],
        pixels=torch.stack([b.pixels for b in ok]) if ok else None,
        thumbnails=[b.thumbnail for b in ok],
        raw=[b for b in items if b.raw is not None],
        failed=[(b.key, b.reason) for b in items if b.reason is not None],
    )


class _Decoded(NamedTuple):
    keys: list[str]
    pixels: torch.Tensor | None  # on the model's device
    thumbnails: list[bytes]
    failed: list[tuple[str, str]]
    refused: int  # JPEGs the tensor decoder refused, decoded (or skipped) by Pillow instead


def decode_jpegs(items: list[_Item], root: Path, prep: Preprocessing, device: str) -> _Decoded:
    """Decode raw JPEG items on ``device`` in one batched call, preprocess and thumbnail them there.

    Returns keys, the input batch (on ``device``), JPEG thumbnails and failures. EXIF orientation is applied
    as Pillow's path applies it. When the batched call fails (one bad file fails them all) each image is decoded
    alone, and one the tensor decoder refuses goes through Pillow, which either decodes it or says why not.
    """
    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs deprecated in favour of TorchCodec; they are what ships today
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode_jpegs(items, root, prep, device)


def _decode_jpegs(items: list[_Item], root: Path, prep: Preprocessing, device: str) -> _Decoded:
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    def one(item: _Item) -> torch.Tensor | None:
        try:
            return decode_jpeg(item.raw, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
        except RuntimeError:
            return None

    try:
        images = decode_jpeg([b.raw for b in items], mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True)
    except RuntimeError:
        images = [one(b) for b in items]
    keys: list[str] = []
    pixels: list[torch.Tensor] = []
    small: list[torch.Tensor] = []
    thumbs: list[bytes | None] = []
    failed: list[tuple[str, str]] = []
    refused = 0
    for item, img in zip(items, images, strict=True):
        if img is None:  # refused by the tensor decoder: Pillow decodes it or gives the reason
            log.debug("%s: refused by torchvision's JPEG decoder on %s, decoding with Pillow", item.rel, device)
            refused += 1
            fallback = _decode_with_pillow(root, item.key, item.rel, prep)
            if fallback.pixels is None:
                failed.append((item.key, fallback.reason or "cannot decode"))
                continue
            keys.append(item.key)
            pixels.append(fallback.pixels.to(device))
            thumbs.append(fallback.thumbnail)
            continue
        keys.append(item.key)
        pixels.append(preprocess(img, prep))
        w, h = thumbnail_size(img.shape[-1], img.shape[-2])
        small.append(TF.resize(img, [h, w], interpolation=TF.InterpolationMode.BILINEAR, antialias=True))
        thumbs.append(None)
    encoded = iter(encode_jpeg(small, quality=THUMBNAIL_QUALITY) if small else [])
    thumbnails = [t if t is not None else next(encoded).cpu().numpy().tobytes() for t in thumbs]
    return _Decoded(keys, torch.stack(pixels) if pixels else None, thumbnails, failed, refused)


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

    ``precision`` (``fp32`` or ``bf16``, see :func:`pick_precision`) is the forward pass's arithmetic. With
    ``config.jpeg_decoder`` resolving to ``torchvision`` (:func:`pick_jpeg_decoder`), the workers only read JPEG
    files and the main process decodes each batch of them on ``device``; other formats take the Pillow path.

    ``on_entry`` is called for each entry as soon as its batch is done (the cache stores it then, so a run
    killed half-way keeps what it embedded).
    """
    items = sorted(todo.items(), key=lambda kv: kv[1])
    batch_size = config.resolved_batch_size(device)
    workers = 0 if len(items) <= batch_size else config.resolved_workers
    prep = model.spec.preprocessing
    raw_jpegs = pick_jpeg_decoder(config.jpeg_decoder, device) == "torchvision"
    loader = DataLoader(
        _DecodeDataset(root, items, prep, raw_jpegs),
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
    refused = 0
    bar = tqdm(total=len(items), desc="Embedding", unit="img", disable=not config.progress)
    with torch.inference_mode():
        for part in loader:
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
                feats, probs = _forward(trunk, head64, pixels, device, precision)
                top_p, top_i = probs.topk(TOP_K, dim=1)
                for j, key in enumerate(keys):
                    entries[key] = CacheEntry(feats[j], top_i[j].numpy().astype(np.int32), top_p[j].numpy(), thumbs[j])
                    if on_entry is not None:
                        on_entry(key, entries[key])
            bar.update(len(part.keys) + len(part.raw) + len(part.failed))
    bar.close()
    if refused:
        log.warning(
            "%d JPEG file%s refused by torchvision's decoder on %s went through Pillow in the main process "
            "(slower); --jpeg-decoder pillow decodes every file in the worker processes",
            refused,
            "s" if refused != 1 else "",
            device,
        )
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
