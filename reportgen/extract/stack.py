"""Stacks of feature specs: ``--features 'A+B'`` concatenates the features of several specs.

Each part is any spec (a backbone, or ``BACKBONE@LAYER:POOL``), optionally weighted: ``A*0.5+B``. The reduce stage
takes each part's block through the signed square root, L2-normalises it and multiplies it by its weight before
the rows are normalised as a whole (:func:`reportgen.reduce.reduce`), so that a wide block does not outweigh a
narrow one by its width alone.

Parts on the same backbone with the same weights share one forward pass (:func:`load_group`); the embedding cache
keeps each part's vectors under the part's own spec, so adding a part to a rerun computes only that part (and
only for the backbone it needs). A single spec is a stack of one part: nothing changes for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BackboneError
from .base import Extractor, Resolution, Weights, resolve

SEP = "+"
WEIGHT = "*"


@dataclass(frozen=True)
class FeatureBlock:
    """One part of the features as a run records it: its spec, weight, width, weights' identity and preprocessing."""

    spec: str
    weight: float
    dim: int
    weights: str
    preprocessing: str


@dataclass(frozen=True)
class Part:
    """One spec of a stack and its weight."""

    resolution: Resolution
    weight: float = 1.0

    @property
    def text(self) -> str:
        return self.resolution.spec + (f"{WEIGHT}{self.weight:g}" if self.weight != 1.0 else "")


@dataclass(frozen=True)
class Stack:
    """The resolved parts of a feature spec, in the order given."""

    parts: tuple[Part, ...]

    @property
    def spec(self) -> str:
        """The spec as resolved (default poolings filled in, ``auto`` resolved), parts joined by ``+``."""
        return SEP.join(part.text for part in self.parts)

    @property
    def weights_id(self) -> str:
        return " + ".join(dict.fromkeys(part.resolution.weights_id for part in self.parts))

    @property
    def preprocessing_key(self) -> str:
        return " + ".join(dict.fromkeys(part.resolution.preprocessing.key for part in self.parts))

    @property
    def dim(self) -> int:
        return sum(part.resolution.dim for part in self.parts)

    @property
    def blocks(self) -> tuple[FeatureBlock, ...]:
        """Each part's block of the features, in order."""
        return tuple(
            FeatureBlock(r.spec, p.weight, r.dim, r.weights_id, r.preprocessing.key)
            for p in self.parts
            for r in (p.resolution,)
        )

    @property
    def head(self) -> int | None:
        """The index of the first part with a classifier head (its predictions are the run's), or ``None``."""
        return next((i for i, part in enumerate(self.parts) if part.resolution.has_head), None)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.resolution.note for p in self.parts if p.resolution.note))

    def groups(self) -> list[list[int]]:
        """Indices of the parts that share a forward pass: the same backbone with the same weights."""
        out: dict[tuple[str, str], list[int]] = {}
        for i, part in enumerate(self.parts):
            base = part.resolution.choice.base
            out.setdefault((base.spec, base.weights_id), []).append(i)
        return list(out.values())


def split(spec: str) -> list[tuple[str, float]]:
    """The parts of ``spec`` with their weights; a blank part, a bad weight or a part named twice is one line."""
    parts: list[tuple[str, float]] = []
    for raw in spec.split(SEP):
        text, _, weight_text = raw.strip().partition(WEIGHT)
        if not text:
            raise BackboneError(f"feature spec '{spec}' has an empty part; join specs as A+B or A*0.5+B")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight > 0):
            raise BackboneError(f"the weight of '{text}' in '{spec}' must be a number above 0, got '{weight_text}'")
        if text in (p for p, _ in parts):
            raise BackboneError(f"feature spec '{spec}' names '{text}' twice")
        parts.append((text, weight))
    return parts


def resolve_stack(spec: str, weights: Weights, offline: bool) -> Stack:
    """Every part of ``spec`` resolved (:func:`reportgen.extract.base.resolve`), with its weight."""
    stack = Stack(tuple(Part(resolve(text, weights, offline), weight) for text, weight in split(spec)))
    seen = [part.resolution.spec for part in stack.parts]
    twice = next((s for s in seen if seen.count(s) > 1), None)
    if twice is not None:  # e.g. 'resnet50@layer4' and 'resnet50@layer4:avg'
        raise BackboneError(f"feature spec '{spec}' takes '{twice}' twice")
    return stack


def load_group(parts: Sequence[Part]) -> Extractor:
    """One extractor for parts of one backbone: its features are the parts' side by side, from one forward pass."""
    if len(parts) == 1 and parts[0].resolution.layer is None:
        return parts[0].resolution.load()  # a plain backbone: its own network, as optimised as the runner makes it
    from .layers import load_choices

    return load_choices([part.resolution.choice for part in parts], SEP.join(p.resolution.spec for p in parts))


def check(spec: str) -> None:
    """Each part of ``spec`` names a known backbone and a well-formed layer and pooling, before anything is loaded
    (whether the layer exists is checked when the spec is resolved, still before any image is decoded)."""
    from .layers import check_spec

    for text, _ in split(spec):
        check_spec(text)
