"""float16 features against float32: does rounding the stored features change the chosen K or the clusters?

    python bench/float16.py FEATURES/*.npz

Each ``.npz`` holds one labeled folder's float32 features (``feats``, N x D, as the embed stage computed them) and
class labels (``y``). For each, the product's reduce, K choice (default Config) and clustering at the chosen K run
on the float32 features and on the same features rounded to float16 (what the embedding cache now stores); prints
both Ks and NMIs, then how many folders keep their K, the within-one count against the class count, and the mean
NMI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from reportgen.choose_k import choose_k
from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.reduce import reduce


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args()
    cfg = Config(Path.cwd())
    rows = []
    for path in args.files:
        data = np.load(path)
        y, classes = data["y"], len(set(data["y"]))
        result = []
        for feats in (data["feats"].astype(np.float32), data["feats"].astype(np.float16)):
            space = reduce(feats, cfg)
            k = choose_k(space, cfg).chosen_k
            result += [k, normalized_mutual_info_score(y, cluster(space, k, cfg).labels)]
        rows.append((classes, *result))
        print(f"{path.stem:22s} C={classes:2d}  float32 K={result[0]:2d} NMI={result[1]:.3f}  "
              f"float16 K={result[2]:2d} NMI={result[3]:.3f}", flush=True)  # fmt: skip
    within = [sum(abs(r[i] - r[0]) <= 1 for r in rows) for i in (1, 3)]
    print(f"folders={len(rows)} same_K={sum(r[1] == r[3] for r in rows)} within_one float32={within[0]} "
          f"float16={within[1]} mean_NMI float32={np.mean([r[2] for r in rows]):.4f} "
          f"float16={np.mean([r[4] for r in rows]):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
