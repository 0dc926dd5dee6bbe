"""The one Config object that every stage reads, and the one place each option is defined.

Each field of :class:`Config` carries its command-line flag, help text, allowed values (choices, bounds, what a
path must be) and whether it is a result parameter (recorded in summary.json ``parameters``) in its metadata:
the CLI builds its parser from those and :func:`from_text` reads its flags' text, and :meth:`Config._validate`
checks every value against the same metadata plus a few rules across fields, so no option is described twice and
the CLI and the Python API refuse the same values, with the same one-line message, before any work starts.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import InvalidOptionError
from .options import option

DEFAULT_OUT_DIR = Path("reportgen-out")
# The stages derive seeds up to seed + 19 from --seed (K-means refits) and scikit-learn takes seeds below 2**32, so
# 2**32 - 1 crashed a run: the int32 range leaves them room, with a bound users know.
SEED_MAX = 2**31 - 1
# A within-class split describes a few sub-groups a person can look at; past this it is a second global clustering.
# Whether a class has enough images for the asked number is decided per class by the analysis (it says so).
WITHIN_K_MAX = 20


def default_cache_dir() -> Path:
    """The per-user cache folder ($XDG_CACHE_HOME/reportgen, else ~/.cache/reportgen)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reportgen"


def _method_choices() -> list[str]:
    from .cluster import method_names

    return method_names()


