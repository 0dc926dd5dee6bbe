"""The co-association ensemble (``--method ensemble``): several representations and runs vote on which images
belong together.

Members: the report's own vectors plus, by default, two earlier layers of the same backbone (the modules at two
thirds and five sixths of its depth, average-pooled: :func:`default_members`), or the specs of
``--ensemble-features`` (a stack spec, ``A+B+C``). The members are embedded as one stack (one forward pass for the
layers of one backbone, each cached under its own spec), and each block is reduced on its own as a report's
vectors are. K-means clusters every member ``RUNS`` times (seeds ``seed`` ..), all at the chosen K; the
co-association of two images is the share of those clusterings that put them together, and average linkage on
``1 - C`` cut into K clusters is the result (:mod:`.coassoc`: exact up to 20,000 images, a nearest-neighbour
sparse approximation above).

K is the report's K-means choice on the report's own vectors (an ensemble fit per K of the sweep would cost
dozens of clusterings each); the K section says so.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .methods import kmeans

if TYPE_CHECKING:
    from ..config import Config
    from ..discover import ImageSet
    from .methods import MethodSpec

NAME = "ensemble"
RUNS = 3
DEPTHS = (2 / 3, 5 / 6)


class CoAssociation:
    """Consensus of K-means on ``x`` and on each of ``spaces`` (rows aligned with ``x``), ``runs`` seeds each."""

    def __init__(self, n_clusters: int, spaces: tuple[np.ndarray, ...] = (), runs: int = RUNS, random_state: int = 0):
        self.n_clusters, self.spaces, self.runs, self.random_state = n_clusters, spaces, runs, random_state

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters, "members": 1 + len(self.spaces), "runs": self.runs,
                "random_state": self.random_state}  # fmt: skip

    def set_params(self, **params: Any) -> CoAssociation:
        return self

    def fit_predict(self, x: np.ndarray) -> np.ndarray:
        from .coassoc import consensus  # scipy: only when an ensemble is fitted

        members = [x, *(s for s in self.spaces if len(s) == len(x))]
        labelings = [
            kmeans(self.n_clusters, self.random_state + r, len(x)).fit_predict(space)
            for space in members
            for r in range(self.runs)
        ]
        return consensus(labelings, self.n_clusters, seed=self.random_state)


def make(k: int, seed: int, n_rows: int, spaces: tuple[np.ndarray, ...] = ()) -> CoAssociation:
    return CoAssociation(k, spaces, RUNS, seed)


def default_members(spec: str, offline: bool) -> list[str]:
    """Two earlier layers of the backbone of ``spec`` (average-pooled modules at ``DEPTHS`` of its depth), or none
    when it has no layers to offer (a stack, or a backbone fx cannot trace)."""
    from ..extract.base import resolve
    from ..extract.layers import _block, is_layered, parse, usable_nodes
    from ..extract.stack import split

    if len(split(spec)) > 1:
        return []
    backbone = parse(spec).backbone if is_layered(spec) else spec
    try:
        base = resolve(backbone, None, offline)
        maps = [name for name, shape in usable_nodes(base) if len(shape) == 3]
    except Exception:  # noqa: BLE001 - a backbone without traceable layers still gets the runs ensemble
        return []
    modules = list(dict.fromkeys(_block(name) for name in maps if "." in name))
    picked = [modules[min(len(modules) - 1, int(d * len(modules)))] for d in DEPTHS] if modules else []
    return [f"{base.spec}@{m}:avg" for m in dict.fromkeys(picked)]


def member_spaces(images: ImageSet, config: Config, spec: str) -> tuple[list[str], tuple[np.ndarray, ...]]:
    """The members' specs and reduced vectors (rows aligned with ``images``' usable images)."""
    from ..extract import extract
    from ..extract.stack import split
    from ..reduce import reduce

    if config.ensemble_features:
        specs = [part for part, _ in split(config.ensemble_features)]
    else:
        specs = default_members(spec, config.offline)
    if not specs:
        return [], ()
    stacked = replace(config, backbone="+".join(specs), weights=config.weights)
    embeddings = extract(images, stacked)
    if embeddings.images.paths != images.paths:
        return [], ()  # a member could not read an image the report's spec could: the runs ensemble alone
    spaces, start = [], 0
    for block in embeddings.blocks:
        part = np.asarray(embeddings.features[:, start : start + block.dim], dtype=np.float32)
        spaces.append(reduce(part, replace(config, backbone=block.spec)).features)
        start += block.dim
    return [b.spec for b in embeddings.blocks], tuple(spaces)


def bound(images: ImageSet, config: Config, spec: str) -> tuple[MethodSpec | None, tuple[str, ...]]:
    """For ``--method ensemble``: the method with its members' vectors bound in, and the members' specs (the
    report's own first); otherwise ``(None, ())``."""
    from .methods import get_method

    if config.method != NAME:
        return None, ()
    specs, spaces = member_spaces(images, config, spec)
    return replace(get_method(NAME), make=partial(make, spaces=spaces)), (spec, *specs)


def note(combined: tuple[str, ...]) -> str:
    """The line the report shows about an ensemble's members."""
    members = ", ".join(combined)
    return (
        f"ensemble: K-means {RUNS} times on each of {members}; two images count as together by the share of those "
        "clusterings that group them, and average linkage on that cuts the clusters"
    )
