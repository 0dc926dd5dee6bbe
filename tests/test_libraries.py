"""tv:<name> and timm:<name> backbones, --weights random, and their weights paths up to the network (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import InvalidOptionError, WeightsUnavailableError
from reportgen.extract import classifiers, libraries, resolve
from reportgen.extract.stage import extract

# every model the issue names, across torchvision's families (resolving builds them on the meta device: cheap)
TV_NAMED = [
    "alexnet", "vgg16", "vgg19", "resnet18", "resnet50", "resnet101", "resnet152", "densenet121", "inception_v3",
    "efficientnet_b0", "efficientnet_b3", "efficientnet_b7", "convnext_tiny", "vit_b_16", "squeezenet1_1",
    "regnet_y_400mf", "swin_t", "mobilenet_v3_large",
]  # fmt: skip


@pytest.mark.parametrize("name", TV_NAMED)
def test_tv_spec_takes_its_weights_own_preprocessing_and_feature_size(name: str, no_network: list) -> None:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    t = weights.transforms()
    res = resolve(f"tv:{name}", None, offline=True)
    prep = res.preprocessing
    assert (prep.resize, prep.crop) == (t.resize_size[0], t.crop_size[0])
    assert (prep.mean, prep.std, prep.interpolation) == (tuple(t.mean), tuple(t.std), t.interpolation.value)
    assert res.weights_id == f"torchvision:{weights.url}" and res.has_head == (name != "squeezenet1_1")
    assert no_network == []  # resolving never touches the network


def test_every_torchvision_classifier_is_a_spec() -> None:
    names = libraries.tv_names()
    assert len(names) >= 80 and {"inception_v3", "vit_b_16", "convnext_base", "efficientnet_b5"} <= set(names)
    assert "fasterrcnn_resnet50_fpn" not in names  # detection models are not classifiers


@pytest.mark.parametrize("spec", ["tv:resnet18", "tv:inception_v3", "tv:squeezenet1_1", "tv:vit_b_16"])
def test_random_weights_give_features_of_the_resolved_size_without_predictions(spec: str, no_network: list) -> None:
    res = resolve(spec, "random", offline=True)
    assert res.weights_id == "random(seed 0)" and not res.has_head
    model = res.load()
    crop = res.preprocessing.crop
    with torch.inference_mode():
        feats = model.network(torch.rand(2, 3, crop, crop))
        again = res.load().network(torch.rand(2, 3, crop, crop))
    assert feats.shape == again.shape == (2, res.dim) and model.predictions(feats) is None
    state, same = res.load().network.state_dict(), res.load().network.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)  # seeded: the same floor every time
    assert no_network == []


def test_tv_weights_load_from_torchvisions_cache_with_the_head(no_network: list) -> None:
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    path = classifiers.cached_weights_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    model = resolve("tv:resnet18", None, offline=True).load()
    with torch.inference_mode():
        feats = model.network(torch.zeros(2, 3, 224, 224))
    assert feats.shape == (2, 512) and model.predictions(feats).shape == (2, 1000)
    assert model.categories[0] == "tench" and no_network == []


def test_tv_weights_absent_offline_or_unreachable_is_one_line(no_network: list) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"^--offline was given and tv:vgg16 weights are not cached at"):
        resolve("tv:vgg16", None, offline=True).load()
    with pytest.raises(WeightsUnavailableError, match=r"^cannot reach download.pytorch.org:443"):
        resolve("tv:vgg16", None, offline=False).load()


@pytest.mark.parametrize("name", ["xception41", "inception_resnet_v2", "vit_small_patch16_224", "resnet50.a1_in1k"])
def test_timm_spec_takes_timms_data_config(name: str, no_network: list) -> None:
    model = timm.create_model(name, pretrained=False)
    data = timm.data.resolve_model_data_config(model)
    res = resolve(f"timm:{name}", None, offline=True)
    assert res.preprocessing.crop == data["input_size"][-1]
    assert res.preprocessing.resize == int(data["input_size"][-1] / data["crop_pct"])
    assert res.preprocessing.mean == tuple(data["mean"]) and res.preprocessing.interpolation == data["interpolation"]
    assert res.weights_id == f"timm:{model.pretrained_cfg['hf_hub_id']}" and res.has_head
    assert no_network == []


def _hf_cache_file(repo: str, filename: str) -> Path:
    """Where Hugging Face's cache keeps ``filename`` of ``repo`` (its own layout: snapshots and a main ref)."""
    import huggingface_hub.constants

    root = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text("0" * 40)
    path = root / "snapshots" / ("0" * 40) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_timm_weights_load_from_hugging_faces_cache_without_any_request(no_network: list) -> None:
    from safetensors.torch import save_file

    reference = timm.create_model("resnet18.a1_in1k", pretrained=False)
    save_file(reference.state_dict(), _hf_cache_file("timm/resnet18.a1_in1k", "model.safetensors"))
    model = resolve("timm:resnet18.a1_in1k", None, offline=False).load()
    x = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        feats = model.network(x)
        probs = model.predictions(feats)
        expected = torch.softmax(reference.eval()(x).double(), dim=1).float()
    assert feats.shape == (2, 512) and torch.allclose(probs, expected, atol=1e-5)  # the cached weights, head included
    assert no_network == []


