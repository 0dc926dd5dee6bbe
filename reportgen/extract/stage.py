"""Stage 2: decode every image and compute its features with the configured extractor, reusing the on-disk cache."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cache import FLOAT16_MAX, CacheEntry, EmbeddingCache, content_hash
from ..config import Config
from ..discover import ImageSet, Skipped
from ..errors import Interrupted, NoImagesError
from ..fsutil import on_disk
from ..images import load_rgb, thumbnail_jpeg
from ..places import check_cache_room
from .base import RANDOM_WEIGHTS, TOP_K, Resolution, resolve
from .stack import SEP, FeatureBlock, Stack, load_group, resolve_stack

if TYPE_CHECKING:
    from .runner import Embedded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embeddings:
    """One row per usable image; row ``i`` belongs to ``images.paths[i]``.

    ``images`` is the discovered set less the files that could not be read or decoded (those are added
    to ``images.skipped``). Without a classifier head (``has_predictions`` false) the top-5 arrays are N x 0
    and ``categories`` is empty.
    """

    images: ImageSet
    features: np.ndarray  # float16 N x D (float32 when a value is beyond float16's range)
    top5_index: np.ndarray  # int32 N x 5 (N x 0 without a head), class indices, most probable first
    top5_prob: np.ndarray  # float32, the same shape
    thumbnails: tuple[bytes, ...]  # JPEG, longer side at most images.THUMBNAIL_SIZE
    categories: tuple[str, ...]  # the head's class names (ImageNet's for the built-in backbones), by top5_index
    backbone: str
    weights: str
    preprocessing: str
    device: str
    n_computed: int
    n_cached: int
    notes: tuple[str, ...] = ()
    has_predictions: bool = True
    blocks: tuple[FeatureBlock, ...] = ()  # each spec of a stack, in column order (one for a single spec)
    hashes: tuple[str, ...] = ()  # each row's file content hash (the cache key of its entries)
    runtime: str = "none (every image was in the cache)"  # what ran the forward pass (extract.runtime)
    engine: str = "local"  # --engine; for ray, its workers and where (extract.ray_engine)

    @property
    def block_weights(self) -> tuple[tuple[int, float], ...]:
        """(width, weight) of each block of columns, as :func:`reportgen.reduce.reduce` takes them."""
        return tuple((block.dim, block.weight) for block in self.blocks)


def extract(images: ImageSet, config: Config) -> Embeddings:
    """Compute the features of ``images`` with the configured feature spec (one backbone, or a stack of several).

    Parameters
    ----------
    images : the discovered images.
    config : backbone, weights, device, precision, batch size, workers, cache and network options.

    Returns
    -------
    :class:`Embeddings`; a model is loaded only when some image is not already in the cache for one of its specs,
    and torch is imported only then or when the cache lacks the head's class names.
    """
    stack = resolve_stack(config.backbone, config.weights, config.offline)
    notes = list(stack.notes)
    if stack.head is None:
        why = "is untrained (--weights random)" if config.weights == RANDOM_WEIGHTS else "has no classifier head"
        notes.append(f"backbone '{stack.spec}' {why}: the report has no ImageNet predictions")
    for note in notes:
        log.warning(note)
    caches = [
        _open_cache(part.resolution, config.resolved_cache_dir, config.precision, config.jpeg_decoder)
        if config.use_cache
        else None
        for part in stack.parts
    ]

    hashes, skipped = _hash_files(images)
    keys = set(hashes.values())
    entries: list[dict[str, CacheEntry]] = [_cached(cache, keys) for cache in caches]
    n_cached = sum(1 for key in hashes.values() if all(key in found for found in entries))
    todo = {group: _missing(hashes, entries, group) for group in map(tuple, stack.groups())}
    todo = {group: missing for group, missing in todo.items() if missing}
    if todo and config.use_cache:  # room for what will be cached, before any image is embedded
        check_cache_room(config.resolved_cache_dir, len({key for missing in todo.values() for key in missing}))
    head = stack.head
    categories = _class_names(stack.parts[head].resolution, caches[head], bool(todo)) if head is not None else ()

    failed: dict[str, str] = {}
    computed: set[str] = set()
    device = "none (every image was in the cache)"
    runtimes: list[str] = []
    precisions: list[str] = []
    engines: list[str] = []
    if todo:
        for group, missing in todo.items():
            # only the parts some image lacks; they share one forward pass
            parts = [i for i in group if any(key not in entries[i] for key in missing)]
            store = functools.partial(_store, [(entries[i], caches[i], stack.parts[i].resolution.dim) for i in parts])
            try:
                done = _embed(stack, parts, images.root, missing, config, store)
            except KeyboardInterrupt as exc:  # Ctrl-C: say how many images the cache keeps
                raise Interrupted.of(exc, _saved(hashes, caches)) from None
            computed.update(done.entries)
            failed.update(done.failed)
            runtimes.append(done.runtime)
            precisions.append(done.precision)
            engines.append(done.engine)
            device = done.device
        device = f"{device} ({', '.join(dict.fromkeys(precisions))})"
    else:
        log.info("all %d images found in the cache; the model was not loaded", len(hashes))

    keep: list[int] = []
    for i, rel in enumerate(images.paths):
        key = hashes.get(rel)
        if key is None:  # unreadable: already in skipped
            continue
        if all(key in found for found in entries):
            keep.append(i)
        else:
            skipped.append(Skipped(rel, failed.get(key, "could not be embedded")))
    for item in skipped:
        log.warning("skipped '%s': %s", item.path, item.reason)
    if len(keep) < 2:
        raise NoImagesError(
            f"found {len(keep)} usable image{'s' if len(keep) != 1 else ''} in '{images.root}', need at least 2"
            + (f" ({len(skipped)} could not be used)" if skipped else "")
        )

    rows = [hashes[images.paths[i]] for i in keep]
    usable = replace(
        images,
        paths=tuple(images.paths[i] for i in keep),
        labels=tuple(images.labels[i] for i in keep),
        skipped=tuple(sorted([*images.skipped, *skipped], key=lambda s: s.path)),
    )
    usable = replace(usable, classes=tuple(sorted({lbl for lbl in usable.labels if lbl is not None})))
    first = entries[head if head is not None else 0]
    width = 0 if head is None else TOP_K
    return Embeddings(
        images=usable,
        features=_feature_matrix(entries, rows),
        top5_index=np.stack([first[k].top5_index for k in rows]) if width else np.zeros((len(rows), 0), np.int32),
        top5_prob=np.stack([first[k].top5_prob for k in rows]) if width else np.zeros((len(rows), 0), np.float32),
        thumbnails=tuple(first[k].thumbnail for k in rows),
        categories=categories,
        backbone=stack.spec,
        weights=stack.weights_id,
        preprocessing=stack.preprocessing_key,
        device=device,
        n_computed=len(computed),
        n_cached=n_cached,
        notes=tuple(notes),
        has_predictions=head is not None,
        blocks=stack.blocks,
        hashes=tuple(rows),
        runtime=", ".join(dict.fromkeys(runtimes)) or "none (every image was in the cache)",
        engine="; ".join(dict.fromkeys(engines)) or config.engine,
    )


def _embed(
    stack: Stack,
    parts: list[int],
    root: Path,
    missing: dict[str, str],
    config: Config,
    store: Callable[[str, CacheEntry], None],
) -> Embedded:
    """The parts ``parts`` of ``stack`` computed for ``missing`` by the configured engine, each entry stored."""
    if config.engine == "ray":
        from . import ray_engine

        prep = stack.parts[parts[0]].resolution.preprocessing
        return ray_engine.run(parts, root, missing, config, store, prep)
    # Only now pay for importing torch: a fully cached rerun never does.
    from . import runner

    device = runner.pick_device(config.device)
    precision = runner.pick_precision(config.precision, device)
    spec = SEP.join(stack.parts[i].resolution.spec for i in parts)
    log.info("embedding %d images with %s on %s in %s", len(missing), spec, device, precision)
    extractor = load_group([stack.parts[i] for i in parts])
    return runner.run(extractor, root, missing, config, device, store, precision)


def _cached(cache: EmbeddingCache | None, keys: set[str]) -> dict[str, CacheEntry]:
    """The entries of ``keys`` found in ``cache``."""
    if cache is None:
        return {}
    found = {key: cache.get(key) for key in keys}
    return {key: entry for key, entry in found.items() if entry is not None}


def _missing(hashes: dict[str, str], entries: list[dict[str, CacheEntry]], group: tuple[int, ...]) -> dict[str, str]:
    """Content hash -> first path with that content, for the images some part of ``group`` lacks."""
    todo: dict[str, str] = {}
    for rel, key in hashes.items():
        if key not in todo and any(key not in entries[i] for i in group):
            todo[key] = rel
    return todo


def _saved(hashes: dict[str, str], caches: list[EmbeddingCache | None]) -> int:
    """How many of the images are in every part's cache, on disk (Ctrl-C may stop a batch half-stored, and a full
    disk may have refused some)."""
    keys = set(hashes.values())
    return sum(1 for key in keys if all(cache is not None and cache.holds(key) for cache in caches))


def _store(parts: list[tuple[dict[str, CacheEntry], EmbeddingCache | None, int]], key: str, entry: CacheEntry) -> None:
    """Split one computed entry into its parts' blocks and keep (and cache) each under its own spec."""
    start = 0
    for found, cache, dim in parts:
        part = replace(entry, features=entry.features[start : start + dim])
        start += dim
        if cache is not None:
            cache.put(key, part)
        found[key] = part


