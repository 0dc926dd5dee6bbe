"""The "Since the last run" section: what changed from the outputs this run replaced (:mod:`reportgen.diff`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .sections import Section, register_section

if TYPE_CHECKING:
    from ..diff import Changes
    from ..run import Run
    from .page import Page

SHOWN = 48  # moved and added images shown as tiles
ROWS = (("chosen_k", "K"), ("n_images", "images"), ("nmi", "NMI"), ("ari", "ARI"), ("purity", "purity"),
        ("silhouette", "silhouette"), ("n_oddballs", "oddballs"))  # fmt: skip
WHOLE = {"chosen_k", "n_images", "n_oddballs"}


def _applies(run: Run) -> bool:
    return run.changes is not None


def _fmt(value: object, key: str) -> str:
    if value is None:
        return "n/a"
    return f"{int(value)}" if key in WHOLE else f"{float(value):.3f}"  # type: ignore[arg-type]


def _delta(old: float, new: float, key: str) -> str:
    d = new - old
    return f"{d:+d}" if key in WHOLE else f"{d:+.3f}"


def events(changes: Changes, names: dict[int, str]) -> list[str]:
    """The cluster events in words: new, gone, merged, split."""
    out = []
    for c in changes.new_clusters:
        out.append(f"cluster {c} ({names.get(c, '?')}) is new")
    for c in changes.gone_clusters:
        out.append(f"the last run's cluster {c} ({changes.old_names.get(c, '?')}) is gone")
    for c, parts in changes.merged.items():
        out.append(f"cluster {c} merges the last run's clusters {', '.join(map(str, parts))}")
    for c, parts in changes.split.items():
        out.append(f"the last run's cluster {c} is split between clusters {', '.join(map(str, parts))}")
    return out


def _context(run: Run, page: Page) -> dict[str, Any]:
    changes = run.changes
    assert changes is not None
    index = {p: i for i, p in enumerate(run.images.path)}
    names = {c.cluster: c.name for c in run.analysis.clusters}
    moved = [(page.tile(index[m.path]), m) for m in changes.moved[:SHOWN] if m.path in index]
    added = page.tiles(index[p] for p in changes.added[:SHOWN] if p in index)
    return {"rows": ROWS, "fmt": _fmt, "delta": _delta, "events": events(changes, names), "moved": moved,
            "added": added}  # fmt: skip


def _images(run: Run) -> list[int]:
    changes = run.changes
    if changes is None:
        return []
    index = {p: i for i, p in enumerate(run.images.path)}
    paths = [m.path for m in changes.moved[:SHOWN]] + list(changes.added[:SHOWN])
    return [index[p] for p in paths if p in index]


register_section(
    Section("since-last-run", "Since the last run", "sections/since_last_run.html", _applies, _context, _images),
    after="summary",
)
