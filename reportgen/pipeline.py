"""The product, top to bottom: discover -> extract -> reduce -> choose K -> cluster -> analyze -> explain -> map ->
Run -> outputs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd

from . import diff, history, identity, places
from .analyze import Analysis, analyze
from .choose_k import KSelection, choose_k
from .cluster import ensemble
from .cluster.stage import Clustering, cluster
from .config import Config
from .discover import discover
from .errors import Interrupted
from .explain import NONE as NO_MAPS
from .explain import Explanations, check_layer, explain
from .exports import export
from .extract import Embeddings, extract
from .freshness import check_out_dir, fingerprint, versions
from .fsutil import readable
from .history import History
from .maps import Map2D, project_2d
from .reduce import Reduced, reduce
from .report import Outputs, write_outputs
from .report.findings import findings
from .run import CacheUse, Dataset, Duplicates, Extraction, Images, Provenance, Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """A finished run: the :class:`Run` record, the paths of its outputs, and the embeddings it was built from.

    The stage results are also attributes, as they were before the Run existed: ``config``, ``images`` (the
    usable :class:`~reportgen.discover.ImageSet`), ``embeddings``, ``reduced``, ``k_selection``, ``clustering``,
    ``analysis``, ``layout`` and ``timings``.
    """

    run: Run
    outputs: Outputs
    embeddings: Embeddings

    config = property(lambda self: self.run.config)
    images = property(lambda self: self.embeddings.images)
    reduced = property(lambda self: self.run.reduction)
    k_selection = property(lambda self: self.run.k_selection)
    clustering = property(lambda self: self.run.clustering)
    analysis = property(lambda self: self.run.analysis)
    layout = property(lambda self: self.run.layout)
    timings = property(lambda self: self.run.timings)

    def _repr_html_(self) -> str:
        """The run as a compact summary in a notebook (:mod:`reportgen.notebook`)."""
        import json

        from .notebook import STRIP_PX, summary_html
        from .report.budget import Thumbs

        index = {path: i for i, path in enumerate(self.run.images.path)}
        thumbs = Thumbs(self.run.images.thumbnails)

        def thumbnail(path: str) -> str | None:
            return thumbs.uri(index[path], STRIP_PX) if path in index else None

        summary = json.loads(self.outputs.summary.read_text(encoding="utf-8"))
        return summary_html(summary, self.outputs.report, thumbnail)


def build_report(
    config: Config | str | os.PathLike[str], *, inputs: str | None = None, force: bool = False, **options: object
) -> Result:
    """Turn a folder of images into report.html, assignments.csv and summary.json.

    Parameters
    ----------
    config : a :class:`Config`, or the data folder.
    inputs : the :func:`freshness.fingerprint` of the final config when the caller has just computed it (the
        CLI does, to decide whether to build at all); by default it is computed here.
    force : replace the outputs of another data folder in ``out_dir`` (otherwise refused).
    **options : any :class:`Config` field, overriding ``config``.

    Returns
    -------
    :class:`Result`: the :class:`Run` and the paths written.
    """
    config = Config.coerce(config, **options)
    timings: dict[str, float] = {}
    if inputs is None:
        inputs = fingerprint(config)  # what the outputs depend on: a rerun with the same one can keep them

    held = check_out_dir(config, force)  # never overwrite another data folder's report and history by mistake
    check_layer(config)  # --explain-layer, before any work
    config, folder_notes = places.prepare(config)  # the out and cache folders can be written, before any work
    with _timed("discover", timings):
        images = discover(config)
        images = replace(images, notes=(*folder_notes, *images.notes))
    places.check_out_room(config, len(images))  # before any image is embedded
    with _timed("embed", timings):
        embeddings = extract(images, config)  # Ctrl-C here says how many images are cached so far
    cached = len(embeddings.images)  # what Ctrl-C leaves in the cache from here on
    with _timed("reduce", timings, cached):
        reduced = reduce(embeddings.features, config, embeddings.block_weights)
    with _timed("choose_k", timings, cached):
        k_selection = choose_k(reduced, config)
    with _timed("cluster", timings, cached):
        method, combined = ensemble.bound(embeddings.images, config, embeddings.backbone)  # its other vectors
        clustering = cluster(reduced, k_selection.chosen_k, config, method, combined)
        previous = diff.read(config.out_dir) if held == "same" else None  # the outputs this run replaces
        # Matched clusters keep the last run's ids and names (same settings); the others are numbered by size.
        paths, other = embeddings.images.paths, held == "other"
        clustering, lineage = identity.carry(clustering, paths, previous, config, other=other)
    with _timed("analyze", timings, cached):
        analysis = analyze(embeddings, reduced, clustering, config, k_selection.second_opinion)
    with _timed("explain", timings, cached):
        explanations = explain(embeddings, reduced, clustering, analysis, config)
    with _timed("map", timings, cached):
        layout = project_2d(reduced, config)

    with _interruptible(cached):  # the outputs are replaced together or not at all
        past = history.read(config.out_dir)  # the runs kept before this one (their trend, and what was skipped)
        run = assemble(
            config, embeddings, reduced, k_selection, clustering, analysis, layout, timings, explanations, past
        )
        run = replace(run, lineage=lineage)
        if previous is not None:  # what changed since then
            run = replace(run, changes=diff.compare(previous, diff.Snapshot(run.summary(), run.images.table())))
        outputs = write_outputs(run, inputs)
        export(run, embeddings.features)  # --export-folders, --save-embeddings
    return Result(run, outputs, embeddings)


def assemble(
    config: Config,
    embeddings: Embeddings,
    reduced: Reduced,
    k_selection: KSelection,
    clustering: Clustering,
    analysis: Analysis,
    layout: Map2D,
    timings: dict[str, float],
    explanations: Explanations | None = None,
    past: History | None = None,
) -> Run:
    """The Run record of the stage results: what every output reads."""
    images = embeddings.images
    folder = readable(config.data_dir.resolve().name)
    dataset = Dataset(
        title=config.title or f"Image clusters: {folder}",
        name=folder,
        labeled=images.labeled,
        classes=images.classes,
        n_images=len(images),
        n_skipped=len(images.skipped),
        skipped=images.skipped,
        duplicates=Duplicates.of(images.paths, embeddings.hashes or ("",) * len(images)),
        notes=(
            *embeddings.notes,
            *images.notes,
            *analysis.notes,
            *([layout.note] if layout.note else []),
            *([ensemble.note(clustering.combined)] if clustering.combined else []),
            *([explanations.note] if explanations is not None and explanations.note else []),
            *(past.notes if past is not None else ()),
        ),
    )
    extraction = Extraction(
        backbone=embeddings.backbone,
        weights=embeddings.weights,
        preprocessing=embeddings.preprocessing,
        device=embeddings.device,
        embedding_dim=int(embeddings.features.shape[1]),
        cache=CacheUse(embeddings.n_computed, embeddings.n_cached),
        has_predictions=embeddings.has_predictions,
        blocks=embeddings.blocks,
        runtime=embeddings.runtime,
        engine=embeddings.engine,
    )
    # The silhouette over the images at the chosen K completes the K selection (it needs the final clusters).
    k_selection = replace(k_selection, mean_silhouette=analysis.mean_silhouette, chosen_k=clustering.k)
    return Run(
        dataset=dataset,
        extraction=extraction,
        reduction=reduced,
        chosen_k=clustering.k,
        k_selection=k_selection,
        clustering=clustering,
        analysis=analysis,
        provenance=Provenance(
            seed=config.seed,
            parameters=config.parameters(),
            versions=versions(),
            generated=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
        timings=dict(timings),
        findings=findings(dataset, k_selection, analysis),
        images=_images(embeddings, clustering, analysis),
        layout=layout,
        config=config,
        explanations=explanations or NO_MAPS,
        history=past or History(),
    )


def _images(embeddings: Embeddings, clustering: Clustering, analysis: Analysis) -> Images:
    """The per-image table: assignments.csv's columns and what the page shows of each image."""
    within = pd.array([int(v) if v >= 0 else None for v in analysis.within_labels], dtype="Int64")
    has_top = embeddings.top5_prob.shape[1] > 0
    return Images(
        path=embeddings.images.paths,
        label=tuple(lbl or "" for lbl in embeddings.images.labels),
        cluster=clustering.public(clustering.labels).astype(int),
        within_cluster=within,
        is_oddball=analysis.is_oddball.astype(bool),
        distance=clustering.distances.astype(float).round(6),
        top1_class=analysis.top1,
        top1_prob=embeddings.top5_prob[:, 0].astype(float).round(6) if has_top else [float("nan")] * len(within),
        content_hash=embeddings.hashes or ("",) * len(within),  # no hashes: embeddings made without files
        top5_index=embeddings.top5_index,
        top5_prob=embeddings.top5_prob,
        categories=embeddings.categories,
        thumbnails=embeddings.thumbnails,
    )


@contextmanager
def _timed(stage: str, timings: dict[str, float], cached: int | None = None) -> Iterator[None]:
    """Time ``stage``; Ctrl-C or SIGTERM in it says that ``cached`` images are in the cache."""
    start = time.perf_counter()
    with _interruptible(cached):
        yield
    timings[stage] = time.perf_counter() - start
    log.debug("%s took %.2f s", stage, timings[stage])


@contextmanager
def _interruptible(cached: int | None) -> Iterator[None]:
    """Turn Ctrl-C or SIGTERM in here into :class:`Interrupted` saying how many images are cached."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted.of(exc, cached) from None
