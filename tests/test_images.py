from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen.errors import DecodeError
from reportgen.images import MAX_PIXELS, load_rgb, thumbnail_jpeg


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    im.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "r.jpg").size == (20, 40)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("RGBA", (8, 8), (0, 0, 0, 0)),
        lambda: Image.new("LA", (8, 8), (0, 0)),
    ],
)
def test_transparency_becomes_white(tmp_path: Path, make) -> None:  # noqa: ANN001
    make().save(tmp_path / "t.png")
    out = load_rgb(tmp_path / "t.png")
    assert out.mode == "RGB"
    assert out.getpixel((3, 3)) == (255, 255, 255)


def test_palette_with_transparent_index_becomes_white(tmp_path: Path) -> None:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([10, 20, 30] * 256)
    im.save(tmp_path / "p.png", transparency=0)
    assert load_rgb(tmp_path / "p.png").getpixel((0, 0)) == (255, 255, 255)


def test_cmyk_grayscale_and_16_bit_become_8_bit_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    Image.new("L", (8, 8), 128).save(tmp_path / "g.png")
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "w.png")
    red = load_rgb(tmp_path / "c.jpg").getpixel((4, 4))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert load_rgb(tmp_path / "g.png").getpixel((4, 4)) == (128, 128, 128)
    assert load_rgb(tmp_path / "w.png").getpixel((4, 4)) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    r, g, b = load_rgb(tmp_path / "a.gif").getpixel((4, 4))
    assert r > 200 and b < 60


def test_broken_files_raise_decode_error_with_a_reason(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[:200])
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(DecodeError, match="cannot decode"):
        load_rgb(tmp_path / "trunc.jpg")
    with pytest.raises(DecodeError, match="not an image Pillow can identify"):
        load_rgb(tmp_path / "noise.jpg")


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("1", (side, side)).save(tmp_path / "bomb.png")
    with pytest.raises(DecodeError, match="decompression bomb"):
        load_rgb(tmp_path / "bomb.png")


def test_thumbnail_is_a_small_jpeg(tmp_path: Path) -> None:
    data = thumbnail_jpeg(Image.new("RGB", (1000, 500), (9, 9, 9)), size=100)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        assert im.size == (100, 50)
