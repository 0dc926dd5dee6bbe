"""Clustering quality on labeled folders: the chosen K against the true class count, and NMI at both.

    python bench/quality.py DATASET [DATASET ...] [--backbone efficientnet-lite0] [--cache-dir DIR] [--seed N]

Runs the real pipeline (``reportgen.build_report``) on each folder, then clusters the same reduced features
at the true K. Prints one row per dataset: true K, each criterion's K, the chosen K and its confidence, and
NMI / ARI / purity at the chosen K and at the true K; then one summary line. bench/datasets.py builds the
folders used in docs/quality.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import reportgen
from reportgen.analyze.labels import label_metrics
from reportgen.cluster.stage import cluster

CRITERIA = ("elbow", "silhouette", "calinski_harabasz", "davies_bouldin", "stability")
SHORT = {"elbow": "elb", "silhouette": "sil", "calinski_harabasz": "CH", "davies_bouldin": "DB", "stability": "stab"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0, help="seed for PCA and every K-means (docs/quality.md uses 0..4)")
    args = p.parse_args()

    header = (
        f"{'dataset':18s} {'true':>4s} "
        + " ".join(f"{SHORT[c]:>4s}" for c in CRITERIA)
        + f" {'K':>3s} {'conf':6s} {'NMI@K':>6s} {'ARI@K':>6s} {'pur@K':>6s} {'NMI@true':>8s} {'ratio':>6s}"
    )
    print(header)
    within = ratio_ok = 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            result = reportgen.build_report(
                data,
                out_dir=Path(tmp) / data.name,
                backbone=args.backbone,
                cache_dir=args.cache_dir,
                progress=False,
                offline=True,
                seed=args.seed,
            )
            sel, images = result.k_selection, result.images
            y = np.array(images.labels, dtype=object)
            true_k = len(images.classes)
            at_k = result.analysis.metrics
            at_true = label_metrics(y, cluster(result.reduced, true_k, result.config).labels)
            ratio = at_k.nmi / at_true.nmi if at_true.nmi > 0 else float("nan")
            within += abs(sel.chosen_k - true_k) <= 1
            ratio_ok += ratio >= 0.95
            picks = " ".join(f"{'-' if sel.picks.get(c) is None else sel.picks[c]:>4}" for c in CRITERIA)
            rows.append((data.name, at_k.nmi))
            print(
                f"{data.name:18s} {true_k:4d} {picks} {sel.chosen_k:3d} {sel.confidence:6s} {at_k.nmi:6.3f} "
                f"{at_k.ari:6.3f} {at_k.purity:6.3f} {at_true.nmi:8.3f} {ratio:6.2f}"
            )
    n = len(args.datasets)
    print(f"datasets={n} chosen_k_within_one_of_true={within}/{n} nmi_at_chosen_ge_0.95_of_true={ratio_ok}/{n}")


if __name__ == "__main__":
    main()
