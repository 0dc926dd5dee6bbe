"""Is an image's label wrong? Two kinds of evidence a reader can check, and the rule that flags oddballs.

* **Votes**: its ``VOTERS`` most similar images (nearest in the directions of the clustering space,
  :func:`reduce.directions`), shown on its card with their classes. ``vote_margin`` is how many more of them
  belong to the class it looks like than to its own.
* **Classifier**: a logistic regression trained on the folder's other images (``FOLDS``-fold cross-validation, so
  never on the image itself) gives each class a probability. ``classifier_margin`` is the probability of the class
  it looks like minus that of its label.

The class it **looks like** is the other class with the most combined evidence (share of votes plus probability).
An image is an **oddball** when ``vote_margin >= VOTE_MARGIN`` and ``classifier_margin >= CLASSIFIER_MARGIN``.
Both thresholds were fitted leave-one-folder-out on the benchmark of planted mislabels (``bench/oddballs.py``;
the left-out figures are in docs/quality.md): a folder whose classes the features do not separate gets few flags,
because neither the neighbours nor the classifier agree on another class there.

No image is flagged when the classifier does not beat chance: its cross-validated accuracy must exceed the share
of the largest class with a one-sided binomial test at ``CHANCE_P`` (otherwise the features do not tell the
classes apart, and any flag would be noise; the report says so).

Images of a class with fewer than ``MIN_CLASS`` images are not assessed (the classifier cannot learn that class);
they still vote as neighbours of others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors

from ..reduce import directions

VOTERS = 10
FOLDS = 5
MIN_CLASS = 5  # at least FOLDS
VOTE_MARGIN = 4  # of VOTERS
CLASSIFIER_MARGIN = 0.40
CHANCE_P = 0.01
REGULARISATION = 10.0  # the logistic regression's C (rows have unit length; C=1 gave softer, less useful margins)


@dataclass(frozen=True)
class Evidence:
    """Per image ``i`` (of ``N``), with classes indexed as in the folder's class list."""

    voters: np.ndarray  # int N x VOTERS: its most similar other images, nearest first
    votes: np.ndarray  # int N x C: how many of them belong to each class
    probabilities: np.ndarray  # float N x C: cross-validated classifier probabilities (0 for unassessed classes)
    assessed: np.ndarray  # bool N: its class has at least MIN_CLASS images
    looks_like: np.ndarray  # int N: the other class with the most evidence
    vote_margin: np.ndarray  # int N
    classifier_margin: np.ndarray  # float N
    accuracy: float  # of the cross-validated classifier on the assessed images
    chance: float  # the largest class's share of them: what always answering that class scores
    beats_chance: bool  # accuracy above chance at CHANCE_P (binomial test); no flags otherwise

    def flagged(self, vote_margin: int = VOTE_MARGIN, classifier_margin: float = CLASSIFIER_MARGIN) -> np.ndarray:
        """Bool N: the oddballs under these thresholds (the defaults are the fitted ones)."""
        strong = (self.vote_margin >= vote_margin) & (self.classifier_margin >= classifier_margin)
        return self.assessed & strong & self.beats_chance

    def order(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` sorted by evidence, strongest first: vote margin, then classifier margin, then index."""
        idx = np.asarray(idx, dtype=int)
        return idx[np.lexsort((idx, -self.classifier_margin[idx], -self.vote_margin[idx]))]


def label_evidence(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> Evidence:
    """The evidence for every image of the clustering space ``x`` whose class index is ``y[i]``."""
    n = len(y)
    d = directions(x)
    voters = _voters(d)
    votes = np.zeros((n, n_classes), dtype=int)
    if voters.shape[1]:
        np.add.at(votes, (np.repeat(np.arange(n), voters.shape[1]), y[voters].ravel()), 1)
    sizes = np.bincount(y, minlength=n_classes)
    assessed = sizes[y] >= MIN_CLASS
    probabilities = _cross_validated(d, y, assessed, n_classes, seed)
    rows = np.arange(n)
    combined = votes / max(voters.shape[1], 1) + probabilities
    combined[rows, y] = -np.inf
    looks_like = np.argmax(combined, axis=1) if n_classes > 1 else np.zeros(n, dtype=int)
    accuracy, chance, beats = _against_chance(probabilities, y, assessed)
    return Evidence(
        voters=voters,
        votes=votes,
        probabilities=probabilities,
        assessed=assessed & (n_classes > 1),
        looks_like=looks_like,
        vote_margin=votes[rows, looks_like] - votes[rows, y],
        classifier_margin=probabilities[rows, looks_like] - probabilities[rows, y],
        accuracy=accuracy,
        chance=chance,
        beats_chance=beats,
    )


def _against_chance(probabilities: np.ndarray, y: np.ndarray, assessed: np.ndarray) -> tuple[float, float, bool]:
    """The classifier's accuracy on the assessed images, the largest class's share, and whether the first beats
    the second (one-sided binomial test at ``CHANCE_P``)."""
    n = int(assessed.sum())
    if n == 0 or not probabilities[assessed].any():
        return 0.0, 1.0, False
    correct = int((np.argmax(probabilities[assessed], axis=1) == y[assessed]).sum())
    chance = float(np.bincount(y[assessed]).max() / n)
    test = binomtest(correct, n, chance, alternative="greater")
    return correct / n, chance, bool(test.pvalue < CHANCE_P)


def _voters(d: np.ndarray) -> np.ndarray:
    """Each row's ``VOTERS`` nearest other rows (fewer in a tiny folder), nearest first."""
    k = min(VOTERS, len(d) - 1)
    if k < 1:
        return np.zeros((len(d), 0), dtype=int)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(d).kneighbors(d, return_distance=False)
    out = np.empty((len(d), k), dtype=int)
    for i, row in enumerate(idx):  # the row itself is usually first, but not when duplicates tie with it
        out[i] = [j for j in row if j != i][:k]
    return out


def _cross_validated(d: np.ndarray, y: np.ndarray, assessed: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """Out-of-fold class probabilities for the assessed images (columns of the other classes stay 0)."""
    probabilities = np.zeros((len(y), n_classes))
    present = np.unique(y[assessed])
    if len(present) < 2:
        return probabilities
    cv = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)  # every assessed class has >= FOLDS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=REGULARISATION, max_iter=1000)
        p = cross_val_predict(model, d[assessed], y[assessed], cv=cv, method="predict_proba")
    probabilities[np.ix_(np.flatnonzero(assessed), present)] = p
    return probabilities
