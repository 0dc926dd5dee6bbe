"""Build the labeled folders that bench/quality.py measures, under one output folder.

    python bench/datasets.py OUT_DIR

* ``art4apps-12``: the 12 categories of Art4Apps drawings (585 images, CC BY-SA) in Debian's ``pysiogame``
  package, fetched with ``apt-get download`` (nothing is committed).
* ``art4apps-6``: 6 of those categories (animals, body, food, jobs, sport, transport).
* ``tuxpaint-6``: photographs cut out on transparent backgrounds from Debian's ``tuxpaint-stamps-default``
  (CC BY-SA / public domain): mammals, birds, fruit, flowers, road signs and vegetables (190 images; the
  cartoon variants are left out). ``tuxpaint-4`` is mammals, birds, flowers and road signs.
* ``sample-4``: sample_data as it is (4 classes).
* ``sample-merged-3``: sample_data with ``monuments`` and ``renewable`` merged into one folder (3 classes).
* ``shapes-6`` and ``shapes-3``: synthetic images with known structure: each class is one shape in one colour
  on a varied background, 30 images a class.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
ART4APPS = "usr/share/games/pysiogame/res/images/art4apps"
ART4APPS_6 = ("animals", "body", "food", "jobs", "sport", "transport")
TUXPAINT = "usr/share/tuxpaint/stamps"
TUXPAINT_6 = {
    "mammals": "animals/mammals",
    "birds": "animals/birds",
    "fruit": "food/fruit",
    "flowers": "plants/flowers",
    "roadsigns": "town/roadsigns",
    "vegetables": "food/vegetables",
}
TUXPAINT_4 = ("mammals", "birds", "flowers", "roadsigns")
SHAPES = {
    "red-circles": ((210, 40, 40), "ellipse"),
    "green-stripes": ((40, 160, 60), "stripes"),
    "blue-squares": ((40, 60, 200), "rectangle"),
    "yellow-triangles": ((230, 200, 40), "triangle"),
    "purple-rings": ((140, 60, 170), "ring"),
    "grey-grid": ((120, 120, 120), "grid"),
}


def _shape_image(colour: tuple[int, int, int], shape: str, rng: np.random.Generator, size: int = 160) -> Image.Image:
    bg = tuple(int(v) for v in rng.integers(150, 255, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    o = int(rng.integers(10, 40))
    c = tuple(int(np.clip(v + rng.integers(-30, 30), 0, 255)) for v in colour)
    if shape == "ellipse":
        d.ellipse((o, o, size - o, size - o), fill=c)
    elif shape == "rectangle":
        d.rectangle((o, o, size - o, size - o), fill=c)
    elif shape == "triangle":
        d.polygon([(size // 2, o), (size - o, size - o), (o, size - o)], fill=c)
    elif shape == "ring":
        d.ellipse((o, o, size - o, size - o), outline=c, width=14)
    elif shape == "grid":
        for v in range(0, size, 20):
            d.line((v, 0, v, size), fill=c, width=4)
            d.line((0, v, size, v), fill=c, width=4)
    else:
        for v in range(0, size, 16):
            d.rectangle((v, 0, v + 6, size), fill=c)
    return im


def shapes(out: Path, names: list[str], per_class: int = 30, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
        colour, shape = SHAPES[name]
        for i in range(per_class):
            _shape_image(colour, shape, rng).save(out / name / f"{i:02d}.jpg", quality=90)


def art4apps(out: Path, keep: tuple[str, ...] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "pysiogame"], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("pysiogame_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        src = Path(tmp) / "x" / ART4APPS
        for folder in sorted(p for p in src.iterdir() if p.is_dir()):
            if keep is None or folder.name in keep:
                shutil.copytree(folder, out / folder.name)


def tuxpaint(outs: dict[Path, tuple[str, ...]]) -> None:
    """One download of the stamps package; each output folder gets the named classes of TUXPAINT_6."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "tuxpaint-stamps-default"], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("tuxpaint-stamps-default_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        src = Path(tmp) / "x" / TUXPAINT
        for out, classes in outs.items():
            for cls in classes:
                (out / cls).mkdir(parents=True, exist_ok=True)
                for png in sorted((src / TUXPAINT_6[cls]).rglob("*.png")):
                    if "cartoon" not in png.relative_to(src).parts:
                        shutil.copy2(png, out / cls / png.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    args = p.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    art4apps(out / "art4apps-12")
    art4apps(out / "art4apps-6", ART4APPS_6)
    tuxpaint({out / "tuxpaint-6": tuple(TUXPAINT_6), out / "tuxpaint-4": TUXPAINT_4})
    shutil.copytree(REPO / "sample_data", out / "sample-4", ignore=shutil.ignore_patterns("*.csv"))
    merged = out / "sample-merged-3"
    for cls in ("fishes", "tools"):
        shutil.copytree(REPO / "sample_data" / cls, merged / cls)
    for cls in ("monuments", "renewable"):
        shutil.copytree(REPO / "sample_data" / cls, merged / "monuments+renewable", dirs_exist_ok=True)
    shapes(out / "shapes-6", list(SHAPES))
    shapes(out / "shapes-3", ["red-circles", "blue-squares", "grey-grid"], seed=1)
    for d in sorted(out.iterdir()):
        print(d.name, sum(1 for _ in d.rglob("*.*")), "files,", sum(1 for x in d.iterdir() if x.is_dir()), "classes")


if __name__ == "__main__":
    main()
