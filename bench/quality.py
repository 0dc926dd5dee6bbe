"""Choosing K, measured leave-one-folder-out on labeled folders.

    python bench/quality.py DATA/* --cache-dir CACHE [--seed N] [--k-max 30] [--sweeps FILE]

Step 1 (per folder, saved to ``--sweeps``, a JSON file, so the rules can be re-scored without re-running): the real
pipeline (``reportgen.build_report``) embeds and reduces the folder; then :func:`reportgen.choose_k.choose_k`
sweeps K over 2..``--k-max`` and records every criterion's curve (silhouette, Calinski-Harabasz, Davies-Bouldin,
stability, the elbow), and ``bench/kcriteria.py`` adds the candidate criteria on the same unit-length rows
(prediction strength, the gap statistic, silhouette after UMAP, consensus over resamples, Gaussian-mixture BIC;
and as counts G-means, X-means, the kNN-graph eigengap, HDBSCAN and the ImageNet-prediction dendrogram). It also
records NMI of the report's clustering at every K and at the class count.

Step 2: rules, scored leave-one-folder-out. Three families of rules:

* ``rank``: the K with the best mean rank over a subset (one to four) of the curve criteria, K up to 15 or 30
  (the product's rule is silhouette, Calinski-Harabasz, Davies-Bouldin and stability, K up to 15);
* ``threshold``: the largest K whose prediction strength or stability is at least t, or whose consensus PAC is at
  most t (Tibshirani and Walther's own rule for prediction strength), for a grid of t, K up to 15 or 30;
* ``count``: a criterion that gives one K (no parameter).

For each folder, the rule right (within one of the class count; ties: NMI at least 0.95 of NMI at the class
count) on the most *other* folders is applied to it; only those left-out results are the score, per family and
over all families, with the in-sample best beside them. The same figures are split by whether the features see
the classes at all (NMI at the class count at least ``SEES``). "Confidence" is the share of single-criterion
picks within one of the chosen K; its "high" threshold is fitted the same way: the lowest agreement at which the
other folders' choices are right at least 90% of the time. Last, how often the class count lies in the
report's plausible range of K (``choose_k.RANGE_RANK``), widened by one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import kcriteria
import numpy as np
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import NearestNeighbors

import reportgen
from reportgen.choose_k import CURVES, RANGE_RANK, choose_k
from reportgen.cluster.stage import cluster
from reportgen.reduce import directions

HIGHER = dict(CURVES) | kcriteria.HIGHER
PRODUCT = ("silhouette", "calinski_harabasz", "davies_bouldin", "stability")
PRODUCT_RULE = ("rank", tuple(sorted(PRODUCT)), 15)
THRESHOLDS = {
    "prediction_strength": np.arange(0.3, 0.96, 0.05),
    "stability": np.arange(0.5, 0.96, 0.05),
    "consensus_pac": np.arange(0.02, 0.41, 0.02),
}
SEES = 0.5  # NMI at the class count from which the features are said to see the classes
HIGH_RIGHT = 0.9  # "high" must be right this often


def sweep(data: Path, args: argparse.Namespace, tmp: Path, old: dict | None = None) -> dict:
    """Everything step 2 needs about one folder (with ``old``, the report's own sweep is kept and only the
    candidates are measured again)."""
    result = reportgen.build_report(
        data, out_dir=tmp / data.name, cache_dir=args.cache_dir, progress=False, offline=True, seed=args.seed
    )
    reduced, images, embeddings = result.reduced, result.images, result.embeddings
    x = directions(reduced.features)
    if old is None:
        config = replace(result.config, k_max=args.k_max, k=None)
        sel = choose_k(reduced, config)
        y = np.array(images.labels, dtype=object)
        true_k = len(images.classes)
        old = {
            "name": data.name,
            "n": len(x),
            "true_k": true_k,
            "ks": list(sel.ks),
            "curves": {name: list(values) for name, values in sel.curves.items()},
            "elbow": sel.picks.get("elbow"),
            "nmi": [float(normalized_mutual_info_score(y, cluster(reduced, k, config).labels)) for k in sel.ks],
            "nmi_true": float(normalized_mutual_info_score(y, cluster(reduced, true_k, config).labels)),
            "nn_agree": float(_neighbour_agreement(x, y)),
        }
    found = kcriteria.measure(x, old["ks"], args.seed, (embeddings.top5_index, embeddings.top5_prob))
    return old | {"curves": old["curves"] | found["curves"], "counts": found["counts"]}


def _neighbour_agreement(x: np.ndarray, y: np.ndarray) -> float:
    """Share of each image's 10 nearest images with its class (how well the features see the classes)."""
    idx = NearestNeighbors(n_neighbors=11).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    return float((y[idx] == y[:, None]).mean())


