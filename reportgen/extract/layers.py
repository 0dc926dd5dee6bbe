"""Features from any layer of a registered backbone, pooled four ways: ``BACKBONE@LAYER:POOL`` specs.

``--backbone 'efficientnet-lite0@_blocks.10:max'`` takes the output of the node ``_blocks.10`` (any node of the
model's graph, as torchvision's ``get_graph_node_names`` names them; a module's name means its last node) and
pools it to one vector per image:

* a C x H x W map: ``avg`` (the mean over positions), ``max``, ``top10`` (the mean of each channel's top 10% of
  positions: keeps small objects that the mean dilutes) or ``gem`` (the generalised mean with p = 3, over the
  activations clipped at 1e-6); the default is ``avg``;
* transformer tokens (T x C): ``cls`` (the first token) or ``mean``; the default is ``cls``;
* a vector: no pooling.

The layer and the final features come out of one forward pass (torchvision's ``create_feature_extractor``, an fx
graph of the backbone's trunk), so the ImageNet predictions of the backbone's head stay available. A spec is
checked when it is resolved, before any image is decoded: an unknown layer or pooling is a one-line error naming
the close matches, and a map too small for its pooling says so. Resolving a layered spec builds the model without
its weights once, to read its graph and the layer's shape (a second or two; no download).
"""

from __future__ import annotations

import difflib
import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import BackboneError
from .base import Extractor, LayerChoice, Resolution

if TYPE_CHECKING:
    import torch
    from torch import nn

MAP_POOLS = ("avg", "max", "top10", "gem")
TOKEN_POOLS = ("cls", "mean")
TOP_SHARE = 0.10  # top10: the share of positions averaged per channel
GEM_P = 3.0


@dataclass(frozen=True)
class LayerSpec:
    """``backbone@layer:pool`` taken apart (``pool`` is ``None`` for the layer's default)."""

    backbone: str
    layer: str
    pool: str | None

    @property
    def text(self) -> str:
        return f"{self.backbone}@{self.layer}" + (f":{self.pool}" if self.pool else "")


def is_layered(spec: str) -> bool:
    return "@" in spec


def parse(spec: str) -> LayerSpec:
    """Split ``backbone@layer[:pool]``; a malformed spec is a :class:`BackboneError`."""
    backbone, _, rest = spec.partition("@")
    layer, _, pool = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not backbone or not layer:
        example = "efficientnet-lite0@_blocks.10:max"
        raise BackboneError(f"feature spec '{spec}' is not BACKBONE@LAYER[:POOL] (e.g. {example})")
    if pool and pool not in MAP_POOLS + TOKEN_POOLS:
        raise BackboneError(f"unknown pooling '{pool}' in '{spec}'{_close(pool, MAP_POOLS + TOKEN_POOLS)}")
    return LayerSpec(backbone, layer, pool or None)


def check_spec(spec: str) -> None:
    """A feature spec names a registered backbone and, after ``@``, a well-formed layer and pooling (whether the
    layer exists is checked when the backbone is resolved, before any image is decoded)."""
    from .base import is_known, unknown_backbone

    backbone = spec.partition("@")[0]
    if not is_known(backbone):
        raise unknown_backbone(backbone)
    if is_layered(spec):
        parse(spec)


def _close(word: str, choices: tuple[str, ...] | list[str]) -> str:
    near = difflib.get_close_matches(word, list(choices), n=5, cutoff=0.5)
    return f"; did you mean: {', '.join(near)}" if near else f"; choose one of: {', '.join(choices)}"


def resolve_layered(spec: str, base: Resolution) -> Resolution:
    """The :class:`Resolution` of a layered ``spec`` on the backbone resolved as ``base``."""
    parsed = parse(spec)
    shape = _probe(base, parsed.layer)
    pool = _check_pool(parsed, shape)
    text = replace(parsed, pool=pool).text
    choice = LayerChoice(base, parsed.layer, pool, shape)
    return replace(base, spec=text, dim=pooled_dim(shape), load=functools.partial(load_choices, [choice], text),
                   layer=choice)  # fmt: skip


