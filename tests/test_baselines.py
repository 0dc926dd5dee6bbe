"""The pixels and HOG baselines: ordinary feature specs that work on any image the decoder reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import InvalidOptionError
from reportgen.extract import extract
from reportgen.extract.base import resolve
from reportgen.extract.baselines import hog_dim


def _embed(folder: Path, spec: str, cache: Path):  # noqa: ANN202
    config = Config(folder, backbone=spec, cache_dir=cache, progress=False)
    return extract(discover(config), config)


@pytest.mark.parametrize(
    ("spec", "resolved", "dim"),
    [("pixels", "pixels:16", 256), ("pixels:32-rgb", "pixels:32-rgb", 3072), ("pixels:8", "pixels:8", 64),
     ("hog", "hog:64", 1764), ("hog:32", "hog:32", 324)],
)  # fmt: skip
def test_specs_resolve_without_a_model(spec: str, resolved: str, dim: int) -> None:
    r = resolve(spec, None, True)
    assert r.spec == resolved and r.dim == dim and r.categories is None  # no classifier head
    assert hog_dim(64) == 7 * 7 * 4 * 9


@pytest.mark.parametrize("spec", ["pixels:7", "pixels:16-cmyk", "hog:30", "hog:big"])
def test_unknown_sizes_are_one_line(spec: str) -> None:
    with pytest.raises(InvalidOptionError, match=f"--features: unknown .*'{spec}'") as err:
        Config("/unused", backbone=spec)
    assert "\n" not in str(err.value)


def test_pixels_are_the_image_values(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 100, 50)).save(folder / "a" / "flat.png")
    Image.new("RGB", (30, 40), (0, 0, 0)).save(folder / "a" / "black.png")
    grey = _embed(folder, "pixels", tmp_path / "c")
    rgb = _embed(folder, "pixels:8-rgb", tmp_path / "c")
    row = grey.images.paths.index("a/flat.png")
    luma = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255
    np.testing.assert_allclose(np.asarray(grey.features[row], dtype=np.float32), luma, atol=4e-3)
    colour = np.asarray(rgb.features[row], dtype=np.float32).reshape(3, 8, 8)
    np.testing.assert_allclose(colour.mean(axis=(1, 2)), np.array([200, 100, 50]) / 255, atol=4e-3)
    assert not np.asarray(grey.features[grey.images.paths.index("a/black.png")], dtype=np.float32).any()
    assert grey.blocks[0].spec == "pixels:16" and not grey.has_predictions


def test_hog_sees_edge_directions(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::8] = 255
    Image.fromarray(stripes).save(folder / "a" / "vertical.png")
    Image.fromarray(stripes.transpose(1, 0, 2)).save(folder / "a" / "horizontal.png")
    Image.new("RGB", (64, 64), (90, 90, 90)).save(folder / "a" / "flat.png")
    e = _embed(folder, "hog", tmp_path / "c")
    f = {p: np.asarray(e.features[i], dtype=np.float32) for i, p in enumerate(e.images.paths)}
    assert not f["a/flat.png"].any()  # no gradient, no histogram
    v, h = f["a/vertical.png"], f["a/horizontal.png"]
    assert v.any() and h.any() and float(v @ h / (np.linalg.norm(v) * np.linalg.norm(h))) < 0.5


def test_awkward_images_all_give_a_vector(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (5, 300, 3), dtype=np.uint8)).save(folder / "a" / "thin.png")
    Image.fromarray(rng.integers(0, 255, (400, 20, 3), dtype=np.uint8)).save(folder / "a" / "tall.png")
    Image.fromarray(rng.integers(0, 255, (3, 3, 3), dtype=np.uint8)).save(folder / "a" / "tiny.png")
    Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).convert("P").save(folder / "a" / "palette.png")
    Image.fromarray(rng.integers(0, 65535, (60, 40), dtype=np.uint16)).save(folder / "a" / "deep.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 4), dtype=np.uint8), "RGBA").save(folder / "a" / "alpha.png")
    for spec in ("pixels", "pixels:24-rgb", "hog"):
        e = _embed(folder, spec, tmp_path / "c")
        assert len(e.images) == 6 and not e.images.skipped, spec
        assert np.isfinite(np.asarray(e.features, dtype=np.float32)).all()
        assert e.features.shape == (6, resolve(spec, None, True).dim)


def test_a_baseline_stacks_with_the_network(labeled_dir: Path, tmp_path: Path) -> None:
    e = _embed(labeled_dir, "efficientnet-lite0+pixels*0.5", tmp_path / "c")
    assert [(b.spec, b.dim, b.weight) for b in e.blocks] == [("efficientnet-lite0", 1280, 1.0), ("pixels:16", 256, 0.5)]


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (60, 40), split: str = "") -> bytes:
    """A flat image, or with ``split`` "left"/"top" the named half black."""
    import io

    im = Image.new("RGB", size, colour)
    w, h = size
    if split:
        im.paste((0, 0, 0), (0, 0, w // 2, h) if split == "left" else (0, 0, w, h // 2))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_the_pixel_check_warns_only_when_pixels_clearly_win() -> None:
    from reportgen.analyze.baseline import MARGIN, baseline_check, pixel_vectors

    luma = pixel_vectors((_jpeg((200, 100, 50)),))
    np.testing.assert_allclose(luma, (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, atol=0.02)
    rng = np.random.default_rng(0)
    shades = [int(v) for v in rng.integers(180, 255, 40)]  # left-dark and top-dark images, sizes and shades vary
    thumbs = tuple(
        _jpeg((s, s, s), (int(rng.integers(50, 90)), int(rng.integers(50, 90))), "left" if i < 20 else "top")
        for i, s in enumerate(shades)
    )
    y = np.array(["left"] * 20 + ["top"] * 20, dtype=object)
    config = Config("/unused", pca_dims=10)
    bad = baseline_check(thumbs, rng.integers(0, 2, 40), 2, y, 0.05, config)  # the features saw nothing
    assert bad.score == "nmi" and bad.pixels == pytest.approx(1.0) and bad.wins and bad.margin == MARGIN
    good = baseline_check(thumbs, np.repeat([0, 1], 20), 2, y, 1.0, config)  # the features saw it all
    assert not good.wins
    unlabeled = baseline_check(thumbs, np.repeat([0, 1], 20), 2, None, 0.3, config)
    assert unlabeled.score == "silhouette" and not unlabeled.wins and unlabeled.pixels > 0.5
    assert baseline_check(thumbs, np.zeros(40, dtype=int), 1, y, 0.0, config) is None


def test_the_findings_say_when_pixels_win(tmp_path: Path) -> None:
    from dataclasses import replace

    from reportgen.analyze.baseline import BaselineCheck
    from reportgen.report.findings import _baseline
    from reportgen.run import Dataset

    dataset = Dataset("t", "scans", True, ("a", "b"), 40, 0, (), ())
    check = BaselineCheck(10, True, "nmi", 0.22, 0.81, 0.05, True)
    analysis = type("A", (), {"baseline_check": check})()
    (text,) = _baseline(dataset, analysis)
    assert "NMI 0.81, against 0.22" in text and '"reportgen compare scans" puts them beside' in text
    analysis.baseline_check = replace(check, wins=False)
    assert _baseline(dataset, analysis) == []
