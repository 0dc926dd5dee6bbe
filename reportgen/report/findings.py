"""The findings: plain sentences about the result, one finding each, each backed by numbers in the Run."""

from __future__ import annotations

from ..analyze import Analysis
from ..analyze.clusters import NOISE
from ..analyze.records import ClusterInfo, SharedCluster
from ..analyze.within import BROAD, MEANINGFUL_Z
from ..choose_k import LABELS, KSelection
from ..run import Dataset

SILHOUETTE_WEAK = 0.25  # Kaufman & Rousseeuw: below this, no substantial cluster structure
COHERENT = 0.9  # a class this much in one cluster is kept together
SPREAD = 0.75  # a class with less than this in its largest cluster is spread
SPREAD_NAMED = 6  # spread classes named in the findings; the histograms show the rest
CATCH_ALLS_APART = 2  # more catch-alls than this are described in one finding


def findings(dataset: Dataset, k_selection: KSelection, analysis: Analysis) -> tuple[str, ...]:
    """Sentences about the result, each backed by numbers in the Run; the report prints them as a paragraph."""
    out = []
    n, k = dataset.n_images, k_selection.chosen_k
    if dataset.labeled:
        m = analysis.metrics
        out.append(
            f"The {n} images of {len(dataset.classes)} classes fall into {k} clusters, which agree with the "
            f"folder labels at NMI {m.nmi:.2f}, ARI {m.ari:.2f} and purity {m.purity:.0%}."
        )
        out += _noise(analysis, n, k)
        out += _class_count(k, analysis)
        out += _classes_and_clusters(analysis)
        if analysis.oddballs:
            top = analysis.oddballs[0]
            many = analysis.n_oddballs != 1
            out.append(
                f"{analysis.n_oddballs} image{'s look' if many else ' looks'} more like another class than "
                f"{'their' if many else 'its'} own (oddball{'s' if many else ''}: the most similar images and a "
                "classifier trained on the rest of the folder both point to another class); the strongest case is "
                f"{top.path}, labelled {top.label}, which looks "
                f"like {top.looks_like} ({top.votes.get(top.looks_like, 0)} of its {len(top.neighbours)} most similar "
                "images)."
            )
        elif analysis.label_check is not None and not analysis.label_check.beats_chance:
            check = analysis.label_check
            out.append(
                "The features do not tell the classes apart better than chance (a classifier trained on the folder "
                f"is right for {check.classifier_accuracy:.0%} of the images, always answering the largest class "
                f"gives {check.chance:.0%}), so no image is flagged as an oddball."
            )
        else:
            out.append(
                "No image looks mislabelled: none has both most of its similar images and the classifier pointing to "
                "another class."
            )
        out += _baseline(dataset, analysis)
        real = [w for w in analysis.within_class if w.meaningful]
        if real:
            out.append(
                f"Splits that look real (split score {MEANINGFUL_Z:g} or more in a class at least {BROAD:g} times as "
                "broad as a typical one): "
                + ", ".join(
                    f"{w.label} ({' / '.join(str(s) for s in w.sizes)}, score {w.split_score:.1f})" for w in real
                )
                + "."
            )
        elif analysis.within_class:
            out.append(
                "No class looks like two kinds of image: none is both broader than a typical class and split into "
                "groups more distinct than structureless data gives."
            )
    else:
        out.append(f"The {n} unlabeled images fall into {k} clusters.")
        out += _noise(analysis, n, k)
        loose = [c for c in analysis.clusters if c.catch_all]
        if loose:
            out.append(
                "Large and loosely knit, so possibly a catch-all rather than one kind of image: "
                + ", ".join(f"cluster {c.cluster} ({c.size} images, silhouette {c.silhouette:.2f})" for c in loose)
                + "."
            )
        if analysis.n_outliers:
            out.append(
                f"{analysis.n_outliers} image{'s' if analysis.n_outliers != 1 else ''} lie unusually far "
                "from their cluster's centre."
            )
    out.append(_k_confidence(k_selection))
    return tuple(out)


def _baseline(dataset: Dataset, analysis: Analysis) -> list[str]:
    """A plain warning when raw pixels group the classes clearly better than the features
    (:mod:`reportgen.analyze.baseline`)."""
    check = analysis.baseline_check
    if check is None or not check.wins:
        return []
    return [
        f"Raw pixels group these images better than the network's features: K-means on 16 x 16 grayscale pixels "
        f"at K={check.k} agrees with the folder labels at NMI {check.pixels:.2f}, against {check.features:.2f} for "
        "the clusters in this report. ImageNet features are not always the right lens (scans, line drawings, "
        f'sprites, tiny icons): "reportgen compare {dataset.name}" puts them beside the pixel and HOG baselines.'
    ]


def _noise(analysis: Analysis, n: int, k: int) -> list[str]:
    """What a method that leaves images out of every cluster (HDBSCAN) left out, and when it found too little."""
    noise = next((c for c in analysis.clusters if c.cluster == NOISE), None)
    if noise is None:
        return []
    out = [
        f"{noise.size} of the {n} images ({noise.size / n:.0%}) are in no cluster: the method found no dense group "
        'for them, and every section shows them as a group of their own, "not in any cluster".'
    ]
    if k == 0:
        out.append("The method found no cluster at all: every image is noise to it. K-means (--method kmeans) "
                   "always groups every image.")  # fmt: skip
    elif k == 1:
        out.append("The method found a single cluster: apart from the noise, the images form one dense group.")
    return out


