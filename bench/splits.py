"""Are within-class split scores calibrated? Merge two real classes into one, and see whether the report ranks
that class first and marks its split real, while untouched classes stay unmarked. Thresholds are fitted
leave-one-folder-out.

    python bench/splits.py DATA/* --cache-dir CACHE [--merges 3]

For each folder of three or more classes the real pipeline runs once. Then, ``--merges`` times (seeded, distinct
pairs), two of its classes get one label, as if their images shared a folder. Each class of the merged folder is
split by the report's own code (:func:`reportgen.analyze.within.split_classes`, ``--within-k 2``): the merged class
is a positive, every untouched class a negative (some untouched classes really are two kinds of image, so the
false-positive rate is an upper bound).

The rule has two thresholds: the split score (z against structureless data) and the class breadth (spread over the
folder's median class spread). Leave-one-folder-out: for each folder, the pair with the best balanced accuracy
(true-positive rate + true-negative rate) on the *other* folders is scored on it. Printed per merge: the merged
class's rank in the report's order (meaningful first, then broadest) under the left-out thresholds, its score,
breadth and ARI against the two original classes; then the true- and false-positive rates, left-out, and the share
of folders whose merged class ranks first (in the majority of their merges).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

import reportgen
from reportgen.analyze import within

Z_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)
BROAD_GRID = (0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)


@dataclass(frozen=True)
class Split:
    """One class of a merged folder as the report splits it."""

    label: str
    merged: bool
    score: float
    breadth: float
    sizes: np.ndarray

    def real(self, z: float, broad: float) -> bool:
        return within.meaningful(self.score, self.breadth, self.sizes, z, broad)


@dataclass(frozen=True)
class Merge:
    folder: str
    pair: tuple[str, str]
    ari: float  # the merged class's split against its two original classes
    splits: tuple[Split, ...]

    def rank(self, z: float, broad: float) -> int:
        """1-based rank of the merged class in the report's order under these thresholds."""
        order = sorted(self.splits, key=lambda s: within.order_key(s.real(z, broad), s.breadth, s.label))
        return 1 + next(i for i, s in enumerate(order) if s.merged)


def merges_of(result: reportgen.pipeline.Result, n: int) -> list[Merge]:
    """``n`` seeded distinct merges of two classes of ``result``'s folder, each split by the report's code."""
    images, x, config = result.images, result.reduced.features, result.config
    config = replace(config, within_k=2, within_classes=None)
    y = np.array(images.labels, dtype=object)
    own = {w.label: w for w in within.split_classes(images, x, result.analysis.top1, config, [])[0]}
    pairs = list(itertools.combinations(images.classes, 2))
    rng = np.random.default_rng(0)
    out = []
    for j in rng.choice(len(pairs), min(n, len(pairs)), replace=False):
        a, b = pairs[int(j)]
        name = f"{a}+{b}"
        labels = tuple(name if lbl in (a, b) else lbl for lbl in images.labels)
        classes = tuple(sorted(set(labels)))
        merged = replace(images, labels=labels, classes=classes)
        split = within.split_classes(merged, x, result.analysis.top1, replace(config, within_classes=(name,)), [])[0][0]
        breadth = within.class_breadth(x, np.array(labels, dtype=object), classes)  # the others' breadth moves too
        members = np.flatnonzero((y == a) | (y == b))
        sub = np.array(split.sub_labels)
        splits = [Split(name, True, split.split_score, split.breadth, np.array(split.sizes))]
        splits += [
            Split(c, False, own[c].split_score, breadth[c], np.array(own[c].sizes))
            for c in classes
            if c != name and c in own
        ]
        out.append(Merge(result.run.dataset.name, (a, b), adjusted_rand_score(y[members], sub), tuple(splits)))
    return out


def fit(merges: list[Merge]) -> tuple[float, float]:
    """The thresholds with the best balanced accuracy over ``merges`` (ties: the stricter pair)."""

    def accuracy(z: float, broad: float) -> float:
        pos = [s.real(z, broad) for m in merges for s in m.splits if s.merged]
        neg = [not s.real(z, broad) for m in merges for s in m.splits if not s.merged]
        return float(np.mean(pos) + np.mean(neg))

    return max(itertools.product(Z_GRID, BROAD_GRID), key=lambda t: (accuracy(*t), t))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--merges", type=int, default=3, help="merged pairs per folder (default 3)")
    args = p.parse_args()
    merges: list[Merge] = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            result = reportgen.build_report(
                data, out_dir=Path(tmp) / data.name, backbone=args.backbone, cache_dir=args.cache_dir,
                progress=False, offline=True,
            )  # fmt: skip
            if len(result.images.classes) < 3:
                print(f"skipped {data.name}: fewer than 3 classes (a merge would leave no untouched class)")
                continue
            merges += merges_of(result, args.merges)
            print(f"merged {data.name}", flush=True)
    folders = sorted({m.folder for m in merges})
    chosen = {f: fit([m for m in merges if m.folder != f]) for f in folders}
    print(f"\n{'dataset':22s} {'merged classes':40s} {'rank':>4s} {'of':>3s} {'score':>6s} {'breadth':>7s} {'ARI':>5s}"
          f" {'real':>5s}  fitted on the others")  # fmt: skip
    tp = fn = fp = tn = 0
    first: dict[str, list[bool]] = {}
    for m in merges:
        z, broad = chosen[m.folder]
        pos = next(s for s in m.splits if s.merged)
        rank = m.rank(z, broad)
        first.setdefault(m.folder, []).append(rank == 1)
        tp += pos.real(z, broad)
        fn += not pos.real(z, broad)
        fp += sum(s.real(z, broad) for s in m.splits if not s.merged)
        tn += sum(not s.real(z, broad) for s in m.splits if not s.merged)
        real = str(pos.real(z, broad))
        print(f"{m.folder:22s} {' + '.join(m.pair)[:40]:40s} {rank:4d} {len(m.splits):3d} {pos.score:6.2f} "
              f"{pos.breadth:7.2f} {m.ari:5.2f} {real:>5s}  z>={z:g}, breadth>={broad:g}")  # fmt: skip
    n_first = sum(np.mean(v) > 0.5 for v in first.values())
    firsts = sum(sum(v) for v in first.values())
    print("shipped thresholds: z>={:g}, breadth>={:g}; left-out fits: {}".format(
        within.MEANINGFUL_Z, within.BROAD,
        ", ".join(f"({z:g}, {b:g}) x{n}" for (z, b), n in Counter(chosen.values()).most_common()),
    ))  # fmt: skip
    print(
        f"folders={len(folders)} merges={len(merges)} left_out_true_positive_rate={tp / (tp + fn):.2f} "
        f"left_out_false_positive_rate={fp / (fp + tn):.3f} merged_first={firsts}/{len(merges)} "
        f"folders_merged_first={n_first}/{len(folders)}"
    )


if __name__ == "__main__":
    main()
