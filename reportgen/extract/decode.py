"""Image files to model input: decoding in DataLoader workers, preprocessing, and batched tensor JPEG decoding.

Imported only when some image needs computing, so a fully cached rerun never imports torch.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..cache import content_hash
from ..errors import DecodeError
from ..fsutil import on_disk
from ..images import THUMBNAIL_QUALITY, load_rgb, tensor_decodable_jpeg, tensor_decodable_size, thumbnail_size
from .base import Preprocessing

log = logging.getLogger(__name__)

MAX_ASPECT = 4.0


def pick_jpeg_decoder(requested: str, device: str) -> str:
    """``pillow`` or ``torchvision`` for ``--jpeg-decoder``; ``auto`` decodes JPEGs on the GPU when the model
    runs there (nvJPEG: the CPU decoder is the bottleneck of a GPU run), else with Pillow."""
    if requested != "auto":
        return requested
    return "torchvision" if device == "cuda" else "pillow"


class Item(NamedTuple):
    """One decoded image (``pixels`` its uint8 crop, ``thumbnail`` made), or a JPEG's raw bytes still to decode
    on the model's device (``raw``), or a failure (``reason``)."""

    key: str
    rel: str
    pixels: torch.Tensor | None = None
    thumbnail: bytes = b""
    raw: torch.Tensor | None = None
    reason: str | None = None


class Batch(NamedTuple):
    """What the DataLoader gives for one batch of :class:`Item`."""

    keys: list[str]
    pixels: torch.Tensor | None  # uint8 N x 3 x crop x crop, decoded on the CPU
    thumbnails: list[bytes]
    raw: list[Item]  # JPEGs for the tensor decoder
    failed: list[tuple[str, str]]


