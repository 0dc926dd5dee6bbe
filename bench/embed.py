"""Embedding throughput: the pipeline's embed stage against a notebook-style loop, same images, same model.

    python bench/embed.py [DATA_DIR] [--backbone efficientnet-lite0] [--device cpu] [--repeat 2]
    python bench/embed.py --jpegs 20000 --backbone resnet50 --random-weights --device cuda --times 1

``--jpegs N`` embeds N generated 500 x 375 JPEG photos instead of a folder (the size of the issue's GPU goal);
``--random-weights`` gives a torchvision backbone randomly initialised weights (saved to a file and loaded
through ``--weights``' path), so that a machine without the network can measure its speed: weights do not
change the arithmetic. On ``--device cuda`` the pipeline is measured with the Pillow decoder in workers and
with batched GPU JPEG decoding (``--jpeg-decoder torchvision``).

Baseline (what a course notebook does): for each image, open it, convert to RGB, apply the torchvision
transform, run ``model(x[None])`` under ``torch.no_grad()``. Pipeline: ``reportgen.extract.runner.run``
(decoding in DataLoader workers, batches, ``inference_mode``, channels-last, batch-norm folded) with the cache
off, for several worker and batch settings, in fp32 and, where the hardware has it natively, bf16. The model
is loaded once, before any timing, and both paths use the same weights. Prints
img/s for each and the ratio to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.extract import Extractor, classifiers, resolve, runner

REPO = Path(__file__).resolve().parent.parent
BASELINE_MAX = 2000


def _baseline(model: classifiers.Classifier, root: Path, paths: tuple[str, ...], device: str) -> float:
    prep = model.preprocessing
    tf = transforms.Compose(
        [
            transforms.Resize(prep.resize),
            transforms.CenterCrop(prep.crop),
            transforms.ToTensor(),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )
    net = torch.nn.Sequential(model.network, model.head).to(device).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for rel in paths:
            x = tf(Image.open(root / rel).convert("RGB")).to(device)
            net(x[None])
    return len(paths) / (time.perf_counter() - start)


def _pipeline(
    model: Extractor, root: Path, paths: tuple[str, ...], config: Config, device: str, precision: str
) -> float:
    todo = {f"{i:08d}": rel for i, rel in enumerate(paths)}  # distinct keys: every file is embedded
    start = time.perf_counter()
    entries, failed = runner.run(model, root, todo, config, device, precision=precision)
    elapsed = time.perf_counter() - start
    assert not failed and len(entries) == len(paths)
    return len(paths) / elapsed


def _make_jpegs(folder: Path, n: int, size: tuple[int, int] = (500, 375)) -> Path:
    """``n`` photo-like JPEGs (gradients, blobs and sensor noise, quality 90, ~60 KB) in one class folder."""
    rng = np.random.default_rng(0)
    out = folder / "generated"
    out.mkdir(parents=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        base = rng.uniform(40, 200, 3) + (xx[..., None] / w) * rng.uniform(-60, 60, 3)
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(30, 150)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None] * rng.uniform(-80, 80, 3)
        pixels = np.clip(base + blob + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(out / f"{i:06d}.jpg", quality=90)
    return folder


def _random_weights(backbone: str, folder: Path) -> Path:
    import torchvision.models

    spec = classifiers.CLASSIFIERS[backbone]
    path = folder / f"{backbone}-random.pt"
    torch.save(torchvision.models.get_model(spec.torchvision_name, weights=None).state_dict(), path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", nargs="?", type=Path, default=REPO / "sample_data")
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--times", type=int, default=4, help="embed the folder's images this many times over")
    p.add_argument("--jpegs", type=int, default=0, metavar="N", help="embed N generated 500x375 JPEGs instead")
    p.add_argument("--random-weights", action="store_true", help="random weights for a torchvision backbone")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _measure(args, Path(tmp))


def _measure(args: argparse.Namespace, tmp: Path) -> None:
    data = _make_jpegs(tmp / "jpegs", args.jpegs) if args.jpegs else args.data_dir
    weights = _random_weights(args.backbone, tmp) if args.random_weights else None
    config = Config(data, backbone=args.backbone, progress=False, use_cache=False)
    images = discover(config)
    paths = images.paths * args.times
    model = resolve(args.backbone, weights, offline=True).load()
    print(
        f"{len(paths)} images ({len(images)} x {args.times}), {args.backbone} on {args.device}, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs"
    )

    # one image at a time is slow: its rate is measured on the first BASELINE_MAX images
    base = [_baseline(model, images.root, paths[:BASELINE_MAX], args.device) for _ in range(args.repeat)]
    b = statistics.median(base)
    print(f"baseline (one image at a time)      {b:7.1f} img/s")
    best = 0.0
    native_bf16 = args.device == "cuda" or runner.cpu_has_bf16()
    precisions = ("fp32", "bf16") if native_bf16 else ("fp32",)
    if args.device == "cpu":
        settings = [("pillow", w, b) for w, b in ((0, 8), (1, 8), (2, 4), (2, 8), (2, 16))]
    else:
        cpus = os.cpu_count() or 1
        settings = [("pillow", cpus, 256), ("torchvision", 4, 256), ("torchvision", 8, 512)]
    for precision in precisions:
        for decoder, workers, batch in settings:
            cfg = Config(data, progress=False, use_cache=False, workers=workers, batch_size=batch, jpeg_decoder=decoder)
            runs = [_pipeline(model, images.root, paths, cfg, args.device, precision) for _ in range(args.repeat)]
            rate = statistics.median(runs)
            best = max(best, rate)
            label = f"pipeline {precision} {decoder} workers={workers} batch={batch:3d}"
            print(f"{label:50s} {rate:8.1f} img/s   {rate / b:5.2f}x baseline")
    print(f"best pipeline / baseline = {best / b:.2f}x (auto precision here: {precisions[-1]})")


if __name__ == "__main__":
    main()
