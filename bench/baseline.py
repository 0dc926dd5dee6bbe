"""When does the report say "raw pixels group these images better"? Fit the pixel-baseline margin leave-one-folder-out.

    python bench/baseline.py DATA/* --cache-dir CACHE [--seeds 5] [--json OUT.json]

For each labeled folder:

* the check, as the report runs it (:func:`reportgen.analyze.baseline.baseline_check`): the report's NMI at its
  chosen K against K-means on the thumbnails' 16 x 16 grayscale pixels at that K, one seed; its *margin* is the
  difference;
* the truth it should predict: K-means at the class count on the ``pixels`` spec (the files themselves) against
  the report's own features, ``--seeds`` seeds each; the pixels are *really better* when their mean NMI beats the
  features' by more than twice the larger standard deviation.

Leave-one-folder-out: for each folder, the threshold that classifies the *other* folders best (the check's
margin at least the threshold <=> really better; when several thresholds do equally well, the middle one) is
applied to the left-out folder. Printed: each folder's margin, truth and left-out verdict, then the left-out
accuracy, the warnings given, the warnings missed, and the threshold fitted on all folders.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

import reportgen
from reportgen.analyze.baseline import baseline_check
from reportgen.analyze.labels import label_metrics
from reportgen.cluster import kmeans
from reportgen.extract import extract
from reportgen.reduce import reduce

GRID = tuple(round(v, 3) for v in np.arange(-0.1, 0.41, 0.01))


def nmi_over_seeds(x: np.ndarray, y: np.ndarray, k: int, seeds: int) -> tuple[float, float]:
    values = [label_metrics(y, kmeans(k, s, len(x)).fit_predict(x)).nmi for s in range(seeds)]
    return float(np.mean(values)), float(np.std(values))


def fit(rows: list[dict], exclude: str | None) -> float:
    """The threshold that classifies the rows (less ``exclude``) best; when several do, the middle of them (the
    widest berth on both sides, as a one-dimensional maximum-margin rule), on the grid."""
    train = [r for r in rows if r["folder"] != exclude]
    scores = {t: sum((r["margin"] >= t) == r["truth"] for r in train) for t in GRID}
    best = [t for t in GRID if scores[t] == max(scores.values())]
    middle = (best[0] + best[-1]) / 2
    return min(best, key=lambda t: (abs(t - middle), t))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--json", type=Path)
    p.add_argument("--rows", type=Path, help="refit from the rows a previous --json wrote (no pipeline runs)")
    args = p.parse_args()
    rows = json.loads(args.rows.read_text()) if args.rows else []
    with tempfile.TemporaryDirectory() as tmp:
        for data in [] if args.rows else args.datasets:
            result = reportgen.build_report(
                data, out_dir=Path(tmp) / data.name, cache_dir=args.cache_dir, offline=True, progress=False
            )
            if not result.images.labeled:
                continue
            config, emb = result.config, result.embeddings
            y = np.array(result.images.labels, dtype=object)
            nmi = result.analysis.metrics.nmi
            check = baseline_check(emb.thumbnails, result.clustering.labels, result.clustering.k, y, nmi, config)
            spec = replace(config, backbone="pixels")
            pix = extract(result.images, spec)
            k = len(result.images.classes)
            feat_m, feat_s = nmi_over_seeds(result.reduced.features, y, k, args.seeds)
            pix_m, pix_s = nmi_over_seeds(reduce(pix.features, spec).features, y, k, args.seeds)
            truth = pix_m - feat_m > 2 * max(pix_s, feat_s, 0.005)
            margin = (check.pixels or 0.0) - (check.features or 0.0) if check else float("-inf")
            rows.append({"folder": data.name, "margin": margin, "check_pixels": check.pixels if check else None,
                         "check_features": nmi, "truth": bool(truth), "pixels_class_k": pix_m,
                         "features_class_k": feat_m})  # fmt: skip
            print(f"{data.name:22s} margin {margin:+.3f}  pixels@classK {pix_m:.3f}±{pix_s:.3f}  "
                  f"features@classK {feat_m:.3f}±{feat_s:.3f}  really better: {truth}", flush=True)  # fmt: skip
    print()
    right = warned = missed = false = 0
    for r in rows:
        t = fit(rows, r["folder"])
        says = r["margin"] >= t
        right += says == r["truth"]
        warned += says
        missed += r["truth"] and not says
        false += says and not r["truth"]
        print(f"{r['folder']:22s} left-out threshold {t:+.2f}  warns {says!s:5s}  truth {r['truth']}")
    print(f"\nleft-out: {right}/{len(rows)} right, {warned} warnings, {false} false alarms, {missed} missed; "
          f"threshold on all folders {fit(rows, None):+.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
