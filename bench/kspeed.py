"""Choosing K on many real images: seconds for the report's K sweep, against one K-means fit in the same run.

    python bench/kspeed.py DATA [DATA ...] --cache-dir CACHE [--n 10000] [--k-max 15] [--seed 0]

The embeddings of the given labeled folders (bench/datasets.py builds them; the first run embeds them, later
runs read the cache) are pooled; when they number fewer than ``--n`` images, seeded copies with a little noise
(1% of the features' spread) fill up to ``--n``, so the rows keep the shapes of real CNN features rather than
generated Gaussian clusters. The product's reduce then its ``choose_k`` (the memo off) run on them; the baseline is
one K-means fit (the product's ``n_init``) at K = ``--k-max`` on the same rows. Prints the stages' seconds and the
last line ``N=<n> choose_k_seconds=<s> one_fit_seconds=<s> ratio=<r> chosen_k=<k> confidence=<c>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from reportgen.choose_k import choose_k
from reportgen.cluster import kmeans
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.extract import extract
from reportgen.reduce import directions, reduce


def pooled_features(folders: list[Path], cache_dir: Path | None) -> np.ndarray:
    rows = []
    for data in folders:
        config = Config.coerce(data, cache_dir=cache_dir, offline=True, progress=False)
        rows.append(extract(discover(config), config).features)
    return np.concatenate(rows).astype(np.float32)


def filled(features: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows: all of ``features`` (or a seeded sample), then noisy copies of seeded rows."""
    rng = np.random.default_rng(seed)
    if len(features) >= n:
        return features[np.sort(rng.choice(len(features), n, replace=False))]
    extra = features[rng.choice(len(features), n - len(features))]
    extra = extra + rng.normal(0, 0.01 * float(features.std()), extra.shape).astype(np.float32)
    return np.concatenate([features, extra])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--k-max", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    start = time.perf_counter()
    features = filled(pooled_features(args.datasets, args.cache_dir), args.n, args.seed)
    print(f"embeddings: {len(features)} x {features.shape[1]} ({time.perf_counter() - start:.1f} s)", flush=True)
    config = Config.coerce(args.datasets[0], k_max=args.k_max, seed=args.seed, use_cache=False, progress=False)
    start = time.perf_counter()
    reduced = reduce(features, config)
    print(f"reduce: {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    kmeans(args.k_max, args.seed, len(features)).fit(directions(reduced.features))
    one_fit = time.perf_counter() - start
    start = time.perf_counter()
    selection = choose_k(reduced, config)
    seconds = time.perf_counter() - start
    print(
        f"N={len(features)} choose_k_seconds={seconds:.1f} one_fit_seconds={one_fit:.2f} "
        f"ratio={seconds / one_fit:.1f} chosen_k={selection.chosen_k} confidence={selection.confidence}"
    )


if __name__ == "__main__":
    main()
