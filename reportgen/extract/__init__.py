"""Stage 2, extract: one feature vector per image from a pretrained network, reusing the on-disk cache.

``--backbone`` names a spec in a registry (:mod:`.base`). The spec's factory resolves it cheaply, without torch,
to a :class:`Resolution` (dimension, preprocessing, weights, whether it has a classifier head). The stage
(:mod:`.stage`) hashes the files and looks them up in the embedding cache; only when some image is missing does
``resolution.load()`` build the :class:`Extractor` and the runner (:mod:`.runner`, decoding in :mod:`.decode`)
compute it, storing each entry as its batch completes. Both work for any extractor, with or without a classifier
head; the runner alone owns batching, decoding workers, device, precision, batch-norm folding, channels-last and
the progress bar. The built-in backbones, ImageNet classifiers and ``auto``, are in :mod:`.classifiers`.

Adding a backbone is one :func:`register_backbone` call, from anywhere. A module without a classifier head
needs only a builder::

    from reportgen.extract import IMAGENET_MEAN_STD, Preprocessing, register_backbone, simple_resolution

    def tiny():
        from torch import nn  # torch is imported only when the model is built

        return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    prep = Preprocessing(resize=72, crop=64, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1])
    register_backbone("tiny", simple_resolution("tiny", dim=16, preprocessing=prep, build=tiny))

after which ``Config(backbone="tiny")`` (or ``--backbone tiny`` once registered before the CLI parses) extracts
with it. Without a head there are no ImageNet predictions: ``Embeddings.has_predictions`` is false and a note
says so. For more (a ``--weights`` file, a choice made at resolve time, a classifier head) register any
``factory(weights_file, offline) -> Resolution`` whose ``load()`` returns an :class:`Extractor`, as
:mod:`.classifiers` does; a head means ``predictions(features)`` and ``Resolution(..., categories=...)``.

:func:`extract`, :class:`Embeddings` and :func:`seed_cache_entries` load numpy on first use, so that the CLI can
list the backbones and keep current outputs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import baselines, classifiers, libraries  # noqa: F401 - register the built-in backbones, the baselines and tv:/timm: families
from .base import (
    AUTO,
    IMAGENET_MEAN_STD,
    TOP_K,
    Extractor,
    Factory,
    NetworkExtractor,
    Preprocessing,
    Resolution,
    backbone_names,
    register_backbone,
    resolve,
    simple_resolution,
)

if TYPE_CHECKING:
    from .stage import Embeddings, extract, seed_cache_entries

__all__ = [
    "AUTO",
    "IMAGENET_MEAN_STD",
    "TOP_K",
    "Embeddings",
    "Extractor",
    "Factory",
    "NetworkExtractor",
    "Preprocessing",
    "Resolution",
    "backbone_names",
    "extract",
    "register_backbone",
    "resolve",
    "seed_cache_entries",
    "simple_resolution",
]


def __getattr__(name: str) -> object:
    if name in ("Embeddings", "extract", "seed_cache_entries"):
        from . import stage

        return getattr(stage, name)
    raise AttributeError(f"module 'reportgen.extract' has no attribute {name!r}")
