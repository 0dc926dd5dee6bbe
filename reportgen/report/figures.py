"""Figures: each function takes computed data and returns a PNG ``data:`` URI (Agg backend, figure closed)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..choose_k import KSelection  # noqa: E402

DPI = 110
ACCENT = "#2b6cb0"
MARK = "#c53030"
# Cluster c is drawn in CLUSTER_COLOURS[c % 20] everywhere: figures here, report.css (.c0-.c19), report.js.
CLUSTER_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)


def to_data_uri(fig: Figure) -> str:
    """Save ``fig`` as PNG into a ``data:`` URI and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def elbow_plot(sel: KSelection) -> str:
    """Inertia against K, with the knee and the chosen K marked."""
    knee = (sel.elbow_k, f"knee (K={sel.elbow_k})") if sel.elbow_k is not None else None
    return _curve(sel, sel.inertia, "inertia", "inertia (within-cluster sum of squares)", "Elbow", knee)


def silhouette_plot(sel: KSelection) -> str:
    """Mean silhouette against K, with the chosen K marked, on an axis from 0 (or below) to at least 0.5 (strong
    structure), so that a flat curve looks flat."""
    return _curve(
        sel, sel.silhouette, "mean silhouette", "mean silhouette", "Silhouette", limits=_limits("silhouette", sel)
    )


# Criterion -> the y range its axis always shows (None: the data's own end), so that small differences are not
# blown up: silhouettes from 0 to "strong" structure, stability on its full 0..1 scale, the others from zero.
AXIS_SPANS = {
    "silhouette": (0.0, 0.5),
    "stability": (0.0, 1.0),
    "calinski_harabasz": (0.0, None),
    "davies_bouldin": (0.0, None),
}


def _limits(name: str, sel: KSelection) -> tuple[float, float]:
    values = sel.curves[name]
    if name not in AXIS_SPANS:  # no natural scale (BIC): the values' own range
        pad = 0.05 * (max(values) - min(values) or 1.0)
        return min(values) - pad, max(values) + pad
    low, high = AXIS_SPANS[name]
    top = max(values) * 1.05 if high is None else max(high, max(values) + 0.02)
    return min(low, min(values) - 0.02), top


def _curve(
    sel: KSelection,
    values: tuple[float, ...],
    label: str,
    ylabel: str,
    title: str,
    line: tuple[int, str] | None = None,
    limits: tuple[float, float] | None = None,
) -> str:
    """One criterion against K, the chosen K circled, an optional dashed line at another K and fixed y limits."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2), layout="constrained")
    ax.plot(sel.ks, values, "o-", color=ACCENT, label=label)
    if line is not None:
        ax.axvline(line[0], color="#718096", linestyle="--", label=line[1])
    _mark_chosen(ax, sel, values)
    ax.set(xlabel="K (number of clusters)", ylabel=ylabel, title=title)
    if limits is not None:
        ax.set_ylim(*limits)
    ax.legend(frameon=False, fontsize=8)
    ax.set_xticks(sel.ks)
    return to_data_uri(fig)


def criteria_plot(sel: KSelection) -> str:
    """Calinski-Harabasz, Davies-Bouldin and stability against K (and the Gaussian mixture's BIC when it was
    swept), each criterion's pick and the chosen K marked."""
    panels = (
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
        ("davies_bouldin", "Davies-Bouldin (lower is better)"),
        ("stability", "stability: ARI on 80% subsamples"),
        *((("bic", "BIC of the Gaussian mixture (lower is better)"),) if sel.curves.get("bic") else ()),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.0), layout="constrained")
    for ax, (name, title) in zip(axes, panels, strict=True):
        values = sel.curves[name]
        ax.plot(sel.ks, values, "o-", color=ACCENT, markersize=4)
        pick = sel.picks.get(name)
        if pick is not None:
            edge = " (edge of the range)" if name in sel.at_edge else ""
            ax.axvline(pick, color="#718096", linestyle="--", label=f"its pick K={pick}{edge}")
        _mark_chosen(ax, sel, values)
        ax.set_ylim(*_limits(name, sel))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("K", fontsize=9)
        ax.set_xticks(sel.ks)
        ax.tick_params(labelsize=8)
        ax.legend(frameon=False, fontsize=7)
    return to_data_uri(fig)


