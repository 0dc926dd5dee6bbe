"""The dendrogram section: the tree agglomerative clustering cut, shown for ``--method agglomerative``.

The tree is scipy's linkage with the same rule as the clustering (ward on the vectors, or average/complete on
cosine distances), over a seeded sample of at most ``SAMPLE`` images (the linkage needs memory quadratic in
them), drawn truncated to its top ``TOP`` merges. With labels, each shown leaf is named after its most common
class, in that class's colour, with how many of its images are of that class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..sampling import seeded_sample
from .sections import Section, register_section

if TYPE_CHECKING:
    from ..run import Run
    from .page import Page

SAMPLE = 2_000
TOP = 30


def _applies(run: Run) -> bool:
    return run.clustering.method == "agglomerative" and run.clustering.k >= 2


def _context(run: Run, page: Page) -> dict[str, Any]:
    from scipy.cluster.hierarchy import linkage

    x = np.asarray(run.reduction.features, dtype=np.float64)
    sample = seeded_sample(len(x), SAMPLE, run.config.seed)
    rule = run.config.linkage
    tree = linkage(x[sample], method=rule, metric="euclidean" if rule == "ward" else "cosine")
    labels = run.images.label
    leaf_classes = [labels[i] or None for i in sample]
    top = min(TOP, len(sample))
    figure = page.figure("dendrogram", np.round(tree, 6).tolist(), leaf_classes, list(run.dataset.classes), top)
    return {"figure": figure, "n": len(sample), "top": top, "rule": rule, "sampled": len(sample) < len(x)}


register_section(
    Section("dendrogram", "Dendrogram", "sections/dendrogram.html", _applies, _context, uses_k=True), after="clusters"
)
