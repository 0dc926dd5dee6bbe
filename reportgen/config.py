"""The one Config object that every stage reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .errors import InvalidOptionError

DEFAULT_OUT_DIR = Path("reportgen-out")


def default_cache_dir() -> Path:
    """The per-user cache folder ($XDG_CACHE_HOME/reportgen, else ~/.cache/reportgen)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reportgen"


@dataclass(frozen=True)
class Config:
    """Every option of a run. The CLI builds one from its flags; the Python API takes the same fields.

    Parameters
    ----------
    data_dir : folder of images, either ``<class>/...`` subfolders (labeled) or flat (unlabeled).
    out_dir : where report.html, assignments.csv and summary.json are written.
    backbone : a name from :data:`reportgen.backbones.BACKBONES`, or ``"auto"``.
    weights : a state-dict file to use instead of the backbone's own weights.
    k : fix the number of global clusters instead of choosing it.
    k_min, k_max : the range of K swept when choosing it.
    within_k : number of sub-clusters inside each class.
    within_classes : classes to split (``None`` means every class).
    pca_dims : PCA components kept (capped by the data).
    power_norm : take the signed square root of the embeddings before L2-normalising them (see reduce).
    seed : seed for PCA and every K-means.
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``.
    precision : ``"auto"`` (bfloat16 on a GPU and on CPUs with native bfloat16 instructions, else float32),
        ``"fp32"`` or ``"bf16"``: the arithmetic of the backbone's forward pass.
    jpeg_decoder : ``"auto"`` (torchvision's decoder on the GPU when the model runs there, else Pillow),
        ``"pillow"`` or ``"torchvision"`` (on the model's device; other formats always go through Pillow).
    batch_size : images per forward pass (``None``: 8 on the CPU, where larger batches overflow the caches and
        run slower, 256 on a GPU).
    workers : decoding processes (``None``: 0 on two cores or fewer, else up to 4); 0 decodes in the main
        process.
    cache_dir : embedding cache folder (``None`` means the per-user default).
    use_cache : read and write the embedding cache.
    title : report title (default: the data folder's name).
    offline : never try the network (``auto`` then uses the bundled backbone).
    max_report_mb : size budget of report.html; thumbnails shrink to fit it.
    progress : show progress bars.
    """

    data_dir: Path
    out_dir: Path = DEFAULT_OUT_DIR
    backbone: str = "auto"
    weights: Path | None = None
    k: int | None = None
    k_min: int = 2
    k_max: int = 15
    within_k: int = 2
    within_classes: tuple[str, ...] | None = None
    pca_dims: int = 50
    power_norm: bool = True
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    jpeg_decoder: str = "auto"
    batch_size: int | None = None
    workers: int | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    title: str | None = None
    offline: bool = False
    max_report_mb: float = 15.0
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.weights is not None:
            object.__setattr__(self, "weights", Path(self.weights))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.within_classes is not None:
            object.__setattr__(self, "within_classes", tuple(self.within_classes))
        self._validate()

    def _validate(self) -> None:
        positive = {"k_min": self.k_min, "k_max": self.k_max, "within_k": self.within_k}
        positive |= {"pca_dims": self.pca_dims}
        if self.batch_size is not None:
            positive["batch_size"] = self.batch_size
        for name, value in positive.items():
            if value < 1:
                raise InvalidOptionError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.k is not None and self.k < 1:
            raise InvalidOptionError(f"--k must be at least 1, got {self.k}")
        if self.k_min > self.k_max:
            raise InvalidOptionError(f"--k-min {self.k_min} is larger than --k-max {self.k_max}")
        if self.within_k < 2:
            raise InvalidOptionError(f"--within-k must be at least 2, got {self.within_k}")
        if self.max_report_mb <= 0:
            raise InvalidOptionError(f"--max-report-mb must be positive, got {self.max_report_mb}")
        if self.workers is not None and self.workers < 0:
            raise InvalidOptionError(f"--workers must be 0 or more, got {self.workers}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InvalidOptionError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.jpeg_decoder not in ("auto", "pillow", "torchvision"):
            raise InvalidOptionError(f"--jpeg-decoder must be auto, pillow or torchvision, got {self.jpeg_decoder!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise InvalidOptionError(f"--precision must be auto, fp32 or bf16, got {self.precision!r}")

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

    @classmethod
    def coerce(cls, config: Config | str | os.PathLike[str], **overrides: object) -> Config:
        """A Config from a Config or a data folder, with keyword overrides of any field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidOptionError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if isinstance(config, Config):
            return replace(config, **overrides)  # type: ignore[arg-type]
        return cls(data_dir=Path(config), **overrides)  # type: ignore[arg-type]
