"""Stage 1: find the images in the data folder and their class labels."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import DataDirError, NoImagesError
from .fsutil import is_own, own_folders, readable
from .images import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A file that was found but not used, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """The images of one run, identified by their path relative to ``root`` (POSIX separators).

    ``labels[i]`` is the class of ``paths[i]`` (``None`` when the folder is unlabeled).
    """

    root: Path
    paths: tuple[str, ...]
    labels: tuple[str | None, ...]
    classes: tuple[str, ...]
    labeled: bool
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.paths)


def discover(config: Config) -> ImageSet:
    """Find every image under ``config.data_dir``.

    Parameters
    ----------
    config : the run's options; ``data_dir`` is read.

    Returns
    -------
    An :class:`ImageSet`, labeled when the folder has class subfolders holding images, sorted by path.
    """
    root = config.data_dir
    check_data_dir(root)

    own = own_folders(root, config.out_dir, config.resolved_cache_dir)
    top_files, class_files, skipped, passed = _walk(root, own)
    notes = [f"'{rel}' holds reportgen's own outputs or cache and was not read for images" for rel in passed]
    classes = sorted(name for name, files in class_files.items() if files)
    empty = sorted(name for name, files in class_files.items() if not files)

    if classes:
        for name in empty:
            notes.append(f"class folder '{name}' has no images and was ignored")
        for rel in top_files:
            skipped.append(Skipped(rel, "not inside a class folder (the data folder has class folders)"))
        pairs = sorted((rel, name) for name in classes for rel in class_files[name])
        paths = tuple(rel for rel, _ in pairs)
        labels: tuple[str | None, ...] = tuple(name for _, name in pairs)
        labeled = True
    else:
        paths = tuple(sorted(top_files))
        labels = (None,) * len(paths)
        labeled = False
        notes.append("no class folders: the images are unlabeled, so label-based analysis is left out")

    paths, labels = _told_apart(paths, labels, skipped)
    if not paths:
        raise NoImagesError(
            f"found no images in '{root}' (looked for {', '.join(IMAGE_EXTENSIONS)} "
            "directly inside it or in class folders)"
        )
    if len(paths) < 2:
        raise NoImagesError(f"found {len(paths)} image in '{root}', need at least 2")
    for note in notes:
        log.info(note)
    log.info("found %d images%s in '%s'", len(paths), f" in {len(classes)} classes" if labeled else "", root)
    return ImageSet(
        root=root,
        paths=paths,
        labels=labels,
        classes=tuple(classes),
        labeled=labeled,
        skipped=tuple(sorted(skipped, key=lambda s: s.path)),
        notes=tuple(notes),
    )


def _told_apart(
    paths: tuple[str, ...], labels: tuple[str | None, ...], skipped: list[Skipped]
) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The images whose readable names are unique: a file whose name only differs from another's in bytes that are
    not UTF-8 written out as ``\\xNN`` (``caf\\xe9.jpg`` beside a file of that very name) is skipped."""
    if len(set(paths)) == len(paths):
        return paths, labels
    seen: set[str] = set()
    kept = []
    for path, label in zip(paths, labels, strict=True):
        if path in seen:
            skipped.append(
                Skipped(path, "another file has the same name once bytes that are not UTF-8 are written out")
            )
        else:
            seen.add(path)
            kept.append((path, label))
    return tuple(p for p, _ in kept), tuple(lbl for _, lbl in kept)


def check_data_dir(root: Path) -> None:
    """Raise :class:`DataDirError` unless ``root`` is an existing folder (the CLI checks it before other work)."""
    if not root.exists():
        raise DataDirError(f"data folder '{root}' does not exist")
    if not root.is_dir():
        raise DataDirError(f"data folder '{root}' is not a folder")


def _walk(root: Path, own: frozenset[str]) -> tuple[list[str], dict[str, list[str]], list[Skipped], list[str]]:
    """Image files directly in ``root``, image files under each class folder, unusable entries, and the folders
    passed over as reportgen's own (``own``, :func:`fsutil.is_own`)."""
    top_files: list[str] = []
    class_files: dict[str, list[str]] = {}
    skipped: list[Skipped] = []
    passed: list[str] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if is_own(entry.path, own):
                passed.append(_rel(root, Path(entry.path)))
                continue
            name = readable(entry.name)  # a class is its folder's name as the outputs show it (two may read alike)
            _collect(
                root, Path(entry.path), class_files.setdefault(name, []), skipped, visited=set(), own=(own, passed)
            )
        elif _is_image_name(entry.name):
            _add_file(root, Path(entry.path), top_files, skipped)
    return top_files, class_files, skipped, passed


def _collect(
    root: Path,
    folder: Path,
    out: list[str],
    skipped: list[Skipped],
    visited: set[str],
    own: tuple[frozenset[str], list[str]],
) -> None:
    """Add image files under ``folder`` (following links, never looping, passing over reportgen's own folders:
    ``own`` is their real paths and the list of those met) to ``out``."""
    real = os.path.realpath(folder)
    if real in visited:
        skipped.append(Skipped(_rel(root, folder), "folder link loops back to a folder already visited"))
        return
    visited = visited | {real}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.ENAMETOOLONG:
            size = len(os.fsencode(folder))
            why = f"path longer than the system allows ({size} bytes): the images in it cannot be read"
        skipped.append(Skipped(_rel(root, folder), f"cannot list folder: {why}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir():
            if is_own(path, own[0]):
                own[1].append(_rel(root, path))
                continue
            _collect(root, path, out, skipped, visited, own)
        elif _is_image_name(entry.name):
            _add_file(root, path, out, skipped)


def _add_file(root: Path, path: Path, out: list[str], skipped: list[Skipped]) -> None:
    """Add ``path`` to ``out``, or to ``skipped`` when it is a broken link."""
    rel = _rel(root, path)
    if path.is_symlink() and not path.exists():
        skipped.append(Skipped(rel, "broken symbolic link"))
    else:
        out.append(rel)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _rel(root: Path, path: Path) -> str:
    """``path`` relative to ``root``, as every output shows it (:func:`fsutil.readable`; :func:`fsutil.on_disk`
    finds the file again)."""
    return readable(path.relative_to(root).as_posix())
