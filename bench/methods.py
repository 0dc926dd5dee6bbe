"""Which clustering method and which representation see the classes? Methods x feature specs on many folders.

    python bench/methods.py DATA/* --cache-dir CACHE [--specs A B] [--methods ...] [--seeds 3] [--json OUT.json]

For each labeled folder, :func:`reportgen.compare.run_study` (the code behind ``reportgen compare``) clusters
each spec's vectors with each method once per seed, at the report's own K choice for the spec (the Gaussian
mixture at its lowest BIC, HDBSCAN at its own). Printed: each folder's NMI per configuration (mean over seeds,
and the spread when the seeds disagree), then over the folders, per configuration: the mean NMI, how many
folders it was best on (ties shared), and how many it beat K-means on the same spec by more than the seeds'
spread. No threshold is fitted here, so there is nothing to leave out; the comparison is the result.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from reportgen.compare import run_study
from reportgen.config import Config

SPECS = ("efficientnet-lite0", "efficientnet-lite0@_blocks.11:avg")
METHODS = ("kmeans", "agglomerative", "gmm", "hdbscan", "dec", "ensemble")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--specs", nargs="+", default=list(SPECS))
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for data in args.datasets:
        config = Config(data, cache_dir=args.cache_dir, offline=True, progress=False)
        study = run_study(config, args.specs, args.methods, list(range(args.seeds)))
        if not study.labeled:
            continue
        results[data.name] = {c.name: (c.mean["nmi"] or 0.0, c.sd["nmi"] or 0.0) for c in study.cells}
        row = "  ".join(f"{name.split(' on ')[0][:5]}:{m:.3f}" + (f"±{s:.3f}" if s >= 0.0005 else "")
                        for name, (m, s) in results[data.name].items())  # fmt: skip
        print(f"{data.name:22s} K={','.join(str(k) for k in study.k_by_spec.values())}  {row}", flush=True)
    names = list(next(iter(results.values())))
    best: dict[str, float] = defaultdict(float)
    beats: dict[str, int] = defaultdict(int)
    for scores in results.values():
        top = max(m for m, _ in scores.values())
        winners = [n for n, (m, _) in scores.items() if m >= top - 1e-9]
        for n in winners:
            best[n] += 1 / len(winners)
        for n, (m, s) in scores.items():
            base_m, base_s = scores[f"kmeans on {n.split(' on ', 1)[1]}"]
            beats[n] += m - base_m > max(s, base_s, 1e-9)
    print(f"\n{len(results)} folders, {args.seeds} seeds")
    print(f"{'configuration':48s} {'mean NMI':>8s} {'best on':>7s} {'beats kmeans':>12s}")
    for n in names:
        mean = float(np.mean([scores[n][0] for scores in results.values()]))
        print(f"{n:48s} {mean:8.3f} {best[n]:7.1f} {beats[n]:12d}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
