"""The extractor registry from outside the package: a headless toy backbone, unknown specs, seeded caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import BackboneError
from reportgen.extract import (
    Preprocessing,
    backbone_names,
    base,
    classifiers,
    extract,
    register_backbone,
    resolve,
    seed_cache_entries,
    simple_resolution,
)

TOY = "toy-headless"
TOY_PREP = Preprocessing(40, 32, (0.5,) * 3, (0.25,) * 3)


def _toy_network() -> nn.Module:
    torch.manual_seed(0)  # the same weights every time, as its fixed weights_id promises
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test end with it."""
    monkeypatch.setattr(base, "_FACTORIES", dict(base._FACTORIES))


def _cfg(data: Path, cache: Path, backbone: str) -> Config:
    return Config(data, backbone=backbone, cache_dir=cache, progress=False, workers=0, batch_size=4)


def test_a_headless_backbone_registered_from_outside_runs_and_is_cached(
    labeled_dir: Path, cache_dir: Path, registry: None
) -> None:
    register_backbone(TOY, simple_resolution(TOY, dim=8, preprocessing=TOY_PREP, build=_toy_network))
    assert TOY in backbone_names() and "auto" not in backbone_names()
    cfg = _cfg(labeled_dir, cache_dir, TOY)

    first = extract(discover(cfg), cfg)
    assert first.features.shape == (18, 8) and first.features.dtype == np.float16
    assert np.isfinite(first.features).all()
    assert first.top5_index.shape == first.top5_prob.shape == (18, 0)
    assert first.has_predictions is False and first.categories == ()
    assert first.notes == (f"backbone '{TOY}' has no classifier head: the report has no ImageNet predictions",)
    assert (first.n_computed, first.n_cached, first.backbone) == (18, 0, TOY)
    assert first.preprocessing == TOY_PREP.key

    def fail() -> nn.Module:
        raise AssertionError("model loaded although everything was cached")

    register_backbone(TOY, simple_resolution(TOY, dim=8, preprocessing=TOY_PREP, build=fail))
    second = extract(discover(cfg), cfg)
    assert (second.n_computed, second.n_cached) == (0, 18)
    np.testing.assert_array_equal(first.features, second.features)
    assert second.top5_index.shape == (18, 0) and second.has_predictions is False
    assert second.device.startswith("none")


def test_unknown_spec_names_the_registered_ones_and_the_families(registry: None) -> None:
    known = (
        "auto, efficientnet-lite0, resnet18, resnet50, resnet101, resnet152, vgg16, densenet121, efficientnet_b0, "
        "pixels, hog"
    )
    families = "pixels:NAME, hog:NAME, tv:NAME, timm:NAME"
    with pytest.raises(BackboneError, match=rf"^unknown backbone 'lenet5'; choose one of: {known}, {families}$"):
        resolve("lenet5", None, offline=True)
    register_backbone(TOY, simple_resolution(TOY, dim=8, preprocessing=TOY_PREP, build=_toy_network))
    with pytest.raises(BackboneError, match=rf"^unknown backbone 'lenet5'; choose one of: {known}, {TOY}, pixels:NAME"):
        resolve("lenet5", None, offline=True)
    # a model one of the families has is named with its prefix
    with pytest.raises(BackboneError, match=r"^unknown backbone 'alexnet'; did you mean tv:alexnet\? choose one of"):
        resolve("alexnet", None, offline=True)


def test_a_built_backbone_refuses_a_weights_file(tmp_path: Path, registry: None) -> None:
    register_backbone(TOY, simple_resolution(TOY, dim=8, preprocessing=TOY_PREP, build=_toy_network))
    with pytest.raises(BackboneError, match=rf"backbone '{TOY}' makes its own weights; it takes no --weights"):
        resolve(TOY, tmp_path / "w.pth", offline=True)


def test_seeded_entries_are_found_and_nothing_is_computed(
    labeled_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(labeled_dir, cache_dir, "efficientnet-lite0")
    images = discover(cfg)
    rng = np.random.default_rng(0)
    n = len(images)
    features = rng.normal(size=(n, 1280)).astype(np.float32)
    top5_index = np.stack([rng.choice(1000, 5, replace=False) for _ in range(n)]).astype(np.int32)
    top5_prob = np.sort(rng.dirichlet(np.ones(8), n)[:, :5], axis=1)[:, ::-1].astype(np.float32)
    seed_cache_entries(labeled_dir, cache_dir, "efficientnet-lite0", images.paths, features, top5_index, top5_prob)

    monkeypatch.setattr(classifiers, "load", lambda *a: pytest.fail("model loaded although everything was seeded"))
    emb = extract(images, Config(labeled_dir, backbone="efficientnet-lite0", cache_dir=cache_dir, progress=False))
    assert (emb.n_computed, emb.n_cached) == (0, n)
    np.testing.assert_array_equal(emb.features, features.astype(np.float16))  # the cache keeps float16
    np.testing.assert_array_equal(emb.top5_index, top5_index)
    np.testing.assert_array_equal(emb.top5_prob, top5_prob)
    assert emb.categories == tuple(classifiers.imagenet_categories()) and emb.has_predictions
    assert all(t.startswith(b"\xff\xd8") for t in emb.thumbnails)


def test_seeded_headless_entries_are_found(labeled_dir: Path, cache_dir: Path, registry: None) -> None:
    def fail() -> nn.Module:
        raise AssertionError("model loaded although everything was seeded")

    register_backbone(TOY, simple_resolution(TOY, dim=8, preprocessing=TOY_PREP, build=fail))
    images = discover(_cfg(labeled_dir, cache_dir, TOY))
    n = len(images)
    features = np.arange(n * 8, dtype=np.float32).reshape(n, 8)
    empty_i, empty_p = np.zeros((n, 0), np.int32), np.zeros((n, 0), np.float32)
    seed_cache_entries(labeled_dir, cache_dir, TOY, images.paths, features, empty_i, empty_p)
    emb = extract(images, Config(labeled_dir, backbone=TOY, cache_dir=cache_dir, progress=False))
    assert (emb.n_computed, emb.n_cached) == (0, n)
    np.testing.assert_array_equal(emb.features, features.astype(np.float16))  # the cache keeps float16
    assert emb.top5_prob.shape == (n, 0) and not emb.has_predictions