def _feature_matrix(entries: list[dict[str, CacheEntry]], rows: list[str]) -> np.ndarray:
    """The parts' features side by side, one row per key of ``rows``, filled in place: float16 (1,000,000 images of
    the default 1280-d features take 2.56 GB), or float32 when some value is beyond float16's range."""
    widths = [len(next(iter(found.values())).features) for found in entries]
    peak = max(float(np.abs(found[key].features).max(initial=0)) for found in entries for key in rows)
    out = np.empty((len(rows), sum(widths)), dtype=np.float16 if peak < FLOAT16_MAX else np.float32)
    start = 0
    for found, width in zip(entries, widths, strict=True):
        for row, key in enumerate(rows):
            out[row, start : start + width] = found[key].features
        start += width
    return out


def seed_cache_entries(
    folder: Path,
    cache_dir: Path,
    spec: str,
    paths: Sequence[str],
    features: np.ndarray,
    top5_index: np.ndarray,
    top5_prob: np.ndarray,
) -> None:
    """Store given results in the embedding cache, so that a later :func:`extract` computes nothing for them.

    The entries are those a run with ``backbone=spec``, ``cache_dir=cache_dir`` and the default precision and JPEG
    decoder looks up; tests use this to pin outputs without running the model.

    Parameters
    ----------
    folder : the data folder.
    cache_dir : the embedding cache's root folder.
    spec : a registered backbone name (``auto`` resolves as with ``--offline``).
    paths : files relative to ``folder``; each entry is keyed by its file's content.
    features : N x dim.
    top5_index, top5_prob : N x 5, or N x 0 for a backbone without a classifier head.
    """
    resolution = resolve(spec, None, offline=True)
    cache = _open_cache(resolution, cache_dir, "auto", "auto")
    _class_names(resolution, cache, refresh=True)
    for rel, feats, top_i, top_p in zip(paths, features, top5_index, top5_prob, strict=True):
        path = folder / str(rel)
        cache.put(content_hash(path), CacheEntry(feats, top_i, top_p, thumbnail_jpeg(load_rgb(path))))


