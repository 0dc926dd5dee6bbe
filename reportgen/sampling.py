"""Seeded samples, and the size past which the clustering stages work on one (documented in the README)."""

from __future__ import annotations

import numpy as np

# Past this many images: PCA is fitted on a seeded sample and applied in chunks, the K sweep runs on a seeded
# sample, and the final clustering uses MiniBatchKMeans.
LARGE_N = 20_000
CHUNK = 50_000


def seeded_sample(n: int, size: int, seed: int) -> np.ndarray:
    """``min(n, size)`` distinct indices of ``range(n)``, sorted; all of them when ``n <= size``."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
