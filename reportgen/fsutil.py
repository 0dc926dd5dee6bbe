"""The package's own files, and writing files so that a reader never sees a partial one."""

from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from .errors import UnwritableError

STATE_FILE = ".reportgen-state.json"  # beside every run's outputs (reportgen.freshness)
HISTORY = "history"  # the out folder's kept runs (reportgen.history)
EXPORTS = "clusters"  # the out folder's exported cluster folders (reportgen.exports)


def readable(name: str) -> str:
    """A file or folder name as every output shows it: bytes that are not UTF-8 (legal in Linux names, and common
    in old archives; Python holds them as lone surrogates) become ``\\xNN``. Valid names are unchanged."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


_ESCAPED = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def on_disk(root: Path, rel: str) -> Path:
    """The file whose readable name (:func:`readable`) under ``root`` is ``rel``."""
    if "\\x" not in rel:
        return root / rel
    raw = root / _ESCAPED.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), rel)  # the bytes, as Python holds them
    literal = root / rel
    return raw if os.path.lexists(raw) or not os.path.lexists(literal) else literal


def own_folders(data_dir: Path, out_dir: Path, cache_dir: Path) -> frozenset[str]:
    """The real paths of the folders a run writes that may lie inside the data folder (the out folder, its
    history and exports, the cache): never read as images, nor counted as a change of the folder."""
    own = [out_dir / HISTORY, out_dir / EXPORTS, cache_dir]
    if os.path.realpath(out_dir) != os.path.realpath(data_dir):  # -o DATA: the images still live there
        own.append(out_dir)
    return frozenset(os.path.realpath(p) for p in own)


def is_own(folder: str | os.PathLike[str], own: frozenset[str]) -> bool:
    """Whether ``folder`` holds reportgen's own files: one of ``own``, or any run's out folder (its state file)."""
    return os.path.realpath(folder) in own or os.path.isfile(os.path.join(folder, STATE_FILE))


def why(exc: OSError) -> str:
    """The system's words for a failed read or write (an :class:`UnwritableError` keeps them as ``reason``)."""
    return getattr(exc, "reason", None) or exc.strerror or str(exc)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, and rename it into place."""
    write_together(path.parent, {path.name: data})


@lru_cache(maxsize=1)
def _new_file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def template_dir() -> Path:
    """The templates folder: inside the installed package, else the source checkout's top-level one."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


def write_together(folder: Path, files: dict[str, bytes]) -> None:
    """Replace the files of one set in ``folder`` together: every new file is written and flushed to a
    temporary name first, and only then are they renamed into place, in the order given, with SIGINT and SIGTERM
    held back until the last rename (an interrupt cannot leave a mixed set). If any write fails (a full disk, a
    folder made read-only), the temporary files are removed, the old set is left untouched, and
    :class:`UnwritableError` names the file.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            staged.append((name, Path(tmp)))
            try:
                fh = os.fdopen(fd, "wb")
            except BaseException:
                os.close(fd)
                raise
            with fh:
                os.chmod(tmp, _new_file_mode())  # mkstemp makes 0600; outputs are shared: honour the umask
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException as exc:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, UnwritableError):
            where = folder / staged[-1][0] if staged else folder
            reason = why(exc)
            raise UnwritableError(f"cannot write '{where}': {reason}; the files there are unchanged", reason) from None
        raise
    with _signals_held():
        for name, tmp in staged:
            os.replace(tmp, folder / name)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (delivered on exit) where the platform and the thread allow it."""
    held = {signal.SIGINT, signal.SIGTERM}
    can = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if can else None
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