def pick(folder: dict, name: str) -> int:
    values = np.asarray(folder["curves"][name])
    return folder["ks"][int(np.argmax(values) if HIGHER[name] else np.argmin(values))]


def mean_ranks(folder: dict, subset: tuple[str, ...], k_max: int) -> tuple[list[int], np.ndarray]:
    """The swept K up to ``k_max`` and each one's mean rank over ``subset`` (0 = best; ties share the better)."""
    ks = [k for k in folder["ks"] if k <= k_max]
    ranks = []
    for name in subset:
        v = np.asarray(folder["curves"][name][: len(ks)], dtype=float)
        key = -v if HIGHER[name] else v
        ranks.append(np.array([np.sum(key < key[j] - 1e-12) for j in range(len(ks))]))
    return ks, np.mean(ranks, axis=0)


def mean_rank_k(folder: dict, subset: tuple[str, ...], k_max: int) -> int:
    """The K with the best mean rank over ``subset``, among K <= ``k_max`` (ties: the smaller K)."""
    ks, mean = mean_ranks(folder, subset, k_max)
    return ks[int(np.argmin(mean))]


def threshold_k(folder: dict, name: str, t: float, k_max: int) -> int:
    """The largest K <= ``k_max`` whose ``name`` is at least ``t`` (at most, when lower is better)."""
    values = folder["curves"][name]
    good = [k for k, v in zip(folder["ks"], values, strict=True) if k <= k_max and (v >= t if HIGHER[name] else v <= t)]
    return max(good) if good else folder["ks"][0]


def score(folder: dict, k: int) -> tuple[bool, bool, float]:
    """Within one of the class count; NMI at K at least 0.95 of NMI at the class count; NMI at K (a K outside the
    sweep is scored by the nearest swept K's NMI)."""
    ks = folder["ks"]
    nmi = folder["nmi"][ks.index(min(max(k, ks[0]), ks[-1]))]
    return abs(k - folder["true_k"]) <= 1, nmi >= 0.95 * folder["nmi_true"], nmi


def rules(folders: list[dict], k_max: int) -> dict[tuple, Callable[[dict], int]]:
    """Every rule of the three families, by a key whose first item is the family."""
    curves = sorted(HIGHER)
    out: dict[tuple, Callable[[dict], int]] = {}
    for size in range(1, 5):
        for subset in itertools.combinations(curves, size):
            for cap in (15, k_max):
                out[("rank", subset, cap)] = lambda f, s=subset, c=cap: mean_rank_k(f, s, c)
    for name, grid in THRESHOLDS.items():
        for t in grid:
            for cap in (15, k_max):
                key = ("threshold", name, round(float(t), 2), cap)
                out[key] = lambda f, n=name, t=t, c=cap: threshold_k(f, n, t, c)
    for name in folders[0]["counts"]:
        out[("count", name)] = lambda f, n=name: f["counts"][n] if f["counts"][n] is not None else f["ks"][0]
    return out


