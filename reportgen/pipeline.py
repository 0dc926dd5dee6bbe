"""The product, top to bottom: discover -> embed -> reduce -> choose K -> cluster -> analyze -> map -> render."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .analyze import Analysis, analyze
from .choose_k import KSelection, choose_k
from .cluster import Clustering, cluster
from .config import Config
from .discover import ImageSet, discover
from .embed import Embeddings, embed
from .freshness import fingerprint
from .maps import Map2D, project_2d
from .reduce import Reduced, reduce
from .render import Outputs, write_outputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """Everything one run produced: each stage's result, the files written and the stage timings."""

    config: Config
    images: ImageSet
    embeddings: Embeddings
    reduced: Reduced
    k_selection: KSelection
    clustering: Clustering
    analysis: Analysis
    layout: Map2D
    outputs: Outputs
    timings: dict[str, float]


def build_report(config: Config | str | os.PathLike[str], *, inputs: str | None = None, **options: object) -> Result:
    """Turn a folder of images into report.html, assignments.csv and summary.json.

    Parameters
    ----------
    config : a :class:`Config`, or the data folder.
    inputs : the :func:`freshness.fingerprint` of the final config when the caller has just computed it (the
        CLI does, to decide whether to build at all); by default it is computed here.
    **options : any :class:`Config` field, overriding ``config``.

    Returns
    -------
    :class:`Result` with each stage's output and the paths written.
    """
    config = Config.coerce(config, **options)
    timings: dict[str, float] = {}
    if inputs is None:
        inputs = fingerprint(config)  # what the outputs depend on: a rerun with the same one can keep them

    with _timed("discover", timings):
        images = discover(config)
    with _timed("embed", timings):
        embeddings = embed(images, config)
    with _timed("reduce", timings):
        reduced = reduce(embeddings.features, config)
    with _timed("choose_k", timings):
        k_selection = choose_k(reduced, config)
    with _timed("cluster", timings):
        clustering = cluster(reduced, k_selection.chosen_k, config)
    with _timed("analyze", timings):
        analysis = analyze(embeddings, reduced, clustering, config)
    with _timed("map", timings):
        layout = project_2d(reduced, config)
    with _timed("render", timings):
        outputs = write_outputs(config, embeddings, reduced, k_selection, clustering, analysis, layout, timings, inputs)

    return Result(
        config, embeddings.images, embeddings, reduced, k_selection, clustering, analysis, layout, outputs, timings
    )


@contextmanager
def _timed(stage: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - start
    log.debug("%s took %.2f s", stage, timings[stage])
