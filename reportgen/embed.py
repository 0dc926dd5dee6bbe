"""Stage 2: decode and embed every image with a pretrained CNN, reusing the on-disk cache."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from . import backbones
from .backbones import LoadedBackbone, Preprocessing
from .cache import CacheEntry, EmbeddingCache, content_hash
from .config import Config
from .discover import ImageSet, Skipped
from .errors import DecodeError, InvalidOptionError, NoImagesError
from .images import load_rgb, thumbnail_jpeg

log = logging.getLogger(__name__)

TOP_K = 5


@dataclass(frozen=True)
class Embeddings:
    """One row per usable image; row ``i`` belongs to ``images.paths[i]``.

    ``images`` is the discovered set less the files that could not be read or decoded (those are added
    to ``images.skipped``).
    """

    images: ImageSet
    features: np.ndarray  # float32 N x D
    top5_index: np.ndarray  # int32 N x 5, ImageNet class indices, most probable first
    top5_prob: np.ndarray  # float32 N x 5
    thumbnails: tuple[bytes, ...]  # JPEG, longer side at most images.THUMBNAIL_SIZE
    backbone: str
    weights: str
    preprocessing: str
    device: str
    n_computed: int
    n_cached: int
    notes: tuple[str, ...] = ()


def embed(images: ImageSet, config: Config) -> Embeddings:
    """Embed ``images`` with the configured backbone.

    Parameters
    ----------
    images : the discovered images.
    config : backbone, weights, device, batch size, workers, cache and network options.

    Returns
    -------
    :class:`Embeddings`; the model is loaded only when some image is not already in the cache.
    """
    resolution = backbones.resolve(config.backbone, config.weights, config.offline)
    if resolution.note:
        log.warning(resolution.note)
    spec = resolution.spec
    setup_key = f"{spec.name}|{resolution.weights_id}|{spec.preprocessing.key}"
    cache = EmbeddingCache(config.resolved_cache_dir, setup_key, spec.dim) if config.use_cache else None

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
    device = _pick_device(config.device)
    failed: dict[str, str] = {}
    n_computed = 0
    if todo:
        log.info("embedding %d images with %s on %s (%d from the cache)", len(todo), spec.name, device, n_cached)
        model = backbones.load(resolution, config.weights, config.offline)
        computed, failed = _run_model(model, images.root, todo, config, device)
        n_computed = len(computed)
        entries.update(computed)
        if cache is not None:
            for key, entry in computed.items():
                cache.put(key, entry)
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
        backbone=spec.name,
        weights=resolution.weights_id,
        preprocessing=spec.preprocessing.key,
        device=device,
        n_computed=n_computed,
        n_cached=n_cached,
        notes=(resolution.note,) if resolution.note else (),
    )


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


def _pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("--device cuda was given but torch sees no CUDA device")
    return requested


class _DecodeDataset(Dataset):
    """Decodes, preprocesses and thumbnails one image per item; a failure becomes a reason, not an error."""

    def __init__(self, root: Path, items: list[tuple[str, str]], prep: Preprocessing) -> None:
        self.root = root
        self.items = items
        self.prep = prep

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, torch.Tensor | None, bytes, str | None]:
        key, rel = self.items[i]
        try:
            im = load_rgb(self.root / rel, draft_size=self.prep.resize)
            return key, preprocess(im, self.prep), thumbnail_jpeg(im), None
        except DecodeError as exc:
            return key, None, b"", str(exc)


def preprocess(im, prep: Preprocessing) -> torch.Tensor:  # noqa: ANN001 - a PIL image
    """The backbone's input tensor (3 x crop x crop) for one RGB PIL image."""
    im = TF.resize(im, [prep.resize], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    im = TF.center_crop(im, [prep.crop])
    x = TF.to_dtype(TF.pil_to_tensor(im), torch.float32, scale=True)
    return TF.normalize(x, list(prep.mean), list(prep.std))


def _collate(batch: list[tuple[str, torch.Tensor | None, bytes, str | None]]):  # noqa: ANN202
    ok = [b for b in batch if b[1] is not None]
    failed = [(b[0], b[3]) for b in batch if b[1] is None]
    tensor = torch.stack([b[1] for b in ok]) if ok else None
    return [b[0] for b in ok], tensor, [b[2] for b in ok], failed


def _run_model(
    model: LoadedBackbone, root: Path, todo: dict[str, str], config: Config, device: str
) -> tuple[dict[str, CacheEntry], dict[str, str]]:
    """Embed ``todo`` (content hash -> path); returns entries by hash and failure reasons by hash."""
    items = sorted(todo.items(), key=lambda kv: kv[1])
    workers = 0 if len(items) <= config.batch_size else config.resolved_workers
    loader = DataLoader(
        _DecodeDataset(root, items, model.spec.preprocessing),
        batch_size=config.batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device == "cuda",
        persistent_workers=False,
    )
    trunk = model.trunk.to(device)
    head = model.head.to(device)
    if device == "cuda":
        trunk = trunk.to(memory_format=torch.channels_last)
    entries: dict[str, CacheEntry] = {}
    failed: dict[str, str] = {}
    bar = tqdm(total=len(items), desc="Embedding", unit="img", disable=not config.progress)
    with torch.inference_mode():
        for keys, batch, thumbs, bad in loader:
            failed.update(bad)
            if batch is not None:
                feats, probs = _forward(trunk, head, batch, device)
                top_p, top_i = probs.topk(TOP_K, dim=1)
                for j, key in enumerate(keys):
                    entries[key] = CacheEntry(feats[j], top_i[j].numpy().astype(np.int32), top_p[j].numpy(), thumbs[j])
            bar.update(len(keys) + len(bad))
    bar.close()
    return entries, failed


def _forward(trunk, head, batch: torch.Tensor, device: str) -> tuple[np.ndarray, torch.Tensor]:  # noqa: ANN001
    """Features (float32 numpy) and class probabilities (CPU tensor) for one batch."""
    if device == "cuda":
        batch = batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            feats = trunk(batch)
            logits = head(feats)
    else:
        feats = trunk(batch)
        logits = head(feats)
    feats = feats.float().cpu()
    probs = torch.softmax(logits.float(), dim=1).cpu()
    return feats.numpy().astype(np.float32), probs
