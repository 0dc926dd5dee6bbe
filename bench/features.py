"""Feature specs: the embed stage's rate for the default spec against an older checkout, and what a stack costs.

    python bench/features.py [DATA_DIR] [--baseline-tree DIR] [--repeat 3] [--times 2]

Each measurement is a fresh process running the real embed stage (``reportgen.extract.extract``, the cache off,
``--precision fp32``, default batch and workers) over the folder's images (copied ``--times`` over). Every time
includes loading the model (and, for layer specs, tracing its graph), as a user's run does. Rows:

* ``default``: ``efficientnet-lite0``, with this tree and, with ``--baseline-tree``, with that checkout (e.g. a
  ``git worktree`` of the commit before): the same images in the same run, alternated, so load changes hit both;
* ``stack of 3``: ``efficientnet-lite0@_blocks.6:max+efficientnet-lite0@_blocks.10:gem+efficientnet-lite0``, one
  forward pass;
* ``3 runs``: the same three specs embedded one after the other (what a stack saves).

Prints seconds (median of ``--repeat``), img/s and the ratio to ``default`` measured in this run. Last, the
storage of the default spec's features at 1,000,000 images: the feature array of ``--entries`` real cache entries
(``EmbeddingCache.put``, thumbnails apart) on disk, and the in-memory matrix, scaled to 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LITE = "efficientnet-lite0"
THREE = (f"{LITE}@_blocks.6:max", f"{LITE}@_blocks.10:gem", LITE)
CHILD = """
import sys, time
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.extract import extract
cfg = Config(sys.argv[1], backbone=sys.argv[2], use_cache=False, precision="fp32", progress=False)
images = discover(cfg)
t = time.perf_counter()
emb = extract(images, cfg)
print(time.perf_counter() - t, emb.features.shape[0], emb.features.shape[1])
"""


def _time(tree: Path, folder: Path, spec: str) -> tuple[float, int, int]:
    """Seconds to embed ``folder`` with ``spec`` using the reportgen package in ``tree``, image count, width."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), spec], env=env, check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1]), int(out[2])


def _copies(source: Path, dest: Path, times: int) -> Path:
    """``source``'s class folders copied ``times`` over (distinct file names, same content: the cache is off)."""
    for i in range(times):
        for path in sorted(source.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                target = dest / path.relative_to(source).parent / f"{i}-{path.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", nargs="?", type=Path, default=REPO / "sample_data")
    p.add_argument("--baseline-tree", type=Path, help="a checkout whose default spec is measured beside this one")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--times", type=int, default=2, help="embed the folder's images this many times over")
    p.add_argument("--entries", type=int, default=500, help="cache entries written to measure the disk per image")
    args = p.parse_args()
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copies(args.data_dir, Path(tmp) / "data", args.times)
        n = dim = 0
        for _ in range(args.repeat):
            if args.baseline_tree:
                rows.setdefault(f"default ({args.baseline_tree.name})", []).append(
                    _time(args.baseline_tree, folder, LITE)[0]
                )
            seconds, n, _ = _time(REPO, folder, LITE)
            rows.setdefault("default (this tree)", []).append(seconds)
            seconds, _, dim = _time(REPO, folder, "+".join(THREE))
            rows.setdefault("stack of 3 (one pass)", []).append(seconds)
            rows.setdefault("3 runs (3 passes)", []).append(sum(_time(REPO, folder, spec)[0] for spec in THREE))
        disk = _feature_bytes_on_disk(Path(tmp) / "cache", args.entries)
    base = statistics.median(rows["default (this tree)"])
    print(f"{n} images ({args.times} x {args.data_dir}), fp32, cache off, model load included; stack width {dim}")
    print(f"{'':28s} {'seconds':>8s} {'img/s':>7s} {'ratio':>6s}")
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"{name:28s} {med:8.1f} {n / med:7.1f} {base / med:6.2f}")
    memory = np.empty((1, 1280), dtype=np.float16).nbytes * 1_000_000
    print(f"1,000,000 x 1280 features: {disk * 1_000_000 / 1e9:.2f} GB on disk (float16 in the cache entries), "
          f"{memory / 1e9:.2f} GB in memory (Embeddings.features, float16)")  # fmt: skip


def _feature_bytes_on_disk(root: Path, n: int) -> float:
    """Mean bytes per cache entry of the features alone: entries with a thumbnail, less entries' thumbnails."""
    from reportgen.cache import CacheEntry, EmbeddingCache

    rng = np.random.default_rng(0)
    sizes = []
    for with_features in (True, False):
        cache = EmbeddingCache(root / str(with_features), "bench", 1280 if with_features else 0)
        for i in range(n):
            feats = np.maximum(rng.normal(size=1280 if with_features else 0), 0).astype(np.float32)
            cache.put(f"{i:040x}", CacheEntry(feats, np.zeros(5, np.int32), np.zeros(5, np.float32), b"\xff\xd8"))
        sizes.append(sum(f.stat().st_size for f in cache.folder.rglob("*.npz")) / n)
    return sizes[0] - sizes[1]


if __name__ == "__main__":
    main()
