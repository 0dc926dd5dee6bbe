"""Every classifier torchvision and timm ship, as ``tv:<name>`` and ``timm:<name>`` backbones.

``tv:<name>`` is any classification model in ``torchvision.models`` (``reportgen backbones tv:`` lists them) with its
default weights and *their* preprocessing, read from the weights enum (resize, crop, interpolation, mean, std;
Inception v3 takes 342 -> 299). ``timm:<name>`` is any timm model, a pretrained tag included
(``timm:resnet50.a1_in1k``), with timm's own data config (input size, crop fraction, interpolation, mean, std).

The features are the classifier's input: the output of everything before its last linear layer (torchvision), or
of the model once timm's ``reset_classifier(0)`` has removed its classifier; that classifier is the head that
gives the class predictions.
A model without a linear head (SqueezeNet) gives its last map average-pooled and no predictions.

Weights come from the libraries' own caches (torch hub's checkpoints for torchvision, Hugging Face's for timm) and
download there as those libraries do when they are absent and the network is allowed; with ``--offline`` or no
network an absent file is one line saying where it was looked for. ``--weights random`` builds the architecture
untrained (seeded, no download, no predictions); ``--weights FILE`` loads a state dict.

Resolving a spec imports the library and builds the model on torch's ``meta`` device (no memory, no weights) to
read its feature size: about a second, no download.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackboneError, WeightsUnavailableError
from .base import RANDOM_WEIGHTS, NetworkExtractor, Preprocessing, Resolution, Weights, register_family
from .classifiers import (
    READ_TIMEOUT_S,
    Classifier,
    cached_weights_path,
    check_reachable,
    fit_state,
    imagenet_categories,
    load_state_file,
    one_line,
    set_submodule,
    socket_timeout,
    untrained,
    weights_identity,
)

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

HF_ENDPOINT = "https://huggingface.co"
HF_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


# ------------------------------------------------------------------------------------------------ torchvision


@functools.cache
def tv_names() -> tuple[str, ...]:
    """torchvision's classification models (its detection, segmentation and video models are not classifiers)."""
    import torchvision.models

    return tuple(torchvision.models.list_models(module=torchvision.models))


def resolve_tv(name: str, weights: Weights, offline: bool) -> Resolution:
    """The :class:`Resolution` of ``tv:name``: its default weights' preprocessing, its feature size."""
    import torchvision.models

    enum = torchvision.models.get_model_weights(name).DEFAULT
    t = enum.transforms()
    prep = Preprocessing(
        int(t.resize_size[0]),
        int(t.crop_size[0]),
        tuple(t.mean),
        tuple(t.std),
        t.interpolation.value,
    )
    head_path, dim = _tv_head(name, prep.crop)
    identity = weights_identity(weights, f"torchvision:{enum.url}")
    categories = None if weights == RANDOM_WEIGHTS or head_path is None else lambda: list(enum.meta["categories"])
    spec = f"tv:{name}"

    def build(with_weights: bool) -> nn.Module:
        return _tv_model(name, weights if with_weights else RANDOM_WEIGHTS, offline)

    load = functools.partial(_split, spec, dim, prep, identity, build, head_path, categories)
    blank = functools.partial(_trunk_only, build, head_path)
    return Resolution(spec, dim, prep, identity, load=load, categories=categories, blank=blank)


@functools.cache
def _tv_head(name: str, crop: int) -> tuple[str | None, int]:
    """The path of the last linear layer (``None`` without one) and the length of the features before it."""
    model = _on_meta(lambda: _tv_get(name, weights=None))
    path = _last_linear(model)
    return path, _out_dim(_strip(model.eval(), path)[0], crop)


def _tv_model(name: str, weights: Weights, offline: bool) -> nn.Module:
    """torchvision's ``name`` with its default weights (from the cache, else downloaded), a file's, or untrained."""
    import torchvision.models

    if weights == RANDOM_WEIGHTS:
        return untrained(functools.partial(_tv_get, name, weights=None))
    if weights is not None:
        mismatch = f"weights '{Path(weights).name}' do not fit tv:{name}"
        return fit_state(_tv_get(name, weights=None), load_state_file(Path(weights)), mismatch)
    enum = torchvision.models.get_model_weights(name).DEFAULT
    _require(enum.url, cached_weights_path(enum.url), f"tv:{name}", offline)
    with socket_timeout(READ_TIMEOUT_S):
        try:
            return _tv_get(name, weights=enum, progress=False)
        except OSError as exc:
            raise WeightsUnavailableError(f"downloading tv:{name} weights from {enum.url} failed: {exc}") from exc


