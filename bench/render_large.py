"""Analyze, map and render a report for many images, from synthetic clustered embeddings.

    python bench/render_large.py --n 20000 [--classes 20] [--k 12] [--max-report-mb 15]

Thumbnails are real 256 px JPEGs of noisy gradients (noise keeps them as large as photos' thumbnails).
Prints each stage's seconds, the report's size against the budget, and what the budget trimmed.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import make_blobs

from reportgen.analyze import analyze
from reportgen.choose_k import KSelection
from reportgen.cluster import cluster
from reportgen.config import Config
from reportgen.discover import ImageSet
from reportgen.embed import Embeddings
from reportgen.maps import project_2d
from reportgen.reduce import reduce
from reportgen.render import write_outputs


def _thumbnails(n: int, seed: int) -> tuple[bytes, ...]:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 256, dtype=np.float32)
    out = []
    for _ in range(n):
        tint = rng.uniform(0.3, 1.0, 3)
        img = base[None, :, None] * tint + rng.normal(0, 24, (192, 256, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return tuple(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--max-report-mb", type=float, default=15.0)
    args = p.parse_args()

    x, y = make_blobs(n_samples=args.n, centers=args.classes, n_features=args.dim, cluster_std=4.0, random_state=0)
    labels = tuple(f"class_{v:02d}" for v in y)
    t = time.perf_counter()
    thumbs = _thumbnails(args.n, 0)
    print(f"made {args.n} thumbnails in {time.perf_counter() - t:.1f} s (not part of the pipeline)")
    rng = np.random.default_rng(0)
    images = ImageSet(
        Path("/synthetic"),
        tuple(f"{lbl}/{i:06d}.jpg" for i, lbl in enumerate(labels)),
        labels,
        tuple(sorted(set(labels))),
        True,
    )
    emb = Embeddings(
        images=images,
        features=x.astype(np.float32),
        top5_index=np.stack([rng.choice(1000, 5, replace=False) for _ in range(args.n)]).astype(np.int32),
        top5_prob=np.sort(rng.dirichlet(np.ones(8), args.n)[:, :5], axis=1)[:, ::-1].astype(np.float32),
        thumbnails=thumbs,
        categories=tuple(f"imagenet class {i}" for i in range(1000)),
        backbone="synthetic",
        weights="none",
        preprocessing="none",
        device="none",
        n_computed=0,
        n_cached=args.n,
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            "/synthetic",
            out_dir=Path(tmp) / "out",
            cache_dir=Path(tmp) / "cache",
            k=args.k,
            max_report_mb=args.max_report_mb,
            progress=False,
        )
        timings: dict[str, float] = {}
        t = time.perf_counter()
        reduced = reduce(emb.features, config)
        timings["reduce"] = time.perf_counter() - t
        t = time.perf_counter()
        clustering = cluster(reduced, args.k, config)
        timings["cluster"] = time.perf_counter() - t
        t = time.perf_counter()
        analysis = analyze(emb, reduced, clustering, config)
        timings["analyze"] = time.perf_counter() - t
        t = time.perf_counter()
        layout = project_2d(reduced, config)
        timings["map"] = time.perf_counter() - t
        t = time.perf_counter()
        forced = KSelection((), (), (), None, None, args.k, f"K={args.k} was given with --k", True)
        outputs = write_outputs(config, emb, reduced, forced, clustering, analysis, layout, timings)
        timings["render"] = time.perf_counter() - t
        size = outputs.report.stat().st_size
        report = json.loads(outputs.summary.read_text())["report"]
    for stage, sec in timings.items():
        print(f"{stage:8s} {sec:7.2f} s")
    print(
        f"report {size / 1e6:.2f} MB (budget {args.max_report_mb} MB): tiles {report['tile_px']} px, "
        f"hover {report['hover_px']} px for {report['hover_thumbnails']} of {report['map_points']} points"
    )
    for line in report["trimmed"]:
        print("trimmed:", line)
    print(f"N={args.n} render_seconds={timings['render']:.2f} report_mb={size / 1e6:.2f}")


if __name__ == "__main__":
    main()
