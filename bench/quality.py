"""Choosing K, measured leave-one-folder-out on labeled folders.

    python bench/quality.py DATA/* --cache-dir CACHE [--seed N] [--k-max 30] [--sweeps FILE]

Step 1 (per folder, saved to ``--sweeps``, a JSON file, so the rules can be re-scored without re-running): the real
pipeline (``reportgen.build_report``) embeds and reduces the folder; then :func:`reportgen.choose_k.choose_k`
sweeps K over 2..``--k-max`` and records every criterion's curve (silhouette, Calinski-Harabasz, Davies-Bouldin,
stability, the elbow), and this script adds candidate criteria measured on the same directions:

* ``prediction_strength`` (Tibshirani and Walther 2005): cluster two halves of the images, and for each cluster of
  the test half the share of its pairs that the training half's centres also put together (the worst cluster);
* ``bic``: a Gaussian mixture (diagonal covariances) fitted at each K, lower is better;
* ``eigengap``: the largest gap in the eigenvalues of the normalised Laplacian of the 10-nearest-neighbour graph
  (its position is the K it picks);
* ``hdbscan``: the number of clusters HDBSCAN finds (a K, no curve).

It also records NMI of the K-means clustering at every K, and at the true K (the class count).

Step 2: rules, scored leave-one-folder-out. A rule is the mean rank over a subset of the curve criteria (the
product's rule is the subset silhouette, Calinski-Harabasz, Davies-Bouldin and stability). For each folder, the
subset that is right (within one of the class count) on the most *other* folders is applied to it; the printed
figures are those left-out results, with the in-sample figures of the product's rule beside them. "Confidence" is
the share of single-criterion picks within one of the chosen K; its "high" threshold is fitted the same way: the
lowest agreement at which the other folders' choices are right at least 90% of the time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import HDBSCAN
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors, kneighbors_graph

import reportgen
from reportgen.choose_k import CURVES, choose_k
from reportgen.cluster import kmeans
from reportgen.cluster.stage import cluster
from reportgen.reduce import directions

HIGHER = dict(CURVES) | {"prediction_strength": True, "bic": False}
PRODUCT = ("silhouette", "calinski_harabasz", "davies_bouldin", "stability")
HIGH_RIGHT = 0.9  # "high" must be right this often


def prediction_strength(x: np.ndarray, k: int, seed: int) -> float:
    """Tibshirani and Walther's prediction strength of K-means with ``k`` clusters on two seeded halves."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    train, test = x[order[: len(x) // 2]], x[order[len(x) // 2 :]]
    if min(len(train), len(test)) <= k:
        return 0.0
    fitted = kmeans(k, seed).fit(train)
    own = kmeans(k, seed).fit_predict(test)
    predicted = fitted.predict(test)
    worst = 1.0
    for c in range(k):
        members = np.flatnonzero(own == c)
        if len(members) < 2:
            continue
        same = predicted[members][:, None] == predicted[members][None, :]
        worst = min(worst, (same.sum() - len(members)) / (len(members) * (len(members) - 1)))
    return float(worst)


def eigengap_k(x: np.ndarray, k_max: int) -> int:
    """The K after the largest gap among the smallest eigenvalues of the kNN graph's normalised Laplacian."""
    graph = kneighbors_graph(x, n_neighbors=min(10, len(x) - 1), include_self=False)
    graph = 0.5 * (graph + graph.T)
    values = np.sort(np.linalg.eigvalsh(laplacian(graph.toarray(), normed=True)))[: k_max + 1]
    gaps = np.diff(values)[1:]  # K >= 2
    return int(np.argmax(gaps)) + 2


