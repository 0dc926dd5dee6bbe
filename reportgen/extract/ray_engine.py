"""``--engine ray``: the embedding stage as a Ray Data pipeline, on a cluster or on a local Ray instance.

The stage has already hashed every file and looked each content hash up in the cache, so only the images the
cache lacks reach Ray. The pipeline is three steps: the list of (content hash, path) rows; decoding in parallel
Ray tasks (each reads a file, checks it still has the hash it was listed under, decodes, crops and thumbnails it,
exactly as the local engine's decoding workers do); and the network in a pool of actors (``map_batches`` with a
callable class, so each actor loads the weights once, picks its device, precision and runtime as the local engine
does, and keeps them for every batch). Results stream back to this process, which stores each entry in the same
cache under the same key as the local engine: the rest of the pipeline is unchanged and a local rerun reuses them.

Faults are Ray Data's to handle, with its defaults: a decoding task whose worker dies is run again, and a model actor
that dies is restarted and its batch given to it again (a Python exception is not a fault: decoding turns each into
the image's skip reason). A retried batch may deliver rows that already arrived; they are kept once.
The data folder and the cache must be on storage every node sees at the same path (docs/scale.md).
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
from tqdm.auto import tqdm

from ..cache import CacheEntry
from ..config import Config
from ..errors import EngineError
from .base import TOP_K, Preprocessing
from .runner import Embedded

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds to reach a ray:// address before the run says it cannot
ROWS_PER_BLOCK = 64  # rows per decoding task: small enough to spread and to stream, large enough to be cheap


def available() -> bool:
    """Whether Ray (the ``ray`` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("ray.data") is not None


def run(
    part_indices: list[int],
    root: Path,
    todo: dict[str, str],
    config: Config,
    on_entry: Callable[[str, CacheEntry], None],
    prep: Preprocessing,
) -> Embedded:
    """Compute the entries of ``todo`` (content hash -> path) with the stack parts ``part_indices`` on Ray.

    Parameters
    ----------
    part_indices : which parts of ``config.backbone``'s stack share this forward pass; each actor resolves and
        loads them itself (weights come from each node's own install or cache, never shipped from here).
    root : the data folder, at the same path on every node.
    todo : content hash -> relative path of one file with that content.
    config : engine, address, workers, device, precision, runtime, batch size and progress options.
    on_entry : called for each computed entry as it arrives (the cache stores it then).
    prep : the parts' :class:`~reportgen.extract.base.Preprocessing` (decoding crops with it).

    Returns
    -------
    :class:`~reportgen.extract.runner.Embedded`, with ``runtime`` and ``precision`` as the actors report them.
    """
    import ray

    items = sorted(todo.items(), key=lambda kv: kv[1])
    with connected(config.ray_address) as resources:
        plan = Plan.of(config, resources)
        log.info("embedding %d images on Ray: %s", len(items), plan.describe())
        rows = [{"key": key, "rel": rel} for key, rel in items]
        blocks = max(1, math.ceil(len(rows) / ROWS_PER_BLOCK))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        ds = ds.map_batches(
            _decode,
            fn_kwargs={"root": str(root), "prep": prep},
            batch_size=None,
            batch_format="numpy",
            num_cpus=plan.decode_cpus,
        )
        ds = ds.map_batches(
            _Embedder,
            fn_constructor_kwargs={"config": config, "parts": part_indices, "n_images": len(items), "plan": plan},
            batch_size=plan.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.workers),
            num_cpus=plan.cpus_per_worker,
            num_gpus=plan.gpus_per_worker,
        )
        return _collect(ds, len(items), config.progress, on_entry, plan)


