"""The real CLI with the real bundled backbone on sample_data, asserting on the parsed outputs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import LABELED_SECTIONS, SAMPLE_DATA

from reportgen.analyze.evidence import CLASSIFIER_MARGIN, VOTE_MARGIN
from reportgen.analyze.within import BROAD, MEANINGFUL_Z

pytestmark = pytest.mark.e2e


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "reportgen"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reportgen"]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.img_srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        d = dict(attrs)
        if "id" in d:
            self.ids.add(d["id"])
        if tag == "img":
            self.img_srcs.append(d.get("src", ""))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("e2e")
    out, cache = work / "out", work / "cache"
    cmd = [*_cli(), str(SAMPLE_DATA), "-o", str(out), "--backbone", "efficientnet-lite0", "--cache-dir", str(cache)]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, cache, proc


def test_assignments_csv_has_one_row_per_sample_image(sample_run) -> None:  # noqa: ANN001
    out, _, _ = sample_run
    rows = list(csv.DictReader((out / "assignments.csv").open(encoding="utf-8")))
    expected = sorted(p.relative_to(SAMPLE_DATA).as_posix() for p in SAMPLE_DATA.rglob("*.jpg"))
    assert [r["path"] for r in rows] == expected
    assert all(r["label"] == r["path"].split("/")[0] for r in rows)
    assert all(0.0 <= float(r["top1_prob"]) <= 1.0 and r["top1_class"] for r in rows)
    assert {r["is_oddball"] for r in rows} <= {"True", "False"}
    assert all(r["within_cluster"] in {"0", "1"} for r in rows)


def test_summary_json_numbers(sample_run) -> None:  # noqa: ANN001
    out, _, _ = sample_run
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["n_images"] == 122 and s["n_skipped"] == 0 and s["skipped"] == []
    assert s["backbone"] == "efficientnet-lite0" and s["weights"].startswith("bundled:")
    assert s["classes"] == ["fishes", "monuments", "renewable", "tools"]
    assert 2 <= s["chosen_k"] <= 15
    assert s["k_selection"]["k"] == list(range(2, 16))
    assert s["metrics"]["nmi"] >= 0.75  # issue 4: the bundled backbone at the chosen K on sample_data
    assert s["pca"]["power_norm"] is True and s["parameters"]["power_norm"] is True
    assert (s["parameters"]["precision"], s["parameters"]["jpeg_decoder"]) == ("auto", "auto")
    assert 0 < s["metrics"]["purity"] <= 1
    assert set(s["within_class"]) == set(s["classes"])
    assert sum(s["within_class"]["renewable"]["sizes"]) == 28
    assert set(s["timings"]) == {"discover", "embed", "reduce", "choose_k", "cluster", "analyze", "explain", "map"}
    ex = s["explanations"]  # heat maps of the images the report explains (tests/test_explain.py checks their meaning)
    assert ex["method"] == "gradcam" and ex["layer"] == "_swish_1" and ex["n_maps"] >= 2 * ex["n_images"] > 0
    assert s["cache"] == {"computed": 122, "cached": 0}
    assert s["seed"] == 0 and "torch" in s["versions"]
    for w in s["within_class"].values():  # the rule, as the schema states it
        near_singleton = min(w["sizes"]) < max(3, 0.05 * sum(w["sizes"]))
        assert w["meaningful"] == (w["split_score"] >= MEANINGFUL_Z and w["breadth"] >= BROAD and not near_singleton)
    assert [w["meaningful"] for w in s["within_class"].values()] == sorted(
        (w["meaningful"] for w in s["within_class"].values()), reverse=True
    )
    assert s["findings"] and s["report"]["trimmed"] == []
    n = s["n_oddballs"]
    assert s["label_check"]["beats_chance"] and s["label_check"]["classifier_accuracy"] > 0.8
    said = "1 image looks more like another class" if n == 1 else f"{n} images look more like another class"
    expected = f"{said} than {'its' if n == 1 else 'their'} own" if n else "No image looks mislabelled"
    if n:
        top = s["oddballs"][0]
        assert any(
            f"case is {top['path']}, labelled {top['label']}, which looks like {top['looks_like']}" in f
            for f in s["findings"]
        )
    assert any(expected in line for line in s["findings"])
    page = (out / "report.html").read_text(encoding="utf-8")
    for o in s["oddballs"]:
        assert o["vote_margin"] >= VOTE_MARGIN and o["classifier_margin"] >= CLASSIFIER_MARGIN
        assert len(o["neighbours"]) == 10
        assert f"Labelled <strong>{o['label']}</strong>, looks like <strong>{o['looks_like']}</strong>" in page
    at = s["at_class_count"]
    assert at["k"] == 4 and 0 < at["nmi"] <= 1
    if s["chosen_k"] != 4:
        assert any(f"NMI {at['nmi']:.2f} at K=4 against {s['metrics']['nmi']:.2f}" in f for f in s["findings"])
        assert f"at K=4, the class count: NMI {at['nmi']:.2f}" in page
    m = s["n_outside_majority"]
    assert f"{m} image{'s' if m != 1 else ''} sit" in page


def test_report_html_is_self_contained_with_every_section(sample_run) -> None:  # noqa: ANN001
    out, _, _ = sample_run
    html = (out / "report.html").read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(html)
    assert set(LABELED_SECTIONS) <= parser.ids
    assert len(parser.img_srcs) > 100
    assert all(src.startswith("data:image/") for src in parser.img_srcs)
    assert str(SAMPLE_DATA) not in html  # no absolute path in a report people share


def test_rerun_reads_the_cache_and_gives_identical_assignments(sample_run, tmp_path: Path) -> None:  # noqa: ANN001
    out, cache, _ = sample_run
    again = tmp_path / "again"
    cmd = [
        *_cli(),
        str(SAMPLE_DATA),
        "-o",
        str(again),
        "--backbone",
        "efficientnet-lite0",
        "--cache-dir",
        str(cache),
        "-q",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((again / "summary.json").read_text())["cache"] == {"computed": 0, "cached": 122}
    assert (again / "assignments.csv").read_bytes() == (out / "assignments.csv").read_bytes()


def test_python_api_returns_the_same_result_object(tmp_path: Path, unlabeled_dir: Path) -> None:
    import reportgen

    data = shutil.copytree(unlabeled_dir, tmp_path / "flat")
    result = reportgen.build_report(
        data,
        out_dir=tmp_path / "out",
        backbone="efficientnet-lite0",
        cache_dir=tmp_path / "cache",
        progress=False,
        k_max=5,
    )
    assert isinstance(result, reportgen.Result)
    assert not result.images.labeled and result.analysis.metrics is None
    assert result.outputs.report.is_file() and result.outputs.summary.is_file()
    assert len(result.clustering.labels) == 12


def test_a_fully_cached_rerun_imports_neither_torch_nor_matplotlib(sample_run, tmp_path: Path) -> None:  # noqa: ANN001
    out, cache, _ = sample_run
    code = (
        "import sys, reportgen\n"
        f"reportgen.build_report({str(SAMPLE_DATA)!r}, out_dir={str(tmp_path / 'o')!r}, "
        f"backbone='efficientnet-lite0', cache_dir={str(cache)!r}, progress=False)\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    first, again = _Collect(), _Collect()
    first.feed((out / "report.html").read_text(encoding="utf-8"))
    again.feed((tmp_path / "o" / "report.html").read_text(encoding="utf-8"))
    assert again.img_srcs == first.img_srcs  # the same figures and thumbnails, read back from the cache
