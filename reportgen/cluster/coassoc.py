"""Evidence accumulation clustering (Fred & Jain 2005): one consensus partition from several labelings.

The co-association C[i, j] of two of N items is the share of the m labelings that put both in one cluster (C[i, i] =
1); noise (-1) is in no cluster, so it co-occurs with nothing, not even another -1. It is built from one-hot matrices
(``C = H @ H.T / m``, H: items x clusters of all labelings), a block of rows at a time. The consensus is the
average-linkage tree on ``1 - C`` cut into k clusters: after its first N - k merges, so exactly k, except that items
at distance 0 (one cluster in every labeling, no noise) are never split; with fewer than k distinct ones, fewer
than k clusters result. Ties are broken by a permutation of the items drawn from ``seed`` (deterministic).

Exact path (N <= ``exact_limit``): the dense C and scipy's average linkage on the condensed ``1 - C``, O(N^2) time
and ~20 bytes per pair at peak (20,000 items: ~4 GB, ~16 s).

Approximate path (N > ``exact_limit``): memory O(N * (m + neighbours)), nothing N x N; time O(P^2) vectorised in
step 2 for P distinct patterns (P <= N), plus about O(P * neighbours * log P) Python steps in step 3.

1. Items at distance 0 have the same co-association with everyone and average linkage joins them first: each such
   group becomes one pattern weighted by its size (exact). Items with a noise label stay alone.
2. Each pattern keeps the ``neighbours`` others it co-associates with most (ties: the larger, then the seeded
   order), from blocks of ``H_p @ H_p.T``; the graph is made symmetric and C outside it is taken as 0. Only pairs
   below one end's ``neighbours`` nearest are underestimated; with ``neighbours`` >= patterns - 1, none is.
3. Average linkage on that sparse matrix, exactly: two clusters score their summed co-association over the product
   of their sizes; a heap of each cluster's best neighbour merges until k clusters remain (by the reducibility of
   average linkage, only clusters that pointed at a merged pair need a new best). If the edges run out first, no
   evidence joins what is left (a tie at distance 1): the k - 1 largest clusters stay, the rest become one.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from operator import neg, truediv

import numpy as np
from scipy import sparse

_BLOCK = 1 << 19  # entries in one block of rows x columns of shared-cluster counts


def _stack(labelings: Sequence[np.ndarray]) -> np.ndarray:
    """Labelings as the columns of an N x m int64 matrix, checked."""
    arrays = [np.asarray(lab) for lab in labelings]
    if not arrays or any(a.ndim != 1 or len(a) != len(arrays[0]) for a in arrays):
        raise ValueError("labelings must be one or more 1-D arrays of one length")
    if any(a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < -1) for a in arrays):
        raise ValueError("labels must be integers >= -1 (-1: noise)")
    return np.stack(arrays, axis=1).astype(np.int64)


def _one_hot(lab: np.ndarray, dtype: type = np.float32) -> sparse.csr_matrix:
    """Rows x (clusters of all labelings), 0/1; a noise entry has no column, so it shares nothing."""
    rows, cols = np.nonzero(lab >= 0)
    ids, column = np.unique(lab[rows, cols] + (lab.max(initial=0) + 1) * cols, return_inverse=True)
    return sparse.csr_matrix((np.ones(len(rows), dtype), (rows, column.reshape(-1))), shape=(len(lab), len(ids)))


def _blocks(h: sparse.csr_matrix):
    """(start, shared-cluster counts of rows start.. against all rows) in blocks of about ``_BLOCK`` entries."""
    n, ht, step = h.shape[0], h.T.tocsr(), max(1, _BLOCK // max(h.shape[0], 1))
    for start in range(0, n, step):
        yield start, (h[start : start + step] @ ht).toarray()


def coassociation(labelings: Sequence[np.ndarray]) -> np.ndarray:
    """The dense N x N float32 co-association matrix: share of labelings putting i and j in one cluster."""
    lab = _stack(labelings)
    c = np.empty((len(lab), len(lab)), np.float32)
    for start, counts in _blocks(_one_hot(lab)):
        c[start : start + len(counts)] = counts
    c /= lab.shape[1]
    np.fill_diagonal(c, 1.0)
    return c


def consensus(
    labelings: Sequence[np.ndarray], k: int, *, exact_limit: int = 20_000, neighbours: int = 30, seed: int = 0
) -> np.ndarray:
    """Labels 0..k-1 (by decreasing size, ties: earliest first member), average linkage on 1 - C cut at k.

    Exact up to ``exact_limit`` items, else the sparse approximation (module docstring). Measured on 50,000 items x 5
    labelings of 20 clusters: ~1.2 s (truth with 10% relabelled), ~9 s (30%), ~25 s (unrelated labelings).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    lab = _stack(labelings)
    perm = np.random.default_rng(seed).permutation(len(lab))  # ties follow this order
    out = np.empty(len(lab), np.int64)
    out[perm] = _exact(lab[perm], k) if len(lab) <= exact_limit else _approximate(lab[perm], k, max(1, neighbours))
    _, first, inverse, sizes = np.unique(out, return_index=True, return_inverse=True, return_counts=True)
    return _rank(sizes, first)[inverse.reshape(-1)]


