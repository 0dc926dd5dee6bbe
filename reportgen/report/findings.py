"""The findings: a paragraph of plain sentences about the result, each backed by numbers in the Run."""

from __future__ import annotations

from ..analyze import Analysis
from ..choose_k import KSelection
from ..run import Dataset

SILHOUETTE_WEAK = 0.25  # Kaufman & Rousseeuw: below this, no substantial cluster structure


def findings(dataset: Dataset, k_selection: KSelection, analysis: Analysis) -> tuple[str, ...]:
    """Sentences about the result, each backed by numbers in the Run; the report prints them as a paragraph."""
    out = []
    n, k = dataset.n_images, k_selection.chosen_k
    names = [c.name for c in analysis.clusters]
    if dataset.labeled:
        m = analysis.metrics
        out.append(
            f"The {n} images of {len(dataset.classes)} classes fall into {k} clusters, which agree with the "
            f"folder labels at NMI {m.nmi:.2f}, ARI {m.ari:.2f} and purity {m.purity:.0%}."
        )
        pure = [s for s in analysis.class_spread if s.majority_share >= 0.9]
        spread = sorted((s for s in analysis.class_spread if s.majority_share < 0.75), key=lambda s: s.majority_share)
        if pure:
            out.append(
                "Each almost entirely in one cluster (90% or more): "
                + ", ".join(f"{s.label} ({s.majority_share:.0%} in cluster {s.majority_cluster})" for s in pure)
                + "."
            )
        if spread:
            out.append(
                "Spread over several clusters: "
                + ", ".join(
                    f"{s.label} (largest share {s.majority_share:.0%}, over {s.n_clusters} clusters)" for s in spread
                )
                + "."
            )
        for sh in analysis.shared_clusters:
            grouped = " and ".join(f"{lbl} ({cnt})" for lbl, cnt in sh.classes.items())
            out.append(f"Cluster {sh.cluster} ({sh.name}) groups {grouped} together.")
        if not analysis.shared_clusters:
            out.append("No cluster is shared by several classes.")
        if analysis.oddballs:
            top = analysis.oddballs[0]
            where = (
                "1 oddball image sits outside its class's main cluster; it is"
                if analysis.n_oddballs == 1
                else f"{analysis.n_oddballs} oddball images sit outside their class's main cluster; the oddest is"
            )
            out.append(
                f"{where} {top.path}, a {top.label} image that joined cluster {top.cluster} ({names[top.cluster]})."
            )
        else:
            out.append("Every image sits in its class's main cluster.")
        real = [w for w in analysis.within_class if w.meaningful]
        if real:
            out.append(
                "Splits that look real (split score 2 or more): "
                + ", ".join(
                    f"{w.label} ({' / '.join(str(s) for s in w.sizes)}, score {w.split_score:.1f})" for w in real
                )
                + "."
            )
        elif analysis.within_class:
            out.append("No class splits into groups more distinct than the same split of structureless data.")
    else:
        out.append(f"The {n} unlabeled images fall into {k} clusters.")
        if analysis.n_outliers:
            out.append(
                f"{analysis.n_outliers} image{'s' if analysis.n_outliers != 1 else ''} lie unusually far "
                "from their cluster's centre."
            )
    out.append(_k_confidence(k_selection))
    return tuple(out)


def _k_confidence(sel: KSelection) -> str:
    k = sel.chosen_k
    if sel.forced:
        sentence = f"K={k} was fixed with --k."
    elif not sel.ks:
        sentence = sel.reason[0].upper() + sel.reason[1:] + "."
    else:
        picked = [pick for pick in sel.picks.values() if pick is not None]
        sentence = (
            f"Confidence in K={k} is {sel.confidence}: {len(sel.agreeing)} of {len(picked)} criteria pick it or a "
            "neighbour" + (f"; the runner-up is K={sel.candidates[1]}." if len(sel.candidates) > 1 else ".")
        )
        if sel.disagreement:
            sentence += " " + sel.disagreement
    mean = sel.mean_silhouette
    if mean is not None and mean < SILHOUETTE_WEAK:
        sentence += (
            f" The clusters overlap (mean silhouette {mean:.2f}; under {SILHOUETTE_WEAK} means weak separation),"
            " so read cluster borders as soft."
        )
    return sentence