def _mark_chosen(ax, sel: KSelection, values) -> None:  # noqa: ANN001
    if sel.chosen_k in sel.ks:
        y = values[sel.ks.index(sel.chosen_k)]
        ax.plot(
            [sel.chosen_k],
            [y],
            "o",
            markersize=12,
            markerfacecolor="none",
            markeredgecolor=MARK,
            markeredgewidth=2,
            label=f"chosen K={sel.chosen_k}",
        )


def count_heatmap(counts: list[list[int]], classes: list[str], clusters: list[str]) -> str:
    """The class x cluster count matrix as an annotated heatmap (colour = share of the class's row).

    ``counts[r][c]`` is the count of ``classes[r]`` in cluster ``clusters[c]`` (columns in display order).
    """
    values = np.asarray(counts, dtype=int)
    share = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    n_rows, n_cols = values.shape
    size = (max(4.5, 0.8 * n_cols + 2.5), max(2.5, 0.45 * n_rows + 1.2))
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r in range(n_rows):
        for c in range(n_cols):
            if values[r, c]:
                ax.text(
                    c,
                    r,
                    str(values[r, c]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[r, c] > 0.55 else "black",
                )
    ax.set_xticks(range(n_cols), [str(c) for c in clusters])
    ax.set_yticks(range(n_rows), [c if len(c) <= 28 else c[:27] + "…" for c in classes])
    ax.set_xlabel("cluster")
    ax.set_ylabel("class")
    ax.set_title("Images per class and cluster\n(colour: share of the class)")  # two lines fit a narrow figure
    return to_data_uri(fig)


def silhouette_knife(values: list[float], labels: list[int], ids: list[int]) -> str:
    """Per-cluster silhouette plot: each cluster's members' silhouettes, sorted, as a horizontal band.

    ``labels`` are the clusters' positions 0..k-1 (largest first); ``ids[c]`` is the id the report shows, which
    also picks its colour."""
    values_arr, labels_arr = np.asarray(values), np.asarray(labels)
    k = len(ids)
    fig, ax = plt.subplots(figsize=(4.6, 3.2), layout="constrained")
    y = 0
    gap = max(2, len(values_arr) // 60)
    centres = []
    for c in range(k):
        v = np.sort(values_arr[labels_arr == c])
        colour = CLUSTER_COLOURS[ids[c] % len(CLUSTER_COLOURS)]
        ax.fill_betweenx(np.arange(y, y + len(v)), 0, v, color=colour, linewidth=0)
        centres.append(y + len(v) / 2)
        y += len(v) + gap
    mean = float(values_arr.mean())
    ax.axvline(mean, color=MARK, linestyle="--", label=f"mean {mean:.2f}")
    ax.axvline(0, color="#4a5568", linewidth=0.8)
    ax.set(xlabel="silhouette of each image", title=f"Silhouette per cluster at K={k}")
    step = max(1, k // 15)  # every cluster labelled up to 15, then every few
    ax.set_yticks(centres[::step], [str(c) for c in ids][::step], fontsize=8)
    ax.set_ylabel("cluster")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return to_data_uri(fig)


def class_histograms(spreads: list[tuple[str, tuple[int, ...], tuple[int, ...]]], per_row: int, ids: list[int]) -> str:
    """Small multiples: one histogram per class over the clusters, its majority cluster highlighted (every one
    of them when several tie).

    ``spreads`` holds (class, counts per cluster, majority clusters' positions) for each class; ``ids[c]`` is the
    id the report shows for position ``c`` (-1: the group of images in no cluster, "none").
    """
    k = len(spreads[0][1])
    rows = -(-len(spreads) // per_row)
    cols = min(per_row, len(spreads))
    width = max(2.6, 0.22 * k + 1.2)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 2.0 * rows), layout="constrained", squeeze=False)
    for ax in axes.flat[len(spreads) :]:
        ax.set_visible(False)
    for ax, (label, counts, majority) in zip(axes.flat, spreads, strict=False):
        ax.bar(range(k), counts, color=[MARK if c in majority else ACCENT for c in range(k)])
        ax.set_xticks(range(k), [("none" if c < 0 else str(c)) for c in ids], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of images
        ax.set_title(label if len(label) <= 28 else label[:27] + "…", fontsize=9)
        ax.set_xlabel("cluster", fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return to_data_uri(fig)


def dendrogram(tree: list[list[float]], leaf_classes: list[str | None], classes: list[str], top: int) -> str:
    """The top ``top`` merges of an agglomerative tree over ``len(leaf_classes)`` images (scipy's dendrogram,
    truncated), each shown leaf labelled with its size and, with labels, its most common class in that class's
    colour."""
    from scipy.cluster.hierarchy import dendrogram as draw
    from scipy.cluster.hierarchy import to_tree

    z = np.asarray(tree, dtype=float)
    nodes = to_tree(z, rd=True)[1]
    palette = [CLUSTER_COLOURS[j % len(CLUSTER_COLOURS)] for j in range(len(classes))]

    def majority(node_id: int) -> tuple[str | None, int, int]:
        """The most common class under a node (ties: the later name), its count, and the node's size."""
        found = [leaf_classes[i] for i in nodes[node_id].pre_order()]
        named = [c for c in found if c is not None]
        if not named:
            return None, 0, len(found)
        major = max(set(named), key=lambda c: (named.count(c), c))
        return major, named.count(major), len(found)

    def label(node_id: int) -> str:
        major, count, size = majority(node_id)
        return f"({size})" if major is None else f"{major} {count}/{size}"

    fig, ax = plt.subplots(figsize=(10, 3.8), layout="constrained")
    shown = draw(z, truncate_mode="lastp", p=top, ax=ax, leaf_label_func=label, leaf_rotation=90,
                 color_threshold=0, above_threshold_color="#718096", show_contracted=True)  # fmt: skip
    for tick, leaf in zip(ax.get_xticklabels(), shown["leaves"], strict=True):
        major = majority(leaf)[0]
        if major is not None:
            tick.set_color(palette[classes.index(major)])
        tick.set_fontsize(7)
    ax.set_ylabel("merge distance", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return to_data_uri(fig)


def trend_plot(dates: list[str], ks: list[int], nmis: list[float | None], counts: list[int]) -> str:
    """K, NMI (when the runs had labels) and the image count over the kept runs, oldest first."""
    series = [("K", ks), ("NMI", nmis), ("images", counts)]
    series = [(name, values) for name, values in series if any(v is not None for v in values)]
    fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 2.3), dpi=DPI, squeeze=False)
    x = np.arange(len(dates))
    for ax, (name, values) in zip(axes[0], series, strict=True):
        y = np.array([np.nan if v is None else v for v in values], dtype=float)
        ax.plot(x, y, marker="o", color=ACCENT, lw=1.5, ms=4)
        ax.plot(x[-1:], y[-1:], marker="o", color=MARK, ms=6)  # this run
        ax.set_title(name, fontsize=9)
        if name == "NMI":
            ax.set_ylim(0, 1.02)
        else:  # whole numbers: at least a few units of range, so a flat line reads as flat
            lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
            pad = max(1.0, 0.1 * (hi - lo))
            ax.set_ylim(max(lo - pad, 0), hi + pad)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_xticks([0, len(x) - 1] if len(x) > 1 else [0])
        ax.set_xticklabels([dates[0], dates[-1]] if len(x) > 1 else [dates[0]], fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_data_uri(fig)