def _class_count(k: int, analysis: Analysis) -> list[str]:
    """The chosen K beside the class count, with the agreement at both (labels never choose K)."""
    at = analysis.at_class_count
    if at is None or at.k == k:
        return []
    both = f"NMI {at.nmi:.2f} at K={at.k} against {analysis.metrics.nmi:.2f} at the chosen K={k}"
    if abs(at.k - k) <= 1:
        return [f"K was chosen from the images alone, one away from the {at.k} classes: {both}."]
    return [
        f"The images group differently from the folder labels: {k} clusters for {at.k} classes (K is chosen from the "
        f"images alone, never from the labels). Clustering into {at.k} would give {both}."
    ]


def _classes_and_clusters(analysis: Analysis) -> list[str]:
    """Which classes have a cluster of their own, which share one, which spread, and which clusters are
    catch-alls (the rules are in :mod:`reportgen.analyze.makeup`)."""
    out = []
    clusters = analysis.clusters
    shared = {sh.cluster: sh for sh in analysis.shared_clusters}
    together = [s for s in analysis.class_spread if s.majority_share >= COHERENT and s.majority_cluster != NOISE]
    alone = [s for s in together if s.majority_cluster not in shared]
    spread = sorted((s for s in analysis.class_spread if s.majority_share < SPREAD), key=lambda s: s.majority_share)
    if alone:
        out.append(
            f"In a cluster of their own ({COHERENT:.0%} or more of the class, and no other class with a material "
            "share of the cluster): "
            + ", ".join(f"{s.label} ({s.majority_share:.0%} in cluster {s.majority_cluster})" for s in alone)
            + "."
        )
    catch_alls = [sh for sh in shared.values() if sh.catch_all]
    out += _catch_alls(catch_alls, clusters)
    for sh in shared.values():
        if sh.catch_all:
            continue
        parts = ", ".join(f"{label} ({n})" for label, n in sh.classes.items())
        kept = [s.label for s in together if s.majority_cluster == sh.cluster]
        sentence = f"Cluster {sh.cluster} ({sh.name}) groups {parts} together"
        if kept:
            sentence += f"; {_join(kept)} {'is' if len(kept) == 1 else 'are'} kept whole there, but not alone"
        out.append(sentence + ".")
    if not shared:
        out.append("No cluster is shared by several classes.")
    if spread:
        named = spread[:SPREAD_NAMED]
        described = [f"{s.label} (largest share {s.majority_share:.0%}, over {s.n_clusters} clusters)" for s in named]
        more = len(spread) - SPREAD_NAMED
        tail = f", and {more} more (the class histograms show each)" if more > 0 else ""
        out.append(f"Spread over several clusters, most spread first: {', '.join(described)}{tail}.")
    return out


def _catch_alls(catch_alls: list[SharedCluster], clusters: tuple[ClusterInfo, ...]) -> list[str]:
    """One sentence per catch-all, or one for them all when there are more than ``CATCH_ALLS_APART``."""
    described = []
    for sh in catch_alls:
        size = next(c.size for c in clusters if c.cluster == sh.cluster)
        parts = ", ".join(f"{label} ({n})" for label, n in sh.classes.items())
        rest, n_rest = size - sum(sh.classes.values()), sh.n_classes - len(sh.classes)
        others = f"; {rest} more from {n_rest} other class{'es' if n_rest != 1 else ''}" if n_rest else ""
        described.append((sh, size, f"{parts}{others}"))
    if len(described) > CATCH_ALLS_APART:
        each = [f"cluster {sh.cluster}, {n} images of {sh.n_classes} classes ({part})" for sh, n, part in described]
        return [
            f"{len(described)} of {len(clusters)} clusters are catch-alls: none of their classes is half of them, so "
            "they do not tell their classes apart (the largest classes in each, then the rest): "
            + "; ".join(each)
            + "."
        ]
    return [
        f"Cluster {sh.cluster} ({sh.name}) is a catch-all: its {size} images come from {sh.n_classes} "
        f"classes and none is half of it ({parts}), so it does not tell them apart."
        for sh, size, parts in described
    ]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _k_confidence(sel: KSelection) -> str:
    k = sel.chosen_k
    if sel.forced:
        sentence = f"K={k} was fixed with --k."
    elif sel.confidence == "data":
        sentence = f"K={k}: {sel.reason}."
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
        if sel.second_opinion is not None:
            low, high = sel.k_range  # set whenever K was chosen, as it is when there is a second opinion
            sentence += (
                f" Any K from {low} to {high} is plausible." if low < high else ""
            ) + f" Choosing K shows the clusters at K={k} and K={sel.second_opinion} side by side."
        if sel.at_edge:
            edge = _join([LABELS[name] for name in sel.at_edge])
            edge = edge[0].upper() + edge[1:]
            sentence += (
                f" {edge} {'picks' if len(sel.at_edge) == 1 else 'pick'} an end of the range swept "
                f"(K={sel.ks[0]}..{sel.ks[-1]}): {'it' if len(sel.at_edge) == 1 else 'they'} kept improving up to "
                "there, which says little about the number of groups."
            )
    mean = sel.mean_silhouette
    if mean is not None and mean < SILHOUETTE_WEAK:
        sentence += (
            f" The clusters overlap (mean silhouette {mean:.2f}; under {SILHOUETTE_WEAK} means weak separation),"
            " so read cluster borders as soft."
        )
    return sentence
