from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from reportgen import backbones
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.embed import embed
from reportgen.errors import NoImagesError


def _cfg(data: Path, cache: Path, **kw) -> Config:  # noqa: ANN003
    return Config(data, backbone="efficientnet-lite0", cache_dir=cache, progress=False, workers=0, **kw)


def test_embeddings_follow_the_image_order_with_predictions_and_thumbnails(labeled_dir: Path, cache_dir: Path) -> None:
    cfg = _cfg(labeled_dir, cache_dir)
    images = discover(cfg)
    emb = embed(images, cfg)
    assert emb.images.paths == images.paths
    assert emb.features.shape == (18, 1280) and emb.features.dtype == np.float32
    assert np.isfinite(emb.features).all()
    assert emb.top5_index.shape == (18, 5)
    assert (np.diff(emb.top5_prob, axis=1) <= 0).all()
    assert all(t.startswith(b"\xff\xd8") for t in emb.thumbnails)
    assert (emb.n_computed, emb.n_cached) == (18, 0)


def test_rerun_uses_the_cache_without_loading_the_model_and_a_changed_file_is_reembedded(
    tmp_path: Path, labeled_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    cfg = _cfg(data, cache_dir)
    first = embed(discover(cfg), cfg)

    real_load = backbones.load
    monkeypatch.setattr(backbones, "load", lambda *a: pytest.fail("model loaded although everything was cached"))
    second = embed(discover(cfg), cfg)
    assert (second.n_computed, second.n_cached) == (0, 18)
    np.testing.assert_array_equal(first.features, second.features)
    assert second.categories == first.categories and len(second.categories) == 1000
    assert second.device.startswith("none")

    monkeypatch.setattr(backbones, "load", real_load)
    shutil.copy(data / "circles" / "img_0.jpg", data / "circles" / "new.jpg")  # same content: a cache hit
    (data / "squares" / "img_1.png").write_bytes((data / "stripes" / "img_1.png").read_bytes()[:-1] + b"\0")
    third = embed(discover(cfg), cfg)
    assert len(third.images) == 19
    assert (third.n_computed, third.n_cached) == (1, 18)


def test_corrupt_cache_entry_is_recomputed(tmp_path: Path, labeled_dir: Path, cache_dir: Path) -> None:
    cfg = _cfg(labeled_dir, cache_dir)
    first = embed(discover(cfg), cfg)
    entries = sorted(cache_dir.rglob("*.npz"))
    entries[0].write_bytes(entries[0].read_bytes()[:50])
    second = embed(discover(cfg), cfg)
    assert (second.n_computed, second.n_cached) == (1, 17)
    np.testing.assert_allclose(first.features, second.features, atol=1e-5)


def test_bad_files_are_skipped_with_reasons_and_the_rest_embedded(tmp_path: Path, labeled_dir: Path) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    (data / "circles" / "empty.jpg").write_bytes(b"")
    (data / "circles" / "text.png").write_text("hello")
    cfg = _cfg(data, tmp_path / "cache")
    emb = embed(discover(cfg), cfg)
    assert len(emb.images) == 18
    reasons = {s.path: s.reason for s in emb.images.skipped}
    assert reasons == {
        "circles/empty.jpg": "empty file (0 bytes)",
        "circles/text.png": "not an image Pillow can identify",
    }


def test_fewer_than_two_usable_images_is_an_error(tmp_path: Path, labeled_dir: Path) -> None:
    (tmp_path / "a").mkdir()
    shutil.copy(labeled_dir / "circles" / "img_0.jpg", tmp_path / "a" / "ok.jpg")
    (tmp_path / "a" / "bad.jpg").write_bytes(b"junk")
    cfg = _cfg(tmp_path, tmp_path / "cache")
    with pytest.raises(NoImagesError, match=r"found 1 usable image in '.*', need at least 2 \(1 could not be used\)"):
        embed(discover(cfg), cfg)


def test_worker_processes_give_the_same_embeddings(labeled_dir: Path, tmp_path: Path) -> None:
    inline = _cfg(labeled_dir, tmp_path / "c1")
    pooled = Config(
        labeled_dir, backbone="efficientnet-lite0", cache_dir=tmp_path / "c2", progress=False, workers=2, batch_size=4
    )
    a = embed(discover(inline), inline)
    b = embed(discover(pooled), pooled)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.top5_prob, b.top5_prob)
    assert a.thumbnails == b.thumbnails
