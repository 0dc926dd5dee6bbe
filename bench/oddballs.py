"""Do oddballs mean something? Plant mislabels in labeled folders and see whether the report flags them.

    python bench/oddballs.py DATA/* --cache-dir CACHE [--share 0.02] [--seed 0]

For each folder, a seeded ``--share`` of its images (at least 1) is moved into another class's folder (chosen at
random): those images now carry a wrong label, as a mislabelled file would. The real pipeline runs on the
planted copy and the flagged set (``is_oddball`` in assignments.csv) is compared with the planted set:

* recall: the share of planted images flagged;
* precision: the share of flagged images that were planted;
* flagged / planted: how many images a reader is asked to look at per real mislabel.

A file keeps its bytes when it moves, so the embedding cache serves the planted copy: only the first run of a
folder embeds. The last line sums over the folders (the issue's goal: recall at least 0.7 with at most 3x the
planted count flagged). The oddball rule has no fitted threshold today, so these figures are out-of-sample as
they stand; a rule with one must be fitted leave-one-folder-out and report the left-out figures here.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np

import reportgen


def plant(src: Path, dst: Path, share: float, seed: int) -> set[str]:
    """Copy the labeled folder ``src`` to ``dst`` with a seeded ``share`` of images moved to another class;
    returns the planted images' paths relative to ``dst``."""
    shutil.copytree(src, dst)
    classes = sorted(p.name for p in dst.iterdir() if p.is_dir())
    files = sorted(p for p in dst.rglob("*") if p.is_file())
    rng = np.random.default_rng(seed)
    count = max(1, round(share * len(files)))
    planted = set()
    for j in rng.choice(len(files), count, replace=False):
        path = files[int(j)]
        home = path.relative_to(dst).parts[0]
        other = classes[int(rng.choice([c for c in range(len(classes)) if classes[c] != home]))]
        target = dst / other / f"planted-{home}-{path.name}"
        path.rename(target)
        planted.add(target.relative_to(dst).as_posix())
    return planted


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--share", type=float, default=0.02, help="share of images planted in a wrong class (default 0.02)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    columns = ("images", 6), ("planted", 7), ("flagged", 7), ("hit", 4), ("recall", 6), ("prec", 6), ("x", 5)
    print(f"{'dataset':24s} " + " ".join(f"{name:>{width}s}" for name, width in columns))
    total = {"planted": 0, "flagged": 0, "hit": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            copy = Path(tmp) / "data" / data.name
            planted = plant(data, copy, args.share, args.seed)
            out = Path(tmp) / "out" / data.name
            reportgen.build_report(
                copy, out_dir=out, backbone=args.backbone, cache_dir=args.cache_dir, progress=False, offline=True
            )
            rows = list(csv.DictReader((out / "assignments.csv").open(encoding="utf-8")))
            flagged = {r["path"] for r in rows if r["is_oddball"] == "True"}
            hit = len(flagged & planted)
            total["planted"] += len(planted)
            total["flagged"] += len(flagged)
            total["hit"] += hit
            recall = hit / len(planted)
            precision = hit / len(flagged) if flagged else float("nan")
            print(
                f"{data.name:24s} {len(rows):6d} {len(planted):7d} {len(flagged):7d} {hit:4d} {recall:6.2f} "
                f"{precision:6.2f} {len(flagged) / len(planted):5.1f}",
                flush=True,
            )
    recall = total["hit"] / total["planted"]
    ratio = total["flagged"] / total["planted"]
    summary = f"folders={len(args.datasets)} planted={total['planted']} recall={recall:.2f}"
    print(f"{summary} flagged_per_planted={ratio:.1f}")


if __name__ == "__main__":
    main()
