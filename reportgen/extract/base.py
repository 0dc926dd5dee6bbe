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


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize``, center-crop ``crop``, scale to [0, 1], normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def key(self) -> str:
        return f"resize{self.resize}-crop{self.crop}-mean{self.mean}-std{self.std}"


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
class Resolution:
    """Which extractor a run uses and where its weights come from, decided without loading the model.

    ``load()`` builds the :class:`Extractor`; ``blank()``, when given, builds its ``network`` without loading any
    weights (what ``BACKBONE@LAYER`` specs read the graph and shapes from, :mod:`.layers`). ``categories()``
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

    @property
    def has_head(self) -> bool:
        return self.categories is not None


Factory = Callable[[Path | None, bool], Resolution]  # (--weights FILE or None, --offline) -> a Resolution

_FACTORIES: dict[str, Factory] = {}


def register_backbone(name: str, factory: Factory) -> None:
    """Make ``--backbone name`` resolve through ``factory(weights_file, offline)``; registering again replaces.

    Parameters
    ----------
    name : the spec string.
    factory : returns the :class:`Resolution` for the given ``--weights`` file (or ``None``) and ``--offline``.
        It must not import torch; its ``load`` may.
    """
    _FACTORIES[name] = factory


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

    def factory(weights_file: Path | None, offline: bool) -> Resolution:
        if weights_file is not None:
            raise BackboneError(f"backbone '{spec}' makes its own weights; it takes no --weights file")
        return Resolution(spec, dim, preprocessing, weights_id, load)

    return factory


def backbone_names() -> list[str]:
    """The registered spec names in registration order, without ``auto``."""
    return [name for name in _FACTORIES if name != AUTO]


def unknown_backbone(name: str) -> BackboneError:
    """The one-line error for a backbone that is not registered: the close names, then every name."""
    known = [AUTO, *backbone_names()]
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return BackboneError(f"unknown backbone '{name}'; {hint}choose one of: {', '.join(known)}")


def resolve(name: str, weights_file: Path | None, offline: bool) -> Resolution:
    """The :class:`Resolution` of the spec ``name``, without loading the model.

    Parameters
    ----------
    name : a registered spec, or ``auto``.
    weights_file : the ``--weights`` file, or ``None`` for the spec's own weights.
    offline : never touch the network.

    Returns
    -------
    :class:`Resolution`; an unknown name raises :class:`BackboneError` listing the known ones. A name
    ``BACKBONE@LAYER[:POOL]`` takes a layer of a registered backbone (:mod:`.layers`).
    """
    from . import layers

    layered = layers.parse(name) if layers.is_layered(name) else None
    backbone = layered.backbone if layered else name
    if backbone not in _FACTORIES:
        raise unknown_backbone(backbone)
    base = _FACTORIES[backbone](weights_file, offline)
    return layers.resolve_layered(name, base) if layered else base
