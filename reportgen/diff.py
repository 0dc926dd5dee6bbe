"""What changed between two runs: images added, removed and changed, images that moved cluster, clusters that are
new, gone, merged or split, and K and the scores.

Both the report's "Since the last run" section (the out folder's previous outputs against this run) and
``reportgen diff OLD_OUT NEW_OUT`` (any two runs' outputs: ``diff.html`` and ``diff.json``) use :func:`compare`.

* An image is its path relative to the data folder. It is **added** or **removed** when its path is only in one
  run, **changed** when both runs have it with another content hash (assignments.csv ``content_hash``; runs
  written before that column say nothing about changes).
* Clusters are numbered by size in each run, so the two runs' clusters are first **matched**: the Hungarian
  assignment (scipy) maximising the images they share. When the new run carried the old one's ids over
  (:mod:`reportgen.identity`, summary.json ``cluster_ids.follows``), an id is the same cluster in both. A shared
  image **moved** when its new cluster is not the match of its old one (images in no cluster, -1, match each
  other).
* A new cluster that receives at least ``MATERIAL`` of its shared images from each of two old clusters **merged**
  them; an old cluster that sends at least ``MATERIAL`` of its shared images to each of two new clusters was
  **split**. A cluster without a match is **new** (in the new run) or **gone** (from the old one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

MATERIAL = 0.25  # a share of a cluster's shared images that counts as a part of it, for merges and splits


@dataclass(frozen=True)
class Snapshot:
    """One run's outputs: summary.json's content and assignments.csv."""

    summary: dict[str, Any]
    assignments: pd.DataFrame
    where: str = ""  # the out folder it was read from (for messages)


@dataclass(frozen=True)
class Move:
    path: str
    old: int  # the old run's cluster
    new: int  # the new run's cluster


@dataclass(frozen=True)
class Changes:
    """What changed from an old run to a new one (summary.json ``changes`` without the per-image lists; diff.json
    with them)."""

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("counts", "nothing")

    added: tuple[str, ...] = field(metadata={"json": False})
    removed: tuple[str, ...] = field(metadata={"json": False})
    changed: tuple[str, ...] | None = field(metadata={"json": False})  # None: the old run recorded no hashes
    moved: tuple[Move, ...] = field(metadata={"json": False})
    matches: dict[int, int]  # new cluster -> the old one it matches
    new_clusters: tuple[int, ...]
    gone_clusters: tuple[int, ...]
    merged: dict[int, tuple[int, ...]]  # new cluster -> the old clusters it merged
    split: dict[int, tuple[int, ...]]  # old cluster -> the new clusters it was split into
    before: dict[str, Any]  # K, image count and scores of the old run
    after: dict[str, Any]
    old_generated: str = ""
    old_names: dict[int, str] = field(default_factory=dict)  # the old run's cluster names

    @property
    def counts(self) -> dict[str, int | None]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": None if self.changed is None else len(self.changed),
            "moved": len(self.moved),
            "new_clusters": len(self.new_clusters),
            "gone_clusters": len(self.gone_clusters),
            "merged": len(self.merged),
            "split": len(self.split),
        }

    @property
    def nothing(self) -> bool:
        """Whether the two runs agree on every image and cluster."""
        counts = self.counts
        return not any(counts.values()) and self.before.get("chosen_k") == self.after.get("chosen_k")

    def to_json(self) -> dict[str, Any]:
        """Everything, per-image lists included (diff.json)."""
        out = asdict(self)
        out["moved"] = [asdict(m) for m in self.moved]
        out["matches"] = {str(k): v for k, v in self.matches.items()}
        out["merged"] = {str(k): list(v) for k, v in self.merged.items()}
        out["split"] = {str(k): list(v) for k, v in self.split.items()}
        out["old_names"] = {str(k): v for k, v in self.old_names.items()}
        return {"counts": self.counts, **out}


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """K, the image count and the scores of a run, as a diff compares them."""
    metrics = summary.get("metrics") if isinstance(summary.get("metrics"), dict) else {}
    label_free = summary.get("label_free") if isinstance(summary.get("label_free"), dict) else {}
    return {
        "chosen_k": summary.get("chosen_k"),
        "n_images": summary.get("n_images"),
        "nmi": metrics.get("nmi"),
        "ari": metrics.get("ari"),
        "purity": metrics.get("purity"),
        "silhouette": label_free.get("silhouette"),
        "n_oddballs": summary.get("n_oddballs"),
    }


def compare(old: Snapshot, new: Snapshot) -> Changes:
    """The :class:`Changes` from ``old`` to ``new``."""
    a = old.assignments.drop_duplicates("path").set_index("path")
    b = new.assignments.drop_duplicates("path").set_index("path")
    old_paths, new_paths = set(a.index), set(b.index)
    added = tuple(sorted(new_paths - old_paths))
    removed = tuple(sorted(old_paths - new_paths))
    shared = sorted(old_paths & new_paths)
    changed: tuple[str, ...] | None = None
    if "content_hash" in a.columns and "content_hash" in b.columns:
        changed = tuple(p for p in shared if a.at[p, "content_hash"] != b.at[p, "content_hash"])
    old_c = a.loc[shared, "cluster"].astype(int).to_numpy()
    new_c = b.loc[shared, "cluster"].astype(int).to_numpy()
    old_ids = sorted(set(a["cluster"].astype(int)))
    new_ids = sorted(set(b["cluster"].astype(int)))
    if follows(old.summary, new.summary):  # the new run carried the old one's ids over: an id is its cluster
        matches = {c: c for c in new_ids if c in old_ids}
    else:
        matches = match(old_c, new_c, old_ids, new_ids)
    moved = tuple(Move(p, int(o), int(n)) for p, o, n in zip(shared, old_c, new_c, strict=True) if matches.get(n) != o)
    merged, split = _merges_and_splits(old_c, new_c)
    return Changes(
        added=added,
        removed=removed,
        changed=changed,
        moved=moved,
        matches=matches,
        new_clusters=tuple(c for c in new_ids if c not in matches),
        gone_clusters=tuple(c for c in old_ids if c not in matches.values()),
        merged=merged,
        split=split,
        before=headline(old.summary),
        after=headline(new.summary),
        old_generated=str(old.summary.get("generated", "")),
        old_names=cluster_names(old.summary),
    )


def follows(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the run of ``new`` carried its cluster ids over from the run of ``old`` (:mod:`reportgen.identity`)."""
    record = new.get("cluster_ids")
    if not isinstance(record, dict) or record.get("basis") != "previous":
        return False
    return bool(record.get("follows")) and record.get("follows") == old.get("generated")