class DecodeDataset(Dataset):
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

    def __getitem__(self, i: int) -> Item:
        key, rel = self.items[i]
        if self.raw_jpegs:
            data = _read(self.root, key, rel)
            if isinstance(data, Item):
                return data
            if tensor_decodable_jpeg(data):
                return Item(key, rel, raw=torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return decode_one(self.root, key, rel, self.prep)


CHANGED = "changed while the run read it (its content no longer matches); rerun to include it"


def read_checked(path: Path, content: str) -> bytes:
    """The file's bytes when they still hash to ``content`` (a file rewritten during the run must not be cached
    under its old content's key; "" checks nothing), else :class:`DecodeError` saying why."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DecodeError("file not found (broken link or removed during the run)") from None
    except OSError as exc:
        raise DecodeError(f"cannot read file: {exc.strerror or exc}") from None
    if content and content_hash(data) != content:
        raise DecodeError(CHANGED)
    return data


def _read(root: Path, key: str, rel: str) -> bytes | Item:
    """Image ``rel``'s bytes (:func:`read_checked`), or the reason it cannot be used."""
    try:
        return read_checked(on_disk(root, rel), key)
    except DecodeError as exc:
        return Item(key, rel, reason=str(exc))


def decode_one(root: Path, key: str, rel: str, prep: Preprocessing) -> Item:
    """The decoded, preprocessed and thumbnailed image, or the reason it cannot be used."""
    data = _read(root, key, rel)
    if isinstance(data, Item):
        return data
    pixels = _small_jpeg(data, prep)
    if pixels is None:
        try:
            pixels = as_tensor(load_rgb(io.BytesIO(data), draft_size=prep.resize))
        except DecodeError as exc:
            return Item(key, rel, reason=str(exc))
    return Item(key, rel, pixels=crop_pixels(pixels, prep), thumbnail=thumbnail_of(pixels))


def _small_jpeg(data: bytes, prep: Preprocessing) -> torch.Tensor | None:
    """A JPEG that Pillow's reduced-size decoding would not shrink (a side under twice ``prep.resize``) decoded by
    torchvision's decoder: the same libjpeg pixels (identical on sample_data) in 60% of Pillow's time. ``None``
    for anything else, or when it refuses the file: Pillow decodes those, with ``draft`` for large JPEGs."""
    size = tensor_decodable_size(data)
    if size is None or min(size) >= 2 * prep.resize:
        return None
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see decode_jpegs
            raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            return decode_jpeg(raw, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except RuntimeError:
        return None


def as_tensor(im: Image.Image) -> torch.Tensor:
    """An RGB image's pixels as a uint8 3 x H x W tensor (channels-last in memory, as torch's resize prefers)."""
    return torch.from_numpy(np.array(im)).permute(2, 0, 1)


def thumbnail_of(pixels: torch.Tensor) -> bytes:
    """The JPEG thumbnail of a uint8 3 x H x W image on the CPU: :func:`~reportgen.images.thumbnail_jpeg`'s size
    and quality, resized and encoded by torch and torchvision (half Pillow's time)."""
    from torchvision.io import encode_jpeg

    w, h = thumbnail_size(pixels.shape[-1], pixels.shape[-2])
    small = TF.resize(pixels, [h, w], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see decode_jpegs
        return encode_jpeg(small.contiguous(), quality=THUMBNAIL_QUALITY).numpy().tobytes()


def preprocess(im: Image.Image | torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """The backbone's float input (3 x crop x crop) for one RGB PIL image or uint8 3 x H x W tensor:
    :func:`crop_pixels`, scaled to [0, 1] and normalised as ``prep`` says."""
    x = TF.to_dtype(crop_pixels(im, prep), torch.float32, scale=True)
    return TF.normalize(x, list(prep.mean), list(prep.std))


def crop_pixels(im: Image.Image | torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """The uint8 crop (3 x crop x crop) the backbone sees, for one RGB PIL image or uint8 3 x H x W tensor: the
    shorter side resized to ``prep.resize`` (antialiased), then the center ``prep.crop`` square.

    The center crop only ever keeps a square from the middle, so an extreme panorama (10000 x 10) is first
    cut to ``MAX_ASPECT`` times its short side: the same pixels reach the model without resizing the short side
    to ``prep.resize`` and the long side to hundreds of thousands of pixels. A tensor is processed on its own
    device; the decoder passes Pillow's pixels as a tensor (:func:`as_tensor`), as torch's antialiased uint8 resize
    takes half Pillow's time for the same pixels (features agree to a cosine of 0.99999 on sample_data).
    """
    h, w = (im.shape[-2], im.shape[-1]) if isinstance(im, torch.Tensor) else (im.size[1], im.size[0])
    short = min(w, h)
    if max(w, h) > MAX_ASPECT * short:
        side = int(MAX_ASPECT * short)
        im = TF.center_crop(im, [min(h, side), min(w, side)])
    im = TF.resize(im, [prep.resize], interpolation=TF.InterpolationMode(prep.interpolation), antialias=True)
    im = TF.center_crop(im, [prep.crop])
    return im if isinstance(im, torch.Tensor) else TF.pil_to_tensor(im)


def collate(items: list[Item]) -> Batch:
    """The DataLoader's ``collate_fn``: stack the decoded images, pass raw JPEGs and failures on."""
    ok = [b for b in items if b.pixels is not None]
    return Batch(
        keys=[b.key for b in ok],
        pixels=torch.stack([b.pixels for b in ok]) if ok else None,
        thumbnails=[b.thumbnail for b in ok],
        raw=[b for b in items if b.raw is not None],
        failed=[(b.key, b.reason) for b in items if b.reason is not None],
    )


class Decoded(NamedTuple):
    """What :func:`decode_jpegs` gives for one batch of raw JPEGs."""

    keys: list[str]
    pixels: torch.Tensor | None  # uint8, on the model's device
    thumbnails: list[bytes]
    failed: list[tuple[str, str]]
    refused: int  # JPEGs the tensor decoder refused, decoded (or skipped) by Pillow instead


def decode_jpegs(items: list[Item], root: Path, prep: Preprocessing, device: str) -> Decoded:
    """Decode raw JPEG items on ``device`` in one batched call, preprocess and thumbnail them there.

    Returns keys, the input batch (on ``device``), JPEG thumbnails and failures. EXIF orientation is applied
    as Pillow's path applies it. When the batched call fails (one bad file fails them all) each image is decoded
    alone, and one the tensor decoder refuses goes through Pillow, which either decodes it or says why not.
    """
    with warnings.catch_warnings():
        # torchvision 0.29 marks its image codecs deprecated in favour of TorchCodec; they are what ships today
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode_jpegs(items, root, prep, device)


def _decode_jpegs(items: list[Item], root: Path, prep: Preprocessing, device: str) -> Decoded:
    """:func:`decode_jpegs` without the warning filter."""
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    def one(item: Item) -> torch.Tensor | None:
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
            fallback = decode_one(root, item.key, item.rel, prep)
            if fallback.pixels is None:
                failed.append((item.key, fallback.reason or "cannot decode"))
                continue
            keys.append(item.key)
            pixels.append(fallback.pixels.to(device))
            thumbs.append(fallback.thumbnail)
            continue
        keys.append(item.key)
        pixels.append(crop_pixels(img, prep))
        w, h = thumbnail_size(img.shape[-1], img.shape[-2])
        small.append(TF.resize(img, [h, w], interpolation=TF.InterpolationMode.BILINEAR, antialias=True))
        thumbs.append(None)
    encoded = iter(encode_jpeg(small, quality=THUMBNAIL_QUALITY) if small else [])
    thumbnails = [t if t is not None else next(encoded).cpu().numpy().tobytes() for t in thumbs]
    return Decoded(keys, torch.stack(pixels) if pixels else None, thumbnails, failed, refused)
