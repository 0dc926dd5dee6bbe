"""The tensor JPEG path (torchvision's decoder; nvJPEG on a GPU) against the Pillow path, run on the CPU."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.io
from badfiles import _photo, write_bad_files
from PIL import Image

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import InvalidOptionError
from reportgen.extract import decode, extract, resolve
from reportgen.images import tensor_decodable_jpeg


@pytest.fixture
def mixed(tmp_path: Path, labeled_dir: Path) -> Path:
    """The labeled folder (JPEG and PNG), every odd and broken file, a grayscale JPEG and two JPEG panoramas."""
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    write_bad_files(data)
    _photo(20, (90, 70)).convert("L").save(data / "oddities" / "gray.jpg")
    _photo(21, (1200, 100)).save(data / "oddities" / "panorama-1200x100.jpg")
    _photo(22, (1919, 10)).save(data / "oddities" / "strip-1919x10.jpg")  # where Pillow's own sizing rounds up
    return data


def _embed(data: Path, decoder: str, **kw: object):  # noqa: ANN202
    cfg = Config(
        data,
        backbone="efficientnet-lite0",
        precision="fp32",
        jpeg_decoder=decoder,
        use_cache=False,
        progress=False,
        **kw,
    )
    return extract(discover(cfg), cfg)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("workers", [0, 2])
def test_tensor_decoder_matches_pillow_and_skips_the_same_files(mixed: Path, workers: int) -> None:
    pil, tv = _embed(mixed, "pillow", workers=workers, batch_size=8), _embed(mixed, "torchvision", workers=workers)
    assert tv.images.paths == pil.images.paths
    assert [(s.path, s.reason) for s in tv.images.skipped] == [(s.path, s.reason) for s in pil.images.skipped]
    assert _cosine(pil.features, tv.features).min() > 0.99
    np.testing.assert_array_equal(pil.top5_index[:, 0], tv.top5_index[:, 0])
    for i, (a, b) in enumerate(zip(pil.thumbnails, tv.thumbnails, strict=True)):
        with Image.open(io.BytesIO(a)) as ta, Image.open(io.BytesIO(b)) as tb:
            assert tb.format == "JPEG" and tb.size == ta.size, pil.images.paths[i]  # EXIF rotation included
    assert tv.device == "cpu (fp32)"


def test_only_plain_complete_jpegs_take_the_tensor_path(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real = decode.decode_one

    def pillow(root: Path, key: str, rel: str, prep: object) -> object:
        opened.append(Path(rel).name)
        return real(root, key, rel, prep)  # type: ignore[arg-type]

    monkeypatch.setattr(decode, "decode_one", pillow)
    _embed(mixed, "torchvision", workers=0)
    jpeg_names = {"cmyk.jpg", "truncated.jpg", "random-bytes.jpg", "png-named.jpg"}
    assert jpeg_names <= set(opened)  # refused by the header check: Pillow decodes them or says why not
    assert not {"gray.jpg", "exif-rotated.jpg", "panorama-1200x100.jpg", "img_0.jpg"} & set(opened)

    data = (mixed / "oddities" / "exif-rotated.jpg").read_bytes()
    assert tensor_decodable_jpeg(data) and tensor_decodable_jpeg(data + b"\0\0")
    assert not tensor_decodable_jpeg(data[: len(data) // 2]) and not tensor_decodable_jpeg(b"")


def test_a_batch_the_tensor_decoder_refuses_is_decoded_one_by_one(
    mixed: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = torchvision.io.decode_jpeg
    refused = (mixed / "circles" / "img_0.jpg").read_bytes()

    def fussy(input, **kw):  # noqa: A002, ANN001, ANN003, ANN202 - torchvision's signature
        items = input if isinstance(input, list) else [input]
        if any(bytes(t.numpy()) == refused for t in items):
            raise RuntimeError("nvjpeg: unsupported")
        return real(input, **kw)

    monkeypatch.setattr(torchvision.io, "decode_jpeg", fussy)
    with caplog.at_level(logging.WARNING, logger="reportgen"):
        tv = _embed(mixed, "torchvision", workers=0)
    assert any("1 JPEG file refused by torchvision's decoder on cpu" in r.getMessage() for r in caplog.records)
    pil = _embed(mixed, "pillow", workers=0)
    assert tv.images.paths == pil.images.paths  # the refused file went through Pillow, the rest one by one
    assert _cosine(pil.features, tv.features).min() > 0.99


def test_jpeg_decoder_choice(tmp_path: Path) -> None:
    assert decode.pick_jpeg_decoder("auto", "cuda") == "torchvision"
    assert decode.pick_jpeg_decoder("auto", "cpu") == "pillow"
    assert decode.pick_jpeg_decoder("torchvision", "cpu") == "torchvision"
    assert decode.pick_jpeg_decoder("pillow", "cuda") == "pillow"
    with pytest.raises(InvalidOptionError, match="--jpeg-decoder must be auto, pillow or torchvision, got 'nvjpeg'"):
        Config(tmp_path, jpeg_decoder="nvjpeg")


def test_tensor_preprocessing_equals_pillow_preprocessing_on_the_same_pixels() -> None:
    prep = resolve("efficientnet-lite0", None, offline=True).preprocessing
    im = _photo(30, (300, 200))
    from_pil = decode.preprocess(im, prep)
    from_tensor = decode.preprocess(torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous(), prep)
    assert from_pil.shape == from_tensor.shape == (3, prep.crop, prep.crop)
    assert (from_pil - from_tensor).abs().mean() < 0.02  # Pillow and torch resize round differently