def split_names(value: str) -> tuple[str, ...]:
    """``"a, b,c"`` -> ``("a", "b", "c")`` (the CLI form of a list of class names)."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


@dataclass(frozen=True)
class Config:
    """Every option of a run. The CLI builds one from its flags; the Python API takes the same fields.

    Each field's meaning is its ``help`` (see :func:`option`); ``reportgen --help`` prints them all.
    """

    data_dir: Path = option(
        MISSING, "folder of images: <class>/... subfolders, or flat", cli_type=Path, cli=False, recorded=False
    )
    out_dir: Path = option(
        DEFAULT_OUT_DIR,
        "output folder (default: ./%(default)s)",
        flags=("-o", "--out"),
        metavar="OUT_DIR",
        path="writable folder",
        recorded=False,
        shapes_outputs=False,
    )
    backbone: str = option(
        "auto",
        "feature spec: a backbone (default: auto = resnet50 if its weights are available, else efficientnet-lite0), "
        "or BACKBONE@LAYER[:POOL] for a layer pooled avg, max, top10 or gem (tokens: cls or mean); "
        "'reportgen layers BACKBONE' lists the layers",
        flags=("--features", "--backbone"),
        metavar="SPEC",
        shapes_clusters=True,
    )
    weights: Path | str | None = option(
        None,
        "state-dict file for the backbone, or 'random' for its untrained architecture (a floor for studies)",
        metavar="FILE",
        cli_type=Path,
        path="file",
        keywords=("random",),
        shapes_clusters=True,
    )
    method: str = option(
        "kmeans", "clustering method (default: %(default)s)", choices=_method_choices, shapes_clusters=True
    )
    ensemble_features: str | None = option(
        None,
        "feature specs --method ensemble combines with the report's own, as a stack A+B (default: two earlier "
        "layers of the backbone)",
        metavar="SPEC",
        cli_type=str,
        shapes_clusters=True,
    )
    linkage: str = option(
        "ward",
        "how --method agglomerative merges: ward on the vectors, or average or complete linkage of cosine distances "
        "(default: %(default)s)",
        choices=("ward", "average", "complete"),
        shapes_clusters=True,
    )
    k: int | None = option(
        None, "use N global clusters instead of choosing K", metavar="N", minimum=1, cli_type=int, shapes_clusters=True
    )
    # K=1 is a legitimate --k but not a sweep's start: the criteria compare 2+ clusters (the silhouette crashed at 1).
    k_min: int = option(
        2,
        "smallest K tried (default %(default)s)",
        metavar="N",
        minimum=2,
        why="the sweep compares 2 or more clusters; --k 1 asks for one cluster",
        shapes_clusters=True,
    )
    k_max: int = option(
        15, "largest K tried (default %(default)s, capped by the data)", metavar="N", minimum=2, shapes_clusters=True
    )
    within_k: int = option(
        2, "sub-clusters per class (default %(default)s)", metavar="N", minimum=2, maximum=WITHIN_K_MAX
    )
    within_classes: tuple[str, ...] | None = option(
        None, "classes to split (default: every class)", metavar="A,B,...", cli_type=split_names
    )
    # 4096 is the widest built-in feature (vgg16); PCA keeps at most the data's own width anyway.
    pca_dims: int = option(
        50,
        "PCA components (default %(default)s, capped by the data)",
        metavar="N",
        minimum=1,
        maximum=4096,
        shapes_clusters=True,
    )
    power_norm: bool = option(
        True,
        "skip the signed square root before L2-normalising (the classic lab's plain L2 + PCA)",
        flags=("--no-power-norm",),
        negate=True,
        shapes_clusters=True,
    )
    seed: int = option(
        0, "random seed (default %(default)s)", metavar="N", minimum=0, maximum=SEED_MAX, shapes_clusters=True
    )
    device: str = option(
        "auto",
        "where the model runs (default %(default)s: CUDA when torch sees a device)",
        choices=("auto", "cpu", "cuda"),
    )
    precision: str = option(
        "auto",
        "forward-pass arithmetic (default auto: bf16 on a GPU or a CPU with bf16 instructions, else fp32)",
        choices=("auto", "fp32", "bf16"),
    )
    runtime: str = option(
        "auto",
        "what runs the forward pass on the CPU (default auto: the fastest measured here; torch on a GPU, in bf16 "
        "and for a first export of under 500 images)",
        choices=("auto", "torch", "onnxruntime", "openvino"),
        shapes_outputs=False,
    )
    engine: str = option(
        "local",
        "where images are embedded (default %(default)s: this machine; ray: a Ray cluster, pip install "
        "'reportgen[ray]')",
        choices=("local", "ray"),
        shapes_outputs=False,
    )
    ray_address: str | None = option(
        None,
        "the Ray cluster for --engine ray: auto (the one this machine joined) or ray://HOST:PORT (default: a local "
        "Ray instance with this machine's cores)",
        metavar="ADDRESS",
        cli_type=str,
        max_chars=300,
        recorded=False,
        shapes_outputs=False,
    )
    ray_workers: int | None = option(
        None,
        "model workers for --engine ray (default: one per GPU, else one per node)",
        metavar="N",
        minimum=1,
        maximum=4096,
        cli_type=int,
        shapes_outputs=False,
    )
    jpeg_decoder: str = option(
        "auto",
        "who decodes JPEGs (default auto: torchvision on the GPU when the model runs there, else Pillow)",
        choices=("auto", "pillow", "torchvision"),
    )
    batch_size: int | None = option(
        None,
        "images per forward pass (default: 8 on CPU, 256 on GPU)",
        metavar="N",
        minimum=1,
        maximum=4096,
        cli_type=int,
        shapes_outputs=False,
    )
    workers: int | None = option(
        None,
        "decoding processes (default: 0 on 2 cores or fewer, else up to 4; 0 = in-process)",
        metavar="N",
        minimum=0,
        maximum=64,
        cli_type=int,
        shapes_outputs=False,
    )
    cache_dir: Path | None = option(
        None,
        "embedding cache (default: ~/.cache/reportgen)",
        metavar="DIR",
        cli_type=Path,
        path="folder",
        recorded=False,
        shapes_outputs=False,
    )
    use_cache: bool = option(
        True,
        "neither read nor write the embedding cache",
        flags=("--no-cache",),
        negate=True,
        recorded=False,
        shapes_outputs=False,
    )
    title: str | None = option(
        None, "report title (default: from the folder name)", cli_type=str, max_chars=200, recorded=False
    )
    offline: bool = option(False, "never use the network")
    max_report_mb: float = option(
        15.0,
        "size budget of report.html; thumbnails shrink to fit (default %(default)s)",
        metavar="MB",
        above=0,
        maximum=1000,
    )
    explain: bool = option(
        True,
        "skip the class-activation maps (where the network looked) of the images the report shows",
        flags=("--no-explain",),
        negate=True,
    )
    explain_method: str = option(
        "gradcam",
        "how the maps are made (default %(default)s; guided-gradcam adds guided backpropagation's fine detail)",
        choices=("gradcam", "guided-gradcam"),
    )
    explain_similarity: str = option(
        "projection",
        "what a cluster map explains: the image's projection on the centre's direction, the part of K-means' "
        "assignment that depends on the cluster (default), or the cosine similarity, whose gradient also rewards "
        "shrinking the image's own vector and lights up backgrounds (docs/quality.md)",
        choices=("projection", "cosine"),
    )
    explain_layer: str | None = option(
        None,
        "the layer the maps are taken at (default: the last convolutional map the features depend on; "
        "'reportgen layers BACKBONE' lists them)",
        metavar="LAYER",
        cli_type=str,
        max_chars=200,
    )
    export_folders: str | None = option(
        None,
        "also write clusters/<id>-<name>/ in the out folder with a link to (or a copy of) each cluster's images",
        choices=("link", "copy"),
    )
    save_embeddings: str | None = option(
        None,
        "also write the vectors: embeddings.parquet (path, label, cluster, vector, reduced; needs pyarrow) or "
        "embeddings.npy, embeddings_reduced.npy and embeddings.csv",
        choices=("parquet", "npy"),
    )
    renumber: bool = option(
        False,
        "number the clusters by size (0 the largest) instead of keeping the ids of the last run's clusters they match",
    )
    keep: int = option(
        20,
        "runs kept under history/ in the out folder (default %(default)s; 0 keeps none)",
        metavar="N",
        minimum=0,
        maximum=10_000,
        shapes_outputs=False,
    )
    progress: bool = option(True, "show progress bars", cli=False, recorded=False, shapes_outputs=False)
    config_file: Path | None = option(
        None,
        "the --config file the settings were read from",
        cli=False,
        cli_type=Path,
        path="file",
        shapes_outputs=False,
    )

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        """Check (and normalise) every field by its metadata, then the rules across fields: the first problem raises
        :class:`InvalidOptionError`, one line naming the option, the value and what is allowed. What depends on the
        data (the data folder's existence, ``--k`` against the images, a class too small for ``--within-k``) is
        checked by the stage that sees the data; ``--device cuda`` where torch is loaded anyway."""
        for f in fields(self):
            object.__setattr__(self, f.name, _checked(f, getattr(self, f.name)))
        if self.k_min > self.k_max:
            raise InvalidOptionError(f"--k-min {self.k_min} is larger than --k-max {self.k_max}")
        from .errors import BackboneError
        from .extract import stack

        try:
            stack.check(self.backbone)
        except BackboneError as exc:
            raise InvalidOptionError(f"--features: {exc}") from None
        check_packages(self)
        if self.ensemble_features is not None:
            try:
                stack.check(self.ensemble_features)
            except BackboneError as exc:
                raise InvalidOptionError(f"--ensemble-features: {exc}") from None

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()

    def resolved_batch_size(self, device: str) -> int:
        """``batch_size``, or the measured best default for ``device`` (docs/benchmarks.md)."""
        if self.batch_size is not None:
            return self.batch_size
        return 256 if device == "cuda" else 8

    @property
    def resolved_workers(self) -> int:
        """``workers``, or none on a machine of two cores or fewer (there decoding workers take cores from the
        model and every measured setup ran faster without them, docs/benchmarks.md), else up to 4."""
        if self.workers is not None:
            return self.workers
        cpus = os.cpu_count() or 1
        return 0 if cpus <= 2 else min(4, cpus)

    def parameters(self) -> dict[str, Any]:
        """The options as summary.json ``parameters`` records them: weights by file name, workers resolved."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if not f.metadata["recorded"]:
                continue
            value = getattr(self, f.name)
            if f.name == "weights":
                value = value.name if isinstance(value, Path) else value
            elif f.name == "workers":
                value = self.resolved_workers
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def cluster_settings(self) -> dict[str, Any]:
        """The recorded ``parameters`` that shape the clusters: a rerun keeps the last run's cluster ids only when
        they are the same (:mod:`reportgen.identity`)."""
        shaping = {f.name for f in fields(self) if f.metadata["shapes_clusters"]}
        return {name: value for name, value in self.parameters().items() if name in shaping}

    @classmethod
    def coerce(cls, config: Config | str | os.PathLike[str], **overrides: object) -> Config:
        """A Config from a Config or a data folder, with keyword overrides of any field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidOptionError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if isinstance(config, Config):
            return replace(config, **overrides)  # type: ignore[arg-type]
        return cls(data_dir=config, **overrides)  # type: ignore[arg-type]


# How a field's value is checked and described (its flag, kind, range), imported last: checks reads Config's fields.
from .checks import (  # noqa: E402
    _checked,
    bounds_of,
    check_packages,
    check_value,
    flag_of,
    from_text,
    options_shaping_outputs,
    value_kind,
)

__all__ = [
    "DEFAULT_OUT_DIR",
    "Config",
    "bounds_of",
    "check_value",
    "default_cache_dir",
    "flag_of",
    "from_text",
    "options_shaping_outputs",
    "split_names",
    "value_kind",
]