def _rank(sizes: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Each group's place by decreasing size, ties: earliest first member."""
    rank = np.empty(len(sizes), np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(len(sizes))
    return rank


def _exact(lab: np.ndarray, k: int) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    n = len(lab)
    if n < 2:
        return np.zeros(n, np.int64)
    d = coassociation(list(lab.T))
    y = squareform(np.subtract(1.0, d, out=d), checks=False)
    del d
    z = linkage(y, method="average")
    # first n - k merges, and every merge at distance 0 (identical patterns are never split); heights ascend
    steps = max(n - k, int(np.searchsorted(z[:, 2], 0.0, side="right")))
    parent = np.arange(n + steps)
    parent[z[:steps, :2].astype(np.int64).ravel()] = np.repeat(np.arange(n, n + steps), 2)
    for node in range(n + steps - 1, -1, -1):  # a parent's index exceeds its children's
        parent[node] = parent[parent[node]]
    return parent[:n]


def _approximate(lab: np.ndarray, k: int, neighbours: int) -> np.ndarray:
    n, m = lab.shape
    # 1. patterns; a noise entry gets an id of its own (-1 - row), so rows with noise are never collapsed
    key = np.where(lab < 0, -1 - np.arange(n)[:, None], lab)
    pat, first, inverse, weight = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    rank = _rank(weight, first)  # pattern ids from here on: ties go to the lower id (larger, then first)
    order = np.argsort(rank)
    adj = _graph(np.where(pat[order] < 0, -1, pat[order]), weight[order], m, neighbours)
    return _average_linkage(adj, weight[order].astype(np.float64).tolist(), k)[rank[inverse.reshape(-1)]]


def _graph(patterns: np.ndarray, weight: np.ndarray, m: int, neighbours: int) -> list[dict[int, float]]:
    """2. Symmetric kNN graph: adj[i][j] = summed co-association of two patterns (weight_i * weight_j * C_ij)."""
    p = len(patterns)
    nb = min(neighbours, p - 1)
    if nb < 1:
        return [{} for _ in range(p)]
    dtype = np.int32 if (m + 1) * p < 2**31 else np.int64
    later = np.arange(p - 1, -1, -1, dtype=dtype)  # score = shared * p + later: ties go to the lower id
    rows, cols, shared = [], [], []
    for start, score in _blocks(_one_hot(patterns, dtype)):
        here = np.arange(start, start + len(score))
        score = score * p + later
        score[here - start, here] = -1
        top = np.argpartition(score, p - nb, axis=1)[:, p - nb :]
        got = np.take_along_axis(score, top, axis=1) // p
        kept = got > 0
        rows.append(np.repeat(here, nb)[kept.ravel()])
        cols.append(top[kept])
        shared.append(got[kept])
    r, c, s = (np.concatenate(x) for x in (rows + cols, cols + rows, shared + shared))  # both directions
    by_row = np.argsort(r, kind="stable")
    bounds = np.searchsorted(r[by_row], np.arange(p + 1)).tolist()
    to, w = c[by_row].tolist(), (weight[r] * weight[c] * (s / m))[by_row].tolist()
    return [dict(zip(to[a:b], w[a:b], strict=True)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _average_linkage(adj: list[dict[int, float]], size: list[float], k: int) -> np.ndarray:
    """3. Average linkage on the sparse similarity until k clusters: each pattern's cluster (a pattern id)."""
    p = len(adj)
    parent, best, stamp, heap = list(range(p)), [-1] * p, [0] * p, []
    pointed: list[set[int]] = [set() for _ in range(p)]  # the clusters whose best neighbour is this one

    def refresh(a: int) -> None:  # a's best neighbour: highest summed similarity / size, ties to the lower id
        d = adj[a]
        stamp[a] += 1
        pointed[best[a]].discard(a)  # with best[a] == -1 a is in no set: harmless
        best[a] = -1
        if d:
            value, b = max(zip(map(truediv, d.values(), map(size.__getitem__, d)), map(neg, d), strict=True))
            best[a] = -b
            pointed[-b].add(a)
            heapq.heappush(heap, (-value / size[a], a, stamp[a]))

    for a in range(p):
        refresh(a)
    active = p
    while active > k and heap:
        _, a, st = heapq.heappop(heap)
        if parent[a] != a or st != stamp[a]:
            continue
        keep, gone = (a, best[a]) if len(adj[a]) >= len(adj[best[a]]) else (best[a], a)
        dk, dg = adj[keep], adj[gone]
        del dk[gone], dg[keep]
        for x, w in dg.items():
            del adj[x][gone]
            dk[x] = adj[x][keep] = dk.get(x, 0.0) + w
        adj[gone], parent[gone] = {}, keep
        pointed[best[gone]].discard(gone)
        todo = (pointed[keep] | pointed[gone]) - {keep, gone}
        size[keep], active = size[keep] + size[gone], active - 1
        for x in [keep, *todo]:
            refresh(x)
    root = np.asarray(parent)
    while not np.array_equal(root, root[root]):
        root = root[root]
    if active > k:  # no evidence joins what is left: keep the k - 1 largest, the rest become one cluster
        alive = np.flatnonzero(root == np.arange(p))
        alive = alive[np.lexsort((alive, -np.asarray(size)[alive]))]
        root[np.isin(root, alive[k - 1 :])] = alive[k - 1]
    return root
