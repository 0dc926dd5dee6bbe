"""Which layer of the bundled EfficientNet-Lite0, pooled which way, separates a folder's classes? Each layer is
chosen leave-one-folder-out and set against the default features; randomly initialised weights give the floor.

    python bench/layers.py DATA/* --cache CACHE [--batch-size 32] [--threads 2]

For every labeled folder the images are found (``reportgen.discover``) and decoded and preprocessed as the
product does (``DecodeDataset``, efficientnet-lite0's preprocessing, fp32 on the CPU). The trunk (head ``_fc``
replaced by the identity, eval mode) runs once a batch, with the ImageNet weights and with random weights
(``torch.manual_seed(0)``, nothing loaded); one forward pass returns every layer: the stem's activation
(``_swish``), each top-level block ``_blocks.0`` .. ``_blocks.15`` (a module's name is its last node), the head
convolution after its batch norm (``_bn1``) and after the activation (``_swish_1``, the map the default features
average). Each map is pooled avg, max, top10 and gem (``layers.pool_tensor``). ``default`` is the trunk's own
output, the 1280-d input of ``_fc`` that ``--features efficientnet-lite0`` gives; it must equal
``_swish_1:avg``. The pooled arrays and labels go to ``CACHE/<folder>-<weights>.npz``, the scores to
``CACHE/<folder>-<weights>.json``, so a rerun computes only what is missing.

Each (layer, pool) is scored by the product's clustering at the class count: ``reduce`` (signed square root, L2,
PCA to 50, default Config), K-means (``cluster``, seed 0), NMI against the class folders.

Prints, per folder: its kind, the default's NMI, the (layer, pool) with the best mean NMI over the *other*
folders (ImageNet weights) and its NMI there, the best (layer, pool) on the folder in hindsight, and the best and
default of the random weights; then the means, how often the left-out pick beats, ties (within ``TIE``) or loses
to the default, how often it is the same spec, the means by kind, and the mean NMI over folders of every layer x
pool for both weights.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import normalized_mutual_info_score
from torch import nn
from torch.utils.data import DataLoader
from torchvision.models.feature_extraction import create_feature_extractor

from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.extract import layers, resolve
from reportgen.extract.classifiers import BUNDLED, CLASSIFIERS
from reportgen.extract.decode import DecodeDataset, collate
from reportgen.reduce import reduce

SPEC = CLASSIFIERS[BUNDLED]
WEIGHTS = ("imagenet", "random")
DEFAULT = "default"
HEAD = "_swish_1"  # the last map: the trunk averages it into the default features
TIE = 0.01
# The kinds of bench/datasets.py (grayscale photographs apart).
KINDS = {
    "photo": ("tuxpaint-6", "tuxpaint-4", "sample-4", "sample-merged-3", "gcompris-photos-2", "monuments-3"),
    "gray photo": ("visp-scenes-4", "lfw-faces-2"),
    "drawing": ("art4apps-12", "art4apps-6", "openclipart-20", "cards-4", "wesnoth-portraits-10"),
    "icon": ("oxygen-icons-8", "twemoji-24", "emoji-vendors-2"),
    "sprite": ("wesnoth-units-14", "supertux-28"),
    "glyph": ("digits-10", "digits-close-3", "glyphs-26", "font-digits-2"),
    "synthetic": ("shapes-6", "shapes-3"),
}
KIND_OF = {name: kind for kind, names in KINDS.items() for name in names}


def trunk(weights: str) -> nn.Module:
    """EfficientNet-Lite0 with ``_fc`` replaced by the identity, in eval mode: the product's trunk with the bundled
    ImageNet weights, or its trunk built without weights (seeded random initialisation)."""
    torch.manual_seed(0)
    base = resolve(BUNDLED, None, True)
    return base.load().network.eval() if weights == "imagenet" else base.blank()


def layer_names(model: nn.Module) -> list[str]:
    """The stem's activation, every top-level block, the head convolution's batch norm and its activation."""
    names = ["_swish", *(f"_blocks.{i}" for i in range(len(model._blocks))), "_bn1", HEAD]
    nodes = layers._node_names(model)
    missing = [n for n in names if n not in nodes and not any(node.startswith(n + ".") for node in nodes)]
    if missing:
        raise SystemExit(f"the trunk's graph has no node {', '.join(missing)}")
    return names


def embed(folder: Path, model: nn.Module, names: list[str], batch_size: int) -> dict[str, np.ndarray]:
    """Every layer pooled every way (``layer:pool``), ``default`` and ``labels`` for the images of ``folder``."""
    images = discover(Config(data_dir=folder))
    if not images.labeled:
        raise SystemExit(f"{folder}: no class folders")
    last = layers._node_names(model)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train-mode and eval-mode graphs differ: we use eval
        body = create_feature_extractor(model, return_nodes=[*names, last])
    items = [(str(i), rel) for i, rel in enumerate(images.paths)]
    data = DecodeDataset(images.root, items, SPEC.preprocessing, raw_jpegs=False)
    parts: dict[str, list[np.ndarray]] = {}
    kept: list[int] = []
    with torch.inference_mode():
        for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate):
            for key, reason in batch.failed:
                print(f"  {folder.name}: left out {images.paths[int(key)]}: {reason}", flush=True)
            if batch.pixels is None:
                continue
            out = body(batch.pixels)
            for name in names:
                for pool in layers.MAP_POOLS:
                    parts.setdefault(f"{name}:{pool}", []).append(layers.pool_tensor(out[name], pool).numpy())
            parts.setdefault(DEFAULT, []).append(out[last].numpy())
            kept += [int(key) for key in batch.keys]
    arrays = {spec: np.concatenate(chunks) for spec, chunks in parts.items()}
    gap = float(np.abs(arrays[DEFAULT] - arrays[f"{HEAD}:avg"]).max())
    if gap > 1e-5 * max(1.0, float(np.abs(arrays[DEFAULT]).max())):
        raise SystemExit(f"{folder.name}: the trunk's output is not {HEAD}:avg (largest difference {gap:.3g})")
    return arrays | {"labels": np.array([images.labels[i] for i in kept])}


def features(folder: Path, weights: str, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """:func:`embed`'s arrays, from ``--cache`` when there."""
    path = args.cache / f"{folder.name}-{weights}.npz"
    if path.exists():
        with np.load(path) as npz:
            return dict(npz)
    model = trunk(weights)
    arrays = embed(folder, model, layer_names(model), args.batch_size)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return arrays


