"""The writers and the templates, on synthetic stage results."""

from __future__ import annotations

import csv
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import LABELED_SECTIONS, UNLABELED_SECTIONS
from helpers import fake_embeddings, validate_summary
from sklearn.datasets import make_blobs

from reportgen import report
from reportgen.analyze import analyze
from reportgen.choose_k import choose_k
from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.discover import Skipped
from reportgen.fsutil import template_dir
from reportgen.maps import project_2d
from reportgen.pipeline import assemble
from reportgen.reduce import reduce
from reportgen.report.figures import CLUSTER_COLOURS

HOSTILE_CLASS = "<script>alert(2)</script>"
HOSTILE_FILE = "<img src=x onerror=alert(1)>.jpg"


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


def _write(
    tmp_path: Path, labeled: bool = True, title: str | None = None, n: int = 8, max_report_mb: float = 15.0
) -> tuple[report.Outputs, Config]:
    x, y = make_blobs(n_samples=[n, n, n], n_features=12, cluster_std=0.5, random_state=0)
    classes = np.array(["alpha", "beta", HOSTILE_CLASS])
    labels = [str(classes[v]) for v in y] if labeled else [None] * len(y)
    paths = [f"{lbl or 'flat'}/{HOSTILE_FILE if i == 0 else f'{i}.jpg'}" for i, lbl in enumerate(labels)]
    emb = fake_embeddings(x, labels, paths, skipped=(Skipped("alpha/bad.jpg", "not an image Pillow can identify"),))
    config = Config(
        tmp_path / "data", out_dir=tmp_path / "out", pca_dims=5, k_max=6, title=title, max_report_mb=max_report_mb
    )
    reduced = reduce(emb.features, config)
    sel = choose_k(reduced, config)
    clus = cluster(reduced, sel.chosen_k, config)
    analysis = analyze(emb, reduced, clus, config)
    timings = {"embed": 1.0}
    layout = project_2d(reduced, config)
    run = assemble(config, emb, reduced, sel, clus, analysis, layout, timings)
    return report.write_outputs(run, "test-inputs"), config


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
        "content_hash",  # added last: the older columns keep their places
    ]
    assert len(rows) == 24
    summary = json.loads(out.summary.read_text(encoding="utf-8"))
    assert summary["n_images"] == 24 and summary["chosen_k"] == 3
    assert summary["skipped"] == [{"path": "alpha/bad.jpg", "reason": "not an image Pillow can identify"}]
    assert set(summary["k_selection"]) >= {"k", "inertia", "silhouette", "elbow_k", "silhouette_k", "reason"}
    assert set(summary["metrics"]) == {"nmi", "ari", "purity", "accuracy"}
    assert summary["metrics"]["nmi"] == pytest.approx(1.0)
    assert {r["cluster"] for r in rows} == {"0", "1", "2"}
    assert sum(summary["within_class"]["alpha"]["sizes"]) == 8
    assert set(summary["timings"]) == {"embed"}
    validate_summary(summary)


def test_report_has_every_section_and_fetches_nothing(tmp_path: Path) -> None:
    out, _ = _write(tmp_path)
    html = out.report.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(html)
    for section in LABELED_SECTIONS:
        assert section in parser.ids
    srcs = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert srcs and all(src.startswith("data:image/") for src in srcs)
    scripts = [t for t, a in parser.tags if t == "script"]
    assert len(scripts) == 2  # the JSON data island and the inline viewer/map code
    assert not [t for t, a in parser.tags if t in ("link", "script") and ("href" in a or "src" in a)]
    assert "alpha/bad.jpg" in html and "not an image Pillow can identify" in html


def test_user_controlled_strings_are_escaped(tmp_path: Path) -> None:
    out, _ = _write(tmp_path, title="<b>my</b> report")
    html = out.report.read_text(encoding="utf-8")
    assert "<script>alert(2)</script>" not in html
    assert "<img src=x onerror" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;b&gt;my&lt;/b&gt; report" in html
    assert html.count("<script") == 2 and "</script>" not in _json_island(html)
    data = json.loads(_json_island(html))
    assert HOSTILE_CLASS in data["classes"]  # intact as data, inert as markup
    assert any(HOSTILE_FILE in d["p"] for d in data["images"].values())


