"""What does the pixel baseline check add to a report? Timed on 1,000 images whose embeddings are cached.

    python bench/baseline_speed.py DATA [DATA ...] --cache-dir CACHE [--n 1000]

Builds a folder of ``--n`` images from the given labeled folders (as ``bench/compare.py`` does), builds its report
once (the embeddings from the cache, every other stage run: the cheapest full report, so the largest share), then
times :func:`reportgen.analyze.baseline.baseline_check` alone on the same run (best of 3) and prints its share.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from compare import build

import reportgen
from reportgen.analyze.baseline import baseline_check


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        n = build(args.datasets, args.n, data)
        start = time.perf_counter()
        r = reportgen.build_report(data, out_dir=Path(tmp) / "out", cache_dir=args.cache_dir, offline=True,
                                   progress=False)  # fmt: skip
        report = time.perf_counter() - start
        y = np.array(r.images.labels, dtype=object)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            baseline_check(r.embeddings.thumbnails, r.clustering.labels, r.clustering.k, y, r.analysis.metrics.nmi,
                           r.config)  # fmt: skip
            times.append(time.perf_counter() - start)
    print(f"images={n} report with cached embeddings: {report:.1f}s (embed stage {r.timings['embed']:.1f}s)")
    print(f"baseline check: {min(times):.2f}s = {min(times) / report:.1%} of that report; under 5%: "
          f"{'yes' if min(times) < 0.05 * report else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
