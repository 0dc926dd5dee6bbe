from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import InvalidOptionError, NoImagesError
from reportgen.extract import classifiers, extract


def _cfg(data: Path, cache: Path, **kw) -> Config:  # noqa: ANN003
    return Config(data, backbone="efficientnet-lite0", cache_dir=cache, progress=False, workers=0, **kw)


def test_embeddings_follow_the_image_order_with_predictions_and_thumbnails(labeled_dir: Path, cache_dir: Path) -> None:
    cfg = _cfg(labeled_dir, cache_dir)
    images = discover(cfg)
    emb = extract(images, cfg)
    assert emb.images.paths == images.paths
    assert emb.features.shape == (18, 1280) and emb.features.dtype == np.float16
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
    first = extract(discover(cfg), cfg)

    real_load = classifiers.load
    monkeypatch.setattr(classifiers, "load", lambda *a: pytest.fail("model loaded although everything was cached"))
    second = extract(discover(cfg), cfg)
    assert (second.n_computed, second.n_cached) == (0, 18)
    np.testing.assert_array_equal(first.features, second.features)
    assert second.categories == first.categories and len(second.categories) == 1000
    assert second.device.startswith("none")

    monkeypatch.setattr(classifiers, "load", real_load)
    shutil.copy(data / "circles" / "img_0.jpg", data / "circles" / "new.jpg")  # same content: a cache hit
    (data / "squares" / "img_1.png").write_bytes((data / "stripes" / "img_1.png").read_bytes()[:-1] + b"\0")
    third = extract(discover(cfg), cfg)
    assert len(third.images) == 19
    assert (third.n_computed, third.n_cached) == (1, 18)


def test_corrupt_cache_entry_is_recomputed(tmp_path: Path, labeled_dir: Path, cache_dir: Path) -> None:
    cfg = _cfg(labeled_dir, cache_dir)
    first = extract(discover(cfg), cfg)
    entries = sorted(cache_dir.rglob("*.npz"))
    entries[0].write_bytes(entries[0].read_bytes()[:50])
    second = extract(discover(cfg), cfg)
    assert (second.n_computed, second.n_cached) == (1, 17)
    np.testing.assert_allclose(first.features, second.features, atol=1e-5)


def test_bad_files_are_skipped_with_reasons_and_the_rest_embedded(tmp_path: Path, labeled_dir: Path) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    (data / "circles" / "empty.jpg").write_bytes(b"")
    (data / "circles" / "text.png").write_text("hello")
    cfg = _cfg(data, tmp_path / "cache")
    emb = extract(discover(cfg), cfg)
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
        extract(discover(cfg), cfg)


def test_worker_processes_give_the_same_embeddings(labeled_dir: Path, tmp_path: Path) -> None:
    inline = _cfg(labeled_dir, tmp_path / "c1")
    pooled = Config(
        labeled_dir, backbone="efficientnet-lite0", cache_dir=tmp_path / "c2", progress=False, workers=2, batch_size=4
    )
    a = extract(discover(inline), inline)
    b = extract(discover(pooled), pooled)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.top5_prob, b.top5_prob)
    assert a.thumbnails == b.thumbnails


def test_precision_auto_is_bf16_on_a_gpu_and_on_cpus_with_native_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reportgen.extract import runner

    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\nprocessor\t: 1\n")
    older = tmp_path / "older"
    older.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert runner.cpu_has_bf16(zen4) and not runner.cpu_has_bf16(older)
    assert not runner.cpu_has_bf16(tmp_path / "missing")  # not Linux: no cpuinfo, fp32
    for native in (True, False):
        monkeypatch.setattr(runner, "cpu_has_bf16", lambda native=native: native)
        assert runner.pick_precision("auto", "cpu") == ("bf16" if native else "fp32")
        assert runner.pick_precision("auto", "cuda") == "bf16"
        assert runner.pick_precision("fp32", "cuda") == "fp32" and runner.pick_precision("bf16", "cpu") == "bf16"
    with pytest.raises(InvalidOptionError, match="--precision must be auto, fp32 or bf16, got 'fp16'"):
        Config(tmp_path, precision="fp16")


def test_bf16_and_fp32_embeddings_agree_and_are_cached_apart(labeled_dir: Path, cache_dir: Path) -> None:
    fp32, bf16 = _cfg(labeled_dir, cache_dir, precision="fp32"), _cfg(labeled_dir, cache_dir, precision="bf16")
    a, b = extract(discover(fp32), fp32), extract(discover(bf16), bf16)
    assert (a.n_computed, b.n_computed) == (18, 18)  # an explicit precision never reuses the other's entries
    assert (a.device, b.device) == ("cpu (fp32)", "cpu (bf16)")
    cosine = (a.features * b.features).sum(1) / np.linalg.norm(a.features, axis=1) / np.linalg.norm(b.features, axis=1)
    assert cosine.min() > 0.98  # on sample_data photos: minimum 0.997, median 0.9995
    assert not np.array_equal(a.features, b.features)
    assert (a.top5_index[:, 0] == b.top5_index[:, 0]).mean() >= 0.8
    again = extract(discover(bf16), bf16)
    assert (again.n_computed, again.n_cached) == (0, 18)
