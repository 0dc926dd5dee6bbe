"""The clustering methods beside K-means: each recovers known groups, GMM chooses K by BIC, HDBSCAN's noise is
a group of its own in every output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import validate_summary
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import reportgen
from reportgen.choose_k import choose_k
from reportgen.cluster import get_method, method_for, method_names, partition
from reportgen.cluster import library as library_module
from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.reduce import reduce

CFG = {"pca_dims": 8, "power_norm": False, "use_cache": False}


def _blobs(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=n, centers=3, n_features=16, cluster_std=0.4, random_state=seed)
    return x.astype(np.float32), y


def test_every_method_is_registered_and_offered_by_the_cli() -> None:
    assert {"kmeans", "agglomerative", "gmm", "hdbscan", "dec"} <= set(method_names())
    assert not get_method("hdbscan").takes_k and get_method("gmm").k_criterion == "bic"


@pytest.mark.parametrize(
    ("method", "linkage"),
    [("kmeans", "ward"), ("agglomerative", "ward"), ("agglomerative", "average"), ("agglomerative", "complete"),
     ("gmm", "ward"), ("dec", "ward")],
)  # fmt: skip
def test_methods_that_take_k_recover_three_blobs(method: str, linkage: str) -> None:
    x, y = _blobs()
    config = Config("/unused", method=method, linkage=linkage, k=3, **CFG)
    c = cluster(reduce(x, config), 3, config)
    assert c.k == 3 and c.n_noise == 0 and adjusted_rand_score(y, c.labels) == 1.0
    assert c.method == method
    if method == "agglomerative":
        found = partition(method_for(config), reduce(x, config).features, 3, 0)
        assert found.parameters["linkage"] == linkage
        assert found.parameters["metric"] == ("euclidean" if linkage == "ward" else "cosine")


def test_gmm_chooses_k_by_bic_and_shows_it_as_a_criterion() -> None:
    x, _ = _blobs(n=120, seed=3)
    config = Config("/unused", method="gmm", k_max=6, **CFG)
    sel = choose_k(reduce(x, config), config)
    assert "bic" in sel.curves and len(sel.curves["bic"]) == len(sel.ks)
    assert sel.chosen_k == sel.picks["bic"] == sel.ks[int(np.argmin(sel.curves["bic"]))] == 3
    assert sel.reason.startswith("K=3 has the lowest BIC of the gmm fits")
    assert sel.candidates[0] == 3 and (not sel.k_range or sel.k_range[0] <= 3 <= sel.k_range[1])


def test_hdbscan_finds_k_and_leaves_far_points_out() -> None:
    x, y = _blobs(n=90)
    far = np.random.default_rng(1).uniform(-60, 60, size=(6, 16)).astype(np.float32)  # scattered, in no blob
    config = Config("/unused", method="hdbscan", **CFG)
    reduced = reduce(np.vstack([x, far]), config)
    sel = choose_k(reduced, config)
    assert sel.confidence == "data" and "hdbscan finds the number of clusters" in sel.reason
    c = cluster(reduced, sel.chosen_k, config)
    assert c.k == 3 and c.n_noise >= 1 and c.n_groups == 4
    assert adjusted_rand_score(y, c.labels[:90]) > 0.9
    assert set(c.public(c.labels)) <= {-1, 0, 1, 2}
    assert (c.public(c.labels) == -1).sum() == c.n_noise and c.labels[~c.in_cluster].max() == 3


def test_large_folders_fit_agglomerative_on_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_module, "LARGE_N", 40)
    x, y = _blobs(n=150)
    estimator = library_module.agglomerative(3, 0, len(x))
    labels = estimator.fit_predict(reduce(x, Config("/unused", **CFG)).features)
    assert adjusted_rand_score(y, labels) == 1.0 and estimator.get_params()["fitted_on_at_most"] == 40


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "assignments.csv").open(encoding="utf-8")))


def test_noise_is_its_own_group_in_every_output(labeled_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    reportgen.build_report(
        labeled_dir, out_dir=out, method="hdbscan", backbone="efficientnet-lite0", cache_dir=tmp_path / "c",
        progress=False,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    validate_summary(summary)
    rows = _rows(out)
    noise = [r for r in rows if r["cluster"] == "-1"]
    assert summary["clustering"]["n_noise"] == len(noise)
    if noise:
        (group,) = [c for c in summary["clusters"] if c["cluster"] == -1]
        assert group["name"] == "not in any cluster" and group["size"] == len(noise)
        assert any("in no cluster" in f for f in summary["findings"])
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "Not in any cluster" in html
    assert {int(r["cluster"]) for r in rows} - {-1} == set(range(summary["chosen_k"]))


def test_a_method_that_finds_no_cluster_says_so(
    labeled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library_module, "HDBSCAN_MIN_SIZE", 10_000)  # capped at the image count: all noise
    out = tmp_path / "out"
    result = reportgen.build_report(
        labeled_dir, out_dir=out, method="hdbscan", backbone="efficientnet-lite0", cache_dir=tmp_path / "c",
        progress=False,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    validate_summary(summary)
    assert result.clustering.k == 0 and summary["chosen_k"] == 0
    assert {r["cluster"] for r in _rows(out)} == {"-1"}
    assert any("found no cluster at all" in f for f in summary["findings"])
    assert "Not in any cluster" in (out / "report.html").read_text(encoding="utf-8")


def test_agglomerative_reports_draw_the_dendrogram(labeled_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    reportgen.build_report(
        labeled_dir, out_dir=out, method="agglomerative", linkage="average", backbone="efficientnet-lite0",
        cache_dir=tmp_path / "c", progress=False,
    )  # fmt: skip
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html.split('<section id="dendrogram">')[1].split("</section>")[0]
    assert "average linkage of cosine distances" in section and 'src="data:image/png;base64,' in section
    assert json.loads((out / "summary.json").read_text())["parameters"]["linkage"] == "average"
    kmeans_out = tmp_path / "km"
    reportgen.build_report(
        labeled_dir, out_dir=kmeans_out, backbone="efficientnet-lite0", cache_dir=tmp_path / "c", progress=False
    )
    assert 'id="dendrogram"' not in (kmeans_out / "report.html").read_text(encoding="utf-8")


def test_the_ensemble_votes_over_its_members_and_says_which(labeled_dir: Path, tmp_path: Path) -> None:
    from reportgen.cluster.ensemble import CoAssociation, default_members
    from reportgen.errors import InvalidOptionError

    x, y = _blobs()
    rng = np.random.default_rng(0)
    other = x + rng.normal(0, 0.3, x.shape).astype(np.float32)  # a second, noisier view of the same images
    labels = CoAssociation(3, (other, other[:10]), runs=2, random_state=0).fit_predict(x)  # a misfit view is skipped
    assert adjusted_rand_score(y, labels) == 1.0
    # two earlier modules of the backbone's 16, at two thirds and five sixths of its depth
    assert default_members("efficientnet-lite0", True) == [
        "efficientnet-lite0@_blocks.11:avg",
        "efficientnet-lite0@_blocks.14:avg",
    ]
    with pytest.raises(InvalidOptionError, match="--ensemble-features"):
        Config("/unused", method="ensemble", ensemble_features="nosuchnet")
    out = tmp_path / "out"
    reportgen.build_report(
        labeled_dir, out_dir=out, method="ensemble", ensemble_features="efficientnet-lite0@_blocks.10:max",
        backbone="efficientnet-lite0", cache_dir=tmp_path / "c", progress=False,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    validate_summary(summary)
    assert summary["clustering"]["combined"] == ["efficientnet-lite0", "efficientnet-lite0@_blocks.10:max"]
    assert "with kmeans's sweep; ensemble clusters at it" in summary["k_selection"]["reason"]
    assert any(n.startswith("ensemble: K-means 3 times on each of efficientnet-lite0") for n in summary["notes"])


def test_label_free_scores_leave_noise_out_and_match_scikit_learn() -> None:
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    from reportgen.analyze.scores import label_free

    x, y = _blobs()
    labels = y.copy()
    labels[:5] = 3  # the noise group of a k=3 clustering
    free = label_free(x, labels, 3, 0)
    kept = labels < 3
    assert free.calinski_harabasz == pytest.approx(calinski_harabasz_score(x[kept], y[kept]))
    assert free.davies_bouldin == pytest.approx(davies_bouldin_score(x[kept], y[kept]))
    assert 0.5 < free.silhouette <= 1.0
    assert label_free(x, np.zeros(len(x), dtype=int), 1, 0).calinski_harabasz is None  # one cluster: undefined


def test_noise_in_an_unlabeled_folder(unlabeled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_module, "HDBSCAN_MIN_SIZE", 3)
    out = tmp_path / "out"
    reportgen.build_report(
        unlabeled_dir, out_dir=out, method="hdbscan", backbone="efficientnet-lite0", cache_dir=tmp_path / "c",
        progress=False,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    validate_summary(summary)
    noise = summary["clustering"]["n_noise"]
    assert sum(c["size"] for c in summary["clusters"]) == 12
    assert all(o["cluster"] != -1 for o in summary["outliers"])  # the noise group is not a cluster with a fence
    assert (noise > 0) == any("in no cluster" in f for f in summary["findings"])
