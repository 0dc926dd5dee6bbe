"""How long does ``reportgen compare`` take once the embeddings are cached?

    python bench/compare.py DATA [DATA ...] --cache-dir CACHE [--n 1000] [--seeds 5]

Builds a folder of ``--n`` images (symbolic links, ``<folder>-<class>/<file>``) from the given labeled folders, in
order, embeds it once with the three specs (so the cache is warm), then times in the same process:

* the baseline: ``compare`` with one spec, K-means and one seed (one clustering, the report's K choice included);
* the study: ``compare`` with 3 specs x 3 methods (kmeans, agglomerative, hdbscan) x ``--seeds`` seeds;
* the same with other seeds (``--seed 1000``), whose K sweeps are not yet memoised in the cache folder.

Prints both times, their ratio, the time per clustering, and whether the study stays under 3 minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reportgen.cli import main

SPECS = ("efficientnet-lite0", "efficientnet-lite0@_blocks.11:avg", "efficientnet-lite0@_blocks.14:avg")
METHODS = ("kmeans", "agglomerative", "hdbscan")
LIMIT_S = 180.0


def build(folders: list[Path], n: int, root: Path) -> int:
    """Link the first ``n`` images of ``folders`` (class subfolders) into ``root``; returns how many."""
    count = 0
    for folder in folders:
        for image in sorted(p for p in folder.rglob("*") if p.is_file()):
            if count >= n:
                return count
            target = root / f"{folder.name}-{image.parent.name}" / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(image.resolve())
            count += 1
    return count


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    assert main(args) == 0, args
    return time.perf_counter() - start


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        n = build(args.datasets, args.n, data)
        common = [str(data), "--cache-dir", str(args.cache_dir), "--offline", "-q"]
        warm = timed(["compare", *common, "--features", *SPECS, "--methods", "kmeans", "--seeds", "1",
                      "-o", f"{tmp}/warm"])  # fmt: skip
        base = timed(["compare", *common, "--features", SPECS[0], "--methods", "kmeans", "--seeds", "1",
                      "-o", f"{tmp}/base"])  # fmt: skip
        study = timed(["compare", *common, "--features", *SPECS, "--methods", *METHODS, "--seeds", str(args.seeds),
                       "-o", f"{tmp}/study"])  # fmt: skip
        fresh = timed(["compare", *common, "--features", *SPECS, "--methods", *METHODS, "--seeds", str(args.seeds),
                       "--seed", "1000", "-o", f"{tmp}/fresh"])  # fmt: skip
    runs = len(SPECS) * len(METHODS) * args.seeds
    print(f"images={n} warm-up (embeds what the cache lacks)={warm:.1f}s")
    print(f"baseline 1 spec x kmeans x 1 seed: {base:.1f}s")
    print(f"study {len(SPECS)} specs x {len(METHODS)} methods x {args.seeds} seeds = {runs} clusterings: {study:.1f}s "
          f"({study / base:.1f}x the baseline, {study / runs:.2f}s per clustering)")  # fmt: skip
    print(f"the same with seeds 1000.. (each spec's K sweep not memoised yet): {fresh:.1f}s")
    print(f"under {LIMIT_S:.0f}s: {'yes' if max(study, fresh) < LIMIT_S else 'NO'}")


if __name__ == "__main__":
    run()