def _tv_get(name: str, **kwargs: Any) -> nn.Module:  # noqa: ANN401 - torchvision's keyword arguments
    """``torchvision.models.get_model``, without Inception's warning about its future default initialisation."""
    import torchvision.models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torchvision.models.get_model(name, **kwargs)


# ------------------------------------------------------------------------------------------------ timm


@functools.cache
def timm_names() -> tuple[str, ...]:
    """Every timm architecture and every pretrained tag of one (``resnet50`` and ``resnet50.a1_in1k``)."""
    import timm

    return tuple(sorted({*timm.list_models(), *timm.list_pretrained()}))


def resolve_timm(name: str, weights: Weights, offline: bool) -> Resolution:
    """The :class:`Resolution` of ``timm:name``: timm's data config for its pretrained weights, its feature size."""
    import timm
    from timm.data import resolve_model_data_config

    meta = _on_meta(lambda: timm.create_model(name, pretrained=False))
    data = resolve_model_data_config(meta)
    crop = int(data["input_size"][-1])
    prep = Preprocessing(
        math.floor(crop / data["crop_pct"]),
        crop,
        tuple(data["mean"]),
        tuple(data["std"]),
        "bicubic" if data["interpolation"] == "bicubic" else "bilinear",
    )
    source = meta.pretrained_cfg.get("hf_hub_id") or meta.pretrained_cfg.get("url") or name
    identity = weights_identity(weights, f"timm:{source}")
    categories = None if weights == RANDOM_WEIGHTS else _timm_categories(meta)
    spec = f"timm:{name}"

    def build(with_weights: bool) -> nn.Module:
        return _timm_model(name, weights if with_weights else RANDOM_WEIGHTS, offline)

    def load() -> Classifier | NetworkExtractor:
        trunk, head = _timm_trunk(build(True).eval())
        if categories is None or not hasattr(head, "weight"):
            return NetworkExtractor(spec, dim, prep, identity, trunk)
        return Classifier(spec, dim, prep, identity, trunk, head, tuple(categories()))

    dim = _out_dim(_timm_trunk(meta.eval())[0], crop)
    blank = lambda: _timm_trunk(build(False).eval())[0]  # noqa: E731 - the trunk's graph, without weights
    return Resolution(spec, dim, prep, identity, load=load, categories=categories, blank=blank)


def _timm_categories(model: nn.Module) -> Callable[[], Sequence[str]] | None:
    """The class names of a timm model's head: ImageNet's for 1000 classes, else timm's own list, if any."""
    head = model.get_classifier()
    if model.num_classes == 1000 and hasattr(head, "weight"):
        return imagenet_categories
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(model)
    if not subset or not hasattr(head, "weight"):
        return None
    info = ImageNetInfo(subset)
    return lambda: [info.index_to_description(i).split(",")[0] for i in range(info.num_classes())]


def _timm_model(name: str, weights: Weights, offline: bool) -> nn.Module:
    """timm's ``name`` with its pretrained weights (a cached file, else downloaded), a file's, or untrained."""
    import timm

    if weights == RANDOM_WEIGHTS:
        return untrained(functools.partial(timm.create_model, name, pretrained=False))
    if weights is not None:
        try:
            return timm.create_model(name, pretrained=False, checkpoint_path=str(weights))
        except RuntimeError as exc:  # timm loads the file itself
            raise BackboneError(f"weights '{Path(weights).name}' do not fit timm:{name}: {one_line(exc)}") from exc
    cfg = timm.models.get_pretrained_cfg(name)
    cfg = cfg.to_dict() if cfg is not None else {}
    cached = _timm_cached_file(cfg)
    if cached is not None:  # load the file itself: no request to the hub at all
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
    where = cfg.get("hf_hub_id") or cfg.get("url")
    if not where:
        raise WeightsUnavailableError(f"timm has no pretrained weights for '{name}'; use --weights random or FILE")
    url = f"{HF_ENDPOINT}/{where}" if cfg.get("hf_hub_id") else where
    hub = cfg.get("hf_hub_id")
    _require(url, f"in Hugging Face's cache ({hub})" if hub else cached_weights_path(url), f"timm:{name}", offline)
    with socket_timeout(READ_TIMEOUT_S):
        try:
            return timm.create_model(name, pretrained=True)
        except OSError as exc:
            raise WeightsUnavailableError(f"downloading timm:{name} weights from {url} failed: {exc}") from exc


