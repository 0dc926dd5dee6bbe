"""Evidence accumulation clustering (cluster.coassoc): the co-association matrix, the exact consensus and its sparse
approximation for large N."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from reportgen.cluster import coassoc
from reportgen.cluster.coassoc import coassociation, consensus


def _noisy_labelings(n: int = 90, groups: int = 3, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """The truth (``groups`` equal groups), four copies with 10% of items relabelled at random and the cluster ids
    shuffled, and one labeling that splits group 0 in two and marks two items as noise."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(groups), n // groups)
    labelings = []
    for _ in range(4):
        lab = truth.copy()
        moved = rng.choice(n, n // 10, replace=False)
        lab[moved] = rng.integers(0, groups, len(moved))
        labelings.append(rng.permutation(groups)[lab])
    split = truth.copy()
    split[: n // groups // 2] = groups  # the first half of group 0 becomes a cluster of its own
    split[[n - 1, n - 2]] = -1
    labelings.append(split)
    return truth, labelings


def test_coassociation_matches_a_hand_computed_matrix() -> None:
    a = np.array([0, 0, -1, -1])  # items 2 and 3 are both noise here: they do not co-occur
    b = np.array([5, 2, 2, -1])
    expected = np.array(
        [
            [1.0, 0.5, 0.0, 0.0],
            [0.5, 1.0, 0.5, 0.0],
            [0.0, 0.5, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    c = coassociation([a, b])
    assert c.dtype == np.float32 and c.shape == (4, 4)
    np.testing.assert_array_equal(c, expected)


def test_coassociation_rejects_mismatched_or_non_integer_labelings() -> None:
    with pytest.raises(ValueError):
        coassociation([np.zeros(3, int), np.zeros(4, int)])
    with pytest.raises(ValueError):
        coassociation([np.zeros(3)])
    with pytest.raises(ValueError):
        coassociation([np.array([0, -2, 1])])
    with pytest.raises(ValueError):
        coassociation([])


def test_exact_consensus_recovers_the_truth() -> None:
    truth, labelings = _noisy_labelings()
    labels = consensus(labelings, 3)
    assert adjusted_rand_score(truth, labels) == 1.0


def test_approximate_consensus_recovers_the_truth_and_agrees_with_the_exact_one() -> None:
    truth, labelings = _noisy_labelings()
    exact = consensus(labelings, 3)
    approx = consensus(labelings, 3, exact_limit=10)
    assert adjusted_rand_score(truth, approx) >= 0.95
    assert adjusted_rand_score(exact, approx) >= 0.95
    # a graph far sparser than the number of distinct patterns still finds the groups
    sparse = consensus(labelings, 3, exact_limit=10, neighbours=3)
    assert adjusted_rand_score(truth, sparse) >= 0.95


def test_approximate_path_is_exact_average_linkage_when_no_neighbour_is_dropped() -> None:
    """Many labelings, so co-association ties are rare: the sparse path with every neighbour kept is the tree."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, 60)
    labelings = []
    for _ in range(400):
        lab = truth.copy()
        moved = rng.random(60) < 0.5
        lab[moved] = rng.integers(0, 6, moved.sum())
        labelings.append(lab)
    for k in (2, 4, 6):
        exact = consensus(labelings, k)
        np.testing.assert_array_equal(consensus(labelings, k, exact_limit=1, neighbours=100), exact)


@pytest.mark.parametrize("exact_limit", [20_000, 10])
def test_consensus_is_deterministic_and_labels_are_0_to_k_minus_1(exact_limit: int) -> None:
    _, labelings = _noisy_labelings()
    first = consensus(labelings, 4, exact_limit=exact_limit, seed=7)
    again = consensus([lab.copy() for lab in labelings], 4, exact_limit=exact_limit, seed=7)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (90,) and np.issubdtype(first.dtype, np.integer)
    assert sorted(np.unique(first).tolist()) == [0, 1, 2, 3]
    sizes = np.bincount(first)
    assert (np.diff(sizes) <= 0).all()  # numbered by decreasing size


@pytest.mark.parametrize("exact_limit", [20_000, 1])
def test_fewer_distinct_patterns_than_k_give_fewer_clusters(exact_limit: int) -> None:
    lab = np.array([0, 0, 0, 1, 1, 1])
    labels = consensus([lab, lab + 5], 4, exact_limit=exact_limit)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    assert consensus([lab], 1, exact_limit=exact_limit).tolist() == [0] * 6


def test_approximate_path_never_builds_an_n_by_n_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 3000
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 20, n)
    labelings = []
    for _ in range(4):
        lab = truth.copy()
        moved = rng.random(n) < 0.3  # many distinct patterns: little to collapse
        lab[moved] = rng.integers(0, 20, moved.sum())
        labelings.append(lab)

    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the approximate path must not build the dense co-association matrix")

    monkeypatch.setattr(coassoc, "coassociation", refuse)
    tracemalloc.start()
    try:
        labels = consensus(labelings, 20, exact_limit=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < n * n * 4  # less than one float32 N x N matrix (36 MB)
    assert labels.shape == (n,) and set(np.unique(labels).tolist()) == set(range(20))
    assert adjusted_rand_score(truth, labels) > 0.6  # a sanity check: 30% of each labeling is noise
