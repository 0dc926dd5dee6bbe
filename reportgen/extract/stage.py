"""Stage 2: decode every image and compute its features with the configured extractor, reusing the on-disk cache."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..cache import CacheEntry, EmbeddingCache, content_hash
from ..config import Config
from ..discover import ImageSet, Skipped
from ..errors import NoImagesError
from ..images import load_rgb, thumbnail_jpeg
from .base import TOP_K, Resolution, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embeddings:
    """One row per usable image; row ``i`` belongs to ``images.paths[i]``.

    ``images`` is the discovered set less the files that could not be read or decoded (those are added
    to ``images.skipped``). Without a classifier head (``has_predictions`` false) the top-5 arrays are N x 0
    and ``categories`` is empty.
    """

    images: ImageSet
    features: np.ndarray  # float32 N x D
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


def extract(images: ImageSet, config: Config) -> Embeddings:
    """Compute the features of ``images`` with the configured backbone.

    Parameters
    ----------
    images : the discovered images.
    config : backbone, weights, device, precision, batch size, workers, cache and network options.

    Returns
    -------
    :class:`Embeddings`; the model is loaded only when some image is not already in the cache, and torch is
    imported only then or when the cache lacks the head's class names.
    """
    resolution = resolve(config.backbone, config.weights, config.offline)
    notes = [resolution.note] if resolution.note else []
    if not resolution.has_head:
        notes.append(f"backbone '{resolution.spec}' has no classifier head: the report has no ImageNet predictions")
    for note in notes:
        log.warning(note)
    cache = (
        _open_cache(resolution, config.resolved_cache_dir, config.precision, config.jpeg_decoder)
        if config.use_cache
        else None
    )

    hashes, skipped = _hash_files(images)
    entries: dict[str, CacheEntry] = {}
    if cache is not None:
        for key in set(hashes.values()):
            hit = cache.get(key)
            if hit is not None:
                entries[key] = hit
    n_cached = sum(1 for key in hashes.values() if key in entries)

    todo: dict[str, str] = {}  # content hash -> first path with that content
    for rel, key in hashes.items():
        if key not in entries and key not in todo:
            todo[key] = rel
    failed: dict[str, str] = {}
    n_computed = 0
    categories = _class_names(resolution, cache, refresh=bool(todo))
    device = "none (every image was in the cache)"
    if todo:
        # Only now pay for importing torch: a fully cached rerun never does.
        from . import runner

        device = runner.pick_device(config.device)
        precision = runner.pick_precision(config.precision, device)
        log.info(
            "embedding %d images with %s on %s in %s (%d from the cache)",
            len(todo),
            resolution.spec,
            device,
            precision,
            n_cached,
        )
        extractor = resolution.load()
        store = cache.put if cache is not None else None
        computed, failed = runner.run(extractor, images.root, todo, config, device, store, precision)
        device = f"{device} ({precision})"
        n_computed = len(computed)
        entries.update(computed)
    else:
        log.info("all %d images found in the cache; the model was not loaded", len(hashes))

    keep: list[int] = []
    for i, rel in enumerate(images.paths):
        key = hashes.get(rel)
        if key is None:  # unreadable: already in skipped
            continue
        if key in entries:
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

    rows = [entries[hashes[images.paths[i]]] for i in keep]
    usable = replace(
        images,
        paths=tuple(images.paths[i] for i in keep),
        labels=tuple(images.labels[i] for i in keep),
        skipped=tuple(sorted([*images.skipped, *skipped], key=lambda s: s.path)),
    )
    usable = replace(usable, classes=tuple(sorted({lbl for lbl in usable.labels if lbl is not None})))
    return Embeddings(
        images=usable,
        features=np.stack([r.features for r in rows]).astype(np.float32),
        top5_index=np.stack([r.top5_index for r in rows]),
        top5_prob=np.stack([r.top5_prob for r in rows]),
        thumbnails=tuple(r.thumbnail for r in rows),
        categories=categories,
        backbone=resolution.spec,
        weights=resolution.weights_id,
        preprocessing=resolution.preprocessing.key,
        device=device,
        n_computed=n_computed,
        n_cached=n_cached,
        notes=tuple(notes),
        has_predictions=resolution.has_head,
    )


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
            if (images.root / rel).stat().st_size == 0:
                return rel, None, "empty file (0 bytes)"
            return rel, content_hash(images.root / rel), None
        except PermissionError:
            return rel, None, "permission denied"
        except IsADirectoryError:
            return rel, None, "is a folder, not a file"
        except OSError as exc:
            return rel, None, f"cannot read file: {exc.strerror or exc}"

    hashes: dict[str, str] = {}
    skipped: list[Skipped] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for rel, key, reason in pool.map(one, images.paths):
            if key is None:
                skipped.append(Skipped(rel, reason or "unreadable"))
            else:
                hashes[rel] = key
    return hashes, skipped
