"""Where a run writes, checked before any work: the out folder, the embedding cache and the libraries' own caches.

* The **out folder** must be creatable and writable: a probe file is created in it and removed. Otherwise the run
  stops at once with one line naming the folder and the reason (exit 2), before any image is read.
* The **cache folder** given with ``--cache-dir`` is checked the same way. The default one
  (``~/.cache/reportgen``) may sit in a home folder that cannot be written (a service account, a read-only
  container): then the run uses a folder under the system's temporary folder instead, and when that fails too it
  goes without a cache; either way with a note, never a crash.
* **Libraries' caches**: matplotlib keeps its settings under ``~/.config/matplotlib`` and its font list under
  ``~/.cache/matplotlib``, and warns in every run when it cannot write there. When ``MPLCONFIGDIR`` is not set
  and those defaults cannot be written, it is pointed at a folder under the run's cache.
* **Room**: before any image is embedded, the out folder's disk must hold the report's size budget plus
  ``ROW_BYTES`` per image (its rows in assignments.csv and summary.json, and their history copies), and the
  cache's disk ``CACHE_BYTES`` per image still to embed (:func:`check_room`). A disk that fills up anyway while
  the outputs are written leaves the previous outputs whole (:func:`reportgen.fsutil.write_together`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from .config import Config
from .errors import UnwritableError
from .fsutil import why

log = logging.getLogger(__name__)

ROW_BYTES = 4096  # per image in the out folder: a CSV row, its share of summary.json, and both history copies
CACHE_BYTES = 32 * 1024  # per embedded image in the cache: features, top-5 and a JPEG thumbnail (about 6-12 KB)
MB = 1024 * 1024


def prepare(config: Config) -> tuple[Config, tuple[str, ...]]:
    """Check the out and cache folders (see the module docstring); returns the config with the cache folder the
    run will use, and the notes for the report."""
    notes: list[str] = []
    if config.use_cache:  # first: a cache folder made for nothing is harmless, an empty out folder is not
        config, notes = _cache_folder(config)
    problem = probe(config.out_dir)
    if problem:
        raise UnwritableError(f"cannot write the outputs to '{config.out_dir}': {problem}")
    _library_caches(config)
    return config, tuple(notes)


def _cache_folder(config: Config) -> tuple[Config, list[str]]:
    folder = config.resolved_cache_dir
    problem = probe(folder)
    if not problem:
        return config, []
    if config.cache_dir is not None:
        raise UnwritableError(f"cannot write the cache to --cache-dir '{folder}': {problem}")
    fallback = Path(tempfile.gettempdir()) / f"reportgen-cache-{_user()}"
    if not probe(fallback):
        note = (f"the default cache folder '{folder}' cannot be written ({problem}): this run caches its embeddings "
                f"in '{fallback}' instead; --cache-dir DIR keeps them elsewhere")  # fmt: skip
        log.warning(note)
        return replace(config, cache_dir=fallback), [note]
    note = f"the default cache folder '{folder}' cannot be written ({problem}): this run keeps no cache"
    log.warning(note)
    return replace(config, use_cache=False), [note]


def _user() -> str:
    try:
        return str(os.getuid())
    except AttributeError:  # no uids on Windows
        return os.environ.get("USERNAME", "user")


def _library_caches(config: Config) -> None:
    if os.environ.get("MPLCONFIGDIR"):  # matplotlib reads an empty value as unset
        return
    defaults = [_xdg("XDG_CONFIG_HOME", ".config"), _xdg("XDG_CACHE_HOME", ".cache")]  # its config and font cache
    if any(probe(folder / "matplotlib") for folder in defaults):
        base = config.resolved_cache_dir if config.use_cache else Path(tempfile.gettempdir()) / f"reportgen-{_user()}"
        target = base / "matplotlib"
        if not probe(target):
            os.environ["MPLCONFIGDIR"] = str(target)


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else Path.home() / fallback


def probe(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written (the system's words), or ``None`` when a file can be made in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".reportgen-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return why(exc)
    return None


def check_room(folder: Path, needed: int, what: str, hint: str) -> None:
    """Raise :class:`UnwritableError` unless the disk of ``folder`` has ``needed`` bytes free for ``what``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # no usage figures (some network file systems): the writes themselves will tell
        return
    if free < needed:
        raise UnwritableError(
            f"only {free / MB:.1f} MB free on the disk of '{folder}', and {what} need about {needed / MB:.1f} MB; "
            f"{hint}"
        )


def check_out_room(config: Config, n_images: int) -> None:
    """Room for the outputs of ``n_images`` images in the out folder (see the module docstring)."""
    needed = int(config.max_report_mb * MB) + ROW_BYTES * n_images
    check_room(config.out_dir, needed, "the outputs", "free some space or choose another --out")


def check_cache_room(folder: Path, n_to_embed: int) -> None:
    """Room in the cache folder for ``n_to_embed`` new embeddings."""
    hint = "free some space, choose another --cache-dir, or run with --no-cache"
    check_room(folder, CACHE_BYTES * n_to_embed, f"the embeddings of {n_to_embed} images", hint)
