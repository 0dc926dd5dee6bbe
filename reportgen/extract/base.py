"""What an extractor is, and the registry that turns a ``--backbone`` spec string into one.

A spec resolves in two steps. Its factory, ``factory(weights_file, offline)``, decides cheaply, without
importing torch, which model and weights a run would use, and returns a :class:`Resolution`; that is all a
fully cached rerun or the rerun fingerprint needs. Only when some image must be computed does the runner call
``resolution.load()``, which builds the model and returns an :class:`Extractor`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import BackboneError

if TYPE_CHECKING:  # torch is imported only when a model is built (a cached rerun never needs it)
    from torch import Tensor, nn

AUTO = "auto"
TOP_K = 5  # class predictions kept per image from a model with a classifier head
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


RANDOM_WEIGHTS = "random"  # --weights random: the architecture untrained (seeded), a floor for studies
RANDOM_SEED = 0


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize`` (``interpolation``: bilinear or bicubic, antialiased), center-crop
    ``crop``, scale to [0, 1], normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    @property
    def key(self) -> str:
        key = f"resize{self.resize}-crop{self.crop}-mean{self.mean}-std{self.std}"
        return key if self.interpolation == "bilinear" else f"{key}-{self.interpolation}"


class Extractor(Protocol):
    """A loaded model: features for a preprocessed batch and, when it has a classifier head, class probabilities.

    Attributes
    ----------
    spec : the registered name it was loaded for.
    dim : the length of one feature vector.
    preprocessing : how an image becomes the model's input.
    weights_id : where the weights came from (part of the cache key).
    categories : the class names of the head's outputs, or ``None`` when the model has no classifier head.
    network : the module that computes :meth:`features`, on the CPU in eval mode. The runner runs its own
        optimised copy of it (batch-norm folded into the convolutions, channels-last, on the run's device, under
        the run's precision) instead of calling :meth:`features`, so ``network(batch)`` must be the features.
    """

    spec: str
    dim: int
    preprocessing: Preprocessing
    weights_id: str
    categories: tuple[str, ...] | None
    network: nn.Module

    def features(self, batch: Tensor) -> Tensor:
        """The features (N x ``dim``) of a preprocessed batch (N x 3 x crop x crop)."""
        ...

    def predictions(self, features: Tensor) -> Tensor | None:
        """Class probabilities (N x ``len(categories)``) from :meth:`features`' output, or ``None`` when headless.

        It takes the features rather than the batch so that the runner's forward pass is not run twice. The
        runner calls it outside autocast on the float32 features on the CPU; a row's probabilities must not depend
        on the other rows of its batch (the built-in classifiers compute their head in float64 for that).
        """
        ...


@dataclass
class NetworkExtractor:
    """An :class:`Extractor` whose features are ``network``'s output and that has no classifier head."""

    spec: str
    dim: int
    preprocessing: Preprocessing
    weights_id: str
    network: nn.Module
    categories: tuple[str, ...] | None = None

    def features(self, batch: Tensor) -> Tensor:
        """``network(batch)``."""
        return self.network(batch)

    def predictions(self, features: Tensor) -> Tensor | None:
        """``None``: no classifier head."""
        return None


@dataclass(frozen=True)
class LayerChoice:
    """A layer of a backbone's graph, pooled: ``node`` of ``base``'s trunk (``None``: the trunk's own output), its
    output shape for one image, and the pooling (``None`` for a vector)."""

    base: Resolution
    node: str | None
    pool: str | None
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Resolution:
    """Which extractor a run uses and where its weights come from, decided without loading the model.

    ``load()`` builds the :class:`Extractor`; ``layer`` says which layer of which backbone a layered spec takes
    (specs of one backbone in a stack then share a forward pass, :mod:`.stack`); ``blank()``, when given, builds
    its ``network`` without loading any weights (what ``BACKBONE@LAYER`` specs read the graph and shapes from,
    :mod:`.layers`). ``categories()``
    gives the head's class names without loading the model (a fully cached rerun needs them); ``None`` for a
    model without a classifier head. ``note`` is shown to the user (why ``auto`` chose what it chose).
    """

    spec: str
    dim: int
    preprocessing: Preprocessing
    weights_id: str
    load: Callable[[], Extractor] = field(repr=False, compare=False)
    categories: Callable[[], Sequence[str]] | None = field(default=None, repr=False, compare=False)
    note: str | None = None
    blank: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    layer: LayerChoice | None = field(default=None, repr=False, compare=False)  # set for BACKBONE@LAYER specs

    @property
    def has_head(self) -> bool:
        return self.categories is not None

    @property
    def choice(self) -> LayerChoice:
        """What this spec takes from its backbone: its layer, or the backbone's own features."""
        return self.layer or LayerChoice(self, None, None, (self.dim,))


Weights = Path | str | None  # --weights: a state-dict file, RANDOM_WEIGHTS, or None for the spec's own
Factory = Callable[[Weights, bool], Resolution]  # (--weights, --offline) -> a Resolution
# (model name, --weights, --offline) -> a Resolution, for a family of specs "prefix:name"
FamilyFactory = Callable[[str, Weights, bool], Resolution]


@dataclass(frozen=True)
class Family:
    """Specs ``prefix:name`` for every model a library ships: ``names()`` lists them (for close matches),
    ``factory`` resolves one."""

    prefix: str
    factory: FamilyFactory
    names: Callable[[], Sequence[str]]


_FACTORIES: dict[str, Factory] = {}
_FAMILIES: dict[str, Family] = {}


def register_backbone(name: str, factory: Factory) -> None:
    """Make ``--backbone name`` resolve through ``factory(weights_file, offline)``; registering again replaces.

    Parameters
    ----------
    name : the spec string.
    factory : returns the :class:`Resolution` for the given ``--weights`` file (or ``None``) and ``--offline``.
        It must not import torch; its ``load`` may.
    """
    _FACTORIES[name] = factory


def register_family(prefix: str, factory: FamilyFactory, names: Callable[[], Sequence[str]]) -> None:
    """Make ``--features prefix:name`` resolve through ``factory(name, weights, offline)`` for any ``name`` in
    ``names()`` (called only to check a name or list close matches, so it may import the library)."""
    _FAMILIES[prefix] = Family(prefix, factory, names)


def family_of(spec: str) -> Family | None:
    """The family a ``prefix:name`` backbone belongs to, or ``None``."""
    prefix, sep, _ = spec.partition(":")
    return _FAMILIES.get(prefix) if sep else None


def simple_resolution(
    spec: str, dim: int, preprocessing: Preprocessing, build: Callable[[], nn.Module], weights_id: str = "built-in"
) -> Factory:
    """A factory for a backbone without a classifier head whose features are the output of the module ``build()``.

    Parameters
    ----------
    spec, dim, preprocessing : as in :class:`Resolution`.
    build : makes the module, weights included (called only when some image is not in the cache).
    weights_id : names those weights in the cache key: change it when the weights change.

    Returns
    -------
    The factory to register; it refuses a ``--weights`` file, since ``build`` makes its own weights.
    """

    def load() -> Extractor:
        return NetworkExtractor(spec, dim, preprocessing, weights_id, build().eval())

    def factory(weights_file: Weights, offline: bool) -> Resolution:
        if weights_file is not None:
            raise BackboneError(f"backbone '{spec}' makes its own weights; it takes no --weights")
        return Resolution(spec, dim, preprocessing, weights_id, load)

    return factory


def backbone_names() -> list[str]:
    """The registered spec names in registration order, without ``auto``."""
    return [name for name in _FACTORIES if name != AUTO]


def all_backbones() -> list[str]:
    """Every spec a backbone can be named by: ``auto``, the registered names, then each family's ``prefix:name``."""
    return [AUTO, *backbone_names(), *(f"{f.prefix}:{name}" for f in _FAMILIES.values() for name in f.names())]


def unknown_backbone(name: str) -> BackboneError:
    """The one-line error for a backbone that is not registered: the close names, then every name (for a family's
    spec, the close names in that family and how to list them all)."""
    family = family_of(name)
    if family is not None:
        model = name.partition(":")[2]
        near = difflib.get_close_matches(model, list(family.names()), n=5, cutoff=0.6)
        hint = f"; did you mean {' or '.join(family.prefix + ':' + n for n in near)}?" if near else ""
        return BackboneError(f"unknown backbone '{name}'{hint} ('reportgen backbones' lists them)")
    known = [AUTO, *backbone_names()]
    near = [f"{prefix}:{name}" for prefix, fam in _FAMILIES.items() if name in fam.names()]
    near = near or difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    families = "".join(f", {prefix}:NAME" for prefix in _FAMILIES)
    return BackboneError(f"unknown backbone '{name}'; {hint}choose one of: {', '.join(known)}{families}")


def is_known(backbone: str) -> bool:
    """Whether ``backbone`` (no layer) names a registered backbone or a model of a registered family."""
    if backbone == AUTO or backbone in _FACTORIES:
        return True
    family = family_of(backbone)
    return family is not None and backbone.partition(":")[2] in family.names()


def resolve(name: str, weights_file: Weights, offline: bool) -> Resolution:
    """The :class:`Resolution` of the spec ``name``, without loading the model.

    Parameters
    ----------
    name : a registered spec, or ``auto``.
    weights_file : the ``--weights`` file, ``"random"`` (the architecture untrained), or ``None`` for the spec's own
        weights.
    offline : never touch the network.

    Returns
    -------
    :class:`Resolution`; an unknown name raises :class:`BackboneError` listing the known ones. A name
    ``BACKBONE@LAYER[:POOL]`` takes a layer of a registered backbone (:mod:`.layers`).
    """
    from . import layers

    layered = layers.parse(name) if layers.is_layered(name) else None
    backbone = layered.backbone if layered else name
    if not is_known(backbone):
        raise unknown_backbone(backbone)
    family = family_of(backbone)
    if family is not None and backbone not in _FACTORIES:
        base = family.factory(backbone.partition(":")[2], weights_file, offline)
    else:
        base = _FACTORIES[backbone](weights_file, offline)
    return layers.resolve_layered(name, base) if layered else base
