"""Tiny generated image folders shared by the tests, a per-test embedding cache, isolated weight caches and a
refused network."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
# The report's section ids (README "Report sections"), for labeled and for unlabeled folders.
LABELED_SECTIONS = [
    "summary",
    "choose-k",
    "clusters",
    "map",
    "count-matrix",
    "histograms",
    "oddballs",
    "shared",
    "within-class",
    "skipped",
    "run-details",
]
UNLABELED_SECTIONS = ["summary", "choose-k", "clusters", "map", "outliers", "skipped", "run-details"]

# Three visually distinct classes: solid-ish colour fields with different shapes drawn on them.
CLASS_STYLES = {
    "circles": ((200, 40, 40), "ellipse"),
    "stripes": ((40, 160, 60), "stripes"),
    "squares": ((40, 60, 200), "rectangle"),
}


def make_image(style: str, seed: int, size: int = 64) -> Image.Image:
    """A small RGB image of one class's style, varied by ``seed``."""
    colour, shape = CLASS_STYLES[style]
    rng = np.random.default_rng(seed)
    base = np.clip(np.array(colour) + rng.integers(-25, 25, 3), 0, 255)
    im = Image.new("RGB", (size, size), tuple(int(v) for v in base))
    draw = ImageDraw.Draw(im)
    o = int(rng.integers(4, 14))
    if shape == "ellipse":
        draw.ellipse((o, o, size - o, size - o), fill=(250, 250, 250))
    elif shape == "rectangle":
        draw.rectangle((o, o, size - o, size - o), fill=(20, 20, 20))
    else:
        for x in range(0, size, 8):
            draw.rectangle((x, 0, x + 3, size), fill=(255, 255, 0))
    return im


def write_labeled(root: Path, per_class: int = 6) -> Path:
    """``root/<class>/img_<i>.(png|jpg)`` for each class style."""
    for style in CLASS_STYLES:
        folder = root / style
        folder.mkdir(parents=True)
        for i in range(per_class):
            ext = "png" if i % 2 else "jpg"
            make_image(style, seed=i).save(folder / f"img_{i}.{ext}")
    return root


@pytest.fixture(scope="session")
def labeled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention labeled folder: 3 classes x 6 images."""
    return write_labeled(tmp_path_factory.mktemp("labeled"))


@pytest.fixture(scope="session")
def unlabeled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of 12 images from the three styles."""
    root = tmp_path_factory.mktemp("unlabeled")
    for i in range(12):
        make_image(list(CLASS_STYLES)[i % 3], seed=100 + i).save(root / f"photo_{i:02d}.png")
    return root


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees or fills the user's caches (reportgen's default cache, torchvision's and timm's weights)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    hf_home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    import huggingface_hub.constants  # reads HF_HOME once, when first imported

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every attempt to connect fails (and is recorded) as on a firewalled machine."""
    attempts: list[tuple] = []

    def refuse(address, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        attempts.append(address)
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts
