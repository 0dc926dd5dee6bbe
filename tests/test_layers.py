"""Feature specs BACKBONE@LAYER:POOL: parsing, pooling, one forward pass, errors before any image is decoded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_image

from reportgen.cli import main
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import BackboneError, InvalidOptionError
from reportgen.extract import extract, resolve
from reportgen.extract.layers import parse, pool_tensor

LITE = "efficientnet-lite0"


def test_specs_are_parsed_and_bad_poolings_name_the_close_ones() -> None:
    assert parse(f"{LITE}@_blocks.10:max").layer == "_blocks.10"
    assert parse(f"{LITE}@_blocks.10").pool is None
    assert parse("resnet50@layer3:top10").backbone == "resnet50"
    with pytest.raises(BackboneError, match=r"unknown pooling 'gme' .*did you mean: gem"):
        parse(f"{LITE}@_blocks.10:gme")
    with pytest.raises(BackboneError, match=r"is not BACKBONE@LAYER\[:POOL\]"):
        parse(f"{LITE}@")
    with pytest.raises(InvalidOptionError, match=r"^--features: unknown pooling 'avgg'"):
        Config("/unused", backbone=f"{LITE}@_blocks.10:avgg")
    with pytest.raises(InvalidOptionError, match=r"^--features: unknown backbone 'resnet5'; did you mean resnet50"):
        Config("/unused", backbone="resnet5@layer3")


def test_poolings_compute_what_they_say() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5) - 30  # some negative activations
    flat = x.flatten(2).numpy()
    np.testing.assert_allclose(pool_tensor(x, "avg").numpy(), flat.mean(axis=2))
    np.testing.assert_allclose(pool_tensor(x, "max").numpy(), flat.max(axis=2))
    top = np.sort(flat, axis=2)[:, :, -2:].mean(axis=2)  # 10% of 20 positions: the top 2
    np.testing.assert_allclose(pool_tensor(x, "top10").numpy(), top)
    np.testing.assert_allclose(pool_tensor(x, "top10", positions=20).numpy(), top)
    gem = (np.clip(flat, 1e-6, None) ** 3).mean(axis=2) ** (1 / 3)
    np.testing.assert_allclose(pool_tensor(x, "gem").numpy(), gem, rtol=1e-5)
    tokens = torch.randn(2, 7, 5)
    np.testing.assert_allclose(pool_tensor(tokens, "cls").numpy(), tokens[:, 0].numpy())
    np.testing.assert_allclose(pool_tensor(tokens, "mean").numpy(), tokens.mean(1).numpy(), rtol=1e-6)


def test_layer_errors_are_one_line_before_any_image_is_decoded() -> None:
    with pytest.raises(BackboneError, match=r"has no layer '_blocks\.100'; did you mean: .*'reportgen layers"):
        resolve(f"{LITE}@_blocks.100", None, True)
    with pytest.raises(BackboneError, match=r"gives a vector of 1280: it takes no pooling \(drop ':max'\)"):
        resolve(f"{LITE}@_fc:max", None, True)
    with pytest.raises(BackboneError, match=r"gives a 1 x 1 map \(1 positions\): top10 needs at least 10"):
        resolve(f"{LITE}@_avg_pooling:top10", None, True)
    with pytest.raises(BackboneError, match=r"gives a 112 x 14 x 14 map: pool it with avg, max, top10, gem"):
        resolve(f"{LITE}@_blocks.10:cls", None, True)


def test_a_layer_comes_from_the_same_forward_pass_and_keeps_the_predictions(tmp_path) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    for style in ("circles", "stripes"):
        (data / style).mkdir(parents=True)
        for i in range(3):
            make_image(style, seed=i).save(data / style / f"{i}.png")
    cache = tmp_path / "cache"

    def run(spec: str):  # noqa: ANN202
        config = Config(data, backbone=spec, cache_dir=cache, offline=True, progress=False, precision="fp32")
        return extract(discover(config), config)

    plain = run(LITE)
    last = run(f"{LITE}@_fc")  # the trunk's own output: the same vectors as the plain spec
    assert last.backbone == f"{LITE}@_fc" and last.n_computed == 6  # cached apart from the plain spec's
    np.testing.assert_allclose(last.features, plain.features, rtol=1e-5, atol=1e-6)
    mid = run(f"{LITE}@_blocks.10:max")
    assert mid.backbone == f"{LITE}@_blocks.10:max" and mid.features.shape == (6, 112)
    np.testing.assert_array_equal(mid.top5_index, plain.top5_index)  # the head still reads the trunk's output
    avg = run(f"{LITE}@_blocks.10")
    assert avg.backbone == f"{LITE}@_blocks.10:avg"  # the default pooling is recorded in the spec
    assert (mid.features >= avg.features - 1e-5).all() and not np.allclose(mid.features, avg.features)
    assert run(f"{LITE}@_blocks.10:max").n_computed == 0  # a rerun reads the layer's own cache entries


def test_torchvision_layers_resolve_offline_without_their_weights() -> None:
    r = resolve("resnet18@layer3:gem", None, True)
    assert (r.spec, r.dim) == ("resnet18@layer3:gem", 256)
    assert resolve("resnet18@layer4.1", None, True).dim == 512


def test_layers_command_lists_shapes_and_pooled_lengths(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", LITE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{LITE}: ") and "--features 'efficientnet-lite0@LAYER:POOL'" in lines[0]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["_conv_stem.conv2d"].split()[1:5] == ["32", "x", "112", "x"]
    assert rows["_fc"].split()[1:3] == ["1280", "1280"] and rows["_fc"].endswith("none")
    assert "top10" not in rows["_avg_pooling"]  # a 1 x 1 map is too small for it
    assert main(["layers", "nope"]) == 2
    assert capsys.readouterr().err.startswith("Error: unknown backbone 'nope'")
