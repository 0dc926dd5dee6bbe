"""Class-activation maps: they point at the object, they are cached, they fit the budget, and a backbone without a
convolutional map gets a note instead of a crash."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DATA
from helpers import validate_summary
from markupsafe import escape
from PIL import Image

import reportgen
from reportgen import explain
from reportgen.cli import main
from reportgen.explain import CLUSTER_EXEMPLARS, exemplars

CROP, RESIZE, OBJECT = 224, 256, 96
PLACED_CLASSES = {"fishes": "fishes", "tools": "tools"}


def _placed_folder(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Photos of fish and of tools, each shrunk to 96 px and pasted at a random place of a 256 px field of grey
    noise, 10 per class, plus one tool filed under fishes. Returns each file's object box in the coordinates of
    the square the network sees (the centre 224 px)."""
    rng = np.random.default_rng(0)
    boxes = {}
    sources = {cls: sorted((SAMPLE_DATA / cls).glob("*.jpg"))[:10] for cls in PLACED_CLASSES}
    sources["fishes"].append(sorted((SAMPLE_DATA / "tools").glob("*.jpg"))[12])
    margin = (RESIZE - CROP) // 2
    for cls, files in sources.items():
        (root / cls).mkdir(parents=True)
        for j, file in enumerate(files):
            field = Image.fromarray(rng.integers(90, 166, (RESIZE, RESIZE, 3), dtype=np.uint8))
            with Image.open(file) as photo:
                w, h = photo.size
                side = min(w, h)
                box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
                obj = photo.convert("RGB").crop(box).resize((OBJECT, OBJECT))
            x0, y0 = (margin + int(rng.integers(0, CROP - OBJECT)) for _ in range(2))
            field.paste(obj, (x0, y0))
            field.save(root / cls / f"{j:02d}.png")
            boxes[f"{cls}/{j:02d}.png"] = (x0 - margin, y0 - margin, x0 - margin + OBJECT, y0 - margin + OBJECT)
    return boxes


def _peak_on_object(heat: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the map's hottest cell, in the seen square's coordinates, touches the object's box."""
    rows, cols = heat.shape
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    cy, cx = (r + 0.5) * CROP / rows, (c + 0.5) * CROP / cols
    slack = CROP / cols / 2  # half a cell
    x0, y0, x1, y1 = box
    return x0 - slack <= cx <= x1 + slack and y0 - slack <= cy <= y1 + slack


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("placed")
    return root / "data", _placed_folder(root / "data")


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["gradcam", "guided-gradcam"])
def test_the_maps_peak_on_the_object(placed: tuple[Path, dict], tmp_path: Path, method: str) -> None:
    data, boxes = placed
    result = reportgen.build_report(data, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                    backbone="efficientnet-lite0", explain_method=method, progress=False)  # fmt: skip
    ex = result.run.explanations
    assert ex.method == method and ex.layer == "_swish_1" and ex.computed == ex.n_maps > 0
    hits: dict[str, list[bool]] = {}
    for i, views in ex.maps.items():
        box = boxes[result.run.images.path[i]]
        for kind, view in views.items():
            assert view.heat.max() == 1.0 and view.heat.min() >= 0
            hits.setdefault(kind, []).append(_peak_on_object(np.asarray(view.heat, np.float32), box))
    # The object covers 18% of the square; by chance (a peak anywhere) about a third of the peaks would touch it.
    assert {"prediction", "cluster", "part"} <= set(hits)
    for kind, found in hits.items():
        assert sum(found) >= 0.8 * len(found), (kind, found)
    summary = json.loads(result.outputs.summary.read_text(encoding="utf-8"))
    validate_summary(summary)
    assert summary["explanations"]["n_maps"] == ex.n_maps and summary["report"]["overlays"] is True
    if method == "guided-gradcam":
        assert {v.heat.shape for views in ex.maps.values() for v in views.values()} == {(56, 56)}  # input detail
        assert "ReLU6" in (ex.note or "")  # captum's guided backpropagation changes only ReLU modules


