"""A class that is really two: the split rule must mark it real and rank it first, and its K=2 split must find
the halves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA
from sklearn.metrics import adjusted_rand_score

import reportgen

pytestmark = pytest.mark.e2e


def test_merged_class_is_ranked_first_and_split_back_into_its_halves(tmp_path: Path) -> None:
    data = tmp_path / "merged"
    shutil.copytree(SAMPLE_DATA / "monuments", data / "monuments")
    shutil.copytree(SAMPLE_DATA / "renewable", data / "renewable")
    (data / "fishes+tools").mkdir()
    origin = {}
    for cls in ("fishes", "tools"):
        for f in sorted((SAMPLE_DATA / cls).iterdir()):
            shutil.copy(f, data / "fishes+tools" / f.name)
            origin[f"fishes+tools/{f.name}"] = cls

    result = reportgen.build_report(
        data,
        out_dir=tmp_path / "out",
        backbone="efficientnet-lite0",
        cache_dir=tmp_path / "cache",
        progress=False,
        offline=True,
    )

    within = result.analysis.within_class
    assert within[0].label == "fishes+tools"
    assert within[0].meaningful and within[0].breadth > max(w.breadth for w in within[1:])
    merged = within[0]
    truth = [origin[result.images.paths[i]] for i in merged.indices]
    assert adjusted_rand_score(truth, merged.sub_labels) >= 0.8
