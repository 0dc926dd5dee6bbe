"""Do oddballs mean something? Plant mislabels in labeled folders, fit the oddball rule leave-one-folder-out, and
report how the left-out folders fare.

    python bench/oddballs.py DATA/* --cache-dir CACHE [--shares 0.01 0.02 0.03] [--seeds 3] [--end-to-end]

For each folder the real pipeline runs once (the embeddings, the clustering space). Then, for each share and seed,
that share of its images (at least 1, seeded) get another class's label chosen at random, as files put in the wrong
class folder would, and the oddball evidence (:func:`reportgen.analyze.evidence.label_evidence`, the code the
report runs) is computed with those labels. Neither the embeddings nor the clustering space depend on the labels,
so this is what the report would conclude on the planted folder.

The rule has two thresholds (vote margin, classifier margin). Leave-one-folder-out: for each folder, the pair
that flags the most planted images on the *other* folders, while flagging at most ``--limit`` times as many images
as were planted at every share, is scored on the left-out folder. Only those left-out figures make the main table
and the summary lines; the in-sample figures of the shipped thresholds are printed beside them, and so is what the
shipped thresholds flag in each untouched folder (a clean folder should get few).

* recall: the share of planted images flagged;
* precision: the share of flagged images that were planted;
* flagged / planted: how many images a reader is asked to look at per real mislabel (the goal: at most 3, with
  recall at least 0.7).

``--end-to-end`` also moves the files of the first seed at share 0.02 into wrong class folders, runs the whole
pipeline on that copy and reads ``is_oddball`` from assignments.csv (the embedding cache serves the moved files).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import reportgen
from reportgen.analyze import evidence as ev

VOTE_GRID = tuple(range(1, ev.VOTERS + 1))
CLASSIFIER_GRID = tuple(round(v, 2) for v in np.arange(0.0, 0.81, 0.05))


@dataclass(frozen=True)
class Trial:
    folder: str
    share: float
    seed: int
    planted: np.ndarray  # bool N
    evidence: ev.Evidence

    def counts(self, votes: int, margin: float) -> np.ndarray:
        """[flagged, planted flagged, planted] under the thresholds."""
        flagged = self.evidence.flagged(votes, margin)
        return np.array([flagged.sum(), (flagged & self.planted).sum(), self.planted.sum()])


def plant_labels(y: np.ndarray, n_classes: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``y`` with a seeded ``share`` of its entries (at least 1) moved to another class, and the planted mask."""
    rng = np.random.default_rng(seed)
    count = max(1, round(share * len(y)))
    planted = np.zeros(len(y), dtype=bool)
    out = y.copy()
    for i in rng.choice(len(y), count, replace=False):
        out[i] = rng.choice([c for c in range(n_classes) if c != y[i]])
        planted[i] = True
    return out, planted


def plant_files(src: Path, dst: Path, share: float, seed: int) -> set[str]:
    """Copy the labeled folder ``src`` to ``dst`` with a seeded ``share`` of its files moved into another class's
    folder; the planted files' paths relative to ``dst``."""
    shutil.copytree(src, dst)
    classes = sorted(p.name for p in dst.iterdir() if p.is_dir())
    files = sorted(p for p in dst.rglob("*") if p.is_file())
    rng = np.random.default_rng(seed)
    planted = set()
    for j in rng.choice(len(files), max(1, round(share * len(files))), replace=False):
        path = files[int(j)]
        home = path.relative_to(dst).parts[0]
        other = rng.choice([c for c in classes if c != home])
        target = dst / other / f"planted-{home}-{path.name}"
        path.rename(target)
        planted.add(target.relative_to(dst).as_posix())
    return planted


def fit(trials: list[Trial], shares: tuple[float, ...], limit: float) -> tuple[int, float]:
    """The thresholds that flag the most planted images in ``trials`` with flagged <= limit x planted at every
    share (ties: the stricter pair)."""
    best, best_hits = (ev.VOTERS, max(CLASSIFIER_GRID)), -1
    for votes in VOTE_GRID:
        for margin in CLASSIFIER_GRID:
            per_share = [sum(t.counts(votes, margin) for t in trials if t.share == s) for s in shares]
            if all(c[0] <= limit * c[2] for c in per_share) and sum(c[1] for c in per_share) > best_hits:
                best, best_hits = (votes, margin), sum(c[1] for c in per_share)
    return best


