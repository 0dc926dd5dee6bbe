"""Stacks of feature specs (--features 'A+B*0.5'): one forward pass per backbone, one cache per spec, blocks
normalised before they are joined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import BackboneError, InvalidOptionError
from reportgen.extract import stack
from reportgen.extract.stage import extract
from reportgen.reduce import _prepare

LITE = "efficientnet-lite0"
LOW, MID = f"{LITE}@_blocks.4:max", f"{LITE}@_blocks.10:gem"


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The specs of every extractor the stage loads, and how many batches each network ran."""
    calls: list[list[str]] = []
    real = stack.load_group

    def counted(parts: list[stack.Part]):  # noqa: ANN202 - an Extractor
        extractor = real(parts)
        calls.append([p.resolution.spec for p in parts])
        extractor.network.register_forward_hook(lambda *_: calls[-1].append("batch"))
        return extractor

    monkeypatch.setattr("reportgen.extract.stage.load_group", counted)
    return calls


def _config(folder: Path, cache_dir: Path, spec: str, **kw: object) -> Config:
    return Config(folder, backbone=spec, cache_dir=cache_dir, progress=False, batch_size=6, precision="fp32", **kw)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"{LITE}+", "has an empty part"),
        (f"{LITE}*0+{LOW}", "the weight of 'efficientnet-lite0' in .* must be a number above 0, got '0'"),
        (f"{LITE}*much+{LOW}", "must be a number above 0, got 'much'"),
        (f"{LOW}+{LOW}", "names 'efficientnet-lite0@_blocks.4:max' twice"),
        (f"{LITE}+resnt50@layer3", "unknown backbone 'resnt50'; did you mean resnet50"),
        (f"{LITE}+{LITE}@_blocks.4:maxx", "unknown pooling 'maxx'"),
    ],
)
def test_a_bad_stack_is_one_line_before_anything_is_loaded(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=rf"^--features: .*{message}") as err:
        Config(tmp_path, backbone=spec)
    assert "\n" not in str(err.value)


def test_the_same_layer_twice_after_defaults_is_refused() -> None:
    with pytest.raises(BackboneError, match=r"takes 'efficientnet-lite0@_blocks.10:avg' twice"):
        stack.resolve_stack(f"{LITE}@_blocks.10+{LITE}@_blocks.10:avg", None, offline=True)


def test_three_specs_of_one_backbone_share_one_forward_pass_and_cache_apart(
    labeled_dir: Path, cache_dir: Path, loads: list[list[str]]
) -> None:
    spec = f"{LOW}+{MID}*0.5+{LITE}"
    cfg = _config(labeled_dir, cache_dir, spec)
    emb = extract(discover(cfg), cfg)
    # one extractor for the three specs; its network ran once per batch of 6 (18 images)
    assert loads == [[LOW, MID, LITE, "batch", "batch", "batch"]]
    assert emb.backbone == f"{LOW}+{MID}*0.5+{LITE}" and emb.block_weights == ((40, 1.0), (112, 0.5), (1280, 1.0))
    assert emb.features.shape == (18, 40 + 112 + 1280) and emb.has_predictions and emb.top5_index.shape == (18, 5)

    # each spec's vectors are cached under that spec: a run of one of them computes nothing, and they are the same
    loads.clear()
    alone = _config(labeled_dir, cache_dir, MID)
    mid = extract(discover(alone), alone)
    assert loads == [] and mid.n_computed == 0
    np.testing.assert_array_equal(mid.features, emb.features[:, 40:152])

    # the plain spec through the layer graph gives the same vector as the plain backbone's own network
    plain = _config(labeled_dir, cache_dir.parent / "fresh", LITE)
    np.testing.assert_allclose(extract(discover(plain), plain).features, emb.features[:, 152:], atol=2e-3, rtol=1e-2)

    # adding a spec computes only that one
    loads.clear()
    more = _config(labeled_dir, cache_dir, f"{spec}+{LITE}@_blocks.6:top10")
    again = extract(discover(more), more)
    assert loads == [[f"{LITE}@_blocks.6:top10", "batch", "batch", "batch"]] and again.n_cached == 0
    np.testing.assert_array_equal(again.features[:, : emb.features.shape[1]], emb.features)


def test_specs_of_two_backbones_take_one_pass_each(labeled_dir: Path, cache_dir: Path, loads: list) -> None:
    cfg = _config(labeled_dir, cache_dir, f"{LOW}+tv:resnet18@layer2:avg+tv:resnet18", weights="random")
    emb = extract(discover(cfg), cfg)
    assert [call[:-3] for call in loads] == [[LOW], ["tv:resnet18@layer2:avg", "tv:resnet18"]]
    assert emb.features.shape == (18, 40 + 128 + 512) and not emb.has_predictions
    assert emb.weights == "random(seed 0)" and "resize256-crop224" in emb.preprocessing


def test_each_block_is_normalised_and_weighted_before_the_row() -> None:
    rng = np.random.default_rng(0)
    rows = np.hstack([rng.random((5, 3)) * 1000, rng.random((5, 40))]).astype(np.float32)
    out = _prepare(rows, power_norm=True, blocks=[(3, 2.0), (40, 1.0)])
    wide, narrow = np.linalg.norm(out[:, 3:], axis=1), np.linalg.norm(out[:, :3], axis=1)
    np.testing.assert_allclose(narrow / wide, 2.0, rtol=1e-5)  # the weight, whatever the blocks' widths and scales
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    one = _prepare(rows, power_norm=True, blocks=[(43, 1.0)])
    np.testing.assert_array_equal(one, _prepare(rows, power_norm=True))  # a single spec is unchanged


def test_summary_records_each_block_and_the_schema_holds(labeled_dir: Path, tmp_path: Path) -> None:
    import json

    from helpers import validate_summary

    from reportgen.cli import main

    spec = f"{MID}*2+{LITE}"
    out = tmp_path / "out"
    assert main([str(labeled_dir), "--features", spec, "-o", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    validate_summary(summary)
    assert summary["backbone"] == spec and summary["embedding_dim"] == 112 + 1280
    blocks = [(b["spec"], b["weight"], b["dim"]) for b in summary["feature_blocks"]]
    assert blocks == [(MID, 2.0, 112), (LITE, 1.0, 1280)]
    assert summary["parameters"]["backbone"] == spec and summary["has_predictions"]
