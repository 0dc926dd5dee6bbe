"""Real reports opened in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Skipped when Chromium or Playwright is missing, unless REPORTGEN_REQUIRE_BROWSER=1 (CI sets it): then missing
tools fail the run instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import LABELED_SECTIONS, SAMPLE_DATA, UNLABELED_SECTIONS, make_image

import reportgen

CHROMIUM = os.environ.get("REPORTGEN_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A folder name cannot hold "/", so the class is "<svg onload=...>" plus an unclosed <script>: either would
# run or swallow the page if it reached the HTML unescaped.
HOSTILE_CLASS = "<svg onload=alert(2)><script>alert(2)"
HOSTILE_FILE = "<img src=x onerror=alert(1)>.jpg"


def _browser_or_skip():  # noqa: ANN202
    required = os.environ.get("REPORTGEN_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail(f"REPORTGEN_REQUIRE_BROWSER=1 but {CHROMIUM} does not exist")
        pytest.skip(f"{CHROMIUM} is not installed")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


STACK = "efficientnet-lite0@_blocks.10:max+efficientnet-lite0*0.5"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, labeled_dir: Path, unlabeled_dir: Path) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("browser")
    cache = work / "cache"
    hostile = shutil.copytree(labeled_dir, work / "hostile")
    (hostile / HOSTILE_CLASS).mkdir()
    for i in range(4):
        make_image("circles", seed=50 + i).save(hostile / HOSTILE_CLASS / f"{i}{HOSTILE_FILE}")
    make_image("stripes", seed=60).save(hostile / "stripes" / HOSTILE_FILE)
    (hostile / "stripes" / "broken.jpg").write_bytes(b"not a jpeg")
    runs = {
        "hostile": (hostile, {"title": "<b>title</b> " + HOSTILE_CLASS}),
        "unlabeled": (unlabeled_dir, {"backbone": STACK}),
        "sample": (SAMPLE_DATA, {}),
    }
    out = {}
    for name, (data, extra) in runs.items():
        options = {"backbone": "efficientnet-lite0", "cache_dir": cache, "progress": False} | extra
        result = reportgen.build_report(data, out_dir=work / name, **options)
        out[name] = result.outputs.report
    return out


def _open(browser, report: Path):  # noqa: ANN001, ANN202
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    events: dict[str, list] = {"console": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: events["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: events["console"].append(str(e)))
    page.on("request", lambda r: events["requests"].append(r.url) if not r.url.startswith(("file:", "data:")) else None)

    def on_dialog(d) -> None:  # noqa: ANN001
        events["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(report.as_uri(), wait_until="load")
    return page, events


def test_a_stack_shows_each_feature_block_in_the_run_details(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    page, events = _open(browser, reports["unlabeled"])
    rows = page.locator("#run-details table.blocks tbody tr")
    assert rows.count() == 2 and rows.first.is_visible()
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
    assert [c[:3] for c in cells] == [["efficientnet-lite0@_blocks.10:max", "1.0", "112"],
                                      ["efficientnet-lite0", "0.5", "1280"]]  # fmt: skip
    assert all(c[3].startswith("bundled:") and c[4].startswith("resize256-crop224") for c in cells)
    assert events == {"console": [], "requests": [], "dialogs": []}
    page.close()


@pytest.mark.parametrize("name", ["hostile", "unlabeled", "sample"])
def test_report_opens_cleanly(browser, reports: dict[str, Path], name: str) -> None:  # noqa: ANN001
    page, events = _open(browser, reports[name])
    ids = page.evaluate("Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
    assert set(UNLABELED_SECTIONS if name == "unlabeled" else LABELED_SECTIONS) <= set(ids)
    n_images = page.evaluate("document.images.length")
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert n_images > 10 and broken == 0
    assert page.locator("#map-svg path.pt").count() > 0
    page.wait_for_timeout(200)
    assert events == {"console": [], "requests": [], "dialogs": []}
    page.close()


def test_hostile_names_show_as_text(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    page, events = _open(browser, reports["hostile"])
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert page.evaluate("document.querySelectorAll('img[src=x], main svg[onload]').length") == 0
    assert HOSTILE_CLASS in page.inner_text("#count-matrix")
    # Long names are cut in the middle in captions, the whole name in the caption's title: both as text.
    captions = page.eval_on_selector_all("figcaption", "els => els.map(e => [e.title, e.textContent])")
    assert any(HOSTILE_FILE in title and "…" in text for title, text in captions)
    assert page.title().startswith("<b>title</b>")
    assert events["dialogs"] == []
    page.close()


def test_thumbnail_viewer_opens_on_click_and_closes(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    page, events = _open(browser, reports["sample"])
    tile = page.locator("#clusters .tile").first
    path = tile.get_attribute("data-i")
    caption = tile.locator("figcaption").get_attribute("title")  # the whole name (the caption may be cut)
    assert page.locator("#viewer").is_hidden()
    tile.click()
    viewer = page.locator("#viewer")
    assert viewer.is_visible()
    assert caption in viewer.inner_text() and "cluster" in viewer.inner_text()
    assert page.evaluate("document.querySelector('#viewer img').naturalWidth") > 0
    page.keyboard.press("Escape")
    assert viewer.is_hidden()
    assert path is not None and events["console"] == []
    page.close()


def test_map_hover_shows_the_image_and_views_switch(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    page, events = _open(browser, reports["sample"])
    points = page.locator("#map-svg path.pt")
    assert points.count() == 122
    points.nth(5).hover(force=True)
    tooltip = page.locator("#tooltip")
    assert tooltip.is_visible()
    assert "cluster" in tooltip.inner_text()
    assert page.evaluate("document.querySelector('#tooltip img').naturalWidth") > 0
    before = points.nth(5).get_attribute("transform")
    page.click(".map-controls button[data-view=tsne]")
    assert page.locator("#map-svg path.pt").count() == 122
    assert page.locator("#map-svg path.pt").nth(5).get_attribute("transform") != before
    assert events["console"] == []
    page.close()


def test_an_unsure_k_shows_the_two_candidates_side_by_side(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    import json

    summary = json.loads((reports["sample"].parent / "summary.json").read_text())
    second, chosen = summary["runner_up"], summary["chosen_k"]
    assert summary["k_selection"]["confidence"] in ("medium", "low")  # sample_data's K choice is not sure
    page, events = _open(browser, reports["sample"])
    details = page.locator("#choose-k details.runner-up")
    assert details.count() == 1
    assert (details.get_attribute("open") is not None) == (summary["k_selection"]["confidence"] == "low")
    details.locator("summary").focus()
    page.keyboard.press("Enter")  # a <summary> opens from the keyboard
    assert details.get_attribute("open") is not None
    columns = details.locator(".candidate")
    assert columns.count() == 2
    assert columns.nth(0).locator("h3").inner_text().startswith(f"K = {chosen}")
    assert columns.nth(1).locator("h3").inner_text().startswith(f"K = {second['k']}")
    assert columns.nth(0).locator(".candidate-cluster").count() == chosen
    assert columns.nth(1).locator(".candidate-cluster").count() == second["k"]
    assert f"{second['moved']} images" in details.locator("summary").inner_text()
    text = details.inner_text()
    assert "Clusters" in text and "Oddballs" in text and f"--k {second['k']}" in text
    column = [row[0] for row in second["crosstab"]]  # the runner-up's cluster 0 and where its images come from
    source = max(range(len(column)), key=lambda i: (column[i], -i))
    hint = details.locator(".hint").inner_text()
    assert f'"from {source} ({column[source]})": {column[source]} of the cluster' in hint
    columns.nth(1).locator(".tile").first.click()
    assert page.locator("#viewer").is_visible()
    assert events["console"] == []
    page.close()


def test_findings_legends_and_layout_read_as_designed(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    import json

    summary = json.loads((reports["sample"].parent / "summary.json").read_text())
    page, events = _open(browser, reports["sample"])
    items = page.locator("#summary ul.findings > li")
    assert items.all_inner_texts() == summary["findings"]  # one finding per item, in order
    clusters = page.locator('#map-legend [data-legend="clusters"]')
    classes = page.locator('#map-legend [data-legend="classes"]')
    assert clusters.locator("strong").inner_text() == "Clusters (colour)"
    assert clusters.locator("span").count() == summary["chosen_k"]
    assert classes.locator("span").all_inner_texts() == summary["classes"]
    # a class's two sub-clusters sit side by side at this width, each montage's tiles in one block
    sub_tops = page.evaluate(
        "Array.from(document.querySelector('#within-class article.within').querySelectorAll('.sub'))"
        ".map(s => Math.round(s.getBoundingClientRect().top))"
    )
    assert len(sub_tops) == 2 and sub_tops[0] == sub_tops[1]
    captions = page.locator("#within-class .sub .tile figcaption").all_inner_texts()
    assert captions and all("/" not in c and len(c) <= 13 for c in captions)  # the class is in the heading
    page.emulate_media(media="print")
    assert page.locator("#toc").is_hidden() and page.locator("#count-matrix img.figure").is_hidden()
    assert page.locator("#count-matrix table.counts").is_visible()
    assert events["console"] == []
    page.close()


def test_a_tile_switches_between_the_photo_and_its_heat_maps(browser, reports: dict[str, Path]) -> None:  # noqa: ANN001
    import json

    summary = json.loads((reports["sample"].parent / "summary.json").read_text())
    assert summary["report"]["overlays"] and summary["explanations"]["n_maps"] > 0
    page, events = _open(browser, reports["sample"])
    legend = page.locator("#clusters .cam-legend")
    assert "what drove its top ImageNet prediction" in legend.inner_text()
    assert summary["explanations"]["layer"] in legend.inner_text()
    tile = page.locator("#clusters .tile").first
    img, button, badge = tile.locator("img"), tile.locator("button.cam"), tile.locator(".cam-label")
    photo = img.get_attribute("src")
    assert button.get_attribute("aria-pressed") == "false" and badge.is_hidden()
    button.focus()
    page.keyboard.press("Enter")  # keyboard: the button switches the picture, the viewer stays closed
    assert page.locator("#viewer").is_hidden()
    first = img.get_attribute("src")
    assert first != photo and first.startswith("data:image/jpeg;base64,")
    assert button.get_attribute("aria-pressed") == "true" and badge.inner_text() == "top class"
    assert "its top prediction" in button.get_attribute("title")
    assert page.evaluate("document.querySelector('#clusters .tile img').naturalWidth") > 0
    button.click()
    assert img.get_attribute("src") not in (photo, first) and badge.inner_text() == "cluster"
    button.click()  # back to the photo
    assert img.get_attribute("src") == photo and badge.is_hidden()
    page.locator('#clusters [data-cam-all="cluster"]').click()  # every tile of the section at once
    cams = page.locator("#clusters .tile button.cam")
    assert cams.count() > 1
    assert all(b.get_attribute("aria-pressed") == "true" for b in cams.all())
    assert page.locator("#oddballs .tile button.cam").first.get_attribute("aria-pressed") == "false"  # own section
    page.locator('#clusters [data-cam-all="photo"]').click()
    assert img.get_attribute("src") == photo
    odd = page.locator("#oddballs .tile").first  # a card's picture: its badge sits on the picture
    odd.locator("button.cam").click()
    box, pic = odd.locator(".cam-label").bounding_box(), odd.locator("img").bounding_box()
    assert box is not None and pic is not None
    assert pic["y"] <= box["y"] and box["y"] + box["height"] <= pic["y"] + pic["height"]
    tile.locator("img").click()  # the picture itself still opens the viewer
    assert page.locator("#viewer").is_visible()
    page.keyboard.press("Escape")
    page.emulate_media(media="print")
    assert button.is_hidden()
    assert events["console"] == [] and events["requests"] == []
    page.close()


def test_the_diff_page_opens_cleanly(browser, reports: dict[str, Path], tmp_path: Path) -> None:  # noqa: ANN001
    from reportgen.cli import main

    out = reports["sample"].parent
    assert main(["diff", str(out), str(out), "-o", str(tmp_path / "diff")]) == 0
    page, events = _open(browser, tmp_path / "diff" / "diff.html")
    text = page.locator("main").inner_text()
    assert "nothing changed" in text and "0 added · 0 removed · 0 changed" in text
    assert events == {"console": [], "requests": [], "dialogs": []}
    page.close()


def test_the_compare_page_opens_cleanly(browser, labeled_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from reportgen.cli import main

    out = tmp_path / "cmp"
    args = ["compare", str(labeled_dir), "--features", "efficientnet-lite0", "efficientnet-lite0@_blocks.10:max",
            "--methods", "kmeans", "hdbscan", "--seeds", "1", "-o", str(out), "--cache-dir", str(tmp_path / "c"),
            "-q", "--no-baselines"]  # fmt: skip
    assert main(args) == 0
    page, events = _open(browser, out / "compare.html")
    assert page.locator("table.heat").count() == 7 and page.locator("table.agree tbody tr").count() == 4
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert page.evaluate("document.images.length") > 4 and broken == 0
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('table.heat')).map(t => t.getBoundingClientRect().right)"
    )
    assert max(widths) <= 1300  # every score table fits the page: no column cut off
    assert events == {"console": [], "requests": [], "dialogs": []}
    page.close()


def test_kept_cluster_ids_read_the_same_in_the_legend_tooltip_and_sections(
    browser,
    labeled_dir: Path,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    data = shutil.copytree(labeled_dir, tmp_path / "data")
    options = {"out_dir": tmp_path / "out", "cache_dir": tmp_path / "cache", "k": 3, "explain": False,
               "backbone": "efficientnet-lite0", "progress": False}  # fmt: skip
    first = reportgen.build_report(data, **options)
    grown = next(
        p.split("/")[0] for p, c in zip(first.run.images.path, first.run.images.cluster, strict=True) if c == 2
    )
    for i in range(6):  # its cluster becomes the largest but keeps id 2
        make_image(grown, seed=500 + i).save(data / grown / f"more_{i}.png")
    second = reportgen.build_report(data, **options)
    ids = [c.cluster for c in second.run.analysis.clusters]
    assert ids[0] == 2 and sorted(ids) == [0, 1, 2]
    names = {c.cluster: c.name for c in second.run.analysis.clusters}
    page, events = _open(browser, second.outputs.report)
    legend = page.locator('#map-legend [data-legend="clusters"] span').all_inner_texts()
    assert legend == [f"{c}: {names[c]}" for c in ids]
    i = next(j for j, c in enumerate(second.run.images.cluster) if c == 2)
    page.locator(f'#map-svg path.pt[data-i="{i}"]').hover(force=True)
    assert f"cluster 2: {names[2]}" in page.locator("#tooltip").inner_text()
    first_article = page.locator("#clusters article.cluster").first
    assert first_article.get_attribute("id") == "cluster-2"
    assert first_article.locator("h3").inner_text().startswith(f"Cluster 2: {names[2]}")
    assert "Cluster ids carried over from the last run" in page.locator("#since-last-run").inner_text()
    headers = page.locator("#count-matrix table.counts thead a").all_inner_texts()
    assert sorted(int(h) for h in headers) == [0, 1, 2]
    assert events["console"] == []
    page.close()
