"""A report section and a clustering method added from outside the package show up in a real report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pinned import build_folder, section_ids, seed_cache
from sklearn.cluster import AgglomerativeClustering

from reportgen.cli import main
from reportgen.cluster import methods, register_method
from reportgen.report import Section, register_section, sections


@pytest.fixture
def registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test end with it."""
    monkeypatch.setattr(sections, "SECTIONS", list(sections.SECTIONS))
    monkeypatch.setattr(methods, "_METHODS", dict(methods._METHODS))


def test_a_section_and_a_method_from_outside_show_in_a_real_report(tmp_path: Path, registries: None) -> None:
    # The whole extension: a method in one call, a section in one call plus its partial.
    register_method("ward", lambda k, seed, n_rows: AgglomerativeClustering(n_clusters=k), "Ward linkage")
    partial = tmp_path / "sizes.html"
    partial.write_text(
        '<section id="sizes"><h2>Cluster sizes</h2><p id="sizes-list">{{ c.sizes | join(" / ") }}</p></section>'
    )
    register_section(
        Section(
            "sizes",
            "Cluster sizes",
            str(partial),
            context=lambda run, page: {"sizes": [c.size for c in run.analysis.clusters]},
        ),
        after="clusters",
    )

    folder = build_folder("generated", tmp_path / "data")
    seed_cache(folder, "generated", tmp_path / "cache")
    out = tmp_path / "out"
    args = [str(folder), "-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "-q", "--method", "ward"]) == 0

    html = (out / "report.html").read_text(encoding="utf-8")
    ids = section_ids(html)
    assert ids[ids.index("clusters") + 1] == "sizes"
    assert '<a href="#sizes">Cluster sizes</a>' in html
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    sizes = " / ".join(str(c["size"]) for c in summary["clusters"])
    assert f'<p id="sizes-list">{sizes}</p>' in html
    assert summary["clustering"]["method"] == "ward" and summary["parameters"]["method"] == "ward"
    ward = [int(r["cluster"]) for r in csv.DictReader((out / "assignments.csv").open(encoding="utf-8"))]

    assert main([*args, "-q", "-o", str(tmp_path / "km")]) == 0
    km = [int(r["cluster"]) for r in csv.DictReader((tmp_path / "km" / "assignments.csv").open(encoding="utf-8"))]
    kmeans_summary = json.loads((tmp_path / "km" / "summary.json").read_text(encoding="utf-8"))
    assert kmeans_summary["clustering"]["method"] == "kmeans"
    # Ward's K sweep is its own: its inertia curve is the within-cluster sum of squares of Ward's clusters.
    assert summary["k_selection"]["inertia"] != kmeans_summary["k_selection"]["inertia"]
    assert len(ward) == len(km)


def test_unknown_method_is_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), "--method", "nope"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("Error: argument --method: invalid choice: 'nope' (choose from ")


def test_registering_after_an_unknown_section_names_the_sections(registries: None) -> None:
    with pytest.raises(ValueError, match="no report section 'nope'; sections are: summary, since-last-run, choose-k"):
        register_section(Section("x", "X", "/tmp/x.html"), after="nope")


def test_every_package_of_the_source_ships_in_the_wheel() -> None:
    import tomllib

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(root).parts) for init in (root / "reportgen").rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
