"""``reportgen compare``: every configuration scored, compared and written; ``--from-compare`` builds the best."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from reportgen.cli import main
from reportgen.compare import run_study
from reportgen.compare.write import CSV_COLUMNS
from reportgen.config import Config

LAYER = "efficientnet-lite0@_blocks.10:max"


@pytest.fixture(scope="module")
def compared(labeled_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("compare")
    out, cache = work / "out", work / "cache"
    args = [str(labeled_dir), "--features", "efficientnet-lite0", LAYER, "--methods", "kmeans", "agglomerative",
            "hdbscan", "--seeds", "2", "-o", str(out), "--cache-dir", str(cache), "-q", "--no-baselines"]  # fmt: skip
    assert main(["compare", *args]) == 0
    return out, cache


def test_every_run_is_a_row_and_every_configuration_a_cell(compared: tuple[Path, Path]) -> None:
    out, _ = compared
    rows = list(csv.DictReader((out / "compare.csv").open(encoding="utf-8")))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2 * 3 * 2
    assert {(r["features"], r["method"], r["seed"]) for r in rows} == {
        (f, m, s) for f in ("efficientnet-lite0", LAYER) for m in ("kmeans", "agglomerative", "hdbscan") for s in "01"
    }
    study = json.loads((out / "compare.json").read_text())
    assert [c["name"] for c in study["cells"]] == [
        f"{m} on {f}" for f in ("efficientnet-lite0", LAYER) for m in ("kmeans", "agglomerative", "hdbscan")
    ]
    for cell in study["cells"]:  # the cell's mean is the mean of its rows
        nmis = [float(r["nmi"]) for r in rows if (r["features"], r["method"]) == (cell["features"], cell["method"])]
        assert cell["mean"]["nmi"] == pytest.approx(np.mean(nmis), abs=1e-5)
        assert cell["sd"]["nmi"] == pytest.approx(np.std(nmis), abs=1e-5)
    best = max(study["cells"], key=lambda c: c["mean"]["nmi"])
    assert study["best"] == best["name"] and study["ranking_score"] == "nmi"
    assert study["recommendation"].startswith(f"Best by agreement with the folder labels (NMI): {best['name']}")
    agreement = np.array(study["agreement"])
    assert agreement.shape == (6, 6) and np.allclose(np.diag(agreement), 1) and np.allclose(agreement, agreement.T)


def test_scores_are_what_scikit_learn_says(labeled_dir: Path, compared: tuple[Path, Path]) -> None:
    _, cache = compared
    config = Config(labeled_dir, cache_dir=cache, progress=False, k=3)
    study = run_study(config, ["efficientnet-lite0"], ["kmeans", "agglomerative"], [0])
    y = [p.split("/")[0] for p in study.paths]
    for trial in study.trials:
        assert trial.k == 3 and trial.scores["nmi"] == pytest.approx(normalized_mutual_info_score(y, trial.labels))
        assert trial.scores["ari"] == pytest.approx(adjusted_rand_score(y, trial.labels))
    first, second = study.trials
    assert study.agreement[0][1] == pytest.approx(adjusted_rand_score(first.labels, second.labels))
    assert len(study.mates) >= 1 and all(len(m.rows) == 2 for m in study.mates)
    for m in study.mates:  # cluster-mates share the image's cluster in that configuration
        for (name, cluster, mates), trial in zip(m.rows, study.trials, strict=True):
            assert name == f"{trial.method} on efficientnet-lite0" and m.index not in mates
            assert all(trial.labels[j] == cluster == trial.labels[m.index] for j in mates)


def test_the_page_is_one_offline_file(compared: tuple[Path, Path]) -> None:
    out, _ = compared
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert html.count('<table class="heat"') == 7  # four label scores, three label-free
    assert "Cluster-mates under every configuration" in html and "data:image/jpeg;base64," in html


def test_from_compare_builds_the_best_configuration(
    labeled_dir: Path, compared: tuple[Path, Path], tmp_path: Path
) -> None:
    out, cache = compared
    study = json.loads((out / "compare.json").read_text())
    best = next(c for c in study["cells"] if c["name"] == study["best"])
    report = tmp_path / "report"
    args = [str(labeled_dir), "-o", str(report), "--cache-dir", str(cache), "-q"]
    assert main([*args, "--from-compare", str(out / "compare.json")]) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert summary["parameters"]["backbone"] == best["features"] and summary["parameters"]["method"] == best["method"]


def test_bad_compare_input_is_one_line(labeled_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    cases = [
        ["compare", str(labeled_dir), "--seeds", "0"],
        ["compare", str(labeled_dir), "--seeds", "x"],
        ["compare", str(labeled_dir), "--features", "nosuchnet"],
        [str(labeled_dir), "--from-compare", str(bad)],
        [str(labeled_dir), "--from-compare", str(tmp_path / "missing.json")],
        [str(labeled_dir), "--from-compare", str(bad), "--method", "kmeans"],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and err.count("\n") == 1, err


def test_one_spec_unlabeled_still_compares(unlabeled_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["compare", str(unlabeled_dir), "--features", "efficientnet-lite0", "--methods", "kmeans", "gmm",
            "--seeds", "1", "-o", str(out), "--cache-dir", str(tmp_path / "c"), "-q", "--no-baselines"]  # fmt: skip
    assert main(args) == 0
    study = json.loads((out / "compare.json").read_text())
    assert study["ranking_score"] == "silhouette" and "label-free" in study["recommendation"]
    assert all(c["mean"]["nmi"] is None for c in study["cells"])
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert "One feature spec: this page compares the methods on it." in html
    assert html.count('<table class="heat"') == 3


def test_the_baselines_are_compared_by_default(labeled_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["compare", str(labeled_dir), "--features", "efficientnet-lite0", "--methods", "kmeans", "--seeds", "1",
            "-o", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]  # fmt: skip
    assert main(args) == 0
    study = json.loads((out / "compare.json").read_text())
    assert study["features"] == ["efficientnet-lite0", "pixels", "hog"]
    assert all(c["mean"]["nmi"] is not None for c in study["cells"])