def _check_pool(parsed: LayerSpec, shape: tuple[int, ...]) -> str | None:
    """The pooling for a layer of output ``shape`` (one image's), or a one-line error."""
    where = f"layer '{parsed.layer}' of '{parsed.backbone}'"
    if len(shape) == 1:
        if parsed.pool is not None:
            raise BackboneError(f"{where} gives a vector of {shape[0]}: it takes no pooling (drop ':{parsed.pool}')")
        return None
    if len(shape) == 2:  # tokens x channels
        if parsed.pool in MAP_POOLS:
            raise BackboneError(f"{where} gives {shape[0]} tokens: pool it with {' or '.join(TOKEN_POOLS)}")
        return parsed.pool or "cls"
    if len(shape) != 3:
        raise BackboneError(f"{where} gives an output of shape {shape}, neither a map, tokens nor a vector")
    if parsed.pool in TOKEN_POOLS:
        size = " x ".join(map(str, shape))
        raise BackboneError(f"{where} gives a {size} map: pool it with {', '.join(MAP_POOLS)}")
    pool = parsed.pool or "avg"
    if pool == "top10" and not _fits_top10(shape):
        raise BackboneError(
            f"{where} gives a {shape[1]} x {shape[2]} map ({shape[1] * shape[2]} positions): top10 needs at least "
            f"{math.ceil(1 / TOP_SHARE)} positions; use avg or max"
        )
    return pool


def _fits_top10(shape: tuple[int, ...]) -> bool:
    """Whether a C x H x W map has enough positions for top10 to average at least one per channel."""
    return shape[1] * shape[2] * TOP_SHARE >= 1


def usable_nodes(base: Resolution) -> list[tuple[str, tuple[int, ...]]]:
    """Every node of ``base``'s trunk whose output is a map, tokens or a vector, with its shape for one image."""
    trunk = _trunk(base)
    nodes = _node_names(trunk)
    shapes = _shapes(trunk, nodes, base.preprocessing.crop)
    return [(name, shapes[name]) for name in nodes if name in shapes]


