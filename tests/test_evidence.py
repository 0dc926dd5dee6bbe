"""The oddball rule (analyze.evidence): planted mislabels are flagged, clean and structureless folders are not."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_blobs

from reportgen.analyze.evidence import CLASSIFIER_MARGIN, MIN_CLASS, VOTE_MARGIN, VOTERS, label_evidence


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=[30, 30, 30], n_features=12, cluster_std=1.0, center_box=(-6, 6), random_state=seed)
    return x.astype(np.float32), y


def test_planted_mislabels_are_flagged_and_point_to_their_true_class() -> None:
    x, truth = _blobs()
    y = truth.copy()
    planted = [3, 40, 77]
    for i in planted:
        y[i] = (truth[i] + 1) % 3
    ev = label_evidence(x, y, 3, seed=0)
    assert np.flatnonzero(ev.flagged()).tolist() == planted
    assert ev.looks_like[planted].tolist() == truth[planted].tolist()
    assert (ev.vote_margin[planted] >= VOTE_MARGIN).all() and (ev.classifier_margin[planted] >= CLASSIFIER_MARGIN).all()
    assert ev.voters.shape == (90, VOTERS) and not (ev.voters == np.arange(90)[:, None]).any()
    assert (ev.votes.sum(axis=1) == VOTERS).all()
    # the classifier never saw the image it scores: a planted image's label gets a low probability
    assert (ev.probabilities[planted, y[planted]] < 0.5).all()
    np.testing.assert_allclose(ev.probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_a_clean_folder_and_a_structureless_one_get_no_flags() -> None:
    x, y = _blobs(1)
    assert not label_evidence(x, y, 3, seed=0).flagged().any()
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((150, 12)).astype(np.float32)
    labels = rng.integers(0, 3, 150)  # classes the features cannot tell apart
    ev = label_evidence(noise, labels, 3, seed=0)
    assert not ev.beats_chance and not ev.flagged().any()
    assert ev.flagged(VOTE_MARGIN, CLASSIFIER_MARGIN).sum() == 0
    assert 0 < ev.accuracy < 0.5 and ev.chance == np.bincount(labels).max() / 150
    clean = label_evidence(x, y, 3, seed=0)
    assert clean.beats_chance and clean.accuracy == 1.0


def test_ranking_is_by_votes_then_classifier_and_small_classes_are_not_assessed() -> None:
    x, truth = _blobs(3)
    y = truth.copy()
    y[:2] = 3  # a class of 2 images: cannot be learned, so not assessed
    y[50] = (truth[50] + 1) % 3
    ev = label_evidence(x, y, 4, seed=0)
    assert MIN_CLASS > 2 and not ev.assessed[:2].any() and not ev.flagged()[:2].any()
    assert (ev.probabilities[:, 3] == 0).all()
    order = ev.order(np.arange(90))
    keys = list(zip(ev.vote_margin[order], ev.classifier_margin[order], strict=True))
    assert keys == sorted(keys, key=lambda t: (-t[0], -t[1]))
    assert ev.flagged()[50]