def _collect(ds, total: int, progress: bool, on_entry: Callable[[str, CacheEntry], None], plan: Plan) -> Embedded:  # noqa: ANN001
    """Store each row as it arrives; a row a retried batch repeats is kept once."""
    entries: dict[str, CacheEntry] = {}
    failed: dict[str, str] = {}
    runtimes: dict[str, None] = {}
    precisions: dict[str, None] = {}
    repeated = 0
    with tqdm(total=total, desc="Embedding", unit="img", disable=not progress) as bar:
        for batch in _batches(ds, plan):
            for i, key in enumerate(batch["key"].tolist()):
                if key in entries or key in failed:
                    repeated += 1
                    continue
                reason = str(batch["reason"][i])
                if reason:
                    failed[key] = reason
                else:
                    runtimes[str(batch["runtime"][i])] = None
                    precisions[str(batch["precision"][i])] = None
                    width = int(batch["width"][i])  # 0 without a classifier head
                    entry = CacheEntry(
                        np.asarray(batch["features"][i], np.float32),
                        np.asarray(batch["top5_index"][i][:width], np.int32),
                        np.asarray(batch["top5_prob"][i][:width], np.float32),
                        bytes(batch["thumbnail"][i]),
                    )
                    entries[key] = entry
                    on_entry(key, entry)
                bar.update(1)
    if repeated:
        log.info("%d rows repeated by retried batches were kept once", repeated)
    missing = total - len(entries) - len(failed)
    if missing:  # Ray gave up on some block: say so rather than report a smaller folder
        raise EngineError(
            f"the Ray pipeline returned {total - missing} of {total} images; rerun to finish (the cache keeps the rest)"
        )
    runtime, precision = ", ".join(runtimes) or "torch", ", ".join(precisions) or "fp32"
    return Embedded(entries, failed, runtime, precision, plan.device, f"ray: {plan.describe()}")


class Resources(NamedTuple):
    """What the connected cluster offers, and how the run names it."""

    cpus: float
    gpus: float
    nodes: int
    where: str

    @classmethod
    def now(cls, address: str | None) -> Resources:
        import ray

        total = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0)
        where = "a local Ray instance" if address is None else f"the Ray cluster at {address}"
        return cls(float(total.get("CPU", 0)), float(total.get("GPU", 0)), max(1, nodes), where)