@pytest.mark.e2e
def test_an_oddball_gets_a_map_toward_its_own_class_and_reruns_compute_nothing(tmp_path: Path) -> None:
    options = {"backbone": "efficientnet-lite0", "cache_dir": tmp_path / "cache", "progress": False}
    first = reportgen.build_report(SAMPLE_DATA, out_dir=tmp_path / "a", **options)
    oddball = first.run.analysis.oddballs[0]
    assert oddball.path == "monuments/operaHouse.jpg"  # labelled monuments, looks like renewable
    views = first.run.explanations.maps[oddball.index]
    assert set(views) == {"prediction", "cluster", "class"}
    assert views["class"].label == "its pull toward its own class, monuments"
    assert views["prediction"].label.startswith("its top prediction, ")
    page = first.outputs.report.read_text(encoding="utf-8")
    assert 'data-views="prediction cluster class"' in page and "own class" in page
    labels = first.run.images.label
    shown = [exemplars(c.nearest, labels, CLUSTER_EXEMPLARS) for c in first.run.analysis.clusters]
    assert all(len(s) == min(6, len(c.nearest)) for s, c in zip(shown, first.run.analysis.clusters, strict=True))
    assert all({labels[i] for i in s} == {labels[i] for i in c.nearest} for s, c in  # each class of the montage
               zip(shown, first.run.analysis.clusters, strict=True))  # fmt: skip
    assert all({"prediction", "cluster"} <= set(first.run.explanations.maps[i]) for s in shown for i in s)
    section = page[page.index('<section id="clusters">') : page.index('<section id="map">')]
    assert section.count('class="cam"') == sum(map(len, shown))  # only the exemplars switch

    again = reportgen.build_report(SAMPLE_DATA, out_dir=tmp_path / "b", **options)
    ex = again.run.explanations
    assert (ex.computed, ex.cached) == (0, first.run.explanations.n_maps)
    for i, views in first.run.explanations.maps.items():
        for kind, view in views.items():
            assert np.array_equal(ex.maps[i][kind].heat, view.heat)

    memo = next((tmp_path / "cache").rglob("explain/*.json"))
    memo.write_text("{not json", encoding="utf-8")  # a damaged cache file is recomputed
    third = reportgen.build_report(SAMPLE_DATA, out_dir=tmp_path / "c", **options)
    assert (third.run.explanations.computed, third.run.explanations.cached) == (1, ex.n_maps - 1)


def test_no_explain_skips_the_maps(labeled_dir: Path, tmp_path: Path) -> None:
    result = reportgen.build_report(labeled_dir, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                    backbone="efficientnet-lite0", explain=False, progress=False)  # fmt: skip
    ex = result.run.explanations
    assert (ex.method, ex.n_maps, ex.layer) == ("none", 0, None)
    page = result.outputs.report.read_text(encoding="utf-8")
    assert 'class="cam"' not in page and '<p class="cam-legend"' not in page and "not made (--no-explain)" in page
    summary = json.loads(result.outputs.summary.read_text(encoding="utf-8"))
    validate_summary(summary)
    assert summary["explanations"]["method"] == "none" and summary["parameters"]["explain"] is False
    assert not list((tmp_path / "cache").rglob("explain"))


