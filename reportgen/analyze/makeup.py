"""What a cluster holds, in words and pictures: its material classes, whether it is a catch-all, its name and
the images of its montage.

Rules (also in the README):

* A class has a **material share** of a cluster when it puts at least ``max(2, 10%)`` of the cluster's images
  in it. A cluster with two or more material classes is **shared**.
* A labeled cluster is a **catch-all** when none of its classes is half of it and either three or more classes
  have a material share or the classes with a material share hold less than half of it (most of its images
  come from classes each too small to matter): it groups many classes without telling them apart. An unlabeled
  cluster is *loose* (a possible catch-all) when it is more than twice the average cluster size and its
  silhouette is below the mean silhouette of all images.
* **Names**, with labels, come from the classes a cluster holds: ``tools`` (90% or more one class),
  ``mostly tools, some fishes`` (the largest class 60% or more; a second class named when material),
  ``fishes and tools`` (two classes 80% or more together), ``mixed: a, b, c`` otherwise. Without labels, from
  the members' most common ImageNet predictions with their shares (``dam 40%, solar dish 20%``); without a
  classifier head, ``cluster N``. Names are made unique: a repeated name gets its most common ImageNet term,
  then the cluster's number.
* A **montage** shows what a cluster holds: with labels, its slots are shared among its classes in proportion
  to their counts (largest remainders), every material class and the largest class get at least one, and each
  class shows its members nearest the cluster's centre; without labels, half the slots show the members
  nearest the centre and the rest are spread evenly over the remaining members by distance, out to the edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MATERIAL_SHARE = 0.10
MATERIAL_MIN = 2
CATCH_ALL_CLASSES = 3
CATCH_ALL_TOP_SHARE = 0.5
LOOSE_SIZE_FACTOR = 2.0
ONE_CLASS = 0.9
MOSTLY = 0.6
TWO_CLASSES = 0.8


def material(classes: dict[str, int], size: int) -> list[tuple[str, int]]:
    """The classes with a material share of a cluster of ``size`` (most first)."""
    floor = max(MATERIAL_MIN, MATERIAL_SHARE * size)
    return [(name, n) for name, n in classes.items() if n >= floor]


def is_catch_all(classes: dict[str, int], size: int) -> bool:
    """Whether a labeled cluster groups many classes without any of them being half of it."""
    top = max(classes.values(), default=0)
    if top >= CATCH_ALL_TOP_SHARE * size:
        return False
    held = material(classes, size)
    return len(held) >= CATCH_ALL_CLASSES or sum(n for _, n in held) < CATCH_ALL_TOP_SHARE * size


def is_loose(size: int, mean_size: float, silhouette: float | None, overall: float | None) -> bool:
    """Whether an unlabeled cluster is large and loosely knit (a possible catch-all)."""
    if silhouette is None or overall is None:
        return False
    return size > LOOSE_SIZE_FACTOR * mean_size and silhouette < overall


def labeled_name(classes: dict[str, int], size: int) -> str:
    """A name from the classes a cluster holds (see the module docstring)."""
    ranked = sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return "empty"
    (first, n1), (second, n2) = ranked[0], ranked[1] if len(ranked) > 1 else ("", 0)
    if n1 >= ONE_CLASS * size:
        return first
    if n1 >= MOSTLY * size:
        material_names = {name for name, _ in material(classes, size)}
        return f"mostly {first}, some {second}" if second in material_names else f"mostly {first}"
    if n1 + n2 >= TWO_CLASSES * size:
        return f"{first} and {second}"
    return "mixed: " + ", ".join(name for name, _ in ranked[:3]) + (", …" if len(ranked) > 3 else "")


def prediction_name(shares: Sequence[tuple[str, float]]) -> str:
    """A name from the most common ImageNet predictions and their shares."""
    return ", ".join(f"{name} {share:.0%}" for name, share in shares[:2])


def unique_names(
    names: list[str], hints: list[str], ids: Sequence[int] | None = None, kept: Sequence[str] = ()
) -> list[str]:
    """``names`` with repeats told apart: first by ``hints[c]`` (an ImageNet term), then by cluster id ``ids[c]``
    (default ``c``). A name in ``kept[c]`` (the previous run's, unique there) replaces ``names[c]`` as it is, and
    the other names are told apart from it too."""
    ids = list(range(len(names))) if ids is None else list(ids)
    fixed = {name for name in kept if name}

    def own(c: int) -> bool:
        return c < len(kept) and bool(kept[c])

    free = [name for c, name in enumerate(names) if not own(c)]
    hinted = [
        f"{name} ({hints[c]})" if (free.count(name) > 1 or name in fixed) and hints[c] else name
        for c, name in enumerate(names)
    ]
    free = [name for c, name in enumerate(hinted) if not own(c)]
    return [
        kept[c] if own(c) else f"{name} #{ids[c]}" if free.count(name) > 1 or name in fixed else name
        for c, name in enumerate(hinted)
    ]


def allocate(counts: Sequence[int], slots: int, required: Sequence[int]) -> list[int]:
    """``slots`` shared among groups of ``counts`` by largest remainders, each of ``required`` getting one.

    No group gets more slots than it has members; slots nobody can fill stay empty.
    """
    total = sum(counts)
    slots = min(slots, total)
    if total == 0:
        return [0] * len(counts)
    exact = [slots * n / total for n in counts]
    given = [int(v) for v in exact]
    for j in sorted(range(len(counts)), key=lambda j: (-(exact[j] - given[j]), j))[: slots - sum(given)]:
        given[j] += 1
    for j in required:
        if given[j] == 0 and counts[j] > 0:
            donor = max(range(len(counts)), key=lambda d: (given[d], -d))
            given[donor] -= 1
            given[j] += 1
    return given


def labeled_montage(
    members: np.ndarray, labels: Sequence[str | None], dist: np.ndarray, classes: dict[str, int], slots: int
) -> tuple[int, ...]:
    """Montage indices: each class's share of ``slots``, its members nearest the centre, largest class first."""
    ranked = sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))
    size = sum(classes.values())
    keep = {name for name, _ in material(classes, size)}
    required = [j for j, (name, _) in enumerate(ranked) if j == 0 or name in keep]
    share = allocate([n for _, n in ranked], slots, required)
    order = np.lexsort((members, dist))
    out: list[int] = []
    for (name, _), k in zip(ranked, share, strict=True):
        out += [int(members[j]) for j in order if labels[members[j]] == name][:k]
    return tuple(out)


def spread_montage(members: np.ndarray, dist: np.ndarray, slots: int) -> tuple[int, ...]:
    """Montage indices: half the slots nearest the centre, the rest evenly over the other members to the edge."""
    order = [int(members[j]) for j in np.lexsort((members, dist))]
    if len(order) <= slots:
        return tuple(order)
    near = (slots + 1) // 2
    rest = order[near:]
    picks = np.linspace(0, len(rest) - 1, slots - near).round().astype(int)
    return tuple(order[:near] + [rest[j] for j in picks])
