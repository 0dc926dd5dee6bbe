"""The on-disk embedding cache: one entry per image content and backbone, written atomically.

An entry is keyed by the hash of the file's bytes, under a folder keyed by the backbone, its weights and its
preprocessing, so a renamed file is still a hit and a changed file or backbone is a miss. Each entry is a
small ``.npz`` written to a temporary name and renamed into place, so a killed run never leaves a partial
entry under a real name; an entry that fails to load or has the wrong shape is removed and recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .fsutil import atomic_write, why

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: probabilities from a float64 head; 3: channels-last inference
JPEG_MAGIC = b"\xff\xd8"
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class CacheEntry:
    """What embedding one image produced."""

    features: np.ndarray  # (D,): float32 as computed, float16 as cached (float32 beyond float16's range)
    top5_index: np.ndarray  # int32 (5,), or (0,) from a model without a classifier head
    top5_prob: np.ndarray  # float32, the same shape
    thumbnail: bytes  # JPEG


def memo_key(array: np.ndarray, *params: object) -> str:
    """A key for a result that depends only on ``array``'s values and ``params`` (whose repr must be stable)."""
    digest = hashlib.blake2b(np.ascontiguousarray(array, dtype=np.float32).tobytes(), digest_size=20)
    digest.update(repr((array.shape, params)).encode())
    return digest.hexdigest()


def load_memo(root: Path, kind: str, key: str) -> dict | None:
    """A JSON result memoised under ``root`` by an earlier run, or ``None``."""
    try:
        data = json.loads(_memo_path(root, kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_memo(root: Path, kind: str, key: str, data: dict) -> None:
    """Memoise a JSON-ready result atomically; a failure to write is logged, never fatal."""
    path = _memo_path(root, kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(data).encode("utf-8"))
    except OSError as exc:
        _cannot_write(root, why(exc))


@lru_cache(maxsize=16)
def _cannot_write(root: Path, reason: str) -> None:
    """Say once per cache folder and reason that results cannot be kept there (a full disk fails every write)."""
    log.warning("cannot write the cache in '%s' (%s): this run's results are not kept there", root, reason)


def _memo_path(root: Path, kind: str, key: str) -> Path:
    return root / f"v{FORMAT_VERSION}" / kind / f"{key}.json"


def content_hash(path: Path | bytes) -> str:
    """The hex BLAKE2b digest of the file's bytes (or of ``path`` when it is the bytes themselves)."""
    digest = hashlib.blake2b(digest_size=20)
    if isinstance(path, bytes):
        digest.update(path)
        return digest.hexdigest()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class EmbeddingCache:
    """Entries for one backbone setup under ``root``: ``dim`` features and ``top_k`` classes (0 without a head)."""

    def __init__(self, root: Path, setup_key: str, dim: int, top_k: int = 5) -> None:
        self.dim = dim
        self.top_k = top_k
        self.writable = True  # until a write fails
        self.root = root
        self.folder = root / f"v{FORMAT_VERSION}" / hashlib.sha256(setup_key.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        about = self.folder / "setup.json"
        if not about.exists():
            try:
                atomic_write(about, json.dumps({"setup": setup_key, "dim": dim}, indent=2).encode())
            except OSError as exc:
                self.writable = False
                _cannot_write(root, why(exc))

    def categories(self) -> list[str] | None:
        """The classifier head's class names saved by an earlier run, or ``None``."""
        try:
            names = json.loads((self.folder / "categories.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        valid = isinstance(names, list) and len(names) >= self.top_k > 0 and all(isinstance(n, str) for n in names)
        return names if valid else None

    def save_categories(self, names: list[str]) -> None:
        """Save the class names so that a fully cached rerun needs neither torch nor torchvision."""
        try:
            atomic_write(self.folder / "categories.json", json.dumps(names).encode("utf-8"))
        except OSError as exc:
            _cannot_write(self.root, why(exc))

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def holds(self, key: str) -> bool:
        """Whether an entry for ``key`` is on disk."""
        return self._path(key).is_file()

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``, or ``None`` when absent or unreadable (an unreadable one is removed)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                entry = CacheEntry(
                    features=data["features"],
                    top5_index=data["top5_index"].astype(np.int32, copy=False),
                    top5_prob=data["top5_prob"].astype(np.float32, copy=False),
                    thumbnail=data["thumbnail"].tobytes(),
                )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("cache entry '%s' is unreadable (%s); recomputing it", path.name, exc)
            path.unlink(missing_ok=True)
            return None
        if not self._valid(entry):
            log.warning("cache entry '%s' has the wrong shape; recomputing it", path.name)
            path.unlink(missing_ok=True)
            return None
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        """Store ``entry`` under ``key`` atomically; a failure to write is logged once, never fatal."""
        buf = io.BytesIO()
        np.savez(
            buf,
            features=_compact(entry.features),
            top5_index=entry.top5_index.astype(np.int32),
            top5_prob=entry.top5_prob.astype(np.float32),
            thumbnail=np.frombuffer(entry.thumbnail, dtype=np.uint8),
        )
        if not self.writable:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, buf.getvalue())
        except OSError as exc:  # a full disk: say it once, and stop trying
            self.writable = False
            _cannot_write(self.root, why(exc))

    def _valid(self, entry: CacheEntry) -> bool:
        return (
            entry.features.shape == (self.dim,)
            and bool(np.isfinite(entry.features).all())
            and entry.top5_index.shape == (self.top_k,)
            and entry.top5_prob.shape == (self.top_k,)
            and entry.thumbnail.startswith(JPEG_MAGIC)
        )


def _compact(features: np.ndarray) -> np.ndarray:
    """float16 (half the disk; its 11-bit mantissa is finer than the bfloat16 forward pass's 8 bits), or float32 when
    a value is beyond float16's range."""
    fits = float(np.abs(features).max(initial=0)) < FLOAT16_MAX
    return features.astype(np.float16 if fits else np.float32)