def row(name: str, c: np.ndarray) -> str:
    flagged, hit, planted = (int(v) for v in c)
    precision = f"{hit / flagged:6.2f}" if flagged else "     -"
    return f"{name:22s} {planted:7d} {flagged:7d} {hit:4d} {hit / planted:6.2f} {precision} {flagged / planted:5.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--shares", type=float, nargs="+", default=[0.01, 0.02, 0.03], help="shares of images planted")
    p.add_argument("--seeds", type=int, default=3, help="plantings per folder and share (seeds 0..N-1)")
    p.add_argument("--limit", type=float, default=2.75, help="flagged / planted allowed when fitting (default 2.75)")
    p.add_argument("--end-to-end", action="store_true", help="also run the pipeline on planted files (share 0.02)")
    args = p.parse_args()
    shares = tuple(args.shares)
    trials: list[Trial] = []
    clean: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            result = reportgen.build_report(
                data, out_dir=Path(tmp) / "clean" / data.name, backbone=args.backbone, cache_dir=args.cache_dir,
                progress=False, offline=True,
            )  # fmt: skip
            images, x = result.images, result.reduced.features
            y = np.array([images.classes.index(lbl) for lbl in images.labels])
            clean[data.name] = (int(result.analysis.n_oddballs), len(y))
            for share in shares:
                for seed in range(args.seeds):
                    planted_y, planted = plant_labels(y, len(images.classes), share, seed)
                    found = ev.label_evidence(x, planted_y, len(images.classes), seed=0)
                    trials.append(Trial(data.name, share, seed, planted, found))
            print(f"planted {data.name} ({len(y)} images, {len(images.classes)} classes)", flush=True)
        folders = [d.name for d in args.datasets]
        chosen = {f: fit([t for t in trials if t.folder != f], shares, args.limit) for f in folders}
        shipped = (ev.VOTE_MARGIN, ev.CLASSIFIER_MARGIN)
        print(f"\nleft-out, shares {', '.join(f'{s:g}' for s in shares)} x {args.seeds} seeds")
        print(f"{'dataset':22s} {'planted':>7s} {'flagged':>7s} {'hit':>4s} {'recall':>6s} {'prec':>6s} {'x':>5s}"
              f"  {'fitted on the others':>20s}  {'clean: flagged/images':>21s}")  # fmt: skip
        total = np.zeros(3, dtype=int)
        for f in folders:
            c = sum(t.counts(*chosen[f]) for t in trials if t.folder == f)
            total += c
            votes, margin = chosen[f]
            print(f"{row(f, c)}  {f'votes>={votes}, p>={margin:.2f}':>20s}  {f'{clean[f][0]}/{clean[f][1]}':>21s}")
        print(row("all (left-out)", total))
        for s in shares:
            print(row(f"  share {s:g}", sum(t.counts(*chosen[t.folder]) for t in trials if t.share == s)))
        inside = sum(t.counts(*shipped) for t in trials)
        print(row("all (in-sample, shipped)", inside))
        fits = Counter(chosen.values())
        everything = fit(trials, shares, args.limit)
        print(f"fitted on every folder: votes>={everything[0]}, classifier margin>={everything[1]:.2f}")
        print(f"shipped thresholds: votes>={shipped[0]}, classifier margin>={shipped[1]:.2f}; left-out fits: "
              + ", ".join(f"({v}, {m:.2f}) x{n}" for (v, m), n in fits.most_common()))  # fmt: skip
        recall, ratio = total[1] / total[2], total[0] / total[2]
        by_share = [sum(t.counts(*chosen[t.folder]) for t in trials if t.share == s) for s in shares]
        worst = max(by_share, key=lambda c: c[0] / c[2])
        print(
            f"folders={len(folders)} planted={total[2]} left_out_recall={recall:.2f} "
            f"left_out_flagged_per_planted={ratio:.2f} worst_share_flagged_per_planted={worst[0] / worst[2]:.2f} "
            f"clean_flagged={sum(v[0] for v in clean.values())}/{sum(v[1] for v in clean.values())}"
        )
        if args.end_to_end:
            end_to_end(args, Path(tmp))


def end_to_end(args: argparse.Namespace, tmp: Path) -> None:
    """The whole pipeline on folders with planted files (share 0.02, seed 0), read from assignments.csv."""
    print("\nend to end (files moved, share 0.02, seed 0)")
    total = np.zeros(3, dtype=int)
    for data in args.datasets:
        copy = tmp / "planted" / data.name
        planted = plant_files(data, copy, 0.02, 0)
        out = tmp / "out" / data.name
        reportgen.build_report(
            copy, out_dir=out, backbone=args.backbone, cache_dir=args.cache_dir, progress=False, offline=True
        )
        rows = list(csv.DictReader((out / "assignments.csv").open(encoding="utf-8")))
        flagged = {r["path"] for r in rows if r["is_oddball"] == "True"}
        c = np.array([len(flagged), len(flagged & planted), len(planted)])
        total += c
        print(row(data.name, c), flush=True)
    print(row("all (end to end)", total))


if __name__ == "__main__":
    main()