def cluster_names(summary: dict[str, Any]) -> dict[int, str]:
    clusters = summary.get("clusters")
    items = clusters.values() if isinstance(clusters, dict) else clusters if isinstance(clusters, list) else []
    return {int(c["cluster"]): str(c.get("name", "")) for c in items if isinstance(c, dict) and "cluster" in c}


def match(old_c: np.ndarray, new_c: np.ndarray, old_ids: Sequence[int], new_ids: Sequence[int]) -> dict[int, int]:
    """New cluster -> old cluster, the Hungarian assignment maximising shared images (pairs sharing none are not
    matched; the no-cluster groups, -1, match each other when both runs have one)."""
    from scipy.optimize import linear_sum_assignment

    real_old = [c for c in old_ids if c >= 0]
    real_new = [c for c in new_ids if c >= 0]
    table = np.zeros((len(real_new), len(real_old)), dtype=np.int64)
    row, col = {c: i for i, c in enumerate(real_new)}, {c: j for j, c in enumerate(real_old)}
    for o, n in zip(old_c, new_c, strict=True):
        if o >= 0 and n >= 0:
            table[row[n], col[o]] += 1
    matches = {}
    if table.size:
        rows, cols = linear_sum_assignment(table, maximize=True)
        matches = {real_new[r]: real_old[c] for r, c in zip(rows, cols, strict=True) if table[r, c] > 0}
    if -1 in old_ids and -1 in new_ids:
        matches[-1] = -1
    return matches


def _merges_and_splits(
    old_c: np.ndarray, new_c: np.ndarray
) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]]:
    merged, split = {}, {}
    for n in sorted(set(new_c.tolist()) - {-1}):
        sources = old_c[new_c == n]
        parts = tuple(sorted(o for o in set(sources.tolist()) - {-1} if (sources == o).mean() >= MATERIAL))
        if len(parts) >= 2:
            merged[int(n)] = parts
    for o in sorted(set(old_c.tolist()) - {-1}):
        targets = new_c[old_c == o]
        parts = tuple(sorted(n for n in set(targets.tolist()) - {-1} if (targets == n).mean() >= MATERIAL))
        if len(parts) >= 2:
            split[int(o)] = parts
    return merged, split


def read(out_dir: Path) -> Snapshot | None:
    """The run whose outputs are in ``out_dir``, or ``None`` when there is none that can be read."""
    try:
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        table = pd.read_csv(out_dir / "assignments.csv", keep_default_na=False, dtype={"path": str})
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or not {"path", "cluster"} <= set(table.columns):
        return None
    return Snapshot(summary, table, str(out_dir))


def write_diff(old_dir: Path, new_dir: Path, out: Path) -> tuple[Changes, Path]:
    """``reportgen diff``: compare the runs in ``old_dir`` and ``new_dir`` and write diff.html and diff.json in
    ``out``; returns the changes and the page's path."""
    from .errors import ReportgenError
    from .freshness import recorded_data_dir
    from .fsutil import write_together
    from .notebook import file_uri
    from .report.page import environment

    snapshots = []
    for where in (old_dir, new_dir):
        snap = read(where)
        if snap is None:
            raise ReportgenError(f"'{where}' holds no finished run (summary.json and assignments.csv)")
        snapshots.append(snap)
    old, new = snapshots
    changes = compare(old, new)
    data_dir = recorded_data_dir(new_dir)

    def thumb(path: str) -> str | None:
        return file_uri(data_dir, path, 96)

    from .fsutil import template_dir
    from .report.changes import ROWS, SHOWN, events

    new_names = cluster_names(new.summary)
    page = environment().get_template("diff.html").render(
        ch=changes, old=old, new=new, rows=ROWS, events=events(changes, new_names),
        moved=[(m, thumb(m.path)) for m in changes.moved[:SHOWN]], added=[(p, thumb(p)) for p in changes.added[:SHOWN]],
        shown=SHOWN, css=(template_dir() / "report.css").read_text(encoding="utf-8"),
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    record = json.dumps(changes.to_json(), indent=2, ensure_ascii=False) + "\n"
    files = {"diff.html": page.encode("utf-8"), "diff.json": record.encode("utf-8")}
    write_together(out, files)
    return changes, out / "diff.html"
