"""The backbone cut in two at the map layer, and the scores whose gradients the maps show.

Grad-CAM needs the activations ``A`` of one convolutional layer and the gradient of a score with respect to them.
Every score here (an ImageNet logit, a cosine similarity to a cluster's centre) depends on ``A`` only through the
few layers after it, so the network is cut at that layer (torch.fx): the ``head`` runs once per image without
gradients and gives ``A`` (plus any earlier value the rest still reads, such as another feature layer of a stack),
and the ``tail`` (the last layers, the pooling, the classifier or the reduction) is all that runs, with gradients,
for each score. That is what keeps maps for hundreds of images cheap: one forward pass each, as in embedding.

Imported only when some map must be computed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..errors import BackboneError
from ..extract.layers import _node_names, _shapes, pool_tensor

CAM = "cam"
OUT = "out"


@dataclass(frozen=True)
class MapLayer:
    """Where the maps are taken: a node of the trunk's graph and its output shape (C x H x W) for one image."""

    node: str
    shape: tuple[int, int, int]


def map_nodes(trunk: nn.Module, crop: int) -> list[tuple[str, tuple[int, int, int]]]:
    """Every node of ``trunk`` whose output is a square C x H x W map of more than one position, a quarter of the
    input's side or less (a convolutional map), in graph order; none when a later node gives tokens (T x C: a
    transformer, whose maps are only its patch embedding)."""
    nodes = _node_names(trunk)
    shapes = _shapes(trunk, nodes, crop)
    found = [(n, shapes[n]) for n in nodes if n in shapes]
    maps = [(n, s) for n, s in found if len(s) == 3 and 1 < s[1] == s[2] <= crop // 4]
    if maps and any(len(s) == 2 for _, s in found[[n for n, _ in found].index(maps[-1][0]) :]):
        return []
    return maps  # type: ignore[return-value]


def choose_layer(
    trunk: nn.Module, crop: int, feature_nodes: Sequence[str | None], requested: str | None, spec: str
) -> MapLayer:
    """The layer the maps are taken at.

    ``requested`` (``--explain-layer``) when given; else the deepest map the features depend on: the trunk's last
    map when some part of the features is the trunk's own output (``None`` in ``feature_nodes``: the last
    convolutional block), else the deepest layer a part pools. A backbone without such a map (a vision
    transformer's tokens) is a :class:`BackboneError`.
    """
    if requested is not None:
        return requested_layer(trunk, crop, requested, spec)
    maps = dict(map_nodes(trunk, crop))
    if not maps:
        raise BackboneError("it has no convolutional feature map (its last layers work on tokens or vectors)")
    names = list(maps)
    if None in feature_nodes:
        return MapLayer(names[-1], maps[names[-1]])
    order = _node_names(trunk)
    pooled = []
    for node in feature_nodes:
        try:
            pooled.append(requested_layer(trunk, crop, node, spec))  # type: ignore[arg-type]
        except BackboneError:
            continue  # a part that pools no map (a vector layer): the tail computes it from a later map anyway
    if not pooled:
        return MapLayer(names[-1], maps[names[-1]])
    return max(pooled, key=lambda layer: _position(order, layer.node))


def _position(order: list[str], node: str) -> int:
    """Where ``node`` (a graph node, or a module: its last node) comes in the graph."""
    if node in order:
        return order.index(node)
    return max((i for i, name in enumerate(order) if name.startswith(node + ".")), default=-1)


def requested_layer(trunk: nn.Module, crop: int, name: str, spec: str) -> MapLayer:
    """``--explain-layer name``: a node of the graph or a module (its last node) whose output is a C x H x W map,
    else a :class:`BackboneError` naming close matches."""
    from ..extract.layers import _close

    nodes = _node_names(trunk)
    modules = {n for n, _ in trunk.named_modules() if n}
    if name not in nodes and name not in modules:
        maps = [n for n, _ in map_nodes(trunk, crop)]
        raise BackboneError(f"--explain-layer '{name}' is not a layer of '{spec}'{_close(name, maps or nodes)}")
    shape = _shapes(trunk, [name], crop).get(name, ())
    if len(shape) != 3 or shape[1] * shape[2] < 2:
        gives = " x ".join(map(str, shape)) or "no tensor"
        raise BackboneError(f"--explain-layer '{name}' of '{spec}' gives {gives}, not a C x H x W map")
    return MapLayer(name, shape)  # type: ignore[arg-type]


class Split(nn.Module):
    """The trunk cut at a layer: :meth:`head` gives the layer's activations and whatever else the tail reads;
    :meth:`tail` gives the trunk's output and each feature layer's output from them."""

    def __init__(self, trunk: nn.Module, layer: str, feature_nodes: Sequence[str], crop: int) -> None:
        super().__init__()
        last = _node_names(trunk)[-1]
        wanted = [layer, last, *feature_nodes]
        distinct = list(dict.fromkeys(wanted))
        from torchvision.models.feature_extraction import create_feature_extractor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = create_feature_extractor(trunk.eval(), return_nodes={n: f"n{i}" for i, n in enumerate(distinct)})
        outputs = next(n for n in body.graph.nodes if n.op == "output").args[0]
        by_name = {name: outputs[f"n{i}"] for i, name in enumerate(distinct)}
        keep = {OUT: by_name[last], **{f"f{i}": by_name[n] for i, n in enumerate(feature_nodes)}}
        self.head_module, self.tail_module, self.n_deps, self.follows = _cut(body, by_name[layer], keep)
        self._check(trunk, crop)
        from ..extract.runtime import _fused

        plain, fused = self.head_module, _fused(self.head_module)
        self.head_module = fused  # batch-norm folded into the convolutions: the head runs about 1.3x faster
        try:
            self._check(trunk, crop)
        except BackboneError:
            self.head_module = plain

    def _check(self, trunk: nn.Module, crop: int) -> None:
        """The two halves give what the trunk gives, or a :class:`BackboneError` (a graph this cut does not fit)."""
        x = torch.randn(2, 3, crop, crop, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            whole = trunk(x)
            whole = whole[0] if isinstance(whole, tuple) else whole
            cut = self.tail(*self.head(x))[OUT]
        if cut.shape != whole.shape or not torch.allclose(cut, whole, rtol=1e-3, atol=1e-4):
            raise BackboneError("its network cannot be cut at the map layer without changing what it computes")

    def head(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(the layer's activations, the tail's other inputs) for a batch."""
        return self.head_module(x)

    def tail(self, cam: torch.Tensor, *deps: torch.Tensor) -> dict[str, torch.Tensor]:
        """``out`` (the trunk's output) and ``f0``, ``f1``... (the feature layers' outputs)."""
        return self.tail_module(cam, *deps)


def _cut(
    body: fx.GraphModule, at: fx.Node, keep: dict[str, fx.Node]
) -> tuple[fx.GraphModule, fx.GraphModule, int, frozenset[str]]:
    """``body``'s graph as two graphs: ``x -> (at, *deps)`` and ``(at, *deps) -> keep``, where ``deps`` are the
    values computed before ``at`` that the second still reads (a residual input, an earlier feature layer); and the
    keys of ``keep`` that depend on ``at`` (the others have no gradient there)."""
    nodes = list(body.graph.nodes)
    after = {at}
    for node in nodes:
        if any(arg in after for arg in node.all_input_nodes):
            after.add(node)
    needed: set[fx.Node] = set()
    todo = list(keep.values())
    while todo:
        node = todo.pop()
        if node not in needed:
            needed.add(node)
            if node is not at:
                todo.extend(node.all_input_nodes)
    deps: list[fx.Node] = []
    for node in nodes:
        if node in needed and node in after and node is not at:
            deps += [a for a in node.all_input_nodes if a not in after and a.op != "get_attr" and a not in deps]
    deps += [n for n in keep.values() if n not in after and n not in deps]
    batch = [d for d in deps if _is_batch_size(d)]  # x.size(0): the tail reads it from its own input
    deps = [d for d in deps if d not in batch]

    head = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in _ancestors(nodes, [at, *deps]):
        env[node] = head.node_copy(node, env.__getitem__)
    head.output((env[at], *(env[d] for d in deps)))

    tail = fx.Graph()
    env = {at: tail.placeholder(CAM)}
    for i, dep in enumerate(deps):
        env[dep] = tail.placeholder(f"dep{i}")
    for dep in batch:
        env[dep] = tail.call_method("size", (env[at], 0))
    for node in nodes:
        if node in env or node.op in ("output", "placeholder") or node not in needed:
            continue
        if node in after or node.op == "get_attr":
            env[node] = tail.node_copy(node, env.__getitem__)
    tail.output({key: env[node] for key, node in keep.items()})
    follows = frozenset(key for key, node in keep.items() if node in after)
    return fx.GraphModule(body, head), fx.GraphModule(body, tail), len(deps), follows


def _is_batch_size(node: fx.Node) -> bool:
    """Whether ``node`` is ``tensor.size(0)``, the batch size (models flatten with ``x.view(x.size(0), -1)``)."""
    if node.op != "call_method" or node.target != "size":
        return False
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return dim == 0


def _ancestors(nodes: list[fx.Node], targets: list[fx.Node]) -> list[fx.Node]:
    """``targets`` and every node they read, in graph order."""
    seen: set[fx.Node] = set()
    todo = list(targets)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(node.all_input_nodes)
    return [n for n in nodes if n in seen]


class Scores(nn.Module):
    """The tail followed by the scores a map is taken for: captum's forward function, whose first input is the map
    layer's activations (through ``entry``, the layer captum hooks).

    ``logits`` is the ImageNet head's (``None`` for a headless backbone). ``similarity`` maps the tail's outputs to
    the cosine similarities with each target centre (:class:`Reduction`).
    """

    def __init__(self, split: Split, head: nn.Module | None, reduction: Reduction | None, kind: str) -> None:
        super().__init__()
        self.split = split
        self.entry = nn.Identity()
        self.head = head
        self.reduction = reduction
        self.kind = kind

    def forward(self, cam: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        deps, context = rest[: self.split.n_deps], rest[self.split.n_deps :]
        out = self.split.tail(self.entry(cam), *deps)
        if self.kind == "logits":
            assert self.head is not None
            return self.head(out[OUT].flatten(1))
        assert self.reduction is not None
        return self.reduction(out, *context)


class Full(nn.Module):
    """The whole path from the image to the scores (guided backpropagation needs the input's gradient)."""

    def __init__(self, scores: Scores) -> None:
        super().__init__()
        self.scores = scores

    def forward(self, x: torch.Tensor, *context: torch.Tensor) -> torch.Tensor:
        cam, *deps = self.scores.split.head(x)
        return self.scores(cam, *deps, *context)


class Reduction(nn.Module):
    """The run's features of one image as the tail computes them, through the reduce stage (signed square root,
    each block's L2 norm and weight, the row's L2 norm, the PCA projection), then its similarity with each target
    centre in that space: the projection on the centre's direction (``cosine`` false), or the cosine similarity.

    The projection ``z . c / |c|`` is the part of K-means' assignment score, ``|z - c|^2 = |z|^2 - 2 z . c + |c|^2``,
    that differs between clusters for a given image. The cosine divides it by ``|z|`` as well, and the gradient of
    that term rewards shrinking the image's own vector in every direction, which lights up backgrounds: on photos
    pasted on noise, the cosine's peak falls on the photo far less often (docs/quality.md).

    Parameters
    ----------
    parts : for each feature block the tail computes, ``(tail output key, pooling, positions, first column)``.
    blocks : (width, weight) of every block of the run's features (blocks the tail does not compute are the
        image's cached values, passed as ``context``).
    power_norm : the signed square root was applied.
    mean, components : the PCA (``components`` is n_components x D).
    centres : targets x n_components.
    cosine : the cosine similarity instead of the projection.
    """

    def __init__(
        self,
        parts: Sequence[tuple[str, str | None, int, int]],
        blocks: Sequence[tuple[int, float]],
        power_norm: bool,
        mean: torch.Tensor,
        components: torch.Tensor,
        centres: torch.Tensor,
        cosine: bool = False,
    ) -> None:
        super().__init__()
        self.cosine = cosine
        self.parts = list(parts)
        self.blocks = list(blocks)
        self.power_norm = power_norm
        self.register_buffer("mean", mean)
        self.register_buffer("components", components)
        self.register_buffer("centres", nn.functional.normalize(centres, dim=1))

    def forward(self, out: dict[str, torch.Tensor], cached: torch.Tensor) -> torch.Tensor:
        row = cached.clone()
        for key, pool, positions, start in self.parts:
            value = pool_tensor(out[key], pool, positions)
            row = torch.cat([row[:, :start], value, row[:, start + value.shape[1] :]], dim=1)
        if self.power_norm:
            row = torch.sign(row) * torch.sqrt(row.abs() + 1e-6)
        if len(self.blocks) > 1:
            pieces, start = [], 0
            for width, weight in self.blocks:
                pieces.append(nn.functional.normalize(row[:, start : start + width], dim=1) * weight)
                start += width
            row = torch.cat(pieces, dim=1)
        z = (nn.functional.normalize(row, dim=1) - self.mean) @ self.components.T
        return (nn.functional.normalize(z, dim=1) if self.cosine else z) @ self.centres.T
