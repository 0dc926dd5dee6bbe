"""DEC's clustering layer on frozen features (reportgen.cluster.dec)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from reportgen.cluster.dec import DEC

INIT_PARAMS = {
    "n_clusters",
    "alpha",
    "tol",
    "max_iter",
    "update_interval",
    "lr",
    "batch_size",
    "n_init",
    "random_state",
}


def _q(x: np.ndarray, centres: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    d2 = ((x[:, None, :].astype(np.float64) - centres[None, :, :]) ** 2).sum(-1)
    kernel = (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(1, keepdims=True)


def _p(q: np.ndarray) -> np.ndarray:
    weight = q**2 / q.sum(0)
    return weight / weight.sum(1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float((p * np.log(p / q)).sum(1).mean())


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=150, n_features=8, centers=3, cluster_std=0.5, random_state=0)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def overlapping() -> np.ndarray:
    x, _ = make_blobs(n_samples=200, n_features=4, centers=[[0, 0, 0, 0], [1.5, 0, 0, 0]], random_state=1)
    return x.astype(np.float32)


def test_recovers_well_separated_blobs(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = DEC(n_clusters=3).fit(x)
    assert adjusted_rand_score(y, model.labels_) == 1.0
    assert model.converged_ is True
    assert 1 <= model.n_iter_ <= model.max_iter
    assert model.cluster_centers_.shape == (3, 8) and model.cluster_centers_.dtype == np.float32
    expected = ((x - model.cluster_centers_[model.labels_]) ** 2).sum()
    assert model.inertia_ == pytest.approx(float(expected), rel=1e-4)


def test_same_seed_same_result(overlapping: np.ndarray) -> None:
    first = DEC(n_clusters=2, random_state=3).fit(overlapping)
    second = DEC(n_clusters=2, random_state=3).fit(overlapping)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    assert first.n_iter_ == second.n_iter_


def test_training_moves_centres_and_lowers_the_loss(overlapping: np.ndarray) -> None:
    model = DEC(n_clusters=2, random_state=0).fit(overlapping)
    initial = KMeans(n_clusters=2, n_init=model.n_init, random_state=model.random_state).fit(overlapping)
    assert not np.allclose(model.cluster_centers_, initial.cluster_centers_)
    # The first target, from the K-means centres, is fitted better by the trained centres.
    target = _p(_q(overlapping, initial.cluster_centers_))
    before = _kl(target, _q(overlapping, initial.cluster_centers_))
    after = _kl(target, _q(overlapping, model.cluster_centers_))
    assert after < before


def test_clone_and_get_params() -> None:
    model = DEC(n_clusters=3)
    params = model.get_params()
    assert set(params) == INIT_PARAMS
    assert params["n_clusters"] == 3
    copy = clone(model)
    assert copy is not model and copy.get_params() == params


def test_labels_and_predict(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = blobs
    model = DEC(n_clusters=4, max_iter=5)
    labels = model.fit_predict(x)
    assert labels.shape == (len(x),)
    assert labels.min() >= 0 and labels.max() <= 3
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_array_equal(model.predict(x), model.labels_)
