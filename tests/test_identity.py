"""Stable cluster ids: a rerun's clusters keep the ids and names of the last run's clusters they match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_image
from helpers import validate_summary

import reportgen
from reportgen.cluster.stage import Clustering
from reportgen.config import Config
from reportgen.diff import Snapshot
from reportgen.identity import carry

PATHS = tuple(f"img_{i:02d}.png" for i in range(12))


def _clustering(labels: list[int], k: int) -> Clustering:
    return Clustering(k, "kmeans", np.array(labels), np.zeros((k, 2)), np.zeros(len(labels)), 0.0)


def _previous(clusters: dict[str, int], names: dict[int, str], **summary: object) -> Snapshot:
    table = pd.DataFrame({"path": list(clusters), "cluster": list(clusters.values())})
    listed = [{"cluster": c, "name": n, "size": 1} for c, n in names.items()]
    parameters = Config(Path(".")).parameters()
    return Snapshot({"clusters": listed, "parameters": parameters, "generated": "2026-01-01T00:00:00+00:00"} | summary,
                    table)  # fmt: skip


def test_matched_clusters_keep_their_ids_and_names_and_a_new_one_gets_a_new_id() -> None:
    # Last run: ids 0 (images 0-5), 1 (6-8), 2 (9-11). Now the images of 2 are the largest cluster, 1 is gone and
    # a cluster of two images nobody had seen appears.
    old = {p: 0 if i < 6 else 1 if i < 9 else 2 for i, p in enumerate(PATHS[:12])}
    previous = _previous(old, {0: "dogs", 1: "cats", 2: "fish"})
    paths = PATHS[:6] + PATHS[9:] + ("new_a.png", "new_b.png", "new_c.png", "new_d.png", "new_e.png")
    # by size: 0 = images 9-11 and three new ones (6), 1 = images 0-5 (6, later first member), 2 = two new images
    labels = [1] * 6 + [0] * 3 + [0, 0, 0, 2, 2]
    clustering, lineage = carry(_clustering(labels, 3), paths, previous, Config(Path(".")))
    assert clustering.ids == (2, 0, 3)  # the new one takes the next id, never 1 (the gone cluster's)
    assert clustering.names == ("fish", "dogs", "")
    assert lineage.basis == "previous" and lineage.kept == (0, 2) and lineage.new == (3,) and lineage.next_id == 4
    assert lineage.follows == "2026-01-01T00:00:00+00:00"
    assert clustering.public(np.array(labels)).tolist() == [0] * 6 + [2] * 3 + [2, 2, 2, 3, 3]


def test_new_ids_continue_from_the_recorded_next_id() -> None:
    old = {p: 0 for p in PATHS[:6]}
    previous = _previous(old, {0: "dogs"}, cluster_ids={"basis": "previous", "next_id": 7})
    clustering, lineage = carry(_clustering([0] * 6 + [1] * 6, 2), PATHS, previous, Config(Path(".")))
    assert clustering.ids == (0, 7) and lineage.next_id == 8


def test_a_cluster_that_changed_most_of_its_members_is_named_afresh() -> None:
    # The new cluster 0 matches the old 0 (3 shared images) but 4 of its 7 shared images were in old clusters 1 or 2,
    # each of which matched a larger part elsewhere.
    old = dict(zip(PATHS, [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2], strict=True))
    previous = _previous(old, {0: "dogs", 1: "cats", 2: "fish"})
    labels = [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 2, 2]
    clustering, lineage = carry(_clustering(labels, 3), PATHS, previous, Config(Path(".")))
    assert clustering.ids == (0, 1, 2)
    assert clustering.names == ("", "cats", "fish") and lineage.renamed == (0,)


@pytest.mark.parametrize(
    ("options", "other", "said"),
    [
        ({"seed": 3}, False, "the cluster settings changed (seed 0 → 3)"),
        ({"method": "gmm"}, False, "method kmeans → gmm"),
        ({"renumber": True}, False, "--renumber was given"),
        ({}, True, "another data folder's run"),
    ],
)
def test_ids_are_by_size_when_the_last_run_does_not_apply(options: dict[str, object], other: bool, said: str) -> None:
    previous = _previous({p: 5 for p in PATHS}, {5: "everything"})
    clustering, lineage = carry(_clustering([0] * 12, 1), PATHS, previous, Config(Path("."), **options), other=other)
    assert clustering.ids == () and clustering.public(np.zeros(12, dtype=int)).tolist() == [0] * 12
    assert lineage.basis == "size" and said in lineage.reason and lineage.next_id == 1


def test_an_edited_cluster_column_is_renumbered_not_a_crash() -> None:
    previous = _previous({p: 0 for p in PATHS}, {0: "x"})
    previous.assignments["cluster"] = ["zero"] * 12
    clustering, lineage = carry(_clustering([0] * 12, 1), PATHS, previous, Config(Path(".")))
    assert lineage.basis == "size" and "no usable cluster ids" in lineage.reason


def _build(data: Path, tmp_path: Path, **options: object) -> reportgen.Result:
    return reportgen.build_report(data, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", k=3,
                                  backbone="efficientnet-lite0", explain=False, progress=False, **options)  # fmt: skip


def _ids(result: reportgen.Result) -> dict[str, int]:
    return dict(zip(result.run.images.path, result.run.images.cluster.tolist(), strict=True))


def test_a_rerun_keeps_each_clusters_id_through_the_outputs_when_the_size_order_changes(
    labeled_dir: Path, tmp_path: Path
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    first = _build(data, tmp_path)
    before = _ids(first)
    names = {c.cluster: c.name for c in first.run.analysis.clusters}
    # The class of the last cluster grows to be the largest: by size it would become cluster 0.
    grown = next(p.split("/")[0] for p, c in before.items() if c == 2)
    for i in range(6):
        make_image(grown, seed=400 + i).save(data / grown / f"more_{i}.png")
    second = _build(data, tmp_path)
    after = _ids(second)
    assert second.run.clustering.ids[0] == 2  # the largest cluster now, still number 2
    assert {p: after[p] for p in before} == before  # every image keeps its cluster's id
    assert {c.cluster: c.name for c in second.run.analysis.clusters} == names
    lineage = second.run.lineage
    assert lineage.basis == "previous" and lineage.kept == (0, 1, 2) and lineage.new == ()
    assert second.run.changes is not None and second.run.changes.moved == ()

    summary = json.loads(second.outputs.summary.read_text(encoding="utf-8"))
    validate_summary(summary)
    assert summary["cluster_ids"]["basis"] == "previous" and summary["clustering"]["ids"][0] == 2
    assert summary["clusters"][0]["cluster"] == 2 and summary["clusters"][0]["size"] == 12
    homes = {s["majority_cluster"] for s in summary["class_spread"].values()}
    assert homes == {0, 1, 2} and summary["count_matrix"]["clusters"] == summary["clustering"]["ids"]
    table = pd.read_csv(second.outputs.assignments)
    assert dict(zip(table["path"], table["cluster"], strict=True)) == after
    page = second.outputs.report.read_text(encoding="utf-8")
    assert '<article class="cluster" id="cluster-2">' in page and "Cluster ids carried over from the last run" in page

    reseeded = _build(data, tmp_path, seed=1)  # other settings: numbered by size again
    assert reseeded.run.lineage.basis == "size" and "seed 0 → 1" in reseeded.run.lineage.reason
    assert reseeded.run.clustering.public(np.arange(3)).tolist() == [0, 1, 2]
    assert "seed 0 → 1" in reseeded.outputs.report.read_text(encoding="utf-8")
