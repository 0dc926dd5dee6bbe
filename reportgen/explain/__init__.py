"""Stage: class-activation maps, where in the picture the network looked, for the images the report shows.

For each oddball (or, unlabeled, each outlier) shown as a card, each cluster's exemplars (the first
:data:`CLUSTER_EXEMPLARS` of its montage, its classes in turn) and each within-class sub-cluster's (the first
:data:`PART_EXEMPLARS` of its montage), Grad-CAM (captum's ``LayerGradCam``; ``--explain-method guided-gradcam``
for captum's Guided Grad-CAM) at one convolutional layer of the backbone (the last one the features depend on,
or ``--explain-layer``) shows what drove:

* ``prediction``: its top ImageNet class (the head's logit), when the backbone has a classifier head;
* ``cluster``: its pull toward its cluster: in the clustering space, the image's projection on the direction of
  the cluster's centre (the mean of its members), through the reduce stage's own steps (``--explain-similarity
  cosine``: the cosine similarity instead; :class:`.network.Reduction` says why it is not the default);
* ``class`` (oddballs): the same toward the centre of its own class, for contrast;
* ``part`` (within-class montages): the same toward the centre of its sub-cluster of its class.

Maps are cached by the file's content, the backbone, the layer, the method and the target (the class, or the
target centre and the space it lives in), so a rerun computes none of them. The network is loaded only when some
map is missing. A backbone without a convolutional map (a vision transformer) gets a note instead of maps.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..cache import FORMAT_VERSION, load_memo, save_memo
from ..config import Config
from ..errors import BackboneError, InvalidOptionError
from ..fsutil import on_disk
from ..schema import no_json

if TYPE_CHECKING:
    from ..analyze import Analysis
    from ..cluster.stage import Clustering
    from ..extract import Embeddings
    from ..reduce import Reduced

log = logging.getLogger(__name__)

KINDS = ("prediction", "cluster", "class", "part")
ODDBALL_MAPS = 12  # the oddball or outlier cards with pictures (report.sections.ODDBALL_CARDS)
# Maps cost about half an embedding per image; a montage's first few carry its story, and these caps keep the maps
# of a 1,000-image, 30-class report within a quarter of its time (bench/explain.py, docs/benchmarks.md).
CLUSTER_EXEMPLARS = 6  # of a cluster's 12 montage images: each class's nearest the centre in turn
PART_EXEMPLARS = 4  # of a within-class sub-cluster's 12 montage images: those nearest its centre
MEMO = "explain"


@dataclass(frozen=True)
class View:
    """One map of one image: what it explains (``kind``, in words ``label``) and the map, scaled to 0..1 (float16,
    the layer's resolution, covering the square the network saw)."""

    kind: str
    label: str
    heat: np.ndarray


@dataclass(frozen=True)
class Explanations:
    """The maps of a run (summary.json ``explanations``); ``maps[i][kind]`` is image ``i``'s :class:`View`."""

    JSON_PROPERTIES: ClassVar[tuple[str, ...]] = ("n_images", "n_maps")

    method: str  # "gradcam", "guided-gradcam", or "none" (--no-explain, or not available: see note)
    layer: str | None
    computed: int
    cached: int
    note: str | None = None
    crop_fraction: float = field(default=1.0, metadata={"json": False})  # the seen square over the short side
    maps: dict[int, dict[str, View]] = no_json(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.maps)

    @property
    def n_maps(self) -> int:
        return sum(len(v) for v in self.maps.values())

    @property
    def exemplars(self) -> dict[str, int]:
        """How many of a montage's images get maps: a cluster's and a within-class sub-cluster's."""
        return {"cluster": CLUSTER_EXEMPLARS, "part": PART_EXEMPLARS}

    @property
    def kinds_present(self) -> tuple[str, ...]:
        """The kinds of map some image has, in :data:`KINDS` order."""
        have = {kind for views in self.maps.values() for kind in views}
        return tuple(k for k in KINDS if k in have)

    def views(self, i: int, kinds: tuple[str, ...]) -> list[View]:
        """Image ``i``'s maps of ``kinds``, in that order (those it has)."""
        own = self.maps.get(i, {})
        return [own[k] for k in kinds if k in own]


NONE = Explanations("none", None, 0, 0)


@dataclass(frozen=True)
class _Want:
    row: int
    kind: str
    label: str
    score: str  # "logits" or "similarity"
    target: int  # the class index, or the row of the centres
    key: str


def explain(
    embeddings: Embeddings,
    reduced: Reduced,
    clustering: Clustering,
    analysis: Analysis,
    config: Config,
    only: Sequence[int] | None = None,
) -> Explanations:
    """The maps of every image the report shows as an oddball or outlier card, in a cluster montage or in a
    within-class split montage (see the module docstring); :data:`NONE` with ``--no-explain``. ``only``: instead,
    the prediction and cluster maps of these rows (bench/explain.py times a fixed number of images)."""
    if not config.explain:
        return NONE
    from ..extract.stack import resolve_stack

    stack = resolve_stack(config.backbone, config.weights, config.offline)
    group = next((g for g in stack.groups() if stack.head in g), stack.groups()[0])
    base = stack.parts[group[0]].resolution.choice.base
    prep = base.preprocessing
    centres, labels, wants_of = _targets(embeddings, reduced, clustering, analysis, only)
    space = _space_key(reduced, stack.spec)
    setup_key = repr(
        (
            FORMAT_VERSION,
            stack.spec,
            base.weights_id,
            prep.key,
            config.explain_method,
            config.explain_layer,
            config.explain_similarity,
        )
    )
    wants: list[_Want] = []
    has_head = embeddings.has_predictions and stack.head in group
    for row, kinds in wants_of.items():
        content = embeddings.hashes[row]
        for kind, target in kinds:
            if kind == "prediction":
                if not has_head:
                    continue
                cls = int(embeddings.top5_index[row, 0])
                label = f"its top prediction, {embeddings.categories[cls]}"
                key = _key(setup_key, content, "logits", cls)
                wants.append(_Want(row, kind, label, "logits", cls, key))
            else:
                key = _key(setup_key, content, space, centres[target].tobytes())
                wants.append(_Want(row, kind, labels[target], "similarity", target, key))

    root = config.resolved_cache_dir if config.use_cache else None
    unavailable = _key(setup_key, "unavailable")
    if root is not None and isinstance(note := (load_memo(root, MEMO, unavailable) or {}).get("note"), str):
        return Explanations("none", None, 0, 0, note)  # said by an earlier run: the model is not loaded again
    found: dict[str, Any] = {}
    for want in wants if root is not None else ():
        memo = load_memo(root, MEMO, want.key)
        if memo is not None and isinstance(memo.get("heat"), list):
            found[want.key] = memo
    missing = [w for w in wants if w.key not in found]
    layer = next((m["layer"] for m in found.values() if isinstance(m.get("layer"), str)), None)
    note = next((m["note"] for m in found.values() if isinstance(m.get("note"), str)), None)  # the method's caveat
    computed = 0
    if missing:
        start = time.perf_counter()

        def store(key: str, memo: dict[str, Any]) -> None:  # as each batch is done: an interrupted run keeps them
            found[key] = memo
            if root is not None:
                save_memo(root, MEMO, key, memo)

        try:
            layer, computed, note = _compute(missing, embeddings, reduced, centres, stack, group, config, store)
        except BackboneError as exc:
            message = f"class-activation maps are not available for '{stack.spec}': {exc}"
            log.warning(message)
            if root is not None:
                save_memo(root, MEMO, unavailable, {"note": message})
            return Explanations("none", None, 0, 0, message)
        log.info("computed %d maps in %.1f s", computed, time.perf_counter() - start)
    maps: dict[int, dict[str, View]] = {}
    for want in wants:
        memo = found.get(want.key)
        if memo is not None:
            heat = np.asarray(memo["heat"], dtype=np.float32) / 255
            maps.setdefault(want.row, {})[want.kind] = View(want.kind, want.label, heat.astype(np.float16))
    if not has_head:
        why = "it has no classifier head" if not embeddings.has_predictions else "it is not the stack's classifier"
        note = "; ".join(filter(None, [note, f"no prediction maps: {why}"]))
    return Explanations(
        config.explain_method, layer, computed, len(wants) - len(missing), note, prep.crop / prep.resize, maps
    )


def check_layer(config: Config) -> None:
    """``--explain-layer`` names a map layer of the backbone that makes the maps: checked before any image is
    embedded (it builds the network without weights, a second or two), else a one-line :class:`InvalidOptionError`."""
    if not (config.explain and config.explain_layer):
        return
    from ..extract.layers import _trunk
    from ..extract.stack import resolve_stack
    from .network import requested_layer

    stack = resolve_stack(config.backbone, config.weights, config.offline)
    group = next((g for g in stack.groups() if stack.head in g), stack.groups()[0])
    base = stack.parts[group[0]].resolution.choice.base
    try:
        requested_layer(_trunk(base), base.preprocessing.crop, config.explain_layer, base.spec)
    except BackboneError as exc:
        raise InvalidOptionError(f"{exc}; 'reportgen layers {base.spec}' lists them") from None


def _targets(
    embeddings: Embeddings,
    reduced: Reduced,
    clustering: Clustering,
    analysis: Analysis,
    only: Sequence[int] | None = None,
) -> tuple[np.ndarray, list[str], dict[int, list[tuple[str, int]]]]:
    """The target centres (rows: each cluster, each class, each within-class sub-cluster), their labels, and what
    each shown image (or each of ``only``) is explained for: (kind, row of the centres; ``prediction`` takes no
    row)."""
    x = reduced.features.astype(np.float64)
    centres: list[np.ndarray] = []
    labels: list[str] = []
    cluster_row: dict[int, int] = {}
    for c, info in enumerate(analysis.clusters):  # c: the cluster's position in clustering.labels
        if info.cluster < 0:
            continue
        members = clustering.labels == c
        cluster_row[c] = len(centres)
        centres.append(x[members].mean(axis=0))
        labels.append(f"its pull toward cluster {info.cluster} ({info.name})")
    class_row: dict[str, int] = {}
    image_labels = np.array([lbl or "" for lbl in embeddings.images.labels], dtype=object)
    part_row: dict[tuple[str, int], int] = {}
    for w in analysis.within_class:
        indices, subs = np.array(w.indices), np.array(w.sub_labels)
        for j in range(w.k):
            part_row[(w.label, j)] = len(centres)
            centres.append(x[indices[subs == j]].mean(axis=0))
            labels.append(f"its pull toward sub-cluster {j} of {w.label}")
    wants: dict[int, list[tuple[str, int]]] = {}

    def add(i: int, kind: str, row: int = -1) -> None:
        if all(k != kind for k, _ in wants.setdefault(int(i), [])):
            wants[int(i)].append((kind, row))

    def own_cluster(i: int) -> None:
        add(i, "prediction")
        c = int(clustering.labels[i])
        if c in cluster_row:
            add(i, "cluster", cluster_row[c])

    if only is not None:
        for i in only:
            own_cluster(i)
    for info in analysis.clusters if only is None else ():
        for i in exemplars(info.nearest, embeddings.images.labels, CLUSTER_EXEMPLARS):
            own_cluster(i)
    for o in analysis.oddballs[:ODDBALL_MAPS] if only is None else ():
        own_cluster(o.index)
        if o.label not in class_row:
            class_row[o.label] = len(centres)
            centres.append(x[image_labels == o.label].mean(axis=0))
            labels.append(f"its pull toward its own class, {o.label}")
        add(o.index, "class", class_row[o.label])
    for out in analysis.outliers[:ODDBALL_MAPS] if only is None else ():
        own_cluster(out.index)
    for w in analysis.within_class if only is None else ():
        for j, part in enumerate(w.nearest):
            for i in part[:PART_EXEMPLARS]:
                add(i, "prediction")
                add(i, "part", part_row[(w.label, j)])
    width = x.shape[1]
    matrix = np.array(centres, dtype=np.float32) if centres else np.zeros((0, width), np.float32)
    return matrix, labels, wants


def exemplars(montage: Sequence[int], labels: Sequence[str | None], n: int) -> list[int]:
    """The first ``n`` of a cluster's montage taking its classes in turn (each class's images are in the montage
    nearest the centre first): a mixed cluster's maps show each of its classes."""
    groups: dict[str | None, list[int]] = {}
    for i in montage:
        groups.setdefault(labels[i], []).append(int(i))
    turns = [g[k] for k in range(max(map(len, groups.values()), default=0)) for g in groups.values() if k < len(g)]
    return turns[:n]


def _space_key(reduced: Reduced, spec: str) -> str:
    """What a similarity map depends on besides its image and centre: the reduce stage's space."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (reduced.pca_mean, reduced.pca_components):
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    digest.update(repr((reduced.power_norm, spec)).encode())
    return digest.hexdigest()


def _key(setup: str, content: str, *target: object) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((setup, content, target)).encode())
    return digest.hexdigest()


def _compute(
    missing: list[_Want],
    embeddings: Embeddings,
    reduced: Reduced,
    centres: np.ndarray,
    stack: Any,  # noqa: ANN401 - extract.stack.Stack
    group: list[int],
    config: Config,
    store: Callable[[str, dict[str, Any]], None],
) -> tuple[str, int, str | None]:
    """Load the backbone and compute the ``missing`` maps, each handed to ``store`` (key, memo) as its batch is
    done: (the layer, how many were made, a note or ``None``)."""
    from .compute import Request, Setup, compute, load

    starts = np.cumsum([0, *(b.dim for b in embeddings.blocks)])
    parts = []
    for i in group:
        choice = stack.parts[i].resolution.choice
        parts.append((choice.node, choice.pool, choice.shape, int(starts[i])))
    setup = Setup(
        base=stack.parts[group[0]].resolution.choice.base,
        parts=parts,
        blocks=embeddings.block_weights,
        power_norm=reduced.power_norm,
        mean=reduced.pca_mean,
        components=reduced.pca_components,
        centres=centres,
        features=embeddings.features,
        method=config.explain_method,
        layer=config.explain_layer,
        cosine=config.explain_similarity == "cosine",
    )
    loaded = load(setup)
    root = embeddings.images.root
    requests = {
        w.key: Request(
            w.row, on_disk(root, embeddings.images.paths[w.row]), w.score, w.target, embeddings.hashes[w.row]
        )
        for w in missing
    }
    by_request = {r: key for key, r in requests.items()}
    made = 0

    def keep(request: Any, heat: np.ndarray) -> None:  # noqa: ANN401 - compute.Request
        nonlocal made
        top = float(heat.max()) if heat.size else 0.0
        scaled = np.round(heat / top * 255) if top > 0 else np.zeros_like(heat)
        store(by_request[request], {"heat": scaled.astype(int).tolist(), "layer": loaded.layer.node,
                                    "note": loaded.guided_note})  # fmt: skip
        made += 1

    failed = compute(loaded, setup, list(dict.fromkeys(requests.values())), keep, config.progress)
    notes = [loaded.guided_note] if loaded.guided_note else []
    if failed:
        notes.append(f"{len(failed)} maps could not be made (an image was removed or changed since it was embedded)")
    return loaded.layer.node, made, "; ".join(notes) or None
