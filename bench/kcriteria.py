"""Candidate criteria for choosing K, measured by bench/quality.py beside the report's own.

Each takes the unit-length rows ``x`` the report sweeps (``reduce.directions``) and the swept ``ks``; a *curve*
criterion returns one value per K (``HIGHER`` says which way is better), a *count* criterion returns one K.

* ``prediction_strength`` (Tibshirani and Walther 2005), curve: cluster two halves; for each cluster of the test
  half, the share of its pairs the training half's centres also put together; the worst cluster.
* ``gap`` (Tibshirani, Walther and Hastie 2001), curve and count: log inertia of B uniform reference sets drawn in
  the box of the data's principal axes minus log inertia of the data; the count is the smallest K with
  gap(K) >= gap(K+1) - s(K+1).
* ``umap_silhouette``, curve: K-means and silhouette after a 10-dimensional UMAP projection (umap-learn).
* ``consensus_pac``, curve (lower is better): Monti et al.'s consensus clustering over 80% resamples; the
  proportion of ambiguous pairs (consensus strictly between 0.1 and 0.9).
* ``bic``, curve (lower is better): a Gaussian mixture with diagonal covariances at each K.
* ``gmeans`` (Hamerly and Elkan 2003) and ``xmeans`` (Pelleg and Moore 2000), counts: split clusters in two while
  the split passes an Anderson-Darling normality test on the split axis (G-means) or raises the BIC of a spherical
  Gaussian model (X-means).
* ``eigengap``, count: the largest gap among the smallest eigenvalues of the normalised Laplacian of the
  10-nearest-neighbour graph.
* ``hdbscan``, count: the clusters scikit-learn's HDBSCAN finds.
* ``imagenet_tree``, count: a dendrogram (scipy, average linkage, cosine) of the images' top-5 ImageNet predictions
  as 1000-long probability vectors, cut at its largest gap among the top merges: how many groups the backbone's
  own labels form.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.sparse.csgraph import laplacian
from scipy.stats import anderson
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import kneighbors_graph

GAP_REFERENCES = 10
CONSENSUS_DRAWS = 20
CONSENSUS_FRACTION = 0.8
GMEANS_CRITICAL = 1.8692  # Anderson-Darling critical value at alpha = 0.0001 (Hamerly and Elkan)
HIGHER = {"prediction_strength": True, "gap": True, "umap_silhouette": True, "consensus_pac": False, "bic": False}


def _kmeans(x: np.ndarray, k: int, seed: int, n_init: int = 3) -> KMeans:
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)


def prediction_strength(x: np.ndarray, ks: list[int], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    train, test = x[order[: len(x) // 2]], x[order[len(x) // 2 :]]
    out = []
    for k in ks:
        if min(len(train), len(test)) <= k:
            out.append(0.0)
            continue
        predicted = _kmeans(train, k, seed).predict(test)
        own = _kmeans(test, k, seed).labels_
        worst = 1.0
        for c in range(k):
            members = np.flatnonzero(own == c)
            if len(members) < 2:
                continue
            same = predicted[members][:, None] == predicted[members][None, :]
            worst = min(worst, (same.sum() - len(members)) / (len(members) * (len(members) - 1)))
        out.append(float(worst))
    return out


def gap(x: np.ndarray, ks: list[int], seed: int) -> tuple[list[float], int]:
    rng = np.random.default_rng(seed)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rotated = centred @ vt.T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    references = [rng.uniform(lo, hi, size=rotated.shape) for _ in range(GAP_REFERENCES)]
    gaps, sds = [], []
    for k in ks:
        log_ref = np.log([_kmeans(r, k, seed, n_init=1).inertia_ for r in references])
        gaps.append(float(log_ref.mean() - np.log(_kmeans(rotated, k, seed).inertia_)))
        sds.append(float(log_ref.std() * np.sqrt(1 + 1 / GAP_REFERENCES)))
    pick = next((k for j, k in enumerate(ks[:-1]) if gaps[j] >= gaps[j + 1] - sds[j + 1]), ks[-1])
    return gaps, pick


def umap_silhouette(x: np.ndarray, ks: list[int], seed: int) -> list[float]:
    import umap  # noqa: PLC0415 - bench-only dependency, slow import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state": seeded on purpose
        projected = umap.UMAP(n_components=10, n_neighbors=15, min_dist=0.0, random_state=seed).fit_transform(x)
    return [float(silhouette_score(projected, _kmeans(projected, k, seed).labels_)) for k in ks]


def consensus_pac(x: np.ndarray, ks: list[int], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    n = len(x)
    draws = [np.sort(rng.choice(n, int(CONSENSUS_FRACTION * n), replace=False)) for _ in range(CONSENSUS_DRAWS)]
    sampled = np.zeros((n, n))
    for d in draws:
        sampled[np.ix_(d, d)] += 1
    upper = np.triu_indices(n, 1)
    out = []
    for k in ks:
        if len(draws[0]) <= k:
            out.append(1.0)  # too few images in a resample for K clusters: every pair ambiguous
            continue
        together = np.zeros((n, n))
        for j, d in enumerate(draws):
            labels = _kmeans(x[d], k, seed + j, n_init=1).labels_
            together[np.ix_(d, d)] += labels[:, None] == labels[None, :]
        consensus = (together / np.maximum(sampled, 1))[upper][sampled[upper] > 0]
        out.append(float(np.mean((consensus > 0.1) & (consensus < 0.9))))
    return out


def bic(x: np.ndarray, ks: list[int], seed: int) -> list[float]:
    return [float(GaussianMixture(k, covariance_type="diag", random_state=seed).fit(x).bic(x)) for k in ks]


Accept = Callable[[np.ndarray, np.ndarray, np.ndarray], bool]


def _split_while(x: np.ndarray, k_max: int, seed: int, keep: Accept) -> int:
    """Split clusters in two by K-means while ``keep(rows, labels, centres)`` accepts the split; the final count."""
    queue, done = [np.arange(len(x))], 0
    while queue and done + len(queue) < k_max:
        members = queue.pop()
        if len(members) >= 8:
            fit = _kmeans(x[members], 2, seed)
            labels = fit.labels_
            if min(np.bincount(labels, minlength=2)) >= 2 and keep(x[members], labels, fit.cluster_centers_):
                queue += [members[labels == 0], members[labels == 1]]
                continue
        done += 1
    return done + len(queue)


def _not_gaussian(rows: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> bool:
    """G-means: the projection on the split axis fails an Anderson-Darling normality test."""
    axis = centres[0] - centres[1]
    projected = rows @ axis / max(float(axis @ axis), 1e-12)
    projected = (projected - projected.mean()) / max(float(projected.std()), 1e-12)
    n = len(projected)
    return anderson(projected, method="interpolate").statistic * (1 + 4 / n - 25 / n**2) > GMEANS_CRITICAL


def _spherical_bic(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    """BIC (higher is better) of a spherical Gaussian mixture with hard assignments (Pelleg and Moore)."""
    n, d = x.shape
    k = len(centres)
    variance = max(float(((x - centres[labels]) ** 2).sum()) / max(n - k, 1) / d, 1e-12)
    sizes = np.bincount(labels, minlength=k)
    sizes = sizes[sizes > 0]
    loglik = float(np.sum(sizes * np.log(sizes / n)) - n * d / 2 * np.log(2 * np.pi * variance) - (n - k) * d / 2)
    return loglik - (k * (d + 1)) / 2 * np.log(n)


def _bic_rises(rows: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> bool:
    """X-means: two spherical Gaussians have a higher BIC than one."""
    one = _spherical_bic(rows, np.zeros(len(rows), dtype=int), rows.mean(axis=0, keepdims=True))
    return _spherical_bic(rows, labels, centres) > one


def gmeans(x: np.ndarray, k_max: int, seed: int) -> int:
    return _split_while(x, k_max, seed, _not_gaussian)


def xmeans(x: np.ndarray, k_max: int, seed: int) -> int:
    return _split_while(x, k_max, seed, _bic_rises)


def eigengap(x: np.ndarray, k_max: int) -> int:
    graph = kneighbors_graph(x, n_neighbors=min(10, len(x) - 1), include_self=False)
    graph = 0.5 * (graph + graph.T)
    values = np.sort(np.linalg.eigvalsh(laplacian(graph.toarray(), normed=True)))[: k_max + 1]
    return int(np.argmax(np.diff(values)[1:])) + 2


def hdbscan(x: np.ndarray) -> int:
    labels = HDBSCAN(min_cluster_size=max(5, len(x) // 100), copy=True).fit(x).labels_
    return int(len(set(labels) - {-1}))


def imagenet_tree(top5_index: np.ndarray, top5_prob: np.ndarray, k_max: int) -> int | None:
    if top5_index.shape[1] == 0:
        return None
    vectors = np.zeros((len(top5_index), 1000))
    np.put_along_axis(vectors, top5_index.astype(int), top5_prob, axis=1)
    heights = linkage(vectors, method="average", metric="cosine")[:, 2]
    top = heights[::-1][:k_max]  # the last merges: top[j] joins j + 2 groups into j + 1
    return int(np.argmax(-np.diff(top))) + 2 if len(top) > 1 else None


def measure(x: np.ndarray, ks: list[int], seed: int, top5: tuple[np.ndarray, np.ndarray]) -> dict:
    """Every candidate on one folder: ``curves`` (per K) and ``counts`` (one K each)."""
    gaps, gap_k = gap(x, ks, seed)
    curves = {
        "prediction_strength": prediction_strength(x, ks, seed),
        "gap": gaps,
        "umap_silhouette": umap_silhouette(x, ks, seed),
        "consensus_pac": consensus_pac(x, ks, seed),
        "bic": bic(x, ks, seed),
    }
    counts = {
        "gap": gap_k,
        "gmeans": gmeans(x, max(ks), seed),
        "xmeans": xmeans(x, max(ks), seed),
        "eigengap": eigengap(x, max(ks)),
        "hdbscan": hdbscan(x),
        "imagenet_tree": imagenet_tree(*top5, max(ks)),
    }
    return {"curves": curves, "counts": counts}