def sweep(data: Path, args: argparse.Namespace, tmp: Path) -> dict:
    """Everything step 2 needs about one folder."""
    result = reportgen.build_report(
        data, out_dir=tmp / data.name, cache_dir=args.cache_dir, progress=False, offline=True, seed=args.seed
    )
    reduced, images = result.reduced, result.images
    config = replace(result.config, k_max=args.k_max, k=None)
    sel = choose_k(reduced, config)
    x = directions(reduced.features)
    y = np.array(images.labels, dtype=object)
    true_k = len(images.classes)
    curves = {name: list(values) for name, values in sel.curves.items()}
    curves["prediction_strength"] = [prediction_strength(x, k, args.seed) for k in sel.ks]
    curves["bic"] = [
        float(GaussianMixture(k, covariance_type="diag", random_state=args.seed).fit(x).bic(x)) for k in sel.ks
    ]
    nmi = [float(normalized_mutual_info_score(y, cluster(reduced, k, config).labels)) for k in sel.ks]
    at_true = float(normalized_mutual_info_score(y, cluster(reduced, true_k, config).labels))
    hdb = HDBSCAN(min_cluster_size=max(5, len(x) // 100), copy=True).fit(x).labels_
    return {
        "name": data.name,
        "n": len(x),
        "true_k": true_k,
        "ks": list(sel.ks),
        "curves": curves,
        "elbow": sel.picks.get("elbow"),
        "eigengap": eigengap_k(x, max(sel.ks)),
        "hdbscan": int(len(set(hdb) - {-1})),
        "nmi": nmi,
        "nmi_true": at_true,
        "nn_agree": float(_neighbour_agreement(x, y)),
    }


def _neighbour_agreement(x: np.ndarray, y: np.ndarray) -> float:
    """Share of each image's 10 nearest images with its class (how well the features see the classes)."""
    idx = NearestNeighbors(n_neighbors=11).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    return float((y[idx] == y[:, None]).mean())


def pick(folder: dict, name: str) -> int:
    values = np.asarray(folder["curves"][name])
    return folder["ks"][int(np.argmax(values) if HIGHER[name] else np.argmin(values))]


def mean_rank_k(folder: dict, subset: tuple[str, ...], k_max: int) -> int:
    """The K with the best mean rank over ``subset``, among K <= ``k_max`` (ties: the smaller K)."""
    ks = [k for k in folder["ks"] if k <= k_max]
    ranks = []
    for name in subset:
        v = np.asarray(folder["curves"][name][: len(ks)], dtype=float)
        key = -v if HIGHER[name] else v
        ranks.append(np.array([np.sum(key < key[j] - 1e-12) for j in range(len(ks))]))
    mean = np.mean(ranks, axis=0)
    return ks[int(np.argmin(mean))]


def score(folder: dict, k: int) -> tuple[bool, bool, float]:
    """Within one of the class count; NMI at K at least 0.95 of NMI at the class count; NMI at K."""
    nmi = folder["nmi"][folder["ks"].index(k)]
    return abs(k - folder["true_k"]) <= 1, nmi >= 0.95 * folder["nmi_true"], nmi


def agreement(folder: dict, k: int, names: tuple[str, ...]) -> float:
    picks = [pick(folder, n) for n in names] + ([folder["elbow"]] if folder["elbow"] else [])
    return float(np.mean([abs(p - k) <= 1 for p in picks]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="*", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k-max", type=int, default=30, help="largest K swept (default 30)")
    p.add_argument("--sweeps", type=Path, default=Path("quality-sweeps.json"), help="step 1's results (JSON)")
    args = p.parse_args()
    folders = json.loads(args.sweeps.read_text()) if args.sweeps.exists() else []
    done = {f["name"] for f in folders}
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            if data.name not in done:
                folders.append(sweep(data, args, Path(tmp)))
                args.sweeps.write_text(json.dumps(folders))
                print(f"swept {data.name}", flush=True)
    candidates = [s for r in range(1, 5) for s in itertools.combinations(sorted(HIGHER), r)]
    caps = (15, args.k_max)

    def wins(rule: tuple[tuple[str, ...], int], among: list[dict]) -> tuple[int, int]:
        return (
            sum(score(f, mean_rank_k(f, *rule))[0] for f in among),
            sum(score(f, mean_rank_k(f, *rule))[1] for f in among),
        )

    rules = [(s, cap) for s in candidates for cap in caps]
    print(f"\n{'dataset':22s} {'true':>4s} {'K':>3s} {'NMI@K':>6s} {'NMI@true':>8s} {'within':>6s} {'ratio':>5s}  "
          f"{'product K':>9s}  rule fitted on the others")  # fmt: skip
    left = {"within": 0, "ratio": 0}
    product = {"within": 0, "ratio": 0}
    for f in folders:
        others = [g for g in folders if g is not f]
        rule = max(rules, key=lambda r: (wins(r, others), r[0] == PRODUCT, -r[1]))
        k = mean_rank_k(f, *rule)
        within, ratio, nmi = score(f, k)
        left["within"] += within
        left["ratio"] += ratio
        pk = mean_rank_k(f, PRODUCT, 15)
        product["within"] += score(f, pk)[0]
        product["ratio"] += score(f, pk)[1]
        print(f"{f['name']:22s} {f['true_k']:4d} {k:3d} {nmi:6.3f} {f['nmi_true']:8.3f} {str(within):>6s} "
              f"{str(ratio):>5s}  {pk:9d}  {'+'.join(rule[0])} (K<={rule[1]})")  # fmt: skip
    n = len(folders)
    print(
        f"folders={n} left_out_within_one={left['within']}/{n} left_out_nmi_ge_0.95={left['ratio']}/{n} "
        f"product_rule_within_one={product['within']}/{n} product_rule_nmi_ge_0.95={product['ratio']}/{n}"
    )
    print("\nsingle criteria (no fitting): within one / NMI >= 0.95 of NMI at the class count")
    for name in sorted(HIGHER):
        picks = [pick(f, name) for f in folders]
        print(f"  {name:20s} {sum(score(f, k)[0] for f, k in zip(folders, picks, strict=True)):3d}/{n} "
              f"{sum(score(f, k)[1] for f, k in zip(folders, picks, strict=True)):3d}/{n}")  # fmt: skip
    for name in ("elbow", "eigengap", "hdbscan"):
        picks = [f[name] for f in folders]
        ok = [k is not None and k in f["ks"] and score(f, k)[0] for f, k in zip(folders, picks, strict=True)]
        print(f"  {name:20s} {sum(ok):3d}/{n}   picks: {picks}")
    confidence(folders)


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
