"""Do the heat maps point at the object? Objects of several kinds pasted at known places on noise.

    python bench/explain_quality.py DATA [DATA ...] [--per-class 10]

For each labeled folder given, its first two classes with at least ``--per-class`` images each: every image is
shrunk to 96 px (its centre square) and pasted at a seeded random place of a 256 px field of grey noise (the
network sees its centre 224 px), and one image of the second class is filed under the first (an oddball, so that
maps toward an image's own class are made too). The report is built with the bundled backbone; for every map, the
hottest cell is compared with the object's box (a hit when it touches it, half a cell of slack).

Three settings: Grad-CAM with the cluster maps' default similarity (the projection on the centre's direction),
Grad-CAM with the cosine similarity, and Guided Grad-CAM. Prints, per folder, setting and kind of map, hits out of
maps; then the totals, and the rate a peak placed at random would reach (the box's share of the square, with the
slack). Nothing is fitted: the maps have no threshold.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen.pipeline import build_report

CROP, FIELD, OBJECT = 224, 256, 96
SETTINGS = (("gradcam", "projection"), ("gradcam", "cosine"), ("guided-gradcam", "projection"))


def placed(source: Path, root: Path, per_class: int, seed: int) -> dict[str, tuple[int, int, int, int]] | None:
    """Write the pasted folder; returns each file's object box in the seen square's coordinates."""
    classes = [d for d in sorted(source.iterdir()) if d.is_dir() and len(_images(d)) >= per_class]
    if len(classes) < 2:
        return None
    rng = np.random.default_rng(seed)
    margin = (FIELD - CROP) // 2
    first, second = classes[:2]
    plan = {first.name: _images(first)[:per_class] + _images(second)[per_class : per_class + 1],
            second.name: _images(second)[:per_class]}  # fmt: skip
    boxes = {}
    for cls, files in plan.items():
        (root / cls).mkdir(parents=True)
        for j, file in enumerate(files):
            field = Image.fromarray(rng.integers(90, 166, (FIELD, FIELD, 3), dtype=np.uint8))
            with Image.open(file) as photo:
                photo = photo.convert("RGBA")
                w, h = photo.size
                side = min(w, h)
                box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
                obj = photo.crop(box).resize((OBJECT, OBJECT))
            x0, y0 = (margin + int(rng.integers(0, CROP - OBJECT)) for _ in range(2))
            field.paste(obj, (x0, y0), obj)  # icons keep their transparency: the noise shows through
            field.save(root / cls / f"{j:02d}.png")
            boxes[f"{cls}/{j:02d}.png"] = (x0 - margin, y0 - margin, x0 - margin + OBJECT, y0 - margin + OBJECT)
    return boxes


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def hit(heat: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    rows, cols = heat.shape
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    cy, cx = (r + 0.5) * CROP / rows, (c + 0.5) * CROP / cols
    slack = CROP / cols / 2
    x0, y0, x1, y1 = box
    return x0 - slack <= cx <= x1 + slack and y0 - slack <= cy <= y1 + slack


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--per-class", type=int, default=10)
    args = p.parse_args()
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    with tempfile.TemporaryDirectory() as tmp:
        for n, source in enumerate(args.datasets):
            data = Path(tmp) / source.name
            boxes = placed(source, data, args.per_class, n)
            if boxes is None:
                print(f"{source.name}: fewer than two classes of {args.per_class} images, left out")
                continue
            for method, similarity in SETTINGS:
                result = build_report(data, out_dir=Path(tmp) / "out", cache_dir=Path(tmp) / "cache", offline=True,
                                      backbone="efficientnet-lite0", explain_method=method,
                                      explain_similarity=similarity, progress=False)  # fmt: skip
                counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
                for i, views in result.run.explanations.maps.items():
                    for kind, view in views.items():
                        found = hit(np.asarray(view.heat, np.float32), boxes[result.run.images.path[i]])
                        for key in (counts[kind], totals[(f"{method} {similarity}", kind)]):
                            key[0] += found
                            key[1] += 1
                row = ", ".join(f"{kind} {h}/{m}" for kind, (h, m) in counts.items())
                print(f"{source.name:24s} {method + ' ' + similarity:26s} {row}")
    slack = CROP / 7 / 2
    chance = min(1.0, ((OBJECT + 2 * slack) / CROP) ** 2)
    print(f"\ntotals (a peak placed at random would hit about {chance:.0%} with Grad-CAM's 7 x 7 cells):")
    for (method, kind), (h, m) in sorted(totals.items()):
        print(f"  {method:26s} {kind:11s} {h}/{m} = {h / m:.0%}")


if __name__ == "__main__":
    main()