def describe(backbone: str) -> list[str]:
    """The lines ``reportgen layers BACKBONE`` prints: every usable node, its output shape, the pooled length and
    the poolings it takes."""
    from .base import resolve

    base = resolve(parse(backbone).backbone if is_layered(backbone) else backbone, None, True)
    rows = usable_nodes(base)
    crop = base.preprocessing.crop
    module = next((_block(name) for name, _ in rows[len(rows) // 2 :] if "." in name), "")
    lines = [
        f"{base.spec}: {len(rows)} layers (input 3 x {crop} x {crop}); use one as --features '{base.spec}@LAYER:POOL'"
        + (f"; a module's name, such as {module}, means that module's last layer" if module else ""),
        f"{'layer':44s} {'output':>16s} {'pooled':>7s}  poolings",
    ]
    for name, shape in rows:
        if len(shape) == 3:
            pools = ", ".join(p for p in MAP_POOLS if p != "top10" or _fits_top10(shape))
        else:
            pools = ", ".join(TOKEN_POOLS) if len(shape) == 2 else "none"
        lines.append(f"{name:44s} {' x '.join(map(str, shape)):>16s} {pooled_dim(shape):7d}  {pools}")
    return lines


def _block(node: str) -> str:
    """The module a node belongs to, up to its first numbered part (``_blocks.8._bn0`` -> ``_blocks.8``)."""
    parts = node.split(".")
    cut = next((i for i, part in enumerate(parts) if part.isdigit()), 0)
    return ".".join(parts[: cut + 1])


def pooled_dim(shape: tuple[int, ...]) -> int:
    """The length of a pooled vector from an output of ``shape`` (one image's)."""
    return shape[-1] if len(shape) == 2 else shape[0]


# ------------------------------------------------------------------------------------------- graph and shapes


def _trunk(base: Resolution) -> nn.Module:
    """The backbone's trunk, without its weights when the backbone can build it so (its graph and shapes do not
    need them, and no download happens)."""
    return (base.blank() if base.blank is not None else base.load().network).eval()


def _node_names(trunk: nn.Module) -> list[str]:
    """The eval-mode graph's nodes that the train-mode graph has too (torchvision's feature extractor traces both;
    a node only eval mode has, such as a cached attention bias, cannot be returned)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "eval-mode nodes are a subsequence of train-mode nodes": we use eval
            train, nodes = get_graph_node_names(trunk)
    except Exception as exc:  # noqa: BLE001 - torch.fx raises many kinds on code it cannot trace
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BackboneError(f"torch.fx cannot trace this backbone's graph, so no layer can be taken ({first})") from exc
    both = set(train)
    return [n for n in nodes if n in both and n not in ("x", "inputs", "input")]


def _shapes(trunk: nn.Module, nodes: list[str], crop: int) -> dict[str, tuple[int, ...]]:
    import torch
    from torchvision.models.feature_extraction import create_feature_extractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = create_feature_extractor(trunk, return_nodes=nodes)
    with torch.inference_mode():
        out = body(torch.zeros(2, 3, crop, crop))
    # one row per image: a node that is a parameter (a weight) has no batch dimension of 2
    return {
        k: tuple(v.shape[1:])
        for k, v in out.items()
        if isinstance(v, torch.Tensor) and 2 <= v.dim() <= 4 and v.shape[0] == 2
    }


def _probe(base: Resolution, layer: str) -> tuple[int, ...]:
    """The output shape of ``layer`` for one image, or an error naming the close matches."""
    trunk = _trunk(base)
    nodes = _node_names(trunk)
    modules = {name for name, _ in trunk.named_modules() if name}
    if layer not in nodes and layer not in modules:
        raise BackboneError(f"backbone '{base.spec}' has no layer '{layer}'{_close(layer, nodes)}; "
                            f"'reportgen layers {base.spec}' lists them")  # fmt: skip
    shapes = _shapes(trunk, [layer], base.preprocessing.crop)
    if layer not in shapes:
        raise BackboneError(f"layer '{layer}' of '{base.spec}' does not give a tensor of one row per image")
    return shapes[layer]


# ------------------------------------------------------------------------------------------- the network


def pool_tensor(x: torch.Tensor, pool: str | None, positions: int = 0) -> torch.Tensor:
    """Maps (N x C x H x W), tokens (N x T x C) or vectors (N x C) pooled to N x C; ``positions`` (H x W, when
    known ahead) keeps top10's count a plain number, so that the network can still be traced and fused."""
    if pool is None:
        return x.flatten(1)
    if pool == "cls":
        return x[:, 0]
    if pool == "mean":
        return x.mean(dim=1)
    flat = x.flatten(2)
    if pool == "avg":
        return flat.mean(dim=2)
    if pool == "max":
        return flat.amax(dim=2)
    if pool == "top10":
        k = max(1, math.ceil(TOP_SHARE * (positions or flat.shape[2])))
        return flat.topk(k, dim=2).values.mean(dim=2)
    if pool == "gem":
        return flat.clamp(min=1e-6).pow(GEM_P).mean(dim=2).pow(1.0 / GEM_P)
    raise BackboneError(f"unknown pooling '{pool}'")


def load_choices(choices: Sequence[LayerChoice], spec: str) -> Extractor:
    """One extractor for several layers of one backbone (``choices`` share ``base``): its network runs the trunk
    once and returns the pooled layers side by side, and the trunk's own output (the head's input, so that the
    ImageNet predictions stay)."""
    import torch
    from torch import nn
    from torchvision.models.feature_extraction import create_feature_extractor

    extractor = choices[0].base.load()
    trunk = extractor.network.eval()
    last = _node_names(trunk)[-1]
    nodes = {c.node for c in choices if c.node is not None} | {last}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = create_feature_extractor(trunk, return_nodes=sorted(nodes))
    taken = [(c.node or last, c.pool, c.shape[1] * c.shape[2] if len(c.shape) == 3 else 0) for c in choices]

    class LayerNetwork(nn.Module):
        # torch.fx's conv/batch-norm fusion gave wrong features on this graph (the bundled model's padded
        # functional convolutions): the runner leaves it unfused.
        fusable = False

        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: Any) -> Any:  # noqa: ANN401 - tensors
            out = self.body(x)
            pooled = [pool_tensor(out[node], pool, positions) for node, pool, positions in taken]
            return (pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)), out[last]

    dim = sum(pooled_dim(c.shape) for c in choices)
    return _Layered(extractor, LayerNetwork().eval(), spec, dim)


class _Layered:
    """An :class:`Extractor` whose network returns (pooled layer, head input); predictions from the second."""

    def __init__(self, inner: Extractor, network: nn.Module, spec: str, dim: int) -> None:
        self.inner = inner
        self.network = network
        self.spec = spec
        self.dim = dim
        self.preprocessing = inner.preprocessing
        self.weights_id = inner.weights_id
        self.categories = inner.categories

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(batch)[0]

    def predictions(self, features: torch.Tensor) -> torch.Tensor | None:
        return self.inner.predictions(features)