def test_a_transformer_gets_a_note_instead_of_maps(labeled_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    result = reportgen.build_report(labeled_dir, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                    backbone="timm:vit_tiny_patch16_224", weights="random", progress=False)  # fmt: skip
    ex = result.run.explanations
    assert ex.method == "none" and ex.n_maps == 0
    assert ex.note is not None and "not available" in ex.note and "convolutional feature map" in ex.note
    assert ex.note in result.run.dataset.notes
    summary = json.loads(result.outputs.summary.read_text(encoding="utf-8"))
    validate_summary(summary)
    assert str(escape(ex.note)) in result.outputs.report.read_text(encoding="utf-8")  # jinja2 escapes with markupsafe
    monkeypatch.setattr(explain, "_compute", lambda *a, **k: pytest.fail("the model was loaded again"))
    again = reportgen.build_report(labeled_dir, out_dir=tmp_path / "again", cache_dir=tmp_path / "cache",
                                   backbone="timm:vit_tiny_patch16_224", weights="random", progress=False)  # fmt: skip
    assert again.run.explanations.note == ex.note  # remembered in the cache


def test_a_headless_backbone_gets_cluster_maps_only(labeled_dir: Path, tmp_path: Path) -> None:
    result = reportgen.build_report(labeled_dir, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                    backbone="resnet18", weights="random", progress=False)  # fmt: skip
    ex = result.run.explanations
    assert ex.layer == "layer4.1.relu_1" and ex.n_maps > 0
    assert {kind for views in ex.maps.values() for kind in views} <= {"cluster", "class", "part"}
    assert "no prediction maps" in (ex.note or "")


def test_a_stack_is_explained_through_its_own_reduction(labeled_dir: Path, tmp_path: Path) -> None:
    stack = "efficientnet-lite0@_blocks.10:max+efficientnet-lite0*0.5"
    result = reportgen.build_report(labeled_dir, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                                    backbone=stack, progress=False)  # fmt: skip
    ex = result.run.explanations
    assert ex.layer == "_swish_1" and ex.n_maps > 0  # the last map: one part is the network's own output
    assert all(np.isfinite(np.asarray(v.heat, np.float32)).all() for views in ex.maps.values() for v in views.values())
    layered = reportgen.build_report(labeled_dir, out_dir=tmp_path / "out2", cache_dir=tmp_path / "cache",
                                     backbone="efficientnet-lite0@_blocks.10:max", progress=False)  # fmt: skip
    assert layered.run.explanations.layer == "_blocks.10"  # the layer the features pool


def test_explain_layer_is_checked_before_any_work(labeled_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    base = [str(labeled_dir), "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "-q",
            "--backbone", "efficientnet-lite0"]  # fmt: skip
    assert main([*base, "--explain-layer", "_blocks.15x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'_blocks.15x' is not a layer of 'efficientnet-lite0'" in err
    assert "_blocks.15._bn2" in err and "reportgen layers efficientnet-lite0" in err
    assert main([*base, "--explain-layer", "_fc"]) == 2
    assert "not a C x H x W map" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # nothing was embedded
    assert main([*base, "--explain-layer", "_blocks.15"]) == 0  # a module's name means its last node
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["explanations"]["layer"] == "_blocks.15" and summary["parameters"]["explain_layer"] == "_blocks.15"


def test_the_cut_network_computes_what_the_whole_one_does() -> None:
    import torch

    from reportgen.explain.network import Split, choose_layer
    from reportgen.extract.base import resolve

    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    for spec, layer in (("efficientnet-lite0", "_swish_1"), ("resnet18", "layer4.1.relu_1"),
                        ("tv:mobilenet_v3_small", "features.12"), ("densenet121", "relu")):  # fmt: skip
        trunk = resolve(spec, "random", True).blank()
        chosen = choose_layer(trunk, 224, [None], None, spec)
        assert chosen.node == layer and len(chosen.shape) == 3
        split = Split(trunk, chosen.node, [], 224)
        with torch.inference_mode():
            cam, *deps = split.head(x)
            assert tuple(cam.shape[1:]) == chosen.shape
            assert torch.allclose(split.tail(cam, *deps)["out"], trunk(x), rtol=1e-4, atol=1e-5), spec


def test_an_overlay_heats_the_seen_square_and_dims_the_rest() -> None:
    from reportgen.explain.overlay import overlay_jpeg

    buf = io.BytesIO()
    Image.new("RGB", (200, 100), (128, 128, 128)).save(buf, format="JPEG", quality=95)
    heat = np.zeros((7, 7), np.float32)
    heat[0, 0] = 1.0  # the seen square's top-left corner
    with Image.open(io.BytesIO(overlay_jpeg(buf.getvalue(), heat, 224 / 256, 128))) as im:
        px = np.asarray(im.convert("RGB"), dtype=int)
    assert px.shape == (64, 128, 3)  # the thumbnail's shape, at most 128 px
    side = round(64 * 224 / 256)
    top, left = (64 - side) // 2, (128 - side) // 2
    hot, cold = px[top + 2, left + 2], px[top + side - 3, left + side - 3]
    assert hot[0] > hot[2] + 60  # red where the map is hot
    assert cold[2] > cold[0] + 40  # blue where it is not
    assert px[32, 5].max() < 70  # outside the square the network saw: dimmed grey


def test_the_budget_drops_the_overlays_before_the_montages() -> None:
    from reportgen.config import Config
    from reportgen.report.budget import TILE_SIZES, plan_budget, step_down

    class Sized:
        def __init__(self, size: float, count: int = 0) -> None:
            self.size, self.count = size, count

        def estimate(self, px: int) -> float:
            return self.size * (px / 128) ** 2

    config = Config(data_dir=Path("."), max_report_mb=2.0)
    roomy = plan_budget(config, 100, 100, 100, Sized(4000), Sized(4000, 50))  # type: ignore[arg-type]
    assert roomy.overlays and roomy.tile_px == TILE_SIZES[0] and roomy.trimmed == ()
    tight = plan_budget(config, 100, 100, 100, Sized(4000), Sized(4000, 300))  # type: ignore[arg-type]
    assert not tight.overlays and tight.tile_px == TILE_SIZES[0]  # the montages keep their size
    assert any("overlays are left out" in t for t in tight.trimmed)
    smaller = step_down(roomy)
    assert smaller is not None and not smaller.overlays and smaller.tile_px == roomy.tile_px
    assert step_down(smaller).tile_px < roomy.tile_px  # type: ignore[union-attr]
