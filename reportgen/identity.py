"""Stable cluster ids: a rerun's clusters keep the ids and names of the last run's clusters they match.

Within one run clusters are numbered by size, 0 the largest. A scheduled rerun of a folder that grew a little
would renumber them, and every "cluster 3" in a user's notes, exported folders and scripts would point elsewhere.
So when the out folder holds the last run of the same data folder with the same cluster settings (the options
marked ``shapes_clusters``: features, weights, method, K and its range, PCA, seed):

* each cluster is **matched** to one of the last run's by the Hungarian assignment maximising the images both runs
  hold (:func:`reportgen.diff.match`, the same matching the "Since the last run" section uses) and takes its id;
* a matched cluster also keeps its **name** when it is still mostly the same cluster: at least half of its images
  that the last run had were in the cluster it matched (else it is named afresh from its content);
* a cluster that matches none gets a **new id**, one not used in that out folder since the ids were last numbered
  by size (``next_id`` is carried from run to run in summary.json ``cluster_ids``), the larger clusters first.

Otherwise (no earlier run here, other settings, the other data folder's run replaced with ``--force``, or
``--renumber``) the ids are the size order, and :class:`Lineage` says why in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .cluster.stage import Clustering
from .config import Config
from .diff import Snapshot, cluster_names, match

KEEP_NAME = 0.5  # a matched cluster keeps its name when at least this share of its shared images was in its match


@dataclass(frozen=True)
class Lineage:
    """Where the run's cluster ids come from (summary.json ``cluster_ids``)."""

    basis: str  # "previous": carried over from the last run; "size": numbered by size (0 the largest)
    reason: str  # one sentence: why
    kept: tuple[int, ...] = ()  # ids carried over from the last run
    new: tuple[int, ...] = ()  # ids given to clusters that match none of the last run's (basis "previous")
    renamed: tuple[int, ...] = ()  # kept ids whose cluster changed enough to be named afresh
    next_id: int = 0  # the id the next new cluster in this out folder will get
    follows: str = ""  # the last run's "generated" time when the ids were carried over from it


FIRST = "No earlier run in this out folder: clusters are numbered by size, 0 the largest."


def carry(
    clustering: Clustering, paths: tuple[str, ...], previous: Snapshot | None, config: Config, *, other: bool = False
) -> tuple[Clustering, Lineage]:
    """``clustering`` with the ids and names of the last run's clusters it matches, and where they come from.

    Parameters
    ----------
    clustering : this run's clusters, numbered by size.
    paths : each image's path (the rows of ``clustering.labels``).
    previous : the last run's outputs in the out folder, or ``None``.
    config : ``renumber`` and the cluster settings are read.
    other : the out folder held another data folder's run (replaced with ``--force``).
    """
    by_size = Lineage("size", FIRST, next_id=clustering.k)
    if other:
        return clustering, replace(by_size, reason=_by_size("the out folder held another data folder's run"))
    if previous is None:
        return clustering, by_size
    if config.renumber:
        return clustering, replace(by_size, reason=_by_size("--renumber was given"))
    changed = settings_changed(previous.summary, config)
    if changed:
        return clustering, replace(by_size, reason=_by_size(f"the cluster settings changed ({changed})"))
    old_of = _old_clusters(previous)  # path -> the last run's cluster id
    if old_of is None:
        return clustering, replace(by_size, reason=_by_size("the last run's assignments.csv has no usable cluster ids"))
    shared = [i for i, p in enumerate(paths) if p in old_of]
    new_c = clustering.labels[shared].astype(int)
    new_c = np.where(new_c >= clustering.k, -1, new_c)  # the noise group matches the last run's
    old_c = np.array([old_of[paths[i]] for i in shared], dtype=int)
    matches = match(old_c, new_c, sorted(set(old_of.values())), sorted(set(range(clustering.k))))
    start = max(_recorded_next(previous.summary), max((c + 1 for c in old_of.values()), default=0))
    ids, names, new, renamed = [], [], [], []
    old_names = cluster_names(previous.summary)
    for c in range(clustering.k):
        if c in matches:
            ids.append(matches[c])
            sources = old_c[new_c == c]
            same = len(sources) > 0 and float((sources == matches[c]).mean()) >= KEEP_NAME
            names.append(old_names.get(matches[c], "") if same else "")
            if not same:
                renamed.append(matches[c])
        else:
            ids.append(start + len(new))
            names.append("")
            new.append(ids[-1])
    kept = tuple(sorted(i for i in ids if i not in new))
    when = str(previous.summary.get("generated", ""))
    said = f"{len(kept)} of {clustering.k} clusters keep the id of the last run's cluster they match"
    said += f"; new: {', '.join(map(str, new))}" if new else ""
    lineage = Lineage(
        basis="previous",
        reason=f"Cluster ids carried over from the last run: {said}.",
        kept=kept,
        new=tuple(new),
        renamed=tuple(sorted(renamed)),
        next_id=start + len(new),
        follows=when,
    )
    return replace(clustering, ids=tuple(ids), names=tuple(names)), lineage


def _by_size(why: str) -> str:
    return f"Clusters are numbered by size, 0 the largest: {why}."


def settings_changed(summary: dict[str, Any], config: Config) -> str:
    """The cluster settings that differ from the run of ``summary``, as "name old → new, ..." ("" when none; a
    setting the run did not record is not compared)."""
    before = summary.get("parameters")
    if not isinstance(before, dict):
        return "the last run recorded none"
    now = config.cluster_settings()
    differ = [
        f"{name} {before[name]} → {value}" for name, value in now.items() if name in before and before[name] != value
    ]
    return ", ".join(differ)


def _recorded_next(summary: dict[str, Any]) -> int:
    record = summary.get("cluster_ids")
    value = record.get("next_id") if isinstance(record, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _old_clusters(previous: Snapshot) -> dict[str, int] | None:
    """Path -> the last run's cluster id, or ``None`` when its cluster column is not whole numbers."""
    table = previous.assignments.drop_duplicates("path")
    try:
        values = table["cluster"].astype(int)
    except (TypeError, ValueError):
        return None
    if (values < -1).any():
        return None
    return dict(zip(table["path"].astype(str), values.tolist(), strict=True))
