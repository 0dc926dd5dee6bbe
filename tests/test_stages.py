"""reduce, choose_k, cluster and analyze on data with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import fake_embeddings
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples

from reportgen.analyze import analyze
from reportgen.analyze.evidence import CLASSIFIER_MARGIN, VOTE_MARGIN
from reportgen.choose_k import _mean_rank, choose_k, disagreement
from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.errors import InvalidOptionError
from reportgen.reduce import directions, reduce

# make_blobs features take both signs: the tests build their geometry for plain L2 + PCA
CFG = Config("/unused", pca_dims=10, power_norm=False)


def _blobs(n: int = 120, centers: int = 4, dim: int = 32, std: float = 0.6):  # noqa: ANN202
    x, y = make_blobs(n_samples=n, centers=centers, n_features=dim, cluster_std=std, random_state=0)
    return x.astype(np.float32), y


def test_reduce_normalises_then_caps_components_by_the_data() -> None:
    x, _ = _blobs(n=8, dim=32)
    r = reduce(x * 100, Config("/unused", pca_dims=50))
    assert r.n_components == 7  # N - 1
    assert r.features.shape == (8, 7)
    assert 0.99 <= r.explained_variance <= 1.0 + 1e-6
    same = reduce(x, Config("/unused", pca_dims=50))  # scale-free because rows are L2-normalised first
    np.testing.assert_allclose(np.abs(r.features), np.abs(same.features), atol=1e-4)


def test_power_norm_keeps_a_few_bursty_channels_from_deciding_the_clusters() -> None:
    # Two groups that differ over half of 64 non-negative channels; half of the images (across both groups)
    # also fire one channel very strongly. Plain L2 splits by that burst; the signed square root by the groups.
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], 30)
    high = (np.arange(64) < 32)[None, :] == (group == 0)[:, None]
    x = np.where(high, 1.0, 0.2) * rng.uniform(0.5, 1.5, (60, 64))
    burst = rng.random(60) < 0.5
    x[burst, 0] += 20.0
    x = x.astype(np.float32)
    rooted, plain = Config("/unused", pca_dims=10), Config("/unused", pca_dims=10, power_norm=False)
    assert rooted.power_norm and reduce(x, rooted).power_norm and not reduce(x, plain).power_norm
    assert adjusted_rand_score(group, cluster(reduce(x, rooted), 2, rooted).labels) == 1.0
    assert adjusted_rand_score(burst, cluster(reduce(x, plain), 2, plain).labels) == 1.0
    # the root is taken with its sign: negated features give the same space up to each component's sign
    signed = reduce(-x, rooted).features
    np.testing.assert_allclose(np.abs(signed), np.abs(reduce(x, rooted).features), atol=1e-4)


def test_choose_k_judges_directions_so_row_lengths_do_not_matter() -> None:
    r = reduce(_blobs()[0], CFG)
    scaled = replace(r, features=r.features * np.random.default_rng(1).uniform(0.2, 3.0, (len(r.features), 1)))
    a, b = choose_k(r, Config("/unused", k_max=8)), choose_k(scaled, Config("/unused", k_max=8))
    assert a.chosen_k == b.chosen_k == 4
    for name in a.curves:
        np.testing.assert_allclose(a.curves[name], b.curves[name], rtol=1e-4, atol=1e-6)


def test_choose_k_finds_four_blobs() -> None:
    r = reduce(_blobs()[0], CFG)
    sel = choose_k(r, Config("/unused", k_max=10))
    assert sel.ks == tuple(range(2, 11))
    assert sel.elbow_k == 4
    assert sel.silhouette_k == 4
    assert sel.chosen_k == 4
    assert sel.picks == {"elbow": 4, "silhouette": 4, "calinski_harabasz": 4, "davies_bouldin": 4, "stability": 4}
    assert sel.reason.startswith("K=4 has the best mean rank over the four criteria (0.0)")
    assert sel.candidates[0] == 4 and len(sel.candidates) == 2
    assert (sel.confidence, sel.agreement) == ("high", 1.0)
    assert sel.disagreement is None
    assert sel.curves["stability"][sel.ks.index(4)] == pytest.approx(1.0)


def test_choose_k_caps_the_sweep_and_honours_k() -> None:
    r = reduce(_blobs(n=6)[0], CFG)
    sel = choose_k(r, Config("/unused", k_max=15))
    assert sel.ks == (2, 3, 4, 5)
    forced = choose_k(r, Config("/unused", k=3))
    assert (forced.chosen_k, forced.forced, forced.reason) == (3, True, "K=3 was given with --k")
    with pytest.raises(InvalidOptionError, match=r"--k 7 is larger than the number of usable images \(6\)"):
        choose_k(r, Config("/unused", k=7))


def test_choose_k_says_when_there_is_no_knee() -> None:
    r = reduce(_blobs(n=40, centers=1, std=1.0)[0], CFG)
    sel = choose_k(r, Config("/unused", k_max=3))
    assert sel.elbow_k is None
    assert sel.chosen_k in sel.ks


def test_identical_images_give_k_1_with_the_reason() -> None:
    r = reduce(np.ones((5, 16), dtype=np.float32), CFG)
    sel = choose_k(r, CFG)
    assert sel.chosen_k == 1
    assert sel.reason.startswith("K cannot be chosen: only 1 distinct image among 5")


def test_cluster_numbers_clusters_by_size_and_measures_distances() -> None:
    x, _ = make_blobs(n_samples=[30, 10, 20], n_features=8, cluster_std=0.3, random_state=1)
    r = reduce(x, CFG)
    c = cluster(r, 3, CFG)
    assert np.bincount(c.labels).tolist() == [30, 20, 10]
    np.testing.assert_allclose(c.distances, np.linalg.norm(r.features - c.centers[c.labels], axis=1), rtol=1e-5)


def _analysis(x: np.ndarray, labels: list[str], k: int, **cfg):  # noqa: ANN003, ANN202
    emb = fake_embeddings(x, labels)
    config = Config("/unused", pca_dims=10, **({"power_norm": False} | cfg))
    r = reduce(emb.features, config)
    c = cluster(r, k, config)
    return emb, c, analyze(emb, r, c, config)


def test_analyze_counts_oddballs_shared_clusters_and_metrics() -> None:
    x, y = make_blobs(n_samples=[20, 20, 20], n_features=16, cluster_std=0.4, random_state=2)
    names = np.array(["apple", "bear", "cat"])[y].tolist()
    odd = int(np.flatnonzero(y == 0)[0])
    names[odd] = "bear"  # a bear image that looks like the apples
    shared_idx = np.flatnonzero(y == 2)[:8]
    for i in shared_idx:
        names[i] = "apple"  # apples that look like cats: cluster of cats shared with apples
    emb, c, a = _analysis(x, names, k=3)

    assert a.count_matrix is not None
    assert a.count_matrix.counts.sum() == 60
    assert a.count_matrix.classes == ("apple", "bear", "cat")
    bear = next(s for s in a.class_spread if s.label == "bear")
    assert bear.size == 21 and bear.n_clusters == 2
    assert a.is_oddball[odd]
    bear_odd = next(o for o in a.oddballs if o.index == odd)
    assert bear_odd.looks_like == "apple" and bear_odd.vote_margin == 10 and bear_odd.votes == {"apple": 10}
    assert bear_odd.p_looks_like - bear_odd.p_label == pytest.approx(bear_odd.classifier_margin)
    assert bear_odd.classifier_margin >= CLASSIFIER_MARGIN and bear_odd.d_cluster < bear_odd.d_class
    assert len(bear_odd.neighbours) == 10 and odd not in [n.index for n in bear_odd.neighbours]
    assert bear_odd.path == emb.images.paths[odd] and bear_odd.cluster_name == a.clusters[bear_odd.cluster].name
    assert a.is_oddball.sum() == len(a.oddballs) == a.n_oddballs
    assert all(o.vote_margin >= VOTE_MARGIN and o.classifier_margin >= CLASSIFIER_MARGIN for o in a.oddballs)
    evidence = [(o.vote_margin, o.classifier_margin) for o in a.oddballs]
    assert evidence == sorted(evidence, reverse=True)
    # the apples among the cats sit outside apple's majority cluster, and so does the odd bear: counted, and
    # flagged only when the evidence points elsewhere
    home = {s.label: s.majority_cluster for s in a.class_spread}
    assert a.n_outside_majority == sum(int(c.labels[i]) != home[names[i]] for i in range(60)) >= 9
    cat_cluster = next(s.majority_cluster for s in a.class_spread if s.label == "cat")
    assert [(s.cluster, s.classes) for s in a.shared_clusters] == [(cat_cluster, {"cat": 12, "apple": 8})]
    cat_part, apple_part = a.shared_clusters[0].parts
    assert len(cat_part) == len(apple_part) == 6
    assert {names[i] for i in cat_part} == {"cat"} and {names[i] for i in apple_part} == {"apple"}
    assert {int(c.labels[i]) for i in (*cat_part, *apple_part)} == {cat_cluster}
    # each class's own cluster, in order
    assert a.count_matrix.column_order == tuple(s.majority_cluster for s in a.class_spread)
    assert a.metrics.nmi == pytest.approx(normalized_mutual_info_score(names, c.labels))
    assert a.metrics.ari == pytest.approx(adjusted_rand_score(names, c.labels))
    assert a.metrics.purity == pytest.approx((19 + 20 + 12) / 60)  # the odd bear sits with 19 apples


def test_accuracy_matches_clusters_to_classes_one_to_one() -> None:
    from reportgen.analyze.labels import label_metrics

    y = np.array(["cat"] * 10 + ["dog"] * 10, dtype=object)
    # cluster 0: 6 cats; cluster 1: 4 cats and 3 dogs; cluster 2: 7 dogs
    m = label_metrics(y, np.array([0] * 6 + [1] * 4 + [1] * 3 + [2] * 7))
    assert m.purity == pytest.approx((6 + 4 + 7) / 20)  # cluster 1 counts for "cat" as well as cluster 0
    assert m.accuracy == pytest.approx((6 + 7) / 20)  # one cluster per class: cluster 1 is matched to none
    assert label_metrics(y, np.zeros(20, int)).accuracy == pytest.approx(0.5)  # one cluster: one class matched


def test_within_class_split_recovers_two_concepts() -> None:
    x, y = make_blobs(n_samples=[15, 15, 20], n_features=16, cluster_std=0.4, random_state=3)
    names = ["dome" if v < 2 else "tower" for v in y]  # "dome" is two concepts
    emb, _, a = _analysis(x, names, k=2, within_classes=("dome",))
    assert [w.label for w in a.within_class] == ["dome"]
    (w,) = a.within_class
    assert w.sizes == (15, 15)
    truth = [y[i] for i in w.indices]
    assert adjusted_rand_score(truth, w.sub_labels) == 1.0
    assert w.meaningful and w.split_score > 5
    assert (a.within_labels[np.array(names) == "tower"] == -1).all()


def test_within_class_skips_tiny_classes_and_rejects_unknown_ones() -> None:
    x, y = make_blobs(n_samples=[10, 2], n_features=8, random_state=4)
    names = ["big" if v == 0 else "tiny" for v in y]
    _, _, a = _analysis(x, names, k=2)
    assert [w.label for w in a.within_class] == ["big"]
    assert "class 'tiny' has 2 images: too few to split into 2" in a.notes
    with pytest.raises(
        InvalidOptionError, match=r"unknown class\(es\) 'nope' in --within-classes; classes are: big, tiny"
    ):
        _analysis(x, names, k=2, within_classes=("nope",))


def test_unlabeled_analysis_has_no_label_parts() -> None:
    x, _ = _blobs(n=30, centers=3)
    _, _, a = _analysis(x, [None] * 30, k=3)
    assert not a.labeled
    assert a.metrics is None and a.count_matrix is None and a.oddballs == () and a.within_class == ()
    assert sum(c.size for c in a.clusters) == 30


def test_k_sweep_is_memoised_in_the_cache_folder(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from reportgen import choose_k as choose_k_module

    r = reduce(_blobs()[0], CFG)
    config = Config("/unused", k_max=8, cache_dir=tmp_path)
    first = choose_k(r, config)
    monkeypatch.setattr(choose_k_module, "partition", lambda *a, **kw: pytest.fail("the sweep ran again"))
    assert choose_k(r, config) == first
    with pytest.raises(BaseException, match="the sweep ran again"):
        choose_k(r, Config("/unused", k_max=8, cache_dir=tmp_path, seed=1))  # another seed: another sweep


def test_split_score_calls_one_gaussian_blob_noise_and_two_blobs_real() -> None:
    rng = np.random.default_rng(5)
    blob = rng.standard_normal((40, 16))
    two = np.vstack([rng.standard_normal((20, 16)) - 3, rng.standard_normal((20, 16)) + 3])
    x = np.vstack([blob, two]).astype(np.float32)
    names = ["blob"] * 40 + ["pair"] * 40
    _, _, a = _analysis(x, names, k=2)
    score = {w.label: w for w in a.within_class}
    assert not score["blob"].meaningful and abs(score["blob"].split_score) < 2
    assert score["pair"].meaningful
    assert [w.label for w in a.within_class] == ["pair", "blob"]  # ranked by split score


def test_unlabeled_outliers_are_far_from_their_cluster() -> None:
    x, _ = make_blobs(n_samples=[20, 20], n_features=8, cluster_std=0.3, random_state=6)
    far = x[0] + 3.0  # same cluster, well outside its spread
    x = np.vstack([x, far]).astype(np.float32)
    emb, c, a = _analysis(x, [None] * 41, k=2)
    assert [o.index for o in a.outliers] == [40]
    (o,) = a.outliers
    assert o.distance > o.threshold and o.cluster == int(c.labels[40])
    assert a.is_oddball.tolist() == [False] * 40 + [True]


def test_mean_rank_votes_and_ties_share_the_better_rank() -> None:
    curves = {
        "silhouette": [0.1, 0.3, 0.2],  # best K index 1
        "calinski_harabasz": [5.0, 9.0, 9.0],  # a tie for best between 1 and 2
        "davies_bouldin": [1.0, 2.0, 3.0],  # lower is better: best index 0
        "stability": [0.9, 0.8, 0.2],
    }
    np.testing.assert_allclose(_mean_rank(curves, 3), [(2 + 2 + 0 + 0) / 4, (0 + 0 + 1 + 1) / 4, (1 + 0 + 2 + 2) / 4])


def test_disagreement_names_the_criteria_far_from_the_choice() -> None:
    r = reduce(_blobs(n=90, centers=3, std=2.5)[0], CFG)
    sel = choose_k(r, Config("/unused", k_max=9))
    far = {name: k for name, k in sel.picks.items() if k is not None and abs(k - sel.chosen_k) > 1}
    text = disagreement(sel.picks, sel.chosen_k)
    assert sel.disagreement == text
    if far:
        assert text.startswith("The criteria disagree: ") and f"(chosen K={sel.chosen_k})" in text
        assert sel.confidence in ("medium", "low")
    else:
        assert text is None and sel.confidence == "high"
    forced = choose_k(r, Config("/unused", k=2, k_max=9))
    assert forced.disagreement is None and forced.confidence == "given"


def test_large_folder_paths_sample_and_minibatch_and_accept_float16_memmaps(
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    from reportgen import choose_k as choose_k_module
    from reportgen import reduce as reduce_module
    from reportgen.analyze import within as within_module
    from reportgen.cluster import methods as methods_module
    from reportgen.cluster import stage as stage_module

    for module in (reduce_module, choose_k_module, methods_module, within_module):
        monkeypatch.setattr(module, "LARGE_N", 90)
    monkeypatch.setattr(reduce_module, "CHUNK", 64)
    monkeypatch.setattr(stage_module, "CHUNK", 64)
    x, y = make_blobs(n_samples=[100, 100, 100], n_features=24, cluster_std=0.5, random_state=7)
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float16, shape=x.shape)
    mm[:] = x
    mm.flush()
    features = np.load(tmp_path / "f.npy", mmap_mode="r")
    config = Config("/unused", pca_dims=8, k_max=6)
    r = reduce(features, config)
    assert r.features.shape == (300, 8) and r.features.dtype == np.float32
    sel = choose_k(r, config)
    assert sel.chosen_k == 3
    c = cluster(r, 3, config)
    assert adjusted_rand_score(y, c.labels) == 1.0
    np.testing.assert_allclose(c.distances, np.linalg.norm(r.features - c.centers[c.labels], axis=1), rtol=1e-4)
    names = ["a" if v == 0 else "b" for v in y]  # "b" is two blobs: its split is fitted on a sample
    emb = fake_embeddings(np.asarray(features, dtype=np.float32), names)
    a = analyze(emb, r, c, config)
    b_split = next(w for w in a.within_class if w.label == "b")
    assert b_split.meaningful and sorted(b_split.sizes) == [100, 100]


def test_map_places_duplicates_together_and_skips_tsne_without_enough_distinct_points() -> None:
    from reportgen.maps import project_2d

    x, _ = make_blobs(n_samples=30, n_features=8, centers=3, random_state=8)
    x = np.vstack([x, x[:5]])  # five duplicates
    layout = project_2d(reduce(x, CFG), CFG)
    assert layout.tsne.shape == (35, 2)
    np.testing.assert_array_equal(layout.tsne[30:], layout.tsne[:5])
    same = project_2d(reduce(np.ones((10, 8), dtype=np.float32), CFG), CFG)
    assert same.tsne is None and "t-SNE needs at least 6 distinct images (1 here)" in same.note


def test_per_image_silhouettes_are_measured_where_k_was_judged() -> None:
    x, y = make_blobs(n_samples=[20, 20, 20], n_features=16, cluster_std=0.4, random_state=2)
    emb, c, a = _analysis(x.astype(np.float32), np.array(["a", "b", "c"])[y].tolist(), k=3)
    r = reduce(emb.features, Config("/unused", pca_dims=10, power_norm=False))
    expected = silhouette_samples(directions(r.features), c.labels)
    np.testing.assert_allclose(a.silhouettes, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.silhouettes, silhouette_samples(r.features, c.labels), atol=1e-3)


def test_no_decoding_workers_on_two_cores_or_fewer(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for cpus, workers in ((1, 0), (2, 0), (3, 3), (8, 4), (None, 0)):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        assert Config("/unused").resolved_workers == workers
    assert Config("/unused", workers=2).resolved_workers == 2


def test_the_class_count_is_scored_beside_the_chosen_k_and_never_chooses_it() -> None:
    from types import SimpleNamespace

    from reportgen.analyze.labels import label_metrics
    from reportgen.report.findings import _class_count

    x, y = make_blobs(n_samples=[20, 20, 20, 20], n_features=12, cluster_std=0.5, random_state=8)
    names = np.array(["a", "b", "c", "d"])[y].tolist()
    emb, c, a = _analysis(x, names, k=2)
    assert c.k == 2 and a.at_class_count.k == 4
    r = reduce(emb.features, Config("/unused", pca_dims=10, power_norm=False))
    expected = label_metrics(np.array(names, dtype=object), cluster(r, 4, CFG).labels)
    assert a.at_class_count.nmi == pytest.approx(expected.nmi) and a.at_class_count.nmi > a.metrics.nmi
    (sentence,) = _class_count(2, a)
    assert sentence.startswith("The images group differently from the folder labels: 2 clusters for 4 classes")
    assert f"NMI {a.at_class_count.nmi:.2f} at K=4 against {a.metrics.nmi:.2f} at the chosen K=2" in sentence
    same = SimpleNamespace(at_class_count=SimpleNamespace(k=2), metrics=a.metrics)
    assert _class_count(2, same) == []
    _, _, unlabeled = _analysis(x, [None] * 80, k=2)
    assert unlabeled.at_class_count is None


def test_an_unsure_k_choice_names_its_runner_up_and_a_plausible_range() -> None:
    sure = choose_k(reduce(_blobs()[0], CFG), Config("/unused", k_max=10))
    assert sure.confidence == "high" and sure.second_opinion is None
    assert sure.k_range[0] <= min(sure.candidates) and max(sure.candidates) <= sure.k_range[1]
    one_blob = reduce(_blobs(n=60, centers=1, std=1.0)[0], CFG)
    unsure = choose_k(one_blob, Config("/unused", k_max=8))
    assert unsure.confidence in ("medium", "low")
    assert unsure.second_opinion == unsure.candidates[1] != unsure.chosen_k
    low, high = unsure.k_range
    assert unsure.ks[0] <= low <= min(unsure.candidates) and max(unsure.candidates) <= high <= unsure.ks[-1]
    ranked = [k for k, r in zip(unsure.ks, unsure.mean_rank, strict=True) if r <= min(unsure.mean_rank) + 1.0]
    assert low <= min(ranked) and max(ranked) <= high
    given = choose_k(one_blob, Config("/unused", k=3))
    assert given.second_opinion is None and given.k_range == ()


def test_the_runner_up_clustering_is_compared_cluster_by_cluster() -> None:
    from itertools import permutations

    from reportgen.analyze.labels import label_metrics

    x, y = make_blobs(n_samples=[25, 25, 20, 10], n_features=12, cluster_std=0.5, random_state=3)
    names = np.array(["a", "b", "c", "d"])[y].tolist()
    emb = fake_embeddings(x.astype(np.float32), names)
    config = Config("/unused", pca_dims=10, power_norm=False)
    r = reduce(emb.features, config)
    chosen = cluster(r, 4, config)
    a = analyze(emb, r, chosen, config, runner_up_k=3)
    second, other = a.runner_up, cluster(r, 3, config)
    assert second.k == 3 and len(second.clusters) == 3
    table = np.array(second.crosstab)
    assert table.shape == (4, 3) and table.sum() == 80
    np.testing.assert_array_equal(table.sum(axis=1), np.bincount(chosen.labels, minlength=4))
    np.testing.assert_array_equal(table.sum(axis=0), [c.size for c in second.clusters])
    best = max(sum(table[i, j] for j, i in enumerate(rows)) for rows in permutations(range(4), 3))
    assert second.moved == 80 - best > 0  # four groups into three: at least the smallest group moves
    assert second.metrics == label_metrics(np.array(names, dtype=object), other.labels)
    assert a.runner_up is not None and analyze(emb, r, chosen, config).runner_up is None
    unlabeled = analyze(fake_embeddings(x.astype(np.float32), [None] * 80), r, chosen, config, runner_up_k=3)
    assert unlabeled.runner_up.metrics is None and unlabeled.runner_up.moved == second.moved


def test_a_tie_for_the_best_mean_rank_is_called_a_tie(monkeypatch: pytest.MonkeyPatch) -> None:
    from reportgen import choose_k as choose_k_module

    curves = {  # K=2 and K=3 each best on two criteria, third on none: equal mean ranks
        "silhouette": [0.3, 0.2, 0.1],
        "calinski_harabasz": [9.0, 5.0, 1.0],
        "davies_bouldin": [2.0, 1.0, 3.0],
        "stability": [0.5, 0.9, 0.1],
    }
    monkeypatch.setattr(choose_k_module, "_sweep", lambda *a: ([3.0, 2.0, 1.0], curves, None))
    sel = choose_k(reduce(_blobs()[0], CFG), Config("/unused", k_max=4))
    assert sel.candidates == (2, 3) and sel.chosen_k == 2
    assert sel.reason.startswith("K=2 and K=3 tie for the best mean rank over the four criteria (0.5)")
