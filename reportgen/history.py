"""History: each run keeps its summary.json and assignments.csv under ``history/<UTC time>/`` in the out folder.

A scheduled job then has the record of every run (``--keep N``, default 20, the oldest pruned first; 0 keeps
none), and the report draws K, NMI and the image count over the kept runs once there are three. Only small files
are kept, never the report. An entry that is not one this version wrote (edited by hand, cut short, from an
older summary schema, or a folder of another name) is skipped with a note and left alone: a history is never a
reason to fail a run, and nothing a user put there is deleted except by ``--keep`` pruning entries of its own
name pattern.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from .fsutil import HISTORY as FOLDER
from .fsutil import why, write_together
from .schema import no_json

log = logging.getLogger(__name__)

FILES = ("summary.json", "assignments.csv")
NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z(-\d+)?$")  # 2026-11-24T07-36-49Z, then -2, -3...
TREND_MIN = 3  # runs (this one included) before the report draws the trend


@dataclass(frozen=True)
class PastRun:
    """What the trend needs of one kept run."""

    name: str  # its folder: the UTC time it was generated
    generated: str
    n_images: int
    chosen_k: int
    nmi: float | None


@dataclass(frozen=True)
class History:
    """The kept runs before this one, oldest first (summary.json ``history``: how many, and what was skipped)."""

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("kept",)

    notes: tuple[str, ...] = ()
    runs: tuple[PastRun, ...] = no_json(default=())

    @property
    def kept(self) -> int:
        return len(self.runs)


def read(out_dir: Path) -> History:
    """The runs kept under ``out_dir/history``, each checked; what cannot be read is skipped with a note."""
    root = out_dir / FOLDER
    if not root.is_dir():
        return History()
    runs, notes = [], []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or not NAME.match(entry.name):
            notes.append(f"history: '{entry.name}' is not a run this tool kept; left alone")
            continue
        try:
            runs.append(_past(entry))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = exc.args[0] if isinstance(exc, (ValueError, KeyError)) and exc.args else type(exc).__name__
            notes.append(f"history: skipped '{entry.name}' ({why})")
    for note in notes:
        log.warning(note)
    return History(tuple(notes), tuple(runs))


def _past(entry: Path) -> PastRun:
    from .run import SCHEMA_VERSION

    summary = json.loads((entry / "summary.json").read_text(encoding="utf-8"))
    if not isinstance(summary, dict):
        raise ValueError("its summary.json is not an object")
    if summary.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"summary schema {summary.get('schema_version')!r}, this version writes {SCHEMA_VERSION}")
    if not (entry / "assignments.csv").is_file():
        raise ValueError("no assignments.csv")
    metrics = summary.get("metrics")
    nmi = metrics.get("nmi") if isinstance(metrics, dict) else None
    k, n, generated = summary["chosen_k"], summary["n_images"], summary["generated"]
    if not (isinstance(k, int) and isinstance(n, int) and isinstance(generated, str)):
        raise ValueError("chosen_k, n_images or generated is of the wrong type")
    return PastRun(entry.name, generated, n, k, float(nmi) if isinstance(nmi, (int, float)) else None)


def record(out_dir: Path, files: dict[str, bytes], generated: str, keep: int) -> Path | None:
    """Keep ``files`` (summary.json, assignments.csv) as ``history/<generated>/`` and prune to the newest ``keep``;
    a failure is logged, never fatal (the outputs are already written)."""
    if keep <= 0:
        return None
    root = out_dir / FOLDER
    stamp = datetime.fromisoformat(generated).strftime("%Y-%m-%dT%H-%M-%SZ")
    name, n = stamp, 1
    while (root / name).exists():
        n += 1
        name = f"{stamp}-{n}"
    try:
        (root / name).mkdir(parents=True)
        write_together(root / name, {f: files[f] for f in FILES})
    except OSError as exc:
        log.warning("cannot keep this run in '%s': %s", root, why(exc))
        shutil.rmtree(root / name, ignore_errors=True)  # no entry cut short
        return None
    ours = sorted(p for p in root.iterdir() if p.is_dir() and NAME.match(p.name))
    for old in ours[: max(len(ours) - keep, 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return root / name
