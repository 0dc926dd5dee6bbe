"""Which clusters does the catch-all rule name? The rule before and after it counted thinly spread clusters, on
every benchmark folder.

    python bench/catchall.py DATA/* --cache-dir CACHE

For each labeled folder the real pipeline runs once (defaults, the bundled backbone when resnet50's weights are
absent). Each cluster's class counts are then judged by two rules:

* ``three``: three or more classes with a material share and none half of the cluster (the earlier rule);
* ``shipped``: :func:`reportgen.analyze.makeup.is_catch_all`, which also names a cluster none of whose classes is
  half of it when the classes with a material share hold less than half of it.

Printed per folder: K, clusters each rule names, and the clusters with no class at half that neither names
("two-class": their material classes hold most of them). Then over all folders, for the clusters each rule names
and for the rest: how many, their mean largest-class share and mean number of classes, and the share of all
images in them. The rule has no fitted threshold (half, as for "none is half of it"), so nothing is left out.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import reportgen
from reportgen.analyze import makeup


def three(classes: dict[str, int], size: int) -> bool:
    """The earlier rule: three or more material classes, none half of the cluster."""
    top = max(classes.values(), default=0)
    return len(makeup.material(classes, size)) >= makeup.CATCH_ALL_CLASSES and top < makeup.CATCH_ALL_TOP_SHARE * size


def describe(name: str, rows: list[tuple[int, int, int]], n_images: int) -> str:
    """``rows``: (size, largest class, number of classes) per cluster."""
    if not rows:
        return f"{name:28s} clusters=0"
    size, top, n = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    return (
        f"{name:28s} clusters={len(rows):3d}  mean_top_share={np.mean(top / size):.2f}  "
        f"mean_classes={np.mean(n):5.1f}  images={size.sum() / n_images:.0%}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, required=True)
    args = p.parse_args()
    groups: dict[str, list[tuple[int, int, int]]] = {"three": [], "shipped": [], "shipped only": [], "neither": []}
    n_images = 0
    print(f"{'dataset':22s} {'K':>3s} {'three':>5s} {'shipped':>7s} {'two-class':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.datasets:
            result = reportgen.build_report(
                data, out_dir=Path(tmp) / data.name, cache_dir=args.cache_dir, progress=False, offline=True
            )
            if not result.images.labeled:
                continue
            n_images += len(result.images.labels)
            counts = {"three": 0, "shipped": 0, "two-class": 0}
            for info in result.analysis.clusters:
                row = (info.size, max(info.classes.values()), len(info.classes))
                old, new = three(info.classes, info.size), makeup.is_catch_all(info.classes, info.size)
                assert new == info.catch_all  # the report's own verdict
                counts["three"] += old
                counts["shipped"] += new
                counts["two-class"] += not new and row[1] < makeup.CATCH_ALL_TOP_SHARE * info.size
                for name, member in (("three", old), ("shipped", new), ("shipped only", new and not old)):
                    if member:
                        groups[name].append(row)
                if not new:
                    groups["neither"].append(row)
            print(f"{data.name:22s} {len(result.analysis.clusters):3d} {counts['three']:5d} {counts['shipped']:7d} "
                  f"{counts['two-class']:9d}", flush=True)  # fmt: skip
    print()
    for name, rows in groups.items():
        print(describe(name, rows, n_images))


if __name__ == "__main__":
    main()
