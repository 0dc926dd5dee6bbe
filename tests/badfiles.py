"""Every kind of broken or odd file a scheduled rerun meets, with what reportgen must do with each."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen.images import MAX_PIXELS

# relative path -> reason substring when the file must be skipped, or None when it must be used.
EXPECTED: dict[str, str | None] = {
    "oddities/zero-byte.jpg": "empty file (0 bytes)",
    "oddities/truncated.jpg": "cannot decode",
    "oddities/random-bytes.jpg": "not an image Pillow can identify",
    "oddities/text.png": "not an image Pillow can identify",
    "oddities/png-named.jpg": None,
    "oddities/bomb.png": "decompression bomb",
    "oddities/animated.gif": None,
    "oddities/multipage.tiff": None,
    "oddities/cmyk.jpg": None,
    "oddities/16-bit.png": None,
    "oddities/palette-transparent.png": None,
    "oddities/gray.png": None,
    "oddities/one-pixel.png": None,
    "oddities/panorama-10000x10.png": None,
    "oddities/exif-rotated.jpg": None,
    "oddities/broken-link.jpg": "broken symbolic link",
    "oddities/loop": "loops back",
    "oddities/with space & 'quote\" <b>.jpg": None,
    "oddities/ünïcödé-名前.jpg": None,
    "oddities/duplicate-a.jpg": None,
    "oddities/duplicate-b.jpg": None,
}


def _photo(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size[0])[None, :, None] * rng.uniform(0.2, 1.0, 3)
    noise = rng.normal(0, 20, (size[1], size[0], 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def write_bad_files(root: Path) -> dict[str, str | None]:
    """Write every file of ``EXPECTED`` under ``root``; returns ``EXPECTED``."""
    d = root / "oddities"
    d.mkdir(parents=True)
    (d / "zero-byte.jpg").write_bytes(b"")
    buf = io.BytesIO()
    _photo(1, (200, 150)).save(buf, format="JPEG")
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (d / "random-bytes.jpg").write_bytes(np.random.default_rng(2).bytes(4000))
    (d / "text.png").write_text("this is not a picture\n")
    _photo(3).save(d / "png-named.jpg", format="PNG")
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("1", (side, side)).save(d / "bomb.png")
    frames = [_photo(4 + i) for i in range(3)]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    pages = [_photo(7 + i) for i in range(3)]
    pages[0].save(d / "multipage.tiff", save_all=True, append_images=pages[1:])
    _photo(10).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.linspace(0, 65535, 96 * 72).reshape(72, 96)).astype(np.uint16)).save(d / "16-bit.png")
    pal = _photo(11).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(d / "palette-transparent.png", transparency=0)
    _photo(12).convert("L").save(d / "gray.png")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(d / "one-pixel.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 10000, dtype=np.uint8), (10, 1))).save(d / "panorama-10000x10.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    _photo(13).save(d / "exif-rotated.jpg", exif=exif.tobytes())
    os.symlink(d / "does-not-exist.jpg", d / "broken-link.jpg")
    os.symlink(d, d / "loop")
    _photo(14).save(d / "with space & 'quote\" <b>.jpg")
    _photo(15).save(d / "ünïcödé-名前.jpg")
    _photo(16).save(d / "duplicate-a.jpg")
    (d / "duplicate-b.jpg").write_bytes((d / "duplicate-a.jpg").read_bytes())
    return EXPECTED
