"""Cold run vs cached rerun of the real CLI on one folder, measured in the same run.

    python bench/rerun.py [DATA_DIR] [--repeat N] [--backbone NAME]

Each cold run starts from an empty cache folder; each warm run reuses the cache the cold runs filled.
Prints every wall time, the medians, and the speed-up ratio (cold / warm).
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


def _run(data: Path, out: Path, cache: Path, backbone: str) -> float:
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
        for _ in range(args.repeat):
            shutil.rmtree(work / "cache", ignore_errors=True)
            cold.append(_run(args.data_dir, work / "out", work / "cache", args.backbone))
        warm = [_run(args.data_dir, work / "out", work / "cache", args.backbone) for _ in range(args.repeat)]
    print("cold runs (s):", " ".join(f"{t:.2f}" for t in cold))
    print("warm runs (s):", " ".join(f"{t:.2f}" for t in warm))
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"median cold {c:.2f} s, median warm {w:.2f} s, speed-up {c / w:.1f}x, warm = {w / c:.0%} of cold")


if __name__ == "__main__":
    main()
