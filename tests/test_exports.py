"""Exports: each cluster's images as a folder, and the vectors as files pandas and numpy read in one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import reportgen
from reportgen.config import Config
from reportgen.errors import InvalidOptionError


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


def _build(data: Path, work: Path, **options: object) -> reportgen.Result:
    return reportgen.build_report(data, out_dir=work / "out", cache_dir=work / "cache", backbone="efficientnet-lite0",
                                  explain=False, progress=False, **options)  # fmt: skip


def test_cluster_folders_hold_every_image_once_and_are_replaced_whole(labeled_dir: Path, work: Path) -> None:
    result = _build(labeled_dir, work, export_folders="link")
    root = work / "out" / "clusters"
    table = pd.read_csv(work / "out" / "assignments.csv")
    names = {c.cluster: c.name for c in result.run.analysis.clusters}
    folders = sorted(p.name for p in root.iterdir())
    assert len(folders) == len(names) and all(f.split("-", 1)[0].isdigit() for f in folders)
    found = {}
    for link in root.rglob("*"):
        if link.is_symlink():
            rel = link.relative_to(root).as_posix().split("/", 1)
            found[rel[1]] = int(rel[0].split("-", 1)[0])
            assert link.resolve() == (labeled_dir / rel[1]).resolve()  # a link to the image itself
    assert found == dict(zip(table["path"], table["cluster"], strict=True))  # every image once, in its cluster

    (root / "stale-folder").mkdir()  # a rerun swaps the tree in whole
    _build(labeled_dir, work, export_folders="copy")
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == len(table) and not any(p.is_symlink() for p in files)
    assert not (root / "stale-folder").exists()
    assert not [p for p in (work / "out").iterdir() if p.name.startswith(".clusters")]  # no staging left behind


def test_noise_has_its_own_folder(labeled_dir: Path, work: Path) -> None:
    result = _build(labeled_dir, work / "noise", export_folders="copy", method="hdbscan")
    noise = work / "noise" / "out" / "clusters" / "noise"
    assert noise.is_dir() == (result.run.clustering.n_noise > 0)
    if noise.is_dir():
        assert len([p for p in noise.rglob("*") if p.is_file()]) == result.run.clustering.n_noise


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is the parquet extra")
def test_embeddings_as_parquet_read_in_one_line(labeled_dir: Path, work: Path) -> None:
    result = _build(labeled_dir, work / "pq", save_embeddings="parquet")
    table = pd.read_parquet(work / "pq" / "out" / "embeddings.parquet")
    assert list(table.columns) == ["path", "label", "cluster", "vector", "reduced"]
    assert table["path"].tolist() == list(result.run.images.path)
    assert table["cluster"].tolist() == result.run.images.cluster.tolist()
    vectors = np.stack(table["vector"].to_numpy())
    assert vectors.shape == (len(table), result.run.extraction.embedding_dim)
    np.testing.assert_allclose(vectors, result.embeddings.features.astype(np.float32))
    np.testing.assert_allclose(np.stack(table["reduced"].to_numpy()), result.run.reduction.features)


def test_embeddings_as_npy_and_csv(labeled_dir: Path, work: Path) -> None:
    result = _build(labeled_dir, work / "npy", save_embeddings="npy")
    out = work / "npy" / "out"
    vectors, reduced = np.load(out / "embeddings.npy"), np.load(out / "embeddings_reduced.npy")
    index = pd.read_csv(out / "embeddings.csv")
    assert list(index.columns) == ["row", "path", "label", "cluster"]
    assert index["row"].tolist() == list(range(len(index)))
    assert vectors.shape == (len(index), result.run.extraction.embedding_dim) and vectors.dtype == np.float32
    assert reduced.shape == result.run.reduction.features.shape
    assert index["path"].tolist() == list(result.run.images.path)


def test_parquet_without_pyarrow_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(InvalidOptionError, match=r"needs pyarrow: pip install 'reportgen\[parquet\]'"):
        Config(data_dir=Path("."), save_embeddings="parquet")
    assert Config(data_dir=Path("."), save_embeddings="npy").save_embeddings == "npy"
