"""Decoding one image file into clean RGB: the rules every stage that opens an image shares."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from .errors import DecodeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Pillow warns at ~89 Mpx and refuses at twice that; a photo collection never needs more than this.
MAX_PIXELS = 100_000_000
THUMBNAIL_SIZE = 256
THUMBNAIL_QUALITY = 85


def load_rgb(path: Path | BinaryIO, draft_size: int | None = None) -> Image.Image:
    """Decode ``path`` as an 8-bit RGB image, or raise :class:`DecodeError` with the reason.

    Parameters
    ----------
    path : the image file, or its bytes as a file object.
    draft_size : let the JPEG decoder shrink by a power of two while keeping both sides at least this.

    Returns
    -------
    An RGB image: EXIF orientation applied, transparency composited on white, the first frame of an
    animation or a multi-page file, 16-bit and float images scaled to 8 bits.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise DecodeError(
                        f"image is {width}x{height} = {width * height:,} pixels, over the "
                        f"{MAX_PIXELS:,}-pixel limit (decompression bomb guard)"
                    )
                if width < 1 or height < 1:
                    raise DecodeError(f"image has no pixels ({width}x{height})")
                if draft_size and im.format == "JPEG":
                    im.draft("RGB", (draft_size, draft_size))
                im.seek(0)
                im.load()
                return _to_rgb(ImageOps.exif_transpose(im))
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb guard: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise DecodeError(f"decompression bomb guard: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise DecodeError("not an image Pillow can identify") from exc
    except PermissionError as exc:
        raise DecodeError("permission denied") from exc
    except FileNotFoundError as exc:
        raise DecodeError("file not found (broken link or removed during the run)") from exc
    except OSError as exc:
        raise DecodeError(f"cannot decode: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure on hostile bytes is a skip, never a crash
        raise DecodeError(f"cannot decode: {type(exc).__name__}: {exc}") from exc


def tensor_decodable_jpeg(data: bytes) -> bool:
    """Whether ``data`` is a JPEG that a tensor decoder (torchvision, nvJPEG) can take as it is: RGB (YCbCr) or
    grayscale, within :data:`MAX_PIXELS`, with pixels, and ending with the end-of-image marker. Anything else
    (CMYK JPEGs, other formats, broken headers, bombs, truncated files, which libjpeg would decode in part
    where Pillow refuses them) goes through :func:`load_rgb`, which decodes it or says why it cannot be used.
    Only the header is parsed.
    """
    return tensor_decodable_size(data) is not None


def tensor_decodable_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as stored of a JPEG :func:`tensor_decodable_jpeg` accepts, else ``None``."""
    if not data.startswith(b"\xff\xd8\xff") or not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                ok = im.format == "JPEG" and im.mode in ("RGB", "L") and 0 < w * h <= MAX_PIXELS
                return (w, h) if ok else None
    except Exception:  # noqa: BLE001 - a header Pillow cannot read: load_rgb will report it
        return None


def thumbnail_size(width: int, height: int, size: int = THUMBNAIL_SIZE) -> tuple[int, int]:
    """(width, height) of the thumbnail of a ``width`` x ``height`` image: the longer side at most ``size``."""
    scale = min(1.0, size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency on white."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 / 65535.0 if arr.max(initial=0) > 255 else 1.0
        im = Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64))
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(arr.astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def thumbnail_jpeg(im: Image.Image, size: int = THUMBNAIL_SIZE, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """A JPEG of ``im`` at :func:`thumbnail_size` (the rule the GPU path uses too).

    Box-reduce then bilinear, no optimising pass: 0.5 ms instead of 1.2 ms a photo (docs/benchmarks.md); the
    report re-encodes these to its own smaller size with LANCZOS.
    """
    target = thumbnail_size(*im.size, size=size)
    thumb = im if target == im.size else im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
