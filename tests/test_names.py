"""Everyday folders that are not tidy: names that are not UTF-8, very long names and paths, thousands of copies,
zero-byte files, and files that change while the run reads them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_image

import reportgen
from reportgen.cli import main

FAST = ["--backbone", "efficientnet-lite0", "--no-explain", "-q"]


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _raw(folder: Path, name: bytes) -> str:
    """``folder/name`` for a name that is not UTF-8, as Python holds it."""
    return os.fsdecode(os.fsencode(folder) + b"/" + name)


@pytest.fixture
def latin1_dir(labeled_dir: Path, tmp_path: Path) -> Path:
    """A folder from an old Latin-1 archive: a file 'café.png' and a class 'clé', in Latin-1 bytes."""
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    shutil.copy(data / "circles" / "img_1.png", _raw(data / "circles", b"caf\xe9.png"))
    os.mkdir(_raw(data, b"cl\xe9"))
    for i in range(3):
        make_image("squares", seed=60 + i).save(_raw(Path(_raw(data, b"cl\xe9")), b"carr\xe9_%d.png" % i))
    return data


def test_names_that_are_not_utf8_reach_every_output_readably(latin1_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "out"
    args = [str(latin1_dir), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main([*args, "--export-folders", "link", "--save-embeddings", "parquet"]) == 0
    table = pd.read_csv(out / "assignments.csv", encoding="utf-8")  # strict UTF-8
    assert "circles/caf\\xe9.png" in set(table["path"])
    assert {f"cl\\xe9/carr\\xe9_{i}.png" for i in range(3)} <= set(table["path"])
    summary = _summary(out)
    assert summary["n_images"] == 22 and summary["n_skipped"] == 0
    assert summary["classes"] == ["circles", "cl\\xe9", "squares", "stripes"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in page and "cl\\xe9" in page
    parquet = pd.read_parquet(out / "embeddings.parquet")
    assert "circles/caf\\xe9.png" in set(parquet["path"])
    # each exported link opens the very file, found from its readable name
    cluster = int(table.set_index("path").at["circles/caf\\xe9.png", "cluster"])
    (link,) = (out / "clusters").glob(f"{cluster}-*/circles/caf\\xe9.png")
    assert link.read_bytes() == Path(_raw(latin1_dir / "circles", b"caf\xe9.png")).read_bytes()
    # the notebook view finds it too, and an unchanged rerun keeps the outputs
    finished = reportgen.load(out)
    assert finished.data_dir is not None
    from reportgen.notebook import file_uri

    assert file_uri(finished.data_dir, "cl\\xe9/carr\\xe9_0.png") is not None
    assert main([*args, "--export-folders", "link", "--save-embeddings", "parquet"]) == 0


def test_a_readable_name_that_another_file_already_has_is_skipped_with_the_reason(
    latin1_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(latin1_dir / "circles" / "img_3.png", latin1_dir / "circles" / "caf\\xe9.png")  # that very name
    out = tmp_path / "out"
    assert main([str(latin1_dir), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), *FAST]) == 0
    summary = _summary(out)
    assert summary["n_images"] == 22
    assert summary["skipped"] == [
        {"path": "circles/caf\\xe9.png",
         "reason": "another file has the same name once bytes that are not UTF-8 are written out"}
    ]  # fmt: skip


def test_a_data_folder_whose_own_name_is_not_utf8(labeled_dir: Path, tmp_path: Path) -> None:
    data = Path(_raw(tmp_path, b"photos-\xe9t\xe9"))
    shutil.copytree(labeled_dir, data)
    out = tmp_path / "out"
    assert main([str(data), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), *FAST]) == 0
    summary = _summary(out)
    assert summary["dataset"] == "photos-\\xe9t\\xe9" and summary["title"] == "Image clusters: photos-\\xe9t\\xe9"


def test_long_names_deep_paths_copies_and_empty_files_are_handled_and_counted(
    labeled_dir: Path, tmp_path: Path
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    for i in range(1500):  # thousands of copies of one photo, as a sync tool can leave behind
        os.link(data / "circles" / "img_0.jpg", data / "circles" / f"copy_{i:04d}.jpg")
    for i in range(4):
        (data / "squares" / f"empty_{i}.png").write_bytes(b"")
    long_name = "L" * 251 + ".png"  # 255 bytes: the longest name a Linux folder takes
    shutil.copy(data / "stripes" / "img_1.png", data / "stripes" / long_name)
    _make_deep(data / "stripes", 22, (data / "stripes" / "img_3.png").read_bytes())  # past a path's 4,096 bytes
    out = tmp_path / "out"
    assert main([str(data), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--export-folders", "copy",
                 *FAST]) == 0  # fmt: skip
    summary = _summary(out)
    assert summary["n_images"] == 18 + 1500 + 1
    reasons = [s["reason"] for s in summary["skipped"]]
    assert reasons.count("empty file (0 bytes)") == 4
    (deep_reason,) = [r for r in reasons if r.startswith("cannot list folder")]
    assert "path longer than the system allows" in deep_reason
    dup = summary["duplicates"]
    assert dup["n_copies"] == 1500 + 1 and dup["n_groups"] == 2 and dup["sizes"] == [1501, 2]  # the long name too
    assert summary["cache"]["computed"] <= 18 + 1  # the copies are embedded once
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "1501 files are a byte-for-byte copy of another (2 contents held by two files or more)" in page
    assert "5 skipped: 4 empty file (0 bytes); 1 cannot list folder: path longer than the system allows" in page
    table = pd.read_csv(out / "assignments.csv")
    assert f"stripes/{long_name}" in set(table["path"])
    assert len(list((out / "clusters").rglob(long_name))) == 1


def _make_deep(base: Path, levels: int, image: bytes) -> None:
    """``levels`` folders of 200-byte names under ``base`` and an image at the bottom, made relative to open
    folders (an absolute path that long cannot be passed to the system)."""
    fd = os.open(base, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("D" * 200, dir_fd=fd)
            inner = os.open("D" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, image)
        os.close(out)
    finally:
        os.close(fd)


def test_files_that_change_while_the_run_reads_them_are_skipped_with_the_reason_and_never_cached_wrongly(
    labeled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reportgen import discover as discovery
    from reportgen.extract import stage

    data = shutil.copytree(labeled_dir, tmp_path / "data")
    (data / "extra").mkdir()
    make_image("circles", seed=70).save(data / "extra" / "a.png")
    real_collect, real_hash = discovery._collect, stage._hash_files

    def folder_removed_while_listed(root: Path, folder: Path, *args: object, **kwargs: object) -> None:
        if folder.name == "extra":
            shutil.rmtree(folder)
        real_collect(root, folder, *args, **kwargs)  # type: ignore[arg-type]

    def files_change_after_hashing(images: object) -> object:
        (data / "circles" / "img_4.jpg").unlink()  # removed after discovery, before it is read
        found = real_hash(images)
        (data / "squares" / "img_1.png").unlink()  # removed after it was hashed
        make_image("stripes", seed=99).save(data / "stripes" / "img_1.png")  # rewritten after it was hashed
        return found

    monkeypatch.setattr(discovery, "_collect", folder_removed_while_listed)
    monkeypatch.setattr(stage, "_hash_files", files_change_after_hashing)
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [str(data), "-o", str(out), "--cache-dir", str(cache), *FAST]
    assert main(args) == 0
    skipped = {s["path"]: s["reason"] for s in _summary(out)["skipped"]}
    assert skipped == {
        "circles/img_4.jpg": "file not found (broken link or removed during the run)",
        "extra": "cannot list folder: No such file or directory",
        "squares/img_1.png": "file not found (broken link or removed during the run)",
        "stripes/img_1.png": "changed while the run read it (its content no longer matches); rerun to include it",
    }
    assert _summary(out)["n_images"] == 18 - 3
    monkeypatch.undo()
    assert main([*args, "--force"]) == 0  # the rewritten file is read afresh: nothing was cached under its old key
    again = _summary(out)
    assert again["n_images"] == 16 and again["n_skipped"] == 0 and again["cache"]["computed"] == 1
    clean = tmp_path / "clean"
    assert main([str(data), "-o", str(clean), "--cache-dir", str(tmp_path / "cache2"), *FAST]) == 0
    rows = pd.read_csv(out / "assignments.csv").set_index("path")
    fresh = pd.read_csv(clean / "assignments.csv").set_index("path")
    assert rows.at["stripes/img_1.png", "top1_class"] == fresh.at["stripes/img_1.png", "top1_class"]
    assert rows.at["stripes/img_1.png", "content_hash"] == fresh.at["stripes/img_1.png", "content_hash"]


def test_a_file_rewritten_before_its_heat_map_is_not_mapped_from_its_new_content(
    labeled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reportgen.pipeline as pipeline

    data = shutil.copytree(labeled_dir, tmp_path / "data")
    real_explain = pipeline.explain

    def rewrite_then_explain(embeddings, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        for path in embeddings.images.paths:  # every image changes after it was embedded
            make_image("stripes", seed=500).save(data / path, format="PNG")
        return real_explain(embeddings, *args, **kwargs)

    monkeypatch.setattr(pipeline, "explain", rewrite_then_explain)
    out = tmp_path / "out"
    assert main([str(data), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--backbone",
                 "efficientnet-lite0", "-q"]) == 0  # fmt: skip
    explanations = _summary(out)["explanations"]
    assert explanations["n_maps"] == 0 and explanations["computed"] == 0
    assert "could not be made (an image was removed or changed since it was embedded)" in explanations["note"]
