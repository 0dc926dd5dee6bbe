"""Cold run vs cached rerun of the real CLI on one folder, measured in the same run.

    python bench/rerun.py [DATA_DIR] [--repeat N] [--backbone NAME]

Three kinds of run, measured in the same invocation:

* cold: an empty cache folder and a new out folder (model load, embedding, every stage);
* warm, rebuilt: the cache the cold runs filled, with ``--force`` (the model is not loaded; every stage after
  embedding runs again, reading the embeddings, the K sweep and the map from the cache);
* warm, kept: the same command again over the unchanged folder (the outputs are current and kept).

Prints every wall time, the medians, and each warm kind's speed-up and share of the cold median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(data: Path, out: Path, cache: Path, backbone: str, *extra: str) -> float:
    cmd = [
        sys.executable,
        "-m",
        "reportgen",
        str(data),
        "-o",
        str(out),
        "--backbone",
        backbone,
        "--cache-dir",
        str(cache),
        "-q",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", nargs="?", type=Path, default=REPO / "sample_data")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--backbone", default="efficientnet-lite0")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cold = []
        for i in range(args.repeat):
            shutil.rmtree(work / "cache", ignore_errors=True)
            cold.append(_run(args.data_dir, work / f"cold{i}", work / "cache", args.backbone))
        again = (args.data_dir, work / "out", work / "cache", args.backbone)
        rebuilt = [_run(*again, "--force") for _ in range(args.repeat)]
        kept = [_run(*again) for _ in range(args.repeat)]
    c = statistics.median(cold)
    print("cold runs (s):        ", " ".join(f"{t:.2f}" for t in cold), f"| median {c:.2f} s")
    for name, times in (("warm, rebuilt", rebuilt), ("warm, kept", kept)):
        w = statistics.median(times)
        print(
            f"{name + ' runs (s):':22s}",
            " ".join(f"{t:.2f}" for t in times),
            f"| median {w:.2f} s, speed-up {c / w:.1f}x, {w / c:.1%} of cold",
        )


if __name__ == "__main__":
    main()
