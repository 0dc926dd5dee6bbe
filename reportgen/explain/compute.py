"""Computing maps with captum: Grad-CAM (``LayerGradCam``) on the cut network (:mod:`.network`), and for Guided
Grad-CAM that map upsampled times guided backpropagation (``GuidedBackprop``) through the whole network, which is
what captum's ``GuidedGradCam`` computes, without running the whole network a second time for the Grad-CAM half.

Imported only when some map is missing from the cache (it imports torch and captum).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import BackboneError, DecodeError
from ..extract.base import Resolution
from ..extract.decode import preprocess, read_checked
from ..images import load_rgb
from .network import Full, MapLayer, Reduction, Scores, Split, choose_layer

log = logging.getLogger(__name__)

BATCH = 8
GUIDED_SIZE = 56  # a Guided Grad-CAM map (input resolution) is kept at this size


@dataclass(frozen=True)
class Request:
    """One map to compute: image ``row`` (of the embeddings) at ``path``, for ``target`` of ``score``
    (``logits``: an ImageNet class; ``similarity``: a row of the centres)."""

    row: int
    path: Path
    score: str
    target: int
    content: str  # the file's content hash when it was embedded: a file rewritten since is not explained


@dataclass(frozen=True)
class Setup:
    """What the maps are computed with: the backbone's parts of the features, and the reduce stage's space."""

    base: Resolution  # the backbone (its trunk and head)
    parts: Sequence[tuple[str | None, str | None, tuple[int, ...], int]]  # (node, pool, shape, first column)
    blocks: Sequence[tuple[int, float]]
    power_norm: bool
    mean: np.ndarray
    components: np.ndarray
    centres: np.ndarray  # targets x n_components
    features: np.ndarray  # N x D, the run's features (what the tail does not compute)
    method: str  # "gradcam" or "guided-gradcam"
    layer: str | None  # --explain-layer
    cosine: bool = False  # --explain-similarity cosine


@dataclass
class Loaded:
    """The network ready for maps."""

    layer: MapLayer
    split: Split
    logits: Scores | None
    similarity: Scores
    guided_note: str | None


def load(setup: Setup) -> Loaded:
    """Load the backbone with its weights and cut it at the map layer (a :class:`BackboneError` says why not)."""
    extractor = setup.base.load()
    trunk = extractor.network.eval()
    feature_nodes = [node for node, _, _, _ in setup.parts]
    layer = choose_layer(trunk, setup.base.preprocessing.crop, feature_nodes, setup.layer, setup.base.spec)
    nodes = [node for node, _, _, _ in setup.parts if node is not None]
    split = Split(trunk, layer.node, nodes, setup.base.preprocessing.crop)
    keys, taken = iter(f"f{i}" for i in range(len(nodes))), []
    for node, pool, shape, start in setup.parts:
        positions = shape[1] * shape[2] if len(shape) == 3 else 0
        taken.append(("out" if node is None else next(keys), pool, positions, start))
    reduction = Reduction(
        taken,
        setup.blocks,
        setup.power_norm,
        torch.as_tensor(setup.mean, dtype=torch.float32),
        torch.as_tensor(setup.components, dtype=torch.float32),
        torch.as_tensor(setup.centres, dtype=torch.float32),
        setup.cosine,
    )
    if not any(key in split.follows for key, _, _, _ in taken):
        raise BackboneError(
            f"its features are taken before the map layer '{layer.node}', so nothing there moves an image toward a "
            "cluster; use --explain-layer at or before the feature layer"
        )
    head = getattr(extractor, "head", None) if extractor.categories is not None else None
    logits = Scores(split, head.float().eval(), None, "logits") if head is not None else None
    guided = None
    if setup.method == "guided-gradcam" and not any(isinstance(m, torch.nn.ReLU) for m in trunk.modules()):
        names = {type(m).__name__ for m in trunk.modules()}
        kinds = sorted(n for n in names if "ReLU" in n or "SiLU" in n or "GELU" in n)
        guided = (
            "guided backpropagation changes only ReLU modules and this backbone has none"
            + (f" (it uses {', '.join(kinds)})" if kinds else "")
            + ": its fine detail is the plain input gradient"
        )
    return Loaded(layer, split.eval(), logits, Scores(split, None, reduction, "similarity").eval(), guided)


def compute(
    loaded: Loaded,
    setup: Setup,
    requests: Sequence[Request],
    on_map: Callable[[Request, np.ndarray], None],
    progress: bool,
) -> dict[Request, str]:
    """Compute every request's map (a float32 array, the layer's resolution for Grad-CAM, ``GUIDED_SIZE`` for
    Guided Grad-CAM; unnormalised, non-negative) and hand it to ``on_map`` as soon as its batch is done.

    Returns the requests that failed, with why (an image that cannot be decoded any more).
    """
    by_row: dict[int, list[Request]] = {}
    for request in requests:
        by_row.setdefault(request.row, []).append(request)
    rows = sorted(by_row)
    failed: dict[Request, str] = {}
    prep = setup.base.preprocessing
    bar = tqdm(total=len(requests), desc="Explaining", unit="map", disable=not progress)

    def decode(batch: list[int]) -> tuple[list[torch.Tensor], list[int]]:
        pixels, kept = [], []
        for row in batch:
            try:
                first = by_row[row][0]
                data = read_checked(first.path, first.content)
                pixels.append(preprocess(load_rgb(io.BytesIO(data), draft_size=prep.resize), prep))
                kept.append(row)
            except DecodeError as exc:
                failed.update({r: str(exc) for r in by_row[row]})
                bar.update(len(by_row[row]))
        return pixels, kept

    batches = [rows[start : start + BATCH] for start in range(0, len(rows), BATCH)]
    with ThreadPoolExecutor(1) as pool:  # the next batch decodes while this one runs (Pillow releases the GIL)
        pending = pool.submit(decode, batches[0]) if batches else None
        for b in range(len(batches)):
            assert pending is not None
            pixels, kept = pending.result()
            pending = pool.submit(decode, batches[b + 1]) if b + 1 < len(batches) else None
            if kept:
                _explain_batch(loaded, setup, torch.stack(pixels), kept, by_row, on_map)
                bar.update(sum(1 for row in kept for _ in by_row[row]))
    bar.close()
    return failed


def _explain_batch(
    loaded: Loaded,
    setup: Setup,
    x: torch.Tensor,
    kept: list[int],
    by_row: dict[int, list[Request]],
    on_map: Callable[[Request, np.ndarray], None],
) -> None:
    """The maps of one decoded batch (rows ``kept``, pixels ``x``)."""
    from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam

    with torch.inference_mode():
        cam, *deps = loaded.split.head(x)
    cam, deps = cam.clone(), [d.clone() if isinstance(d, torch.Tensor) else d for d in deps]  # the tail needs grads
    context = torch.as_tensor(np.asarray(setup.features[kept], dtype=np.float32))
    for score in ("logits", "similarity"):
        model = loaded.logits if score == "logits" else loaded.similarity
        todo = [(kept.index(r.row), r) for row in kept for r in by_row[row] if r.score == score]
        if not todo or model is None:
            continue
        at = torch.tensor([j for j, _ in todo])
        targets = [r.target for _, r in todo]
        extra = tuple(d[at] if isinstance(d, torch.Tensor) else d for d in deps)
        extra += (context[at],) if score == "similarity" else ()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # captum's notes on inputs that need no gradient
            maps = LayerGradCam(model, model.entry).attribute(
                cam[at], target=targets, additional_forward_args=extra, relu_attributions=True
            )
            if setup.method == "guided-gradcam":  # what captum's GuidedGradCam computes, its Grad-CAM half cut
                guided = GuidedBackprop(Full(model)).attribute(
                    x[at].clone().requires_grad_(), target=targets, additional_forward_args=extra[len(deps) :]
                )
                maps = LayerAttribution.interpolate(maps, tuple(guided.shape[2:]), "bilinear") * guided
                maps = torch.nn.functional.adaptive_avg_pool2d(maps.abs().sum(dim=1, keepdim=True), GUIDED_SIZE)
        for (_, request), heat in zip(todo, maps.detach()[:, 0].numpy(), strict=True):
            on_map(request, np.nan_to_num(heat.astype(np.float32)))
