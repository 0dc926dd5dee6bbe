"""The writers and the templates, on synthetic stage results."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import fake_embeddings
from sklearn.datasets import make_blobs

from reportgen import render
from reportgen.analyze import analyze
from reportgen.choose_k import choose_k
from reportgen.cluster import cluster
from reportgen.config import Config
from reportgen.discover import Skipped
from reportgen.reduce import reduce

HOSTILE_CLASS = "<script>alert(2)</script>"
HOSTILE_FILE = "<img src=x onerror=alert(1)>.jpg"
LABELED_IDS = [
    "summary",
    "choose-k",
    "clusters",
    "count-matrix",
    "histograms",
    "oddballs",
    "shared",
    "within-class",
    "skipped",
    "run-details",
]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        d = dict(attrs)
        self.tags.append((tag, d))
        if "id" in d:
            self.ids.append(d["id"])


def _write(tmp_path: Path, labeled: bool = True, title: str | None = None) -> tuple[render.Outputs, Config]:
    x, y = make_blobs(n_samples=[8, 8, 8], n_features=12, cluster_std=0.5, random_state=0)
    classes = np.array(["alpha", "beta", HOSTILE_CLASS])
    labels = [str(classes[v]) for v in y] if labeled else [None] * len(y)
    paths = [f"{lbl or 'flat'}/{HOSTILE_FILE if i == 0 else f'{i}.jpg'}" for i, lbl in enumerate(labels)]
    emb = fake_embeddings(x, labels, paths, skipped=(Skipped("alpha/bad.jpg", "not an image Pillow can identify"),))
    config = Config(tmp_path / "data", out_dir=tmp_path / "out", pca_dims=5, k_max=6, title=title)
    reduced = reduce(emb.features, config)
    sel = choose_k(reduced, config)
    clus = cluster(reduced, sel.chosen_k, config)
    analysis = analyze(emb, reduced, clus, config)
    timings = {"embed": 1.0}
    return render.write_outputs(config, emb, reduced, sel, clus, analysis, timings), config


def test_outputs_hold_the_same_results(tmp_path: Path) -> None:
    out, _ = _write(tmp_path)
    rows = list(csv.DictReader(out.assignments.open(encoding="utf-8")))
    assert list(rows[0]) == [
        "path",
        "label",
        "cluster",
        "within_cluster",
        "is_oddball",
        "distance",
        "top1_class",
        "top1_prob",
    ]
    assert len(rows) == 24
    summary = json.loads(out.summary.read_text(encoding="utf-8"))
    assert summary["n_images"] == 24 and summary["chosen_k"] == 3
    assert summary["skipped"] == [{"path": "alpha/bad.jpg", "reason": "not an image Pillow can identify"}]
    assert set(summary["k_selection"]) >= {"k", "inertia", "silhouette", "elbow_k", "silhouette_k", "reason"}
    assert set(summary["metrics"]) == {"nmi", "ari", "purity"}
    assert summary["metrics"]["nmi"] == pytest.approx(1.0)
    assert {r["cluster"] for r in rows} == {"0", "1", "2"}
    assert sum(summary["within_class"]["alpha"]["sizes"]) == 8
    assert set(summary["timings"]) == {"embed"}


def test_report_has_every_section_and_fetches_nothing(tmp_path: Path) -> None:
    out, _ = _write(tmp_path)
    html = out.report.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(html)
    for section in LABELED_IDS:
        assert section in parser.ids
    srcs = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert srcs and all(src.startswith("data:image/") for src in srcs)
    assert not [t for t, a in parser.tags if t in ("link", "script") and ("href" in a or "src" in a)]
    assert "alpha/bad.jpg" in html and "not an image Pillow can identify" in html


def test_user_controlled_strings_are_escaped(tmp_path: Path) -> None:
    out, _ = _write(tmp_path, title="<b>my</b> report")
    html = out.report.read_text(encoding="utf-8")
    assert "<script>alert(2)</script>" not in html
    assert "<img src=x onerror" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;b&gt;my&lt;/b&gt; report" in html
    assert not re.search(r"<script\b", html)


def test_unlabeled_report_leaves_out_label_sections(tmp_path: Path) -> None:
    out, _ = _write(tmp_path, labeled=False)
    parser = _Collect()
    parser.feed(out.report.read_text(encoding="utf-8"))
    assert {"summary", "choose-k", "clusters", "skipped", "run-details"} <= set(parser.ids)
    assert not {"count-matrix", "histograms", "oddballs", "within-class"} & set(parser.ids)
    assert json.loads(out.summary.read_text())["metrics"] is None
    rows = list(csv.DictReader(out.assignments.open()))
    assert {r["label"] for r in rows} == {""} and {r["within_cluster"] for r in rows} == {""}


def test_a_failed_render_keeps_the_previous_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = _write(tmp_path)
    before = out.report.read_bytes()

    def boom(context: dict) -> str:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(render, "render_html", boom)
    with pytest.raises(RuntimeError):
        _write(tmp_path)
    assert out.report.read_bytes() == before
    assert sorted(p.name for p in out.report.parent.iterdir()) == ["assignments.csv", "report.html", "summary.json"]


def test_templates_ship_beside_the_code() -> None:
    folder = render.template_dir()
    assert (folder / "report.html").is_file() and (folder / "report.css").is_file()
    assert {p.name for p in (folder / "sections").glob("*.html")} >= {"summary.html", "oddballs.html"}
