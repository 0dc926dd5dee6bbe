"""The Run: one frozen, versioned record of everything a run found, which every output reads.

``pipeline.build_report`` produces it; ``report`` writes report.html (a view of it), assignments.csv (its
per-image table) and summary.json (its JSON encoding by :func:`encode`). The JSON schema of summary.json is
``docs/summary.schema.json``; bump :data:`SCHEMA_VERSION` when a key changes meaning or goes away (keys are
a public interface: new ones are added beside the old).
How a record becomes JSON is declared on its fields (see :mod:`reportgen.schema`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .analyze import Analysis
from .analyze.clusters import predictions_of
from .choose_k import KSelection
from .cluster.stage import Clustering
from .config import Config
from .diff import Changes
from .discover import Skipped
from .explain import NONE as NO_MAPS
from .explain import Explanations
from .extract.stack import FeatureBlock
from .history import History
from .identity import FIRST, Lineage
from .maps import Map2D
from .reduce import Reduced
from .schema import encode, no_json

SCHEMA_VERSION = 3  # 1: summary.json before it had a schema (the freshness state lived in it); 2: the first schema;
# 3: oddballs are images that look like another class (n_oddballs, oddballs, is_oddball), within-class "meaningful"
# also needs the class to be broad
# assignments.csv, one row per image, in this column order (a public interface).
ASSIGNMENT_COLUMNS = (
    "path", "label", "cluster", "within_cluster", "is_oddball", "distance", "top1_class", "top1_prob", "content_hash"
)  # fmt: skip


@dataclass(frozen=True)
class CacheUse:
    computed: int
    cached: int


@dataclass(frozen=True)
class Duplicates:
    """Files with the same content as another file (by content hash). Each is still an image of its own in every
    output; the report counts them so that a folder full of copies is seen as one."""

    SHOWN: ClassVar[int] = 20  # groups listed, each with at most this many paths

    n_groups: int  # contents held by two files or more
    n_copies: int  # files beyond the first of each such content
    groups: tuple[tuple[str, ...], ...]  # the largest groups' paths (the first SHOWN of each), largest first
    sizes: tuple[int, ...]  # each listed group's number of files

    @classmethod
    def of(cls, paths: Sequence[str], hashes: Sequence[str]) -> Duplicates:
        """The duplicates among ``paths`` whose content hashes are ``hashes`` ("" for unknown)."""
        by_content: dict[str, list[str]] = {}
        for path, key in zip(paths, hashes, strict=True):
            if key:
                by_content.setdefault(key, []).append(path)
        groups = sorted((g for g in by_content.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
        listed = groups[: cls.SHOWN]
        return cls(len(groups), sum(len(g) - 1 for g in groups), tuple(tuple(g[: cls.SHOWN]) for g in listed),
                   tuple(len(g) for g in listed))  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """What was read: the folder, its classes, the files skipped and the notes of every stage."""

    title: str
    name: str = field(metadata={"key": "dataset"})
    labeled: bool
    classes: tuple[str, ...]
    n_images: int
    n_skipped: int
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]
    duplicates: Duplicates = field(default_factory=lambda: Duplicates(0, 0, (), ()))  # files with the same content


@dataclass(frozen=True)
class Extraction:
    """How the images were embedded."""

    backbone: str
    weights: str
    preprocessing: str
    device: str
    embedding_dim: int
    cache: CacheUse
    has_predictions: bool
    blocks: tuple[FeatureBlock, ...] = field(default=(), metadata={"key": "feature_blocks"})
    runtime: str = "none (every image was in the cache)"  # torch, onnxruntime or openvino (--runtime)
    engine: str = "local"  # local, or ray with its workers and where (--engine)


@dataclass(frozen=True)
class Provenance:
    """What reproduces the run."""

    seed: int
    parameters: dict[str, Any]
    versions: dict[str, str]
    generated: str  # UTC, ISO 8601


@dataclass(frozen=True)
class Images:
    """One row per image, in the embeddings' order: the columns of assignments.csv and what the page shows."""

    path: tuple[str, ...]
    label: tuple[str, ...]  # "" when unlabeled
    cluster: np.ndarray  # int
    within_cluster: pd.arrays.IntegerArray  # sub-cluster within the image's class, <NA> where not split
    is_oddball: np.ndarray  # bool: an oddball (labeled) or an outlier (unlabeled)
    distance: np.ndarray  # to the own cluster's centre, rounded to 6 decimals
    top1_class: tuple[str, ...]  # "" when the backbone has no classifier head
    top1_prob: np.ndarray
    content_hash: tuple[str, ...]  # each file's content digest (the cache key): what a diff calls changed
    top5_index: np.ndarray = no_json()  # int N x 5 (N x 0 without a head)
    top5_prob: np.ndarray = no_json()
    categories: tuple[str, ...] = no_json()
    thumbnails: tuple[bytes, ...] = no_json()  # JPEG

    def top_predictions(self, i: int, n: int = 3) -> tuple[tuple[str, float], ...]:
        """Image ``i``'s ``n`` most probable classes with their probabilities."""
        return predictions_of(self.top5_index, self.top5_prob, self.categories, i, n)

    def table(self) -> pd.DataFrame:
        """assignments.csv as a DataFrame."""
        return pd.DataFrame({name: getattr(self, name) for name in ASSIGNMENT_COLUMNS})


@dataclass(frozen=True)
class Run:
    """Everything one run found. Groups marked ``flatten`` share summary.json's top level (its public shape)."""

    dataset: Dataset = field(metadata={"flatten": True})
    extraction: Extraction = field(metadata={"flatten": True})
    reduction: Reduced = field(metadata={"key": "pca"})
    chosen_k: int
    k_selection: KSelection
    clustering: Clustering
    analysis: Analysis = field(metadata={"flatten": True})
    provenance: Provenance = field(metadata={"flatten": True})
    timings: dict[str, float]
    findings: tuple[str, ...]
    images: Images = no_json()
    layout: Map2D = no_json()
    config: Config = no_json()
    explanations: Explanations = NO_MAPS  # summary.json "explanations"
    history: History = History()  # the runs kept in the out folder before this one
    changes: Changes | None = None  # what changed since the outputs this run replaced (summary.json "changes")
    lineage: Lineage = field(default=Lineage("size", FIRST), metadata={"key": "cluster_ids"})  # where ids come from

    def summary(self, **extra: Any) -> dict[str, Any]:
        """summary.json's content: ``schema_version``, the record, and ``extra`` top-level keys."""
        return {"schema_version": SCHEMA_VERSION, **encode(self), **{k: encode(v) for k, v in extra.items()}}
