"""Exports beside the outputs: each cluster's images as a folder, and the vectors as a file pandas reads.

* ``--export-folders link|copy`` writes ``clusters/<id>-<name>/`` under the out folder, one folder per cluster
  (``clusters/noise/`` for the images a method leaves in no cluster) holding a symbolic link to each image, or a
  copy, at its path relative to the data folder (so two ``img1.jpg`` of different classes stay apart). The new
  tree is built beside the old one and swapped in whole: a rerun never leaves a half-written or stale tree.
* ``--save-embeddings parquet|npy`` writes the vectors: ``embeddings.parquet`` with the columns ``path``,
  ``label``, ``cluster``, ``vector`` (the backbone's features, float32) and ``reduced`` (the clustering space:
  after the signed square root, L2 and PCA), read with ``pandas.read_parquet("out/embeddings.parquet")``
  (needs pyarrow: ``pip install 'reportgen[parquet]'``); or ``embeddings.npy`` (N x D), ``embeddings_reduced.npy``
  and ``embeddings.csv`` (``row``, ``path``, ``label``, ``cluster``; row ``i`` of the arrays), read with
  ``numpy.load`` and ``pandas.read_csv``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ReportgenError
from .fsutil import EXPORTS as FOLDERS
from .fsutil import on_disk, write_together
from .run import Run

log = logging.getLogger(__name__)

NOISE_FOLDER = "noise"


def export(run: Run, features: np.ndarray) -> list[Path]:
    """The exports ``run.config`` asks for; returns what was written."""
    config = run.config
    written = []
    if config.export_folders is not None:
        written.append(export_folders(run, config.export_folders))
    if config.save_embeddings is not None:
        written += save_embeddings(run, features, config.save_embeddings)
    return written


def folder_name(cluster: int, name: str) -> str:
    """``3-dams-and-windmills``: the cluster's id and its name, made safe as one file name."""
    if cluster < 0:
        return NOISE_FOLDER
    slug = re.sub(r"[^\w.-]+", "-", name, flags=re.UNICODE).strip("-.")[:60]
    return f"{cluster}-{slug}" if slug else str(cluster)


def export_folders(run: Run, how: str) -> Path:
    """Write ``clusters/`` under the out folder (``how``: ``link`` or ``copy``) and return it."""
    out = run.config.out_dir
    root = run.config.data_dir.resolve()
    names = {c.cluster: folder_name(c.cluster, c.name) for c in run.analysis.clusters}
    target = out / FOLDERS
    staging = Path(tempfile.mkdtemp(dir=out, prefix=f".{FOLDERS}."))
    try:
        for rel, cluster in zip(run.images.path, run.images.cluster, strict=True):
            dest = staging / names[int(cluster)] / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if how == "link":
                os.symlink(on_disk(root, rel), dest)
            else:
                shutil.copy2(on_disk(root, rel), dest)
        for name in set(names.values()):  # a cluster with no image is still a folder
            (staging / name).mkdir(exist_ok=True)
        old = None
        if target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(dir=out, prefix=f".{FOLDERS}.old."))
            os.replace(target, old / FOLDERS)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ReportgenError(f"cannot write the cluster folders in '{target}': {exc.strerror or exc}") from None
    log.info("wrote %s (%s of %d images)", target, "links" if how == "link" else "copies", len(run.images.path))
    return target


def save_embeddings(run: Run, features: np.ndarray, fmt: str) -> list[Path]:
    """Write the vectors as ``fmt`` (``parquet`` or ``npy``) in the out folder; returns the files."""
    out = run.config.out_dir
    vectors = np.asarray(features, dtype=np.float32)
    reduced = np.asarray(run.reduction.features, dtype=np.float32)
    table = pd.DataFrame(
        {"path": list(run.images.path), "label": list(run.images.label), "cluster": run.images.cluster.astype(int)}
    )
    if fmt == "parquet":
        import io

        table["vector"] = list(vectors)
        table["reduced"] = list(reduced)
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        files = {"embeddings.parquet": buf.getvalue()}
    else:
        files = {"embeddings.npy": _npy(vectors), "embeddings_reduced.npy": _npy(reduced)}
        files["embeddings.csv"] = table.rename_axis("row").reset_index().to_csv(index=False).encode("utf-8")
    try:
        write_together(out, files)
    except OSError as exc:
        raise ReportgenError(f"cannot write the embeddings in '{out}': {exc.strerror or exc}") from None
    return [out / name for name in files]


def _npy(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