def scores(folder: Path, weights: str, args: argparse.Namespace) -> dict[str, float]:
    """NMI at the class count of the product's reduce and K-means, for every array of :func:`features`."""
    path = args.cache / f"{folder.name}-{weights}.json"
    if path.exists():
        return json.loads(path.read_text())
    arrays = features(folder, weights, args)
    labels = arrays.pop("labels")
    config = Config(data_dir=folder)
    k = len(set(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # features alike on every image: fewer distinct clusters
        nmi = {
            spec: float(normalized_mutual_info_score(labels, cluster(reduce(x, config), k, config).labels))
            for spec, x in arrays.items()
        } | {"n": len(labels), "k": k}
    path.write_text(json.dumps(nmi))
    return nmi


def mean_of(folders: list[dict[str, float]], spec: str) -> float:
    return float(np.mean([f[spec] for f in folders]))


def tally(diff: np.ndarray) -> str:
    """``beats B, ties T, loses L``: how often a difference of NMI is at least ``TIE``, within it, or below."""
    wins, ties = int((diff >= TIE).sum()), int((np.abs(diff) < TIE).sum())
    return f"beats {wins}, ties {ties}, loses {len(diff) - wins - ties}"


def per_folder(folders: list[Path], pre: list[dict[str, float]], rnd: list[dict[str, float]], specs: list[str]) -> None:
    """The per-folder table, the left-out picks against the default, and the means by kind."""
    n = len(folders)
    picks = [max(specs, key=lambda s, i=i: mean_of(pre[:i] + pre[i + 1 :], s)) for i in range(n)]
    print(f"\nNMI at the class count (product reduce + K-means, seed 0); left-out pick: best mean NMI on the other "
          f"{n - 1} folders (ImageNet weights)")  # fmt: skip
    print(f"{'folder':22s} {'kind':10s} {'N':>4s} {'K':>3s} {'default':>7s}  {'left-out pick':18s} {'NMI':>5s} "
          f"{'diff':>6s}  {'best in hindsight':18s} {'NMI':>5s}  {'random best':18s} {'NMI':>5s} "
          f"{'rnd def':>7s}")  # fmt: skip
    rows = []
    for data, f, r, pick in zip(folders, pre, rnd, picks, strict=True):
        top, rtop = max(specs, key=f.get), max(specs, key=r.get)
        rows.append((f[DEFAULT], f[pick], f[top], r[rtop], r[DEFAULT]))
        print(f"{data.name:22s} {KIND_OF.get(data.name, '?'):10s} {f['n']:4d} {f['k']:3d} {f[DEFAULT]:7.3f}  "
              f"{pick:18s} {f[pick]:5.3f} {f[pick] - f[DEFAULT]:+6.3f}  {top:18s} {f[top]:5.3f}  "
              f"{rtop:18s} {r[rtop]:5.3f} {r[DEFAULT]:7.3f}")  # fmt: skip
    m = np.mean(rows, axis=0)
    print(f"{'mean':22s} {'':10s} {'':4s} {'':3s} {m[0]:7.3f}  {'':18s} {m[1]:5.3f} {m[1] - m[0]:+6.3f}  "
          f"{'':18s} {m[2]:5.3f}  {'':18s} {m[3]:5.3f} {m[4]:7.3f}")  # fmt: skip

    diff = np.array([row[1] - row[0] for row in rows])
    print(f"\nleft-out pick vs default: {tally(diff)} of {n} (tie: |diff| < {TIE})")
    common = Counter(picks).most_common()
    print(f"left-out picks: {len(common)} distinct; " + ", ".join(f"{s} {c}/{n}" for s, c in common))
    fixed = max(specs, key=lambda s: mean_of(pre, s))
    print(f"best single spec on all {n} folders (in-sample): {fixed} mean {mean_of(pre, fixed):.3f} vs default "
          f"{m[0]:.3f}; {tally(np.array([f[fixed] - f[DEFAULT] for f in pre]))}")  # fmt: skip

    print(f"\n{'kind':10s} {'folders':>7s} {'default':>7s} {'left-out':>8s} {'hindsight':>9s} {'rnd best':>8s}  "
          f"left-out pick vs default")  # fmt: skip
    for kind in [*KINDS, "?"]:
        idx = [i for i, d in enumerate(folders) if KIND_OF.get(d.name, "?") == kind]
        if idx:
            k = np.mean([rows[i] for i in idx], axis=0)
            print(f"{kind:10s} {len(idx):7d} {k[0]:7.3f} {k[1]:8.3f} {k[2]:9.3f} {k[3]:8.3f}  {tally(diff[idx])}")


def matrix(nmi: dict[str, list[dict[str, float]]], names: list[str]) -> None:
    """Mean NMI over the folders of every layer x pool, for each weights."""
    shapes = layers._shapes(trunk("random"), names, SPEC.preprocessing.crop)
    pools = " ".join(f"{p:>6s}" for p in layers.MAP_POOLS)
    print(f"\nmean NMI over {len(nmi['imagenet'])} folders, layer x pool")
    print(f"{'layer':12s} {'C x H x W':>14s}  " + "  ".join(f"{w + ':':9s} {pools}" for w in nmi))
    for name in names:
        cells = ["".join(f" {mean_of(f, f'{name}:{p}'):6.3f}" for p in layers.MAP_POOLS) for f in nmi.values()]
        print(f"{name:12s} {' x '.join(map(str, shapes[name])):>14s}  " + "  ".join(f"{'':9s}{c}" for c in cells))
    print(
        f"{DEFAULT:12s} {'1280':>14s}  "
        + "  ".join(f"{'':9s} {mean_of(f, DEFAULT):6.3f}{'':21s}" for f in nmi.values())
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", type=Path, help="labeled folders, DATA/<class>/<images>")
    p.add_argument("--cache", type=Path, required=True, help="folder for the pooled features and scores")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    names = layer_names(trunk("random"))
    specs = [f"{name}:{pool}" for name in names for pool in layers.MAP_POOLS]
    folders = sorted(args.datasets, key=lambda d: d.name)
    nmi: dict[str, list[dict[str, float]]] = {w: [] for w in WEIGHTS}
    for data in folders:
        start = time.perf_counter()
        for weights in WEIGHTS:
            nmi[weights].append(scores(data, weights, args))
        print(f"{data.name}: {time.perf_counter() - start:.0f} s", flush=True)
    per_folder(folders, nmi["imagenet"], nmi["random"], specs)
    matrix(nmi, names)


if __name__ == "__main__":
    main()