def describe(rule: tuple) -> str:
    if rule[0] == "rank":
        return f"mean rank of {'+'.join(rule[1])} (K<={rule[2]})"
    if rule[0] == "threshold":
        return f"largest K with {rule[1]} {'>=' if HIGHER[rule[1]] else '<='} {rule[2]} (K<={rule[3]})"
    return f"{rule[1]} count"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="*", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k-max", type=int, default=30, help="largest K swept (default 30)")
    p.add_argument("--sweeps", type=Path, default=Path("quality-sweeps.json"), help="step 1's results (JSON)")
    args = p.parse_args()
    folders = json.loads(args.sweeps.read_text()) if args.sweeps.exists() else []
    done = {f["name"]: j for j, f in enumerate(folders)}
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            if data.name not in done:
                folders.append(sweep(data, args, Path(tmp)))
            elif "counts" not in folders[done[data.name]]:  # swept before the candidates were added
                folders[done[data.name]] = sweep(data, args, Path(tmp), folders[done[data.name]])
            else:
                continue
            args.sweeps.write_text(json.dumps(folders))
            print(f"swept {data.name}", flush=True)
    n = len(folders)
    table = rules(folders, args.k_max)
    picks = {rule: [fn(f) for f in folders] for rule, fn in table.items()}
    right = {rule: np.array([score(f, k)[:2] for f, k in zip(folders, ks, strict=True)]) for rule, ks in picks.items()}

    def left_out(family: str | None) -> tuple[np.ndarray, list[tuple]]:
        """Per folder (within one, NMI ratio) of the rule fitted on the other folders, and that rule."""
        among = [r for r in table if family in (None, r[0])]
        got, fitted = [], []
        for i in range(n):
            others = np.arange(n) != i
            best = max(among, key=lambda r: (right[r][others, 0].sum(), right[r][others, 1].sum(), r == PRODUCT_RULE))
            got.append(right[best][i])
            fitted.append(best)
        return np.array(got), fitted

    sees = np.array([f["nmi_true"] >= SEES for f in folders])
    got, fitted = left_out(None)
    print(f"\n{'dataset':22s} {'true':>4s} {'NMI@true':>8s} {'product K':>9s} {'ok':>3s}  "
          f"{'left-out K':>10s} {'ok':>3s}  rule fitted on the others")  # fmt: skip
    for f, g, rule, pk in zip(folders, got, fitted, picks[PRODUCT_RULE], strict=True):
        ok = "yes" if score(f, pk)[0] else "no"
        print(f"{f['name']:22s} {f['true_k']:4d} {f['nmi_true']:8.3f} {pk:9d} {ok:>3s}  "
              f"{table[rule](f):10d} {'yes' if g[0] else 'no':>3s}  {describe(rule)}")  # fmt: skip
    print(f"\nfolders={n} (features see the classes, NMI at the class count >= {SEES}: {sees.sum()})")
    print(f"{'rules':34s} {'within one':>12s} {'NMI >= 0.95':>12s} {'within, seen':>12s}  in-sample best")
    product = right[PRODUCT_RULE]
    print(f"{'product rule (not fitted)':34s} {product[:, 0].sum():>9d}/{n} {product[:, 1].sum():>9d}/{n} "
          f"{product[sees, 0].sum():>9d}/{sees.sum()}")  # fmt: skip
    for family in ("rank", "threshold", "count", None):
        got, _ = left_out(family)
        among = [r for r in table if family in (None, r[0])]
        best = max(among, key=lambda r: (right[r][:, 0].sum(), right[r][:, 1].sum()))
        label = f"left-out, {family or 'all'} rules"
        print(f"{label:34s} {got[:, 0].sum():>9d}/{n} {got[:, 1].sum():>9d}/{n} {got[sees, 0].sum():>9d}/{sees.sum()}  "
              f"{right[best][:, 0].sum()}/{n}: {describe(best)}")  # fmt: skip
    print("\nsingle criteria (no fitting): within one / NMI >= 0.95 of NMI at the class count / within, seen")
    singles = [("rank", (name,), 15) for name in sorted(HIGHER)] + [r for r in table if r[0] == "count"]
    for rule in singles:
        r = right[rule]
        seen = f"{r[sees, 0].sum():3d}/{sees.sum()}"
        print(f"  {describe(rule):44s} {r[:, 0].sum():3d}/{n} {r[:, 1].sum():3d}/{n} {seen}")
    elbow = [f["elbow"] is not None and score(f, f["elbow"])[0] for f in folders]
    print(f"  {'elbow of inertia (kneed)':44s} {sum(elbow):3d}/{n}")
    confidence(folders)
    plausible_range(folders)


def agreement(folder: dict, k: int, names: tuple[str, ...]) -> float:
    picks = [pick(folder, n) for n in names] + ([folder["elbow"]] if folder["elbow"] else [])
    return float(np.mean([abs(p - k) <= 1 for p in picks]))


def plausible_range(folders: list[dict]) -> None:
    """How often the class count is in the report's plausible range of K (choose_k.RANGE_RANK), widened by one."""
    inside = 0
    for f in folders:
        ks, mean = mean_ranks(f, PRODUCT, 15)
        order = np.argsort(mean, kind="stable")
        span = [k for k, r in zip(ks, mean, strict=True) if r <= mean.min() + RANGE_RANK] + [ks[j] for j in order[:2]]
        inside += min(span) - 1 <= f["true_k"] <= max(span) + 1
    print(f"\nclass count within the plausible range (widened by one): {inside}/{len(folders)}")


def confidence(folders: list[dict]) -> None:
    """The product rule's agreement, and the "high" threshold fitted leave-one-folder-out."""
    rows = []
    for f in folders:
        k = mean_rank_k(f, PRODUCT, 15)
        rows.append((f["name"], agreement(f, k, PRODUCT), score(f, k)[0]))
    said = right = 0
    for name, agree, ok in rows:
        others = [r for r in rows if r[0] != name]
        threshold = 1.01
        for t in sorted({r[1] for r in others}):
            high = [r[2] for r in others if r[1] >= t]
            if high and np.mean(high) >= HIGH_RIGHT:
                threshold = t
                break
        if agree >= threshold:
            said += 1
            right += ok
    print(f"\nconfidence 'high' (threshold fitted on the others, must be right {HIGH_RIGHT:.0%}): said {said} "
          f"times, right {right}")  # fmt: skip
    for name, agree, ok in rows:
        print(f"  {name:22s} agreement {agree:.2f} right {ok}")


if __name__ == "__main__":
    main()
