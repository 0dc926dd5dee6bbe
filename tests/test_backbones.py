"""The built-in backbones (reportgen.extract.classifiers) and the real torchvision weights path, up to the network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from reportgen.errors import BackboneError, WeightsUnavailableError
from reportgen.extract import classifiers, resolve

RESNET18_URL = torchvision.models.ResNet18_Weights.DEFAULT.url
RESNET50_URL = torchvision.models.ResNet50_Weights.DEFAULT.url


def _save_random_resnet18(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)


@pytest.mark.parametrize("name", [n for n, s in classifiers.CLASSIFIERS.items() if s.source == "torchvision"])
def test_registry_matches_torchvisions_weights(name: str) -> None:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    spec = classifiers.CLASSIFIERS[name]
    assert spec.weights_url == weights.url
    assert spec.preprocessing.resize == weights.transforms().resize_size[0]
    assert spec.preprocessing.crop == weights.transforms().crop_size[0]
    assert len(weights.meta["categories"]) == 1000


@pytest.mark.parametrize(
    "env",
    [{}, {"TORCH_HOME": "/tmp/th"}, {"XDG_CACHE_HOME": "/tmp/xdg"}, {"TORCH_HOME": "~/th", "XDG_CACHE_HOME": "/x"}],
)
def test_hub_dir_without_torch_matches_torch(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert classifiers.torch_hub_dir() == Path(torch.hub.get_dir())


def test_unknown_backbone_lists_the_choices() -> None:
    with pytest.raises(BackboneError, match=r"unknown backbone 'lenet5'; choose one of: auto, efficientnet-lite0, "):
        resolve("lenet5", None, offline=True)


def test_auto_offline_uses_the_bundled_backbone_without_touching_the_network(no_network: list) -> None:
    res = resolve("auto", None, offline=True)
    assert res.spec == "efficientnet-lite0"
    assert "--offline" in res.note
    assert no_network == []


def test_auto_without_network_falls_back_and_says_why(no_network: list) -> None:
    res = resolve("auto", None, offline=False)
    assert res.spec == "efficientnet-lite0"
    assert "cannot reach download.pytorch.org:443" in res.note
    assert no_network == [("download.pytorch.org", 443)]


def test_auto_uses_resnet50_when_torchvision_has_it_cached(no_network: list) -> None:
    cached = classifiers.cached_weights_path(RESNET50_URL)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"placeholder")
    res = resolve("auto", None, offline=True)
    assert res.spec == "resnet50"
    assert res.note is None
    assert res.weights_id == f"torchvision:{RESNET50_URL}"


def test_torchvision_backbone_loads_from_torchvisions_cache(no_network: list) -> None:
    _save_random_resnet18(classifiers.cached_weights_path(RESNET18_URL))
    model = resolve("resnet18", None, offline=True).load()
    x = torch.zeros(2, 3, 224, 224)
    with torch.inference_mode():
        feats = model.features(x)
        assert feats.shape == (2, 512)
        assert model.predictions(feats).shape == (2, 1000)
    assert no_network == []


def test_torchvision_download_goes_through_torchvisions_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(classifiers, "check_reachable", lambda url, timeout=5.0: None)
    requested: list[tuple[str, str]] = []

    def fake_download(url: str, dst: str, hash_prefix=None, progress=True) -> None:  # noqa: ANN001
        requested.append((url, dst))
        _save_random_resnet18(Path(dst))

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = resolve("resnet18", None, offline=False).load()
    assert requested == [(RESNET18_URL, str(classifiers.cached_weights_path(RESNET18_URL)))]
    assert model.dim == 512


def test_torchvision_backbone_offline_and_uncached_is_a_clear_error(no_network: list) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"--offline was given and resnet50 weights are not cached"):
        resolve("resnet50", None, offline=True).load()
    with pytest.raises(WeightsUnavailableError, match=r"cannot reach download.pytorch.org:443"):
        resolve("resnet50", None, offline=False).load()


def test_weights_file_is_used_and_a_mismatch_is_reported(tmp_path: Path, no_network: list) -> None:
    weights = tmp_path / "mine.pth"
    _save_random_resnet18(weights)
    res = resolve("resnet18", weights, offline=False)
    assert res.weights_id.startswith("file:mine.pth:")
    assert res.load().spec == "resnet18"
    assert resolve("auto", weights, offline=False).spec == "resnet50"
    with pytest.raises(BackboneError, match=r"weights for 'resnet50' do not fit the model"):
        resolve("resnet50", weights, offline=False).load()
    with pytest.raises(WeightsUnavailableError, match=r"weights file '.*missing.pth' does not exist"):
        resolve("resnet18", tmp_path / "missing.pth", offline=False)


def test_bundled_backbone_predicts_imagenet_classes() -> None:
    model = resolve("efficientnet-lite0", None, offline=True).load()
    assert model.dim == 1280
    assert len(model.categories) == 1000 and list(model.categories) == classifiers.imagenet_categories()
    with torch.inference_mode():
        feats = model.features(torch.zeros(1, 3, 224, 224))
    assert feats.shape == (1, 1280)
