"""Ray engine scaling: images per second embedded by ``--engine ray`` with 1 and with 2 model workers, against the
local engine measured in the same run, on the same images.

    python bench/ray_embed.py [DATA_DIR] [--times 4] [--workers 1,2] [--backbone efficientnet-lite0] [--repeat 2]
    python bench/ray_embed.py --threads 1     # every worker on one core: 2 workers use 2 cores, 1 worker one

Every image is copied ``--times`` times with distinct bytes (so each copy is embedded: the cache key is the
content) and the cache is off. One local Ray instance (127.0.0.1, this machine's cores) serves every Ray round,
so its start-up is not counted; each round does start its actors, which load the weights, as a run does. Rounds
alternate between the engines so that drift in the host's speed falls on all of them. Prints img/s per engine
(the best round) and the ratio to the local engine. Needs the ``ray`` extra.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embed import _copies  # noqa: E402 - the same distinct-bytes copies as the local embedding bench

from reportgen.cache import content_hash  # noqa: E402
from reportgen.config import Config  # noqa: E402
from reportgen.discover import discover  # noqa: E402
from reportgen.extract import ray_engine, runner  # noqa: E402
from reportgen.extract.stack import load_group, resolve_stack  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent / "sample_data")
    p.add_argument("--times", type=int, default=4, help="copies of each image (default %(default)s)")
    p.add_argument("--workers", default="1,2", help="Ray model workers to measure (default %(default)s)")
    p.add_argument("--backbone", default="efficientnet-lite0")
    p.add_argument("--repeat", type=int, default=2, help="rounds per engine (default %(default)s)")
    p.add_argument("--threads", type=int, help="torch threads per Ray worker (default: as a run plans them)")
    args = p.parse_args()
    if args.threads:  # the scaling question: does a second worker with its own cores add its rate?
        planned = ray_engine.Plan.of
        ray_engine.Plan.of = lambda config, res: planned(config, res)._replace(threads=args.threads)  # type: ignore[method-assign]

    images = discover(Config(data_dir=args.data))
    counts = [int(w) for w in args.workers.split(",")]
    engines = {"local": None, **{f"ray, {w} worker{'s' * (w > 1)}": w for w in counts}}
    best: dict[str, float] = dict.fromkeys(engines, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        root, paths = _copies(images.root, images.paths, args.times, Path(tmp))
        todo = {content_hash(root / rel): rel for rel in paths}
        assert len(todo) == len(paths), "the copies must differ"
        config = Config(data_dir=root, backbone=args.backbone, use_cache=False, progress=False, runtime="torch")
        stack = resolve_stack(config.backbone, config.weights, offline=True)
        local_model = load_group(list(stack.parts))
        prep = stack.parts[0].resolution.preprocessing
        print(f"{len(todo)} images ({len(images.paths)} x {args.times}), {args.backbone}, {os.cpu_count()} cores")
        # The engine's own local instance (127.0.0.1, this machine's cores), held open so every round reuses it
        with ray_engine.connected(None):
            for round_ in range(args.repeat):
                for name, workers in engines.items():
                    start = time.perf_counter()
                    if workers is None:
                        done = runner.run(local_model, root, todo, config, "cpu", precision="fp32")
                    else:
                        ray_config = replace(config, engine="ray", ray_workers=workers)
                        parts = list(range(len(stack.parts)))
                        done = ray_engine.run(parts, root, todo, ray_config, lambda *_: None, prep)
                    rate = len(todo) / (time.perf_counter() - start)
                    assert len(done.entries) == len(todo) and not done.failed
                    best[name] = max(best[name], rate)
                    print(f"  round {round_ + 1}  {name:16s} {rate:7.1f} img/s  ({done.engine})")
    print("best of each:")
    for name, rate in best.items():
        print(f"  {name:16s} {rate:7.1f} img/s  {rate / best['local']:.2f}x local")


if __name__ == "__main__":
    main()
