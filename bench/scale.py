"""Every stage after embedding on synthetic clustered embeddings, at scale: time and peak memory.

    python bench/scale.py --n 1000000 --dim 2048 [--classes 20] [--max-report-mb 15]

The embeddings (Gaussian clusters, one per class, labels known) are written in chunks to a float16
memory-mapped file, as a large run would hold them. Thumbnails come from a small set of real JPEGs reused.
Runs reduce, choose K, cluster, analyze, map and render (report.html, assignments.csv, summary.json) and
prints each stage's seconds; the last line is ``N=<n> D=<d> seconds=<s> peak_rss_mb=<m>`` (seconds for the
stages after embedding, not for making the data).
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from reportgen.analyze import analyze
from reportgen.choose_k import choose_k
from reportgen.cluster.stage import cluster
from reportgen.config import Config
from reportgen.discover import ImageSet
from reportgen.extract import Embeddings
from reportgen.maps import project_2d
from reportgen.pipeline import assemble
from reportgen.reduce import reduce
from reportgen.report import write_outputs

CHUNK = 50_000


class _Thumbs(Sequence):
    """N thumbnails from a handful of real JPEGs (a real run reads them from its cache)."""

    def __init__(self, n: int) -> None:
        self.n = n
        rng = np.random.default_rng(0)
        self.jpegs = []
        for _ in range(16):
            img = np.linspace(0, 255, 256)[None, :, None] * rng.uniform(0.3, 1, 3) + rng.normal(0, 24, (192, 256, 3))
            buf = io.BytesIO()
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=85)
            self.jpegs.append(buf.getvalue())

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        return self.jpegs[int(i) % len(self.jpegs)]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--max-report-mb", type=float, default=15.0)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((args.classes, args.dim)).astype(np.float32)
        labels = rng.integers(0, args.classes, args.n)
        feats = np.lib.format.open_memmap(
            Path(tmp) / "features.npy", mode="w+", dtype=np.float16, shape=(args.n, args.dim)
        )
        for start in range(0, args.n, CHUNK):
            lab = labels[start : start + CHUNK]
            noise = rng.standard_normal((len(lab), args.dim), dtype=np.float32) * 0.9
            feats[start : start + CHUNK] = (centres[lab] + noise).astype(np.float16)
        feats.flush()
        feats = np.load(Path(tmp) / "features.npy", mmap_mode="r")
        names = tuple(f"class_{v:02d}" for v in labels)
        print(
            f"made {args.n:,} x {args.dim} float16 embeddings in {time.perf_counter() - t:.1f} s "
            f"(not timed below); peak RSS so far {_peak_rss_mb():.0f} MB"
        )

        images = ImageSet(
            Path("/synthetic"),
            tuple(f"{c}/{i:07d}.jpg" for i, c in enumerate(names)),
            names,
            tuple(sorted(set(names))),
            True,
        )
        top5 = np.tile(np.arange(5, dtype=np.int32), (args.n, 1)) + (labels[:, None] * 5 % 995).astype(np.int32)
        emb = Embeddings(
            images=images,
            features=feats,
            top5_index=top5,
            top5_prob=np.tile(np.array([0.5, 0.2, 0.1, 0.05, 0.05], dtype=np.float32), (args.n, 1)),
            thumbnails=_Thumbs(args.n),  # type: ignore[arg-type]
            categories=tuple(f"imagenet class {i}" for i in range(1000)),
            backbone="synthetic",
            weights="none",
            preprocessing="none",
            device="none",
            n_computed=0,
            n_cached=args.n,
        )
        config = Config(
            "/synthetic",
            out_dir=Path(tmp) / "out",
            cache_dir=Path(tmp) / "cache",
            progress=False,
            max_report_mb=args.max_report_mb,
        )
        timings: dict[str, float] = {}
        start_all = time.perf_counter()

        def timed(name: str, fn, *a):  # noqa: ANN001, ANN002, ANN202
            t0 = time.perf_counter()
            out = fn(*a)
            timings[name] = time.perf_counter() - t0
            print(f"{name:9s} {timings[name]:8.1f} s   peak RSS {_peak_rss_mb():8.0f} MB", flush=True)
            return out

        reduced = timed("reduce", reduce, emb.features, config)
        sel = timed("choose_k", choose_k, reduced, config)
        clus = timed("cluster", cluster, reduced, sel.chosen_k, config)
        analysis = timed("analyze", analyze, emb, reduced, clus, config)
        layout = timed("map", project_2d, reduced, config)
        run = assemble(config, emb, reduced, sel, clus, analysis, layout, timings)
        outputs = timed("render", write_outputs, run, "synthetic")
        total = time.perf_counter() - start_all
        size = outputs.report.stat().st_size / 1e6
        print(
            f"chosen K={sel.chosen_k} ({sel.confidence}) for {args.classes} classes; "
            f"NMI {analysis.metrics.nmi:.3f}; report {size:.1f} MB"
        )
    print(f"N={args.n} D={args.dim} seconds={total:.1f} peak_rss_mb={_peak_rss_mb():.0f}")


if __name__ == "__main__":
    main()