def _open_cache(resolution: Resolution, root: Path, precision: str, jpeg_decoder: str) -> EmbeddingCache:
    """The cache folder for this extractor, weights, preprocessing and explicit precision or decoder."""
    setup_key = f"{resolution.spec}|{resolution.weights_id}|{resolution.preprocessing.key}"
    # An explicit --precision gets entries computed with it; "auto" shares entries across machines and devices
    # (bf16 and fp32 features agree to a median cosine of 0.9995 on sample_data).
    if precision != "auto":
        setup_key += f"|{precision}"
    if jpeg_decoder != "auto":  # the decoders' resizes round differently: explicit ones keep apart
        setup_key += f"|{jpeg_decoder}"
    return EmbeddingCache(root, setup_key, resolution.dim, top_k=TOP_K if resolution.has_head else 0)


def _class_names(resolution: Resolution, cache: EmbeddingCache | None, refresh: bool) -> tuple[str, ...]:
    """The head's class names: the cache's copy unless ``refresh`` or absent, else the resolution's (then cached)."""
    if resolution.categories is None:
        return ()
    names = None if refresh or cache is None else cache.categories()
    if names is None:
        names = list(resolution.categories())
        if cache is not None:
            cache.save_categories(names)
    return tuple(names)


def _hash_files(images: ImageSet) -> tuple[dict[str, str], list[Skipped]]:
    """Content hash of every readable file, and a skip reason for each unreadable one."""

    def one(rel: str) -> tuple[str, str | None, str | None]:
        try:
            path = on_disk(images.root, rel)
            if path.stat().st_size == 0:
                return rel, None, "empty file (0 bytes)"
            return rel, content_hash(path), None
        except PermissionError:
            return rel, None, "permission denied"
        except FileNotFoundError:
            return rel, None, "file not found (broken link or removed during the run)"
        except IsADirectoryError:
            return rel, None, "is a folder, not a file"
        except OSError as exc:
            return rel, None, f"cannot read file: {exc.strerror or exc}"

    hashes: dict[str, str] = {}
    skipped: list[Skipped] = []
    pool = ThreadPoolExecutor(max_workers=8)
    try:
        for rel, key, reason in pool.map(one, images.paths):
            if key is None:
                skipped.append(Skipped(rel, reason or "unreadable"))
            else:
                hashes[rel] = key
    finally:  # on Ctrl-C, the files not yet read are not waited for
        pool.shutdown(wait=False, cancel_futures=True)
    return hashes, skipped