class Plan(NamedTuple):
    """How many model actors run, what each reserves and uses, and the decoding tasks' share."""

    workers: int
    threads: int  # torch threads per CPU actor
    cpus_per_worker: float
    gpus_per_worker: float
    decode_cpus: float
    batch_size: int
    device: str
    where: str

    @classmethod
    def of(cls, config: Config, res: Resources) -> Plan:
        """One actor per GPU when the cluster has GPUs (and ``--device`` allows them); else one per node, using the
        node's cores. ``--ray-workers`` sets the count; CPU actors then share the nodes' cores between them.

        Decoding is a fraction of the model's work (docs/benchmarks.md), so a decoding task reserves a quarter of
        a core and a CPU actor three quarters of each core it computes on: the two overlap without either waiting
        for a reservation the other holds.
        """
        if config.device == "cuda" and res.gpus < 1:
            raise EngineError(f"--device cuda, but {res.where} has no GPUs")
        if res.gpus >= 1 and config.device != "cpu":
            workers = config.ray_workers or int(res.gpus)
            if workers > res.gpus:  # an actor that can never be placed would leave the run waiting
                raise EngineError(f"--ray-workers {workers}: {res.where} has {res.gpus:g} GPUs, one per worker")
            return cls(workers, 1, 1.0, 1.0, 1.0, config.resolved_batch_size("cuda"), "cuda", res.where)
        if res.cpus < 1:
            raise EngineError(f"{res.where} has no CPUs to embed on")
        workers = config.ray_workers or res.nodes
        per_node = math.ceil(workers / res.nodes)
        threads = max(1, int(res.cpus / res.nodes) // per_node)
        cpus = min(0.75 * threads, (res.cpus - 0.25) / workers)  # every actor placed, and one decoding task
        return cls(workers, threads, cpus, 0.0, 0.25, config.resolved_batch_size("cpu"), "cpu", res.where)

    def describe(self) -> str:
        each = "1 GPU" if self.device == "cuda" else f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return f"{self.workers} worker{'s' if self.workers != 1 else ''} ({each} each) on {self.where}"


@contextmanager
def connected(address: str | None) -> Iterator[Resources]:
    """Ray, connected: to ``address`` (``auto`` or ``ray://HOST:PORT``), or a local instance with this machine's
    cores bound to 127.0.0.1. A Ray the caller already started is used as it is and left running."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", include_dashboard=False, **quiet)
        else:
            _reachable(address)
            try:
                ray.init(address=address, **quiet)
            except Exception as exc:  # noqa: BLE001 - Ray raises several kinds; each becomes one line
                why = _first_line(exc)
                if address == "auto" and isinstance(exc, ConnectionError):
                    why = "this machine has joined no running Ray cluster (ray start --address=HEAD:6379 joins one)"
                raise EngineError(f"cannot connect to the Ray cluster at {address}: {why}") from None
    _quiet_data()
    try:
        yield Resources.now(address)
    finally:
        if started:
            ray.shutdown()


def _reachable(address: str) -> None:
    """A ``ray://HOST:PORT`` address answers within :data:`CONNECT_TIMEOUT` seconds (Ray's client would retry for
    minutes); ``auto`` is left to Ray, which says at once when this machine joined no cluster."""
    if address == "auto":
        return
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise EngineError(f"cannot reach the Ray cluster at {address}: {why}") from None


def _quiet_data() -> None:
    """Ray Data's own progress bars and plan logs off: the run shows its usual bar."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _batches(ds, plan: Plan) -> Iterator[dict[str, np.ndarray]]:  # noqa: ANN001
    """The pipeline's output batches; a failure inside it (a model that cannot load on a node, an actor lost more
    often than Ray retries) becomes one line naming the cluster and the innermost cause."""
    try:
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")
    except Exception as exc:  # noqa: BLE001 - Ray wraps the cause in its own exception types
        raise EngineError(f"embedding on {plan.where} failed: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """The first line of the innermost cause: Ray wraps a task's exception (``cause``) and prefixes tracebacks."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _decode(batch: dict[str, np.ndarray], root: str, prep: Preprocessing) -> dict[str, np.ndarray]:
    """A decoding task: each row's uint8 crop and thumbnail, or the reason it cannot be used (its crop zeros)."""
    import torch

    from .decode import decode_one

    torch.set_num_threads(1)
    items = [decode_one(Path(root), key, rel, prep) for key, rel in zip(batch["key"], batch["rel"], strict=True)]
    pixels = np.zeros((len(items), 3, prep.crop, prep.crop), np.uint8)
    for i, item in enumerate(items):
        if item.pixels is not None:
            pixels[i] = item.pixels.numpy()
    return {
        "key": np.asarray([item.key for item in items], dtype=object),
        "pixels": pixels,
        "thumbnail": np.asarray([item.thumbnail for item in items], dtype=object),
        "reason": np.asarray([item.reason or "" for item in items], dtype=object),
    }


class _Embedder:
    """A model actor: loads the parts once, then computes each batch's features, top-5 classes and probabilities."""

    def __init__(self, config: Config, parts: list[int], n_images: int, plan: Plan) -> None:
        import torch

        from . import runner, runtime
        from .stack import load_group, resolve_stack

        if plan.device == "cpu":
            torch.set_num_threads(plan.threads)
        stack = resolve_stack(config.backbone, config.weights, config.offline)
        self.extractor = load_group([stack.parts[i] for i in parts])
        self.precision = runner.pick_precision(config.precision, plan.device)
        cache_root = config.resolved_cache_dir if config.use_cache else None
        self.forward = runtime.pick(
            self.extractor, config.runtime, plan.device, self.precision, cache_root, n_images, plan.batch_size
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from .runner import outputs_of

        n = len(batch["key"])
        ok = np.flatnonzero(batch["reason"] == "")
        feats = np.zeros((n, self.extractor.dim), np.float32)
        width = 0
        top_i, top_p = np.zeros((n, TOP_K), np.int32), np.zeros((n, TOP_K), np.float32)
        if len(ok):
            f, ti, tp = outputs_of(self.extractor, self.forward.call(torch.from_numpy(batch["pixels"][ok])))
            feats[ok] = f
            if ti.shape[1]:
                top_i[ok], top_p[ok] = ti, tp
            width = ti.shape[1]
        return {
            "key": batch["key"],
            "reason": batch["reason"],
            "thumbnail": batch["thumbnail"],
            "features": feats,
            "top5_index": top_i,
            "top5_prob": top_p,
            "width": np.full(n, width, np.int32),
            "runtime": np.full(n, self.forward.runtime, dtype=object),
            "precision": np.full(n, self.forward.precision, dtype=object),
        }
