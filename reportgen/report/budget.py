"""The size budget: thumbnails are re-encoded from the cached ones at a size chosen so the page fits.

Montage tiles come first (largest size whose estimated total fits half the budget), then the map's hover
thumbnails (largest size that fits what is left, else a seeded subset of images gets one). The class-activation
overlays (:mod:`reportgen.explain.overlay`) go with the tiles, at their size, but only if tiles and overlays
together fit at the largest tile size: when the budget is tight they are dropped before any montage shrinks. If
the rendered page is still over budget, the overlays go first, then everything steps down one size and it
renders again (:func:`step_down`). What was trimmed is said in the report and in summary.json
``report.trimmed``.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from PIL import Image

from ..config import Config
from ..explain.overlay import Overlays
from ..sampling import seeded_sample
from ..schema import no_json

TILE_SIZES = (128, 96, 72, 56, 40)
HOVER_SIZES = (96, 64, 48, 32)
THUMB_QUALITY = 72
MAP_MAX_POINTS = 20_000
FIXED_OVERHEAD_BYTES = 600_000  # figures, CSS, JS and text, before any thumbnail


@dataclass(frozen=True)
class Budget:
    """How big the thumbnails are and which images get a hover thumbnail on the map (summary.json ``report``)."""

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("map_points", "hover_thumbnails")

    max_mb: float
    tile_px: int
    hover_px: int
    tsne_points: int
    trimmed: tuple[str, ...]
    overlays: bool  # the class-activation overlays are in the page
    hover_indices: tuple[int, ...] = no_json()
    map_indices: tuple[int, ...] = no_json()

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1_000_000)

    @property
    def map_points(self) -> int:
        return len(self.map_indices)

    @property
    def hover_thumbnails(self) -> int:
        return len(self.hover_indices)


def plan_budget(
    config: Config, n: int, tiles: int, tsne_points: int, thumbs: Thumbs, overlays: Overlays | None = None
) -> Budget:
    """Thumbnail sizes and hover subset for ``n`` images and ``tiles`` montage tiles (and ``overlays``) that fit
    ``config.max_report_mb`` by estimate (``tsne_points`` is recorded)."""
    max_bytes = int(config.max_report_mb * 1_000_000)
    trimmed: list[str] = []
    map_indices = np.arange(n)
    if n > MAP_MAX_POINTS:
        map_indices = seeded_sample(n, MAP_MAX_POINTS, config.seed)
        trimmed.append(f"the map shows a random sample of {MAP_MAX_POINTS:,} of the {n:,} images")
    room = max(max_bytes - FIXED_OVERHEAD_BYTES - 220 * len(map_indices), 0)

    with_overlays = overlays is not None and overlays.count > 0
    if with_overlays and tiles * thumbs.estimate(TILE_SIZES[0]) + _overlay_bytes(overlays, TILE_SIZES[0]) > room / 2:
        with_overlays = False
        trimmed.append(_overlay_note(config.max_report_mb))

    def extra(px: int) -> float:
        return _overlay_bytes(overlays, px) if with_overlays else 0.0

    tile_px = TILE_SIZES[-1]
    for px in TILE_SIZES:
        if tiles * thumbs.estimate(px) + extra(px) <= room / 2 or px == TILE_SIZES[-1]:
            tile_px = px
            break
    if tile_px != TILE_SIZES[0]:
        trimmed.append(_tile_note(tile_px))
    left = room - tiles * thumbs.estimate(tile_px) - extra(tile_px)

    hover_px = HOVER_SIZES[-1]
    for px in HOVER_SIZES:
        if len(map_indices) * thumbs.estimate(px) <= left:
            hover_px = px
            hover = tuple(int(i) for i in map_indices)
            break
    else:
        fit = max(int(left // thumbs.estimate(hover_px)), 0)
        rng = np.random.default_rng(config.seed + 1)
        hover = tuple(int(i) for i in np.sort(rng.choice(map_indices, min(fit, len(map_indices)), replace=False)))
        trimmed.append(_hover_note(len(hover), len(map_indices)))
    map_shown = tuple(int(i) for i in map_indices)
    return Budget(config.max_report_mb, tile_px, hover_px, tsne_points, tuple(trimmed), with_overlays, hover, map_shown)


def _overlay_bytes(overlays: Overlays | None, px: int) -> float:
    return overlays.count * overlays.estimate(px) if overlays is not None else 0.0


def _overlay_note(max_mb: float) -> str:
    return f"the class-activation overlays are left out to keep the report under {max_mb:g} MB (--max-report-mb)"


def step_down(budget: Budget) -> Budget | None:
    """The next smaller budget plan (without the overlays, if it had them), or ``None`` when nothing is left to
    shrink."""
    if budget.overlays:
        return replace(budget, overlays=False, trimmed=(*budget.trimmed, _overlay_note(budget.max_mb)))
    tile_i, hover_i = TILE_SIZES.index(budget.tile_px), HOVER_SIZES.index(budget.hover_px)
    old_notes = (_tile_note(budget.tile_px), _hover_note(len(budget.hover_indices), len(budget.map_indices)))
    keep = [t for t in budget.trimmed if t not in old_notes]
    if tile_i + 1 < len(TILE_SIZES):
        tile_px = TILE_SIZES[tile_i + 1]
        keep.append(_tile_note(tile_px))
    else:
        tile_px = budget.tile_px
    hover = budget.hover_indices
    if hover_i + 1 < len(HOVER_SIZES):
        hover_px = HOVER_SIZES[hover_i + 1]
    else:
        hover_px = budget.hover_px
        hover = hover[: len(hover) // 2]
    if len(hover) < len(budget.map_indices):
        keep.append(_hover_note(len(hover), len(budget.map_indices)))
    if (tile_px, hover_px, len(hover)) == (budget.tile_px, budget.hover_px, len(budget.hover_indices)):
        return None
    return replace(budget, tile_px=tile_px, hover_px=hover_px, hover_indices=hover, trimmed=tuple(keep))


def _tile_note(px: int) -> str:
    return f"montage thumbnails are {px} px (not {TILE_SIZES[0]} px) to keep the report small"


def _hover_note(shown: int, total: int) -> str:
    return f"map hover thumbnails are shown for {shown:,} of the {total:,} images"


class Thumbs:
    """Report-sized JPEG data URIs re-encoded from the cached thumbnails, each made once per size."""

    def __init__(self, thumbnails: tuple[bytes, ...]) -> None:
        self.thumbnails = thumbnails
        self.made: dict[tuple[int, int], str] = {}
        self.sizes: dict[int, float] = {}

    def uri(self, i: int, px: int) -> str:
        """Image ``i``'s thumbnail at ``px`` as a JPEG data URI."""
        if (i, px) not in self.made:
            with Image.open(io.BytesIO(self.thumbnails[i])) as im:
                im = im.convert("RGB")
                im.thumbnail((px, px), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=THUMB_QUALITY)
            self.made[(i, px)] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        return self.made[(i, px)]

    def estimate(self, px: int) -> float:
        """Mean size in bytes of one data URI at ``px``, from a sample of up to 24 images."""
        if px not in self.sizes:
            n = len(self.thumbnails)
            sample = np.linspace(0, n - 1, min(n, 24)).astype(int)
            self.sizes[px] = float(np.mean([len(self.uri(int(i), px)) for i in sample])) + 80
        return self.sizes[px]
