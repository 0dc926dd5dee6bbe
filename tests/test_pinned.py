"""The stages after embedding give the same outputs as when the fixtures were written (tests/pinned.py).

The stored vectors are put in a fresh embedding cache, the real CLI runs, and assignments.csv must be
byte-identical to the pinned one in the pinned columns (``content_hash`` was added after them); summary.json must
hold every pinned key with the same value (floats to 5e-5: some were written with 4 decimals and now have 6; a
value's rounding may change, its meaning may not); the report must show the same sections.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import validate_summary
from pinned import FIXTURES, FOLDERS, build_folder, cli_args, section_ids, seed_cache, stable_summary

from reportgen.cli import main


def _same(pinned: object, now: object, where: str) -> None:
    if isinstance(pinned, dict):
        assert isinstance(now, dict), where
        missing = sorted(set(pinned) - set(now))
        assert not missing, f"{where}: keys gone: {missing}"
        for key, value in pinned.items():
            _same(value, now[key], f"{where}.{key}")
    elif isinstance(pinned, list):
        assert isinstance(now, list) and len(now) == len(pinned), f"{where}: {now!r} != {pinned!r}"
        for j, (a, b) in enumerate(zip(pinned, now, strict=True)):
            _same(a, b, f"{where}[{j}]")
    elif isinstance(pinned, float) and not isinstance(now, bool):
        assert isinstance(now, (int, float)) and math.isclose(pinned, now, abs_tol=5e-5), f"{where}: {now} != {pinned}"
    else:
        assert now == pinned, f"{where}: {now!r} != {pinned!r}"


@pytest.mark.parametrize("name", FOLDERS)
def test_outputs_match_the_pinned_run(name: str, tmp_path: Path) -> None:
    folder = build_folder(name, tmp_path / "data")
    seed_cache(folder, name, tmp_path / "cache")
    out = tmp_path / "out"
    assert main(cli_args(folder, out, tmp_path / "cache")) == 0

    written = (out / "assignments.csv").read_text(encoding="utf-8").splitlines()
    assert written[0].endswith(",content_hash")  # a column added last; the pinned ones stay byte for byte
    older = "".join(line.rsplit(",", 1)[0] + "\n" for line in written)
    assert older.encode("utf-8") == (FIXTURES / f"{name}.assignments.csv").read_bytes()
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["cache"]["computed"] == 0  # every vector came from the fixture
    validate_summary(summary)
    _same(expected["summary"], stable_summary(summary), "summary")
    assert section_ids((out / "report.html").read_text(encoding="utf-8")) == expected["sections"]
