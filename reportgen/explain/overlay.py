"""A map drawn over its image's thumbnail: the heat on the square the network saw, the rest of the picture dimmed.

The model sees the centre square of the image (its preprocessing's crop over its resize, 224 / 256 = 87.5% of the
shorter side for the bundled backbone); a map covers that square. The overlay is the thumbnail with the map
upsampled over that square in the ``jet`` colour map (blue: no influence, red: the most) at 45% opacity, and
the border the network did not see darkened, so the tile looks the same as the photo in every other way.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..cache import load_memo, save_memo
from . import Explanations

OPACITY = 0.45
UNSEEN = 0.35  # brightness kept outside the square the network saw
QUALITY = 72


COLOUR_MAP = "jet"


@lru_cache(maxsize=4)
def _colours(cache_root: Path | None = None) -> np.ndarray:
    """The colour map as 256 RGB rows (0..255): matplotlib's, kept in the cache folder so that a cached rerun does
    not import matplotlib."""
    key = f"{COLOUR_MAP}-256"
    memo = load_memo(cache_root, "colours", key) if cache_root is not None else None
    if memo is not None and np.shape(memo.get("rgb")) == (256, 3):
        return np.asarray(memo["rgb"], dtype=np.float32)
    from matplotlib import colormaps

    rgb = (colormaps[COLOUR_MAP](np.linspace(0, 1, 256))[:, :3] * 255).round(3)
    if cache_root is not None:
        save_memo(cache_root, "colours", key, {"rgb": rgb.tolist()})
    return rgb.astype(np.float32)


def overlay_jpeg(
    thumbnail: bytes, heat: np.ndarray, crop_fraction: float, px: int, cache_root: Path | None = None
) -> bytes:
    """The thumbnail, at most ``px`` on its longer side, with ``heat`` (0..1) over its centre square."""
    with Image.open(io.BytesIO(thumbnail)) as im:
        im = im.convert("RGB")
        im.thumbnail((px, px), Image.Resampling.LANCZOS)
    pixels = np.asarray(im, dtype=np.float32)
    h, w = pixels.shape[:2]
    side = max(1, min(round(min(w, h) * crop_fraction), w, h))
    top, left = (h - side) // 2, (w - side) // 2
    up = Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F").resize((side, side), Image.Resampling.BILINEAR)
    index = np.clip(np.asarray(up) * 255, 0, 255).astype(np.uint8)
    out = pixels * UNSEEN
    seen = pixels[top : top + side, left : left + side]
    out[top : top + side, left : left + side] = seen * (1 - OPACITY) + _colours(cache_root)[index] * OPACITY
    buf = io.BytesIO()
    Image.fromarray(out.round().astype(np.uint8)).save(buf, format="JPEG", quality=QUALITY)
    return buf.getvalue()


class Overlays:
    """The report's overlays as JPEG data URIs, each made once per size."""

    def __init__(
        self, thumbnails: tuple[bytes, ...], explanations: Explanations, cache_root: Path | None = None
    ) -> None:
        self.thumbnails = thumbnails
        self.explanations = explanations
        self.cache_root = cache_root  # where the colour map is kept
        self.made: dict[tuple[int, str, int], str] = {}
        self.sizes: dict[int, float] = {}

    @property
    def count(self) -> int:
        return self.explanations.n_maps

    def uri(self, i: int, kind: str, px: int) -> str:
        """Image ``i``'s map of ``kind`` over its thumbnail at ``px``."""
        if (i, kind, px) not in self.made:
            view = self.explanations.maps[i][kind]
            data = overlay_jpeg(self.thumbnails[i], view.heat, self.explanations.crop_fraction, px, self.cache_root)
            self.made[(i, kind, px)] = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        return self.made[(i, kind, px)]

    def estimate(self, px: int) -> float:
        """Mean size in bytes of one overlay's data URI at ``px``, from up to 12 of them."""
        if px not in self.sizes:
            pairs = [(i, kind) for i, views in self.explanations.maps.items() for kind in views]
            if not pairs:
                return 0.0
            sample = [pairs[int(j)] for j in np.linspace(0, len(pairs) - 1, min(len(pairs), 12)).astype(int)]
            self.sizes[px] = float(np.mean([len(self.uri(i, kind, px)) for i, kind in sample])) + 40
        return self.sizes[px]
