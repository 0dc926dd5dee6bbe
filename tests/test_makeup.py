"""What a cluster holds: catch-alls, names, montages; and what the findings and sections say of them."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fake_embeddings
from sklearn.datasets import make_blobs

from reportgen.analyze import analyze, makeup
from reportgen.analyze.within import split_classes
from reportgen.choose_k import choose_k
from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.reduce import reduce
from reportgen.report.findings import findings
from reportgen.run import Dataset


def test_names_come_from_the_classes_a_cluster_holds() -> None:
    assert makeup.labeled_name({"tools": 19, "fishes": 1}, 20) == "tools"
    assert makeup.labeled_name({"humans": 14, "elves": 6}, 20) == "mostly humans, some elves"
    assert makeup.labeled_name({"humans": 17, "elves": 1, "orcs": 1, "dwarves": 1}, 20) == "mostly humans"
    assert makeup.labeled_name({"dams": 9, "windmills": 8, "panels": 3}, 20) == "dams and windmills"
    assert makeup.labeled_name({"a": 5, "b": 4, "c": 4, "d": 4, "e": 3}, 20) == "mixed: a, b, c, …"
    assert makeup.prediction_name([("hook", 0.45), ("nail", 0.2), ("screw", 0.1)]) == "hook 45%, nail 20%"


def test_repeated_names_are_told_apart() -> None:
    names = makeup.unique_names(["tools", "tools", "fishes", "tools"], ["hammer", "hook", "goldfish", "hammer"])
    assert names == ["tools (hammer) #0", "tools (hook)", "fishes", "tools (hammer) #3"]
    assert len(set(names)) == 4


def test_a_catch_all_mixes_three_or_more_classes_none_of_them_half() -> None:
    assert makeup.is_catch_all({"a": 30, "b": 25, "c": 20, "d": 15, "e": 34}, 124)
    assert not makeup.is_catch_all({"a": 28, "b": 27, "c": 1}, 56)  # two classes: shared, not a catch-all
    assert not makeup.is_catch_all({"a": 70, "b": 20, "c": 20}, 110)  # one class is most of it
    # 192 images from 22 classes, only two of them material: most of it is classes too small to matter
    thin = {"a": 32, "b": 20} | {f"x{j}": 7 for j in range(20)}
    assert makeup.is_catch_all(thin, 192) and len(makeup.material(thin, 192)) == 2
    two_hold_most = {"a": 36, "b": 23, "c": 7, "d": 7, "e": 3, "f": 3, "g": 1, "h": 1}  # a and b hold 73%
    assert not makeup.is_catch_all(two_hold_most, 81)
    assert makeup.material({"a": 30, "b": 4, "c": 2}, 36) == [("a", 30), ("b", 4)]  # at least 2 and 10% (3.6)
    assert makeup.is_loose(300, 100.0, 0.05, 0.2) and not makeup.is_loose(300, 100.0, 0.3, 0.2)


def test_montage_slots_follow_the_classes_and_keep_the_largest() -> None:
    assert makeup.allocate([29, 20, 6], 12, [0, 1, 2]) == [6, 5, 1]
    assert makeup.allocate([50, 1], 12, [0]) == [12, 0]
    assert makeup.allocate([5, 40], 12, [0, 1]) == [1, 11]  # the smaller class still shows
    labels = ["monster"] * 29 + ["human"] * 20 + ["elf"] * 6
    members = np.arange(55)
    dist = np.linspace(0.0, 1.0, 55)[::-1].copy()  # the monsters are farthest from the centre
    shown = makeup.labeled_montage(members, labels, dist, {"monster": 29, "human": 20, "elf": 6}, 12)
    kinds = [labels[i] for i in shown]
    assert kinds.count("monster") == 6 and kinds.count("human") == 5 and kinds.count("elf") == 1
    assert kinds[0] == "monster" and shown[0] == 28  # each class's nearest member first
    spread = makeup.spread_montage(members, dist, 12)
    assert spread[:6] == (54, 53, 52, 51, 50, 49) and spread[-1] == 0  # nearest half, then out to the edge


def _run(x: np.ndarray, labels: list[str], k: int, **cfg: object):  # noqa: ANN202
    emb = fake_embeddings(x, labels)
    config = Config("/unused", pca_dims=10, power_norm=False, k=k, **cfg)
    reduced = reduce(emb.features, config)
    sel = choose_k(reduced, config)
    clus = cluster(reduced, k, config)
    return emb, sel, analyze(emb, reduced, clus, config)


def test_findings_call_a_catch_all_what_it_is_and_list_every_class_it_holds() -> None:
    x, y = make_blobs(n_samples=[30, 30], n_features=16, cluster_std=0.3, random_state=0)
    rank = np.cumsum(y == 1) - 1
    names = ["tools" if v == 0 else "abcd"[rank[i] % 4] for i, v in enumerate(y)]  # four classes in one blob
    emb, sel, a = _run(x, names, k=2)
    catch = next(c for c in a.clusters if c.catch_all)
    assert catch.name.startswith("mixed: ") and set(catch.classes) == {"a", "b", "c", "d"}
    (shared,) = a.shared_clusters
    assert shared.catch_all and set(shared.classes) == {"a", "b", "c", "d"}
    dataset = Dataset("t", "t", True, emb.images.classes, 60, 0, (), ())
    text = " ".join(findings(dataset, sel, a))
    assert f"Cluster {catch.cluster} ({catch.name}) is a catch-all" in text
    assert "a (8), b (8), c (7), d (7)" in text
    own = text.split("In a cluster of their own")[1].split(".")[0]
    assert "tools" in own and "a (" not in own  # classes of a catch-all are not called coherent
    tools = next(c for c in a.clusters if not c.catch_all)
    assert tools.name == "tools" and not tools.catch_all


def test_near_singleton_splits_are_never_real_and_within_k_is_capped() -> None:
    rng = np.random.default_rng(1)
    blob = rng.standard_normal((30, 8)).astype(np.float32)
    blob[0] += 40.0  # one far image: a 29 / 1 split with a huge silhouette
    emb = fake_embeddings(blob, ["solo"] * 30)
    notes: list[str] = []
    (w,), _ = split_classes(emb.images, blob, ("",) * 30, Config("/unused"), notes)
    assert sorted(w.sizes) == [1, 29] and w.split_score > 2 and not w.meaningful
    (w40,), _ = split_classes(emb.images, blob, ("",) * 30, Config("/unused", within_k=15), notes)
    assert w40.k == 10 and "class 'solo' has 30 distinct images: split into 10, not 15" in notes[-1]


@pytest.mark.parametrize("k", [1, 2])
def test_k_one_and_two_render(tmp_path, k: int) -> None:  # noqa: ANN001
    from reportgen.maps import project_2d
    from reportgen.pipeline import assemble
    from reportgen.report import write_outputs

    x, y = make_blobs(n_samples=[8, 8], n_features=8, random_state=2)
    emb = fake_embeddings(x, [str(v) for v in y])
    config = Config(tmp_path / "d", out_dir=tmp_path / "out", k=k, pca_dims=4, use_cache=False)
    reduced = reduce(emb.features, config)
    sel, clus = choose_k(reduced, config), cluster(reduced, k, config)
    analysis = analyze(emb, reduced, clus, config)
    run = assemble(config, emb, reduced, sel, clus, analysis, project_2d(reduced, config), {})
    html = write_outputs(run, "x").report.read_text(encoding="utf-8")
    assert f"K = {k}" in html and ("Silhouette of each image per cluster" in html) == (k > 1)


def test_captions_keep_the_start_and_the_end_of_a_long_name() -> None:
    from reportgen.report.page import shorten_middle

    assert shorten_middle("tools/saw.jpg", 17) == "tools/saw.jpg"
    short = shorten_middle("renewable/windmill15.jpg", 17)
    assert len(short) == 17 and short.startswith("renewabl") and short.endswith("ll15.jpg") and "…" in short


def test_a_thinly_spread_cluster_is_a_catch_all_even_with_one_material_class() -> None:
    x, y = make_blobs(n_samples=[30, 60], n_features=16, cluster_std=0.3, random_state=0)
    rank = np.cumsum(y == 1) - 1
    # the second blob: 14 images of "big" and 46 spread over 23 classes of 2
    names = ["tools" if v == 0 else ("big" if rank[i] < 14 else f"s{rank[i] % 23:02d}") for i, v in enumerate(y)]
    emb, sel, a = _run(x, names, k=2)
    catch = next(c for c in a.clusters if c.catch_all)
    assert catch.size == 60 and len(makeup.material(catch.classes, 60)) == 1
    (shared,) = a.shared_clusters
    assert shared.catch_all and shared.n_classes == 24 and list(shared.classes)[0] == "big" and len(shared.classes) == 3
    dataset = Dataset("t", "t", True, emb.images.classes, 90, 0, (), ())
    text = " ".join(findings(dataset, sel, a))
    assert f"Cluster {catch.cluster} ({catch.name}) is a catch-all: its 60 images come from 24 classes" in text
    assert "42 more from 21 other classes" in text
    assert "big (" not in text.split("In a cluster of their own")[1].split(".")[0]


def test_many_catch_alls_are_one_finding_that_names_each() -> None:
    from types import SimpleNamespace

    from reportgen.analyze.records import SharedCluster
    from reportgen.report.findings import _catch_alls

    sizes = [40, 30, 20, 10]
    ids = [7, 3, 9, 4]  # kept from an earlier run: a cluster's id is not its place in the list
    clusters = tuple(SimpleNamespace(size=n, cluster=c) for n, c in zip(sizes, ids, strict=True))
    shared = [
        SharedCluster(c, f"mixed {c}", {"a": n // 4, "b": n // 4, "c": n // 4}, True, 5, ())
        for c, n in zip(ids[:3], sizes[:3], strict=True)
    ]
    (one,) = _catch_alls(shared, clusters)
    assert one.startswith("3 of 4 clusters are catch-alls")
    assert "cluster 7, 40 images of 5 classes (a (10), b (10), c (10); 10 more from 2 other classes)" in one
    assert "cluster 9, 20 images of 5 classes" in one
    two = _catch_alls(shared[:2], clusters)
    assert [s.split(":")[0] for s in two] == [
        "Cluster 7 (mixed 7) is a catch-all",
        "Cluster 3 (mixed 3) is a catch-all",
    ]


def test_a_class_split_evenly_names_every_tied_cluster() -> None:
    from reportgen.analyze.records import ClassSpread

    even = ClassSpread("goblins", 8, 0, 0.375, 3, (3, 3, 2))
    assert even.tied_clusters == (0, 1)
    assert ClassSpread("orcs", 16, 2, 0.62, 2, (0, 6, 10)).tied_clusters == (2,)
    kept = ClassSpread("elves", 8, 5, 0.375, 3, (3, 3, 2), ids=(5, 2, 8))  # ids kept from an earlier run
    assert kept.tied_clusters == (5, 2) and kept.tied_columns == (0, 1) and kept.majority_column == 0
    noisy = ClassSpread("trolls", 9, -1, 0.6, 2, (0, 3, 6), noise=True, ids=(4, 1, -1))
    assert noisy.tied_clusters == (-1,) and noisy.majority_column == 2


def test_kept_names_stay_and_new_names_are_told_apart_from_them() -> None:
    from reportgen.analyze.makeup import unique_names

    # cluster ids 4 and 9 keep their names from the last run; the new cluster 12 would also be called "dogs"
    names = unique_names(["dogs", "cats", "dogs"], ["beagle", "tabby", "pug"], [4, 9, 12], ["dogs", "cats", ""])
    assert names == ["dogs", "cats", "dogs (pug)"]
    assert unique_names(["dogs", "cats", "dogs"], ["", "", ""], [4, 9, 12], ["dogs", "", ""]) == [
        "dogs",
        "cats",
        "dogs #12",
    ]
    assert unique_names(["a", "a"], ["", ""]) == ["a #0", "a #1"]  # without ids, the position
