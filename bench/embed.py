"""Embedding throughput: the pipeline's embed stage against a notebook-style loop, same images, same model.

    python bench/embed.py [DATA_DIR] [--backbone efficientnet-lite0] [--device cpu] [--repeat 2]

Baseline (what a course notebook does): for each image, open it, convert to RGB, apply the torchvision
transform, run ``model(x[None])`` under ``torch.no_grad()``. Pipeline: ``reportgen.inference.run_model``
(decoding in DataLoader workers, batches, ``inference_mode``, channels-last, batch-norm folded) with the cache
off, for several worker and batch settings, in fp32 and, where the hardware has it natively, bf16. The model
is loaded once, before any timing, and both paths use the same weights. Prints
img/s for each and the ratio to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms

from reportgen import backbones, inference
from reportgen.config import Config
from reportgen.discover import discover

REPO = Path(__file__).resolve().parent.parent


def _baseline(model: backbones.LoadedBackbone, root: Path, paths: tuple[str, ...], device: str) -> float:
    prep = model.spec.preprocessing
    tf = transforms.Compose(
        [
            transforms.Resize(prep.resize),
            transforms.CenterCrop(prep.crop),
            transforms.ToTensor(),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )
    net = torch.nn.Sequential(model.trunk, model.head).to(device).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for rel in paths:
            x = tf(Image.open(root / rel).convert("RGB")).to(device)
            net(x[None])
    return len(paths) / (time.perf_counter() - start)


def _pipeline(
    model: backbones.LoadedBackbone, root: Path, paths: tuple[str, ...], config: Config, device: str, precision: str
) -> float:
    todo = {f"{i:08d}": rel for i, rel in enumerate(paths)}  # distinct keys: every file is embedded
    start = time.perf_counter()
    entries, failed = inference.run_model(model, root, todo, config, device, precision=precision)
    elapsed = time.perf_counter() - start
    assert not failed and len(entries) == len(paths)
    return len(paths) / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", nargs="?", type=Path, default=REPO / "sample_data")
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--times", type=int, default=4, help="embed the folder's images this many times over")
    args = p.parse_args()
    config = Config(args.data_dir, backbone=args.backbone, progress=False, use_cache=False)
    images = discover(config)
    paths = images.paths * args.times
    resolution = backbones.resolve(args.backbone, None, offline=True)
    model = backbones.load(resolution, None, offline=True)
    print(
        f"{len(paths)} images ({len(images)} x {args.times}), {args.backbone} on {args.device}, "
        f"torch threads {torch.get_num_threads()}"
    )

    base = [_baseline(model, images.root, paths, args.device) for _ in range(args.repeat)]
    b = statistics.median(base)
    print(f"baseline (one image at a time)      {b:7.1f} img/s")
    best = 0.0
    native_bf16 = args.device == "cuda" or inference.cpu_has_bf16()
    precisions = ("fp32", "bf16") if native_bf16 else ("fp32",)
    settings = ((0, 8), (1, 8), (2, 4), (2, 8), (2, 16)) if args.device == "cpu" else ((4, 64), (8, 256))
    for precision in precisions:
        for workers, batch in settings:
            cfg = Config(args.data_dir, progress=False, use_cache=False, workers=workers, batch_size=batch)
            runs = [_pipeline(model, images.root, paths, cfg, args.device, precision) for _ in range(args.repeat)]
            rate = statistics.median(runs)
            best = max(best, rate)
            label = f"pipeline {precision} workers={workers} batch={batch:3d}"
            print(f"{label:38s} {rate:7.1f} img/s   {rate / b:4.2f}x baseline")
    print(f"best pipeline / baseline = {best / b:.2f}x (auto precision here: {precisions[-1]})")


if __name__ == "__main__":
    main()