def test_timm_download_goes_through_timms_hub_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    monkeypatch.setattr(libraries, "check_reachable", lambda url, timeout=5.0: None)
    requested: list[str] = []

    def fake_download(repo_id: str, filename: str, **kwargs: object) -> str:
        requested.append(f"{repo_id}/{filename}")
        path = _hf_cache_file(repo_id, filename)
        save_file(timm.create_model("resnet18.a1_in1k", pretrained=False).state_dict(), path)
        return str(path)

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", fake_download)
    model = resolve("timm:resnet18.a1_in1k", None, offline=False).load()
    assert requested == ["timm/resnet18.a1_in1k/model.safetensors"] and model.dim == 512


def test_timm_weights_absent_is_one_line(no_network: list) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"^--offline was given and timm:xception41 weights are not in "):
        resolve("timm:xception41", None, offline=True).load()
    with pytest.raises(WeightsUnavailableError, match=r"^cannot reach huggingface.co:443"):
        resolve("timm:xception41", None, offline=False).load()


def test_random_weights_run_end_to_end_and_keep_apart_in_the_cache(labeled_dir: Path, cache_dir: Path) -> None:
    base = {"cache_dir": cache_dir, "progress": False, "offline": True, "batch_size": 4}
    random = Config(labeled_dir, backbone="tv:resnet18", weights="random", **base)
    assert random.parameters()["weights"] == "random"
    emb = extract(discover(random), random)
    assert emb.features.shape == (18, 512) and emb.weights == "random(seed 0)" and not emb.has_predictions
    assert emb.top5_index.shape == (18, 0) and "untrained (--weights random)" in emb.notes[0]
    lite = Config(labeled_dir, backbone="efficientnet-lite0", weights="random", **base)
    first, again = extract(discover(lite), lite), extract(discover(lite), lite)
    assert again.n_computed == 0 and np.array_equal(first.features, again.features)
    trained = Config(labeled_dir, backbone="efficientnet-lite0", **base)
    real = extract(discover(trained), trained)
    assert real.n_computed == 18 and real.has_predictions  # not served the untrained entries


def test_weights_option_takes_random_or_an_existing_file(tmp_path: Path) -> None:
    assert Config(tmp_path, weights="random").weights == "random"
    with pytest.raises(InvalidOptionError, match=r"--weights"):
        Config(tmp_path, weights=tmp_path / "absent.pth")


def test_backbones_command_lists_every_spec_matching_a_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    from reportgen.cli import main

    assert main(["backbones", "tv:vgg1*"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["tv:vgg11", "tv:vgg11_bn", "tv:vgg13", "tv:vgg13_bn", "tv:vgg16", "tv:vgg16_bn", "tv:vgg19",
                   "tv:vgg19_bn"]  # fmt: skip
    assert main(["backbones", "timm:inception_resnet*"]) == 0
    assert "timm:inception_resnet_v2" in capsys.readouterr().out.split()
    assert main(["backbones", "lenet*"]) == 2 and capsys.readouterr().err == "Error: no backbone matches 'lenet*'\n"


@pytest.mark.parametrize(
    ("spec", "dim", "head_input"),
    [
        ("tv:resnet18@layer3:max", 256, 512),
        ("tv:vit_b_16@encoder.layers.encoder_layer_6:mean", 768, 768),
        ("timm:xception41@blocks.5:top10", 728, 2048),
        ("timm:levit_128@stages.1:mean", 256, 384),  # its eval graph has nodes its train graph lacks
    ],
)
def test_layers_of_library_backbones(spec: str, dim: int, head_input: int, no_network: list) -> None:
    res = resolve(spec, "random", offline=True)
    assert res.dim == dim and res.spec == spec
    crop = res.preprocessing.crop
    with torch.inference_mode():
        pooled, trunk = res.load().network(torch.rand(2, 3, crop, crop))
    assert pooled.shape == (2, dim) and trunk.shape == (2, head_input) and no_network == []


def test_a_weights_file_that_does_not_fit_is_one_line(tmp_path: Path) -> None:
    from reportgen.errors import BackboneError

    path = tmp_path / "other.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    mismatch = r"^weights 'other.pth' do not fit tv:alexnet: Error\(s\) in loading state_dict for AlexNet: Missing"
    with pytest.raises(BackboneError, match=mismatch):
        resolve("tv:alexnet", path, offline=True).load()
    assert resolve("tv:resnet18", path, offline=True).load().dim == 512