def test_unlabeled_report_leaves_out_label_sections(tmp_path: Path) -> None:
    out, _ = _write(tmp_path, labeled=False)
    parser = _Collect()
    parser.feed(out.report.read_text(encoding="utf-8"))
    assert set(UNLABELED_SECTIONS) <= set(parser.ids)
    assert not {"count-matrix", "histograms", "oddballs", "shared", "within-class"} & set(parser.ids)
    summary = json.loads(out.summary.read_text())
    assert summary["metrics"] is None and summary["n_outliers"] == len(summary["outliers"])
    validate_summary(summary)
    rows = list(csv.DictReader(out.assignments.open()))
    assert {r["label"] for r in rows} == {""} and {r["within_cluster"] for r in rows} == {""}


def test_a_failed_render_keeps_the_previous_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = _write(tmp_path)
    before = out.report.read_bytes()

    def boom(*args: object) -> str:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(report, "render_html", boom)
    with pytest.raises(RuntimeError):
        _write(tmp_path)
    assert out.report.read_bytes() == before
    names = sorted(p.name for p in out.report.parent.iterdir())
    assert names == [".reportgen-state.json", "assignments.csv", "history", "report.html", "summary.json"]
    assert len(list((out.report.parent / "history").iterdir())) == 1  # the failed run kept nothing


def test_a_failed_write_leaves_the_previous_set_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = _write(tmp_path)
    files = lambda: {p.name: p.read_bytes() for p in out.report.parent.rglob("*") if p.is_file()}  # noqa: E731
    before = files()
    real_fdopen = os.fdopen
    opened = []

    def fail_on_third(fd: int, *args: object, **kwargs: object):  # noqa: ANN202
        opened.append(fd)
        if len(opened) == 3:  # summary.json: the CSV and the page are already staged
            raise OSError(28, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fail_on_third)
    with pytest.raises(OSError):
        _write(tmp_path, title="another title")
    assert files() == before  # no temporary file left, and no history entry for the failed run


def test_templates_ship_beside_the_code() -> None:
    folder = template_dir()
    assert (folder / "report.html").is_file() and (folder / "report.css").is_file()
    assert {p.name for p in (folder / "sections").glob("*.html")} >= {"summary.html", "oddballs.html"}


def _json_island(html: str) -> str:
    start = html.index('<script type="application/json" id="report-data">') + len(
        '<script type="application/json" id="report-data">'
    )
    return html[start : html.index("</script>", start)]


def test_map_data_has_a_point_per_image_and_details_for_every_tile(tmp_path: Path) -> None:
    out, _ = _write(tmp_path)
    html = out.report.read_text(encoding="utf-8")
    data = json.loads(_json_island(html))
    assert [p[0] for p in data["points"]] == list(range(24))
    assert data["has_tsne"] and all(p[3] is not None for p in data["points"])
    tiles = {int(i) for i in re.findall(r'class="tile" data-i="(\d+)"', html)}
    assert tiles <= {int(i) for i in data["images"]}
    summary = json.loads(out.summary.read_text())
    assert summary["findings"] and summary["findings"][0] in html


def test_size_budget_shrinks_thumbnails_and_says_so(tmp_path: Path) -> None:
    roomy, _ = _write(tmp_path / "a", n=150)
    smallest, _ = _write(tmp_path / "b", n=150, max_report_mb=0.01)  # unreachable: the smallest it can do
    lo, hi = smallest.report.stat().st_size, roomy.report.stat().st_size
    assert lo < 0.7 * hi
    budget_mb = round((lo + hi) / 2 / 1e6, 3)
    tight, _ = _write(tmp_path / "c", n=150, max_report_mb=budget_mb)
    summary = json.loads(tight.summary.read_text())
    assert tight.report.stat().st_size <= budget_mb * 1e6
    assert summary["report"]["trimmed"]
    assert f"Trimmed to stay under {budget_mb} MB" in tight.report.read_text(encoding="utf-8")
    assert json.loads(roomy.summary.read_text())["report"]["trimmed"] == []


def test_one_palette_for_figures_css_and_js() -> None:
    folder = template_dir()
    js = (folder / "report.js").read_text()
    css = (folder / "report.css").read_text()
    palette = re.search(r"PALETTE = \[([^\]]*)\]", js, re.S).group(1)
    assert tuple(re.findall(r'"(#[0-9a-f]{6})"', palette)) == CLUSTER_COLOURS
    assert [re.search(rf"\.c{i} {{ background: (#[0-9a-f]{{6}}); }}", css).group(1) for i in range(20)] == list(
        CLUSTER_COLOURS
    )
