"""How long do the class-activation maps take, alone and as part of a report?

    python bench/explain.py DATA [DATA ...] [--n 1000] [--images 200] [--method gradcam]

Builds a folder of ``--n`` images (symbolic links, ``<folder>-<class>/<file>``, as bench/compare.py does) and,
in the same invocation, with the bundled backbone:

1. a cold report without maps (``--no-explain``, an empty cache folder) and a cold report with them (another
   empty cache folder): the share the maps add to a report made from scratch;
2. a warm report without maps and one with maps not yet cached (the embeddings cached, ``--force``): the share
   they add when only the embeddings are cached, and a warm report with the maps cached too;
3. the maps alone (the stage, in-process, on the embeddings of step 1) for a seeded sample of ``--images`` images,
   two maps each (top prediction and own cluster), the network load included.

Prints every time and ratio, and whether the issue's targets hold: 200 images' maps under 60 s, and a 1,000-image
report no more than 25% slower.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from compare import build

from reportgen.pipeline import build_report
from reportgen.sampling import seeded_sample

BACKBONE = "efficientnet-lite0"


def report(data: Path, out: Path, cache: Path, *extra: str) -> float:
    """Wall time of the real CLI on ``data``."""
    cmd = [sys.executable, "-m", "reportgen", str(data), "-o", str(out), "--backbone", BACKBONE]
    start = time.perf_counter()
    subprocess.run([*cmd, "--cache-dir", str(cache), "--offline", "-q", *extra], check=True)
    return time.perf_counter() - start


def maps_alone(data: Path, cache: Path, images: int, method: str) -> tuple[float, int, int]:
    """(seconds, images, maps) for the explain stage alone on ``images`` sampled images, maps not cached."""
    from reportgen.explain import explain

    result = build_report(data, out_dir=cache.parent / "alone", cache_dir=cache, backbone=BACKBONE, explain=False,
                          progress=False, offline=True)  # fmt: skip
    config = replace(result.config, explain=True, explain_method=method, cache_dir=cache.parent / "maps-only")
    rows = seeded_sample(len(result.images), images, 0)
    start = time.perf_counter()
    done = explain(result.embeddings, result.reduced, result.clustering, result.analysis, config, only=rows)
    return time.perf_counter() - start, done.n_images, done.n_maps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--method", default="gradcam", choices=("gradcam", "guided-gradcam"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        n = build(args.datasets, args.n, work / "data")
        data, method = work / "data", ["--explain-method", args.method]
        cold_off = report(data, work / "off", work / "cache-off", "--no-explain")
        cold_on = report(data, work / "on", work / "cache-on", *method)
        shutil.rmtree(work / "cache-on")
        shutil.copytree(work / "cache-off", work / "cache-on")  # the embeddings cached, no maps
        warm_off = report(data, work / "off", work / "cache-off", "--no-explain", "--force")
        warm_on = report(data, work / "on", work / "cache-on", "--force", *method)
        warm_cached = report(data, work / "on", work / "cache-on", "--force", *method)
        seconds, n_images, n_maps = maps_alone(data, work / "cache-off", args.images, args.method)
    print(f"{n} images from {', '.join(d.name for d in args.datasets)}; {args.method}")
    print(f"cold report: {cold_off:.1f} s without maps, {cold_on:.1f} s with them: +{cold_on / cold_off - 1:.0%}")
    computed, cached = warm_on / warm_off - 1, warm_cached / warm_off - 1
    print(f"warm report (embeddings cached): {warm_off:.1f} s without maps, {warm_on:.1f} s with them computed "
          f"(+{computed:.0%}), {warm_cached:.1f} s with them cached (+{cached:.0%})")  # fmt: skip
    print(f"maps alone: {n_maps} maps of {n_images} images in {seconds:.1f} s ({n_maps / seconds:.1f} maps/s)")
    print(f"targets: {args.images} images' maps under 60 s: {'yes' if seconds < 60 else 'NO'}; "
          f"cold report at most +25%: {'yes' if cold_on <= 1.25 * cold_off else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
