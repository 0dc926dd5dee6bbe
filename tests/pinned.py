"""Pinned outputs: three folders whose embeddings are stored, so the stages after embedding can be compared
byte for byte across code changes and across machines (the forward pass itself rounds differently on CPUs with
and without bfloat16 or AVX-512, so it is not part of the pin).

``python tests/pinned.py`` embeds the folders with the bundled backbone in fp32, stores the vectors under
``tests/fixtures/pinned/<folder>.npz``, seeds a fresh cache from them, runs the real CLI and stores the outputs
that the test compares against. Run it again only when a change is meant to alter what the report concludes,
and say so in the commit.
"""

from __future__ import annotations

import json
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "pinned"
SAMPLE_DATA = HERE.parent / "sample_data"
FOLDERS = ("sample_data", "generated", "flat_photos")
BACKBONE = "efficientnet-lite0"
# Keys of summary.json that describe this machine or this moment, not the result.
VOLATILE = {"generated", "timings", "versions", "device", "cache", "fingerprint", "output_sha256", "schema_version"}


def build_folder(name: str, root: Path) -> Path:
    """Write the folder ``name`` under ``root`` and return it (the same bytes every time on one machine)."""
    sys.path.insert(0, str(HERE))
    from conftest import write_labeled

    target = root / name
    if name == "sample_data":
        shutil.copytree(SAMPLE_DATA, target, ignore=shutil.ignore_patterns("*.csv"))
    elif name == "generated":
        write_labeled(target, per_class=8)
    elif name == "flat_photos":  # unlabeled: every third photo of sample_data, flat
        target.mkdir(parents=True)
        photos = sorted(p for p in SAMPLE_DATA.rglob("*.jpg"))
        for j, path in enumerate(photos[::3]):
            shutil.copyfile(path, target / f"{j:03d}_{path.name}")
    else:
        raise ValueError(name)
    return target


def seed_cache(folder: Path, name: str, cache_dir: Path) -> None:
    """Put the stored vectors of ``name`` into an embedding cache for the files of ``folder``."""
    from reportgen.extract import seed_cache_entries

    stored = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)
    seed_cache_entries(
        folder, cache_dir, BACKBONE, stored["paths"], stored["features"], stored["top5_index"], stored["top5_prob"]
    )


def cli_args(folder: Path, out: Path, cache_dir: Path) -> list[str]:
    return [str(folder), "-o", str(out), "--backbone", BACKBONE, "--cache-dir", str(cache_dir), "-q", "--force"]


class SectionIds(HTMLParser):
    """The ids of the report's top-level sections, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        d = dict(attrs)
        if tag == "section" and "id" in d:
            self.ids.append(d["id"])


def section_ids(html: str) -> list[str]:
    parser = SectionIds()
    parser.feed(html)
    return parser.ids


def stable_summary(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def _embed_and_store(folder: Path, name: str, work: Path) -> None:
    from reportgen.config import Config
    from reportgen.pipeline import build_report

    result = build_report(
        Config(folder, out_dir=work / "embed-out", backbone=BACKBONE, precision="fp32", use_cache=False, progress=False)
    )
    emb = result.embeddings
    np.savez_compressed(
        FIXTURES / f"{name}.npz",
        paths=np.array(emb.images.paths),
        features=emb.features.astype(np.float32),
        top5_index=emb.top5_index.astype(np.int32),
        top5_prob=emb.top5_prob.astype(np.float32),
    )


def main() -> None:
    import tempfile

    from reportgen.cli import main as cli

    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in FOLDERS:
            folder = build_folder(name, work / "data")
            if not (FIXTURES / f"{name}.npz").exists():
                _embed_and_store(folder, name, work)
            seed_cache(folder, name, work / f"cache-{name}")
            out = work / f"out-{name}"
            assert cli(cli_args(folder, out, work / f"cache-{name}")) == 0
            shutil.copyfile(out / "assignments.csv", FIXTURES / f"{name}.assignments.csv")
            summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
            html = (out / "report.html").read_text(encoding="utf-8")
            expected = {"summary": stable_summary(summary), "sections": section_ids(html)}
            (FIXTURES / f"{name}.expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
            print(f"{name}: K={summary['chosen_k']}, sections {expected['sections']}")


if __name__ == "__main__":
    main()