def _timm_cached_file(cfg: dict[str, Any]) -> Path | None:
    """The weights file of a timm pretrained config already in Hugging Face's or torch hub's cache, or ``None``."""
    if cfg.get("hf_hub_id"):
        from huggingface_hub import try_to_load_from_cache

        names = (cfg["hf_hub_filename"],) if cfg.get("hf_hub_filename") else HF_FILES
        for filename in names:
            found = try_to_load_from_cache(cfg["hf_hub_id"], filename)
            if isinstance(found, str):
                return Path(found)
    if cfg.get("url") and cached_weights_path(cfg["url"]).is_file():
        return cached_weights_path(cfg["url"])
    return None


def _timm_trunk(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(trunk, head): the model with its classifier removed (its output is then the classifier's input), and the
    classifier."""
    head = model.get_classifier()
    model.reset_classifier(0)
    return model, head


# ------------------------------------------------------------------------------------------------ shared


def _require(url: str, cached: Path | str, spec: str, offline: bool) -> None:
    """Nothing when the weights file ``cached`` exists or may be downloaded from ``url``; else a one-line
    :class:`WeightsUnavailableError` (``cached`` as a text: where the library's cache was searched)."""
    if isinstance(cached, Path) and cached.is_file():
        return
    if offline:
        where = f"cached at '{cached}'" if isinstance(cached, Path) else cached
        raise WeightsUnavailableError(
            f"--offline was given and {spec} weights are not {where}; "
            "use --weights FILE, --weights random or --features efficientnet-lite0"
        )
    check_reachable(url)
    log.info("downloading %s weights from %s", spec, url)


def _on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` on torch's meta device (shapes only), or on the CPU for a model whose init needs real values."""
    import torch

    try:
        with torch.device("meta"):
            return build()
    except (NotImplementedError, RuntimeError):
        return build()


def _out_dim(trunk: nn.Module, crop: int) -> int:
    """The feature length of ``trunk`` for one ``crop`` x ``crop`` image (on its device: meta costs nothing)."""
    import torch

    device = next(trunk.parameters()).device
    with torch.inference_mode():
        return int(trunk(torch.zeros(1, 3, crop, crop, device=device)).shape[1])


def _last_linear(model: nn.Module) -> str | None:
    from torch import nn

    paths = [path for path, module in model.named_modules() if isinstance(module, nn.Linear)]
    return paths[-1] if paths else None


def _pooled_trunk(model: nn.Module) -> nn.Module:
    """For a model without a linear head: every child but the last (the classifier), then global average pooling."""
    from torch import nn

    return nn.Sequential(*list(model.children())[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _trunk_only(build: Callable[[bool], nn.Module], head_path: str | None) -> nn.Module:
    """The untrained model's trunk (for the layer listing and a layer spec's shapes: no weights needed)."""
    return _strip(build(False), head_path)[0].eval()


def _strip(model: nn.Module, head_path: str | None) -> tuple[nn.Module, nn.Module | None]:
    """(trunk, head): the model with its last linear layer replaced by the identity, and that layer."""
    from torch import nn

    if head_path is None:
        return _pooled_trunk(model), None
    head = model.get_submodule(head_path)
    set_submodule(model, head_path, nn.Identity())
    return model, head


def _split(
    spec: str,
    dim: int,
    prep: Preprocessing,
    identity: str,
    build: Callable[[bool], nn.Module],
    head_path: str | None,
    categories: Callable[[], Sequence[str]] | None,
) -> Classifier | NetworkExtractor:
    """The loaded extractor: the trunk's features, and the head's predictions unless untrained or headless."""
    trunk, head = _strip(build(True).eval(), head_path)
    if head is None or categories is None:
        return NetworkExtractor(spec, dim, prep, identity, trunk.eval())
    return Classifier(spec, dim, prep, identity, trunk.eval(), head.eval(), tuple(categories()))


register_family("tv", resolve_tv, tv_names)
register_family("timm", resolve_timm, timm_names)
