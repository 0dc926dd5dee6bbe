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

from reportgen.cache import content_hash
from reportgen.config import Config
from reportgen.discover import discover
from reportgen.extract import Extractor, classifiers, export, resolve, runner, runtime

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
    todo = {content_hash(root / rel): rel for rel in paths}  # distinct contents: every file is embedded
    assert len(todo) == len(paths), "the copies must differ"
    start = time.perf_counter()
    done = runner.run(model, root, todo, config, device, precision=precision)
    elapsed = time.perf_counter() - start
    assert not done.failed and len(done.entries) == len(paths), done.failed
    return len(paths) / elapsed


def _copies(folder: Path, paths: tuple[str, ...], times: int, tmp: Path) -> tuple[Path, tuple[str, ...]]:
    """``times`` copies of each image, each with its own content (bytes added after the image's end, which the
    decoders ignore), so that the pipeline embeds every one as the cache key is the content."""
    out = tmp / "copies"
    made = []
    for i in range(times):
        for rel in paths:
            dest = out / f"copy{i}" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes((folder / rel).read_bytes() + b"\0" * i)
            made.append(f"copy{i}/{rel}")
    return out, tuple(made)


def _model_only(forward: runtime.Forward, batch_size: int, crop: int, seconds: float = 3.0) -> float:
    """Images per second of the forward pass alone on a random uint8 batch (the median of 1 s windows)."""
    batch = torch.randint(0, 256, (batch_size, 3, crop, crop), dtype=torch.uint8)
    forward.call(batch)
    rates = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0:
            forward.call(batch)
            n += batch_size
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


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
    p.add_argument("--runtimes", default="torch,onnxruntime,openvino", help="CPU runtimes to measure")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0], help="decoding processes to measure")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _measure(args, Path(tmp))


def _measure(args: argparse.Namespace, tmp: Path) -> None:
    data = _make_jpegs(tmp / "jpegs", args.jpegs) if args.jpegs else args.data_dir
    weights = _random_weights(args.backbone, tmp) if args.random_weights else None
    config = Config(data, backbone=args.backbone, progress=False, use_cache=False)
    images = discover(config)
    root, paths = _copies(images.root, images.paths, args.times, tmp) if args.times > 1 else (images.root, images.paths)
    model = resolve(args.backbone, weights, offline=True).load()
    print(
        f"{len(paths)} images ({len(images)} x {args.times}), {args.backbone} on {args.device}, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, bf16 instructions: {runner.cpu_has_bf16()}"
    )

    # one image at a time is slow: its rate is measured on the first BASELINE_MAX images
    base = [_baseline(model, root, paths[:BASELINE_MAX], args.device) for _ in range(args.repeat)]
    b = statistics.median(base)
    print(f"baseline (one image at a time)      {b:7.1f} img/s")
    if args.device == "cuda":
        cpus = os.cpu_count() or 1
        for decoder, workers, batch in (("pillow", cpus, 256), ("torchvision", 4, 256), ("torchvision", 8, 512)):
            cfg = Config(data, progress=False, use_cache=False, workers=workers, batch_size=batch, jpeg_decoder=decoder)
            rate = statistics.median(_pipeline(model, root, paths, cfg, "cuda", "bf16") for _ in range(args.repeat))
            label = f"pipeline bf16 {decoder} workers={workers} batch={batch:3d}"
            print(f"{label:50s} {rate:8.1f} img/s   {rate / b:5.2f}x baseline")
        return
    batch = args.batch_size
    precisions = ("fp32", "bf16") if runner.cpu_has_bf16() else ("fp32",)
    exports = tmp / "exports"
    forwards: dict[tuple[str, str], runtime.Forward] = {}
    for precision in precisions:
        for name in args.runtimes.split(","):
            if name != "torch" and (precision == "bf16" and name == "onnxruntime" or not runtime.installed(name)):
                continue
            if name == "torch":
                forwards[precision, name] = runtime.torch_pass(model, "cpu", precision)
                continue
            start = time.perf_counter()
            forward = runtime._load(name, model, export.folder_for(model, exports), precision)
            print(f"{name}: export and load {time.perf_counter() - start:.1f} s")
            if forward is not None:
                forwards[precision, name] = forward
    # Model-only and pipeline rates alternate, round after round, so that a host whose speed drifts (a shared
    # VM) moves both alike; each figure is the median of its rounds.
    alone: dict[tuple[str, str], list[float]] = {key: [] for key in forwards}
    piped: dict[tuple[str, str, int], list[float]] = {(*key, w): [] for key in forwards for w in args.workers}
    for _ in range(args.repeat):
        for (precision, name), forward in forwards.items():
            alone[precision, name].append(_model_only(forward, batch, model.preprocessing.crop))
            for workers in args.workers:
                cfg = Config(
                    data, progress=False, use_cache=True, cache_dir=exports, workers=workers, batch_size=batch,
                    runtime=name, precision=precision,
                )  # fmt: skip
                piped[precision, name, workers].append(_pipeline(model, root, paths, cfg, "cpu", precision))
    rows = []
    for (precision, name, workers), rates in piped.items():
        model_rate, rate = statistics.median(alone[precision, name]), statistics.median(rates)
        rows.append((precision, name, workers, model_rate, rate))
        label = f"{precision} {name:11s} workers={workers} batch={batch}"
        print(
            f"{label:42s} model-only {model_rate:7.1f} img/s   pipeline {rate:7.1f} img/s   "
            f"pipeline/model-only {rate / model_rate:5.2f}   pipeline/baseline {rate / b:5.2f}x"
        )
    fastest = max(rows, key=lambda r: r[3])
    best = max(rows, key=lambda r: r[4])
    print(
        f"fastest model-only: {fastest[0]} {fastest[1]} {fastest[3]:.1f} img/s; best pipeline: {best[0]} {best[1]} "
        f"workers={best[2]} {best[4]:.1f} img/s = {best[4] / fastest[3]:.2f} of it, {best[4] / b:.2f}x the baseline"
    )


if __name__ == "__main__":
    main()
