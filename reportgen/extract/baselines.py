"""Baselines beside the CNN: raw pixels and histograms of oriented gradients (HOG).

ImageNet features are not always the right lens: on scans, line drawings, sprites and tiny icons the pixels
themselves, or their gradients, can group the classes better. Both are ordinary feature specs (in ``--features``,
stacks, ``reportgen compare`` and the ensemble) and go through the same runner, cache and reduction (signed
square root, L2, PCA) as a network's features.

* ``pixels`` is ``pixels:16``: the image resized (shorter side) and centre-cropped to 16 x 16, in grayscale
  (ITU-R 601 luma), values 0..1, flattened. ``pixels:SIZE`` and ``pixels:SIZE-rgb`` choose the side
  (``SIZES``) and keep the three colours.
* ``hog`` is ``hog:64``: scikit-image's HOG of the 64 x 64 grayscale crop, 9 orientations, 8 x 8-pixel cells,
  2 x 2-cell blocks normalised by L2-Hys (1,764 values). ``hog:SIZE`` chooses the side (a multiple of 8, at least
  16).

Palette, 16-bit and transparent images are converted to RGB when decoded (:mod:`reportgen.images`), and images
smaller than the side are scaled up by the same resize, so every image gives a vector of the same length. Neither
has weights or ImageNet predictions: clusters are named after their classes, or by number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import BackboneError
from . import classifiers  # noqa: F401 - the networks register first, so they head every list of specs
from .base import Preprocessing, Resolution, Weights, register_backbone, register_family, simple_resolution

if TYPE_CHECKING:
    from torch import nn

PIXELS = "pixels"
HOG = "hog"
PIXEL_SIZES = (8, 12, 16, 24, 32, 48, 64)
HOG_SIZES = (16, 32, 48, 64, 96, 128)
DEFAULT_PIXELS = 16
DEFAULT_HOG = 64
HOG_ORIENTATIONS = 9
HOG_CELL = 8
HOG_BLOCK = 2
LUMA = (0.299, 0.587, 0.114)
RAW = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # no normalisation: values stay 0..1


def _prep(size: int) -> Preprocessing:
    return Preprocessing(resize=size, crop=size, mean=RAW[0], std=RAW[1])


def hog_dim(size: int) -> int:
    """The length of the HOG vector of a ``size`` x ``size`` image."""
    blocks = size // HOG_CELL - HOG_BLOCK + 1
    return blocks * blocks * HOG_BLOCK * HOG_BLOCK * HOG_ORIENTATIONS


def _pixels_module(rgb: bool) -> nn.Module:
    import torch
    from torch import nn

    class Pixels(nn.Module):
        """A batch N x 3 x s x s (0..1) flattened, in grayscale unless ``rgb``."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not rgb:
                weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
                x = (x * weights).sum(dim=1, keepdim=True)
            return x.reshape(len(x), -1)

    return Pixels()


def _hog_module() -> nn.Module:
    import numpy as np
    import torch
    from skimage.feature import hog
    from torch import nn

    class Hog(nn.Module):
        """scikit-image's HOG of each image of a batch N x 3 x s x s (0..1), in grayscale."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            gray = np.tensordot(np.asarray(LUMA), x.detach().float().cpu().numpy(), axes=([0], [1]))
            rows = [
                hog(g, orientations=HOG_ORIENTATIONS, pixels_per_cell=(HOG_CELL, HOG_CELL),
                    cells_per_block=(HOG_BLOCK, HOG_BLOCK), block_norm="L2-Hys", feature_vector=True)
                for g in gray
            ]  # fmt: skip
            return torch.from_numpy(np.stack(rows).astype(np.float32)).to(x.device)

    return Hog()


def _pixels(name: str) -> tuple[int, bool]:
    """``"16"`` or ``"16-rgb"`` -> (16, rgb)."""
    size, _, colour = name.partition("-")
    if not size.isdigit() or int(size) not in PIXEL_SIZES or colour not in ("", "rgb"):
        raise BackboneError(
            f"unknown pixels spec 'pixels:{name}'; use pixels:SIZE or pixels:SIZE-rgb with SIZE one of "
            + ", ".join(map(str, PIXEL_SIZES))
        )
    return int(size), colour == "rgb"


def resolve_pixels(name: str, weights_file: Weights, offline: bool) -> Resolution:
    size, rgb = _pixels(name)
    spec = f"{PIXELS}:{name}"
    dim = size * size * (3 if rgb else 1)
    return simple_resolution(spec, dim, _prep(size), lambda: _pixels_module(rgb), "pixels-v1")(weights_file, offline)


def resolve_hog(name: str, weights_file: Weights, offline: bool) -> Resolution:
    if not name.isdigit() or int(name) not in HOG_SIZES:
        sizes = ", ".join(map(str, HOG_SIZES))
        raise BackboneError(f"unknown HOG spec 'hog:{name}'; use hog:SIZE with SIZE one of {sizes}")
    size = int(name)
    return simple_resolution(f"{HOG}:{name}", hog_dim(size), _prep(size), _hog_module, "hog-v1")(weights_file, offline)


def _pixel_names() -> Sequence[str]:
    return [f"{size}{colour}" for size in PIXEL_SIZES for colour in ("", "-rgb")]


register_family(PIXELS, resolve_pixels, _pixel_names)
register_family(HOG, resolve_hog, lambda: [str(size) for size in HOG_SIZES])
register_backbone(PIXELS, lambda weights, offline: resolve_pixels(str(DEFAULT_PIXELS), weights, offline))
register_backbone(HOG, lambda weights, offline: resolve_hog(str(DEFAULT_HOG), weights, offline))
