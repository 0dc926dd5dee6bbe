"""The one Config object that every stage reads, and the one place each option is defined.

Each field of :class:`Config` carries its command-line flag, help text, allowed values and whether it is a
result parameter (recorded in summary.json ``parameters``) in its metadata: the CLI builds its parser from
those, and :meth:`Config.__post_init__` validates from the same metadata, so no option is described twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import InvalidOptionError

DEFAULT_OUT_DIR = Path("reportgen-out")


def default_cache_dir() -> Path:
    """The per-user cache folder ($XDG_CACHE_HOME/reportgen, else ~/.cache/reportgen)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reportgen"


def option(
    default: Any,
    help: str,  # noqa: A002 - argparse's word
    *,
    flags: Sequence[str] = (),
    metavar: str | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    minimum: float | None = None,
    cli_type: Callable[[str], Any] | None = None,
    negate: bool = False,
    cli: bool = True,
    recorded: bool = True,
    shapes_outputs: bool = True,
) -> Any:
    """A Config field with its CLI description.

    Parameters
    ----------
    default : the field's default (also the CLI's).
    help : the CLI help text; ``%(default)s`` is filled in by argparse.
    flags : the CLI flags (default ``--<name with dashes>``).
    metavar, cli_type : as in argparse (``cli_type`` defaults to the default's type).
    choices : allowed values, or a function returning them (a registry's names, read when the parser is built).
    minimum : the smallest allowed value (numbers; ``None`` is always allowed for optional numbers).
    negate : a boolean option whose flag turns it off (``--no-cache`` sets ``use_cache=False``).
    cli : ``False`` for fields the CLI sets itself (``progress``) or as a positional argument.
    recorded : listed in summary.json ``parameters``.
    shapes_outputs : the outputs can depend on it, so the rerun fingerprint covers it (tests check that
        ``workers`` and ``batch_size`` do not change the outputs).
    """
    meta = {
        "help": help,
        "flags": tuple(flags),
        "metavar": metavar,
        "choices": choices,
        "minimum": minimum,
        "cli_type": cli_type,
        "negate": negate,
        "cli": cli,
        "recorded": recorded,
        "shapes_outputs": shapes_outputs,
    }
    return field(default=default, metadata=meta)


def _backbone_choices() -> list[str]:
    from .extract import backbone_names

    return ["auto", *backbone_names()]


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

    data_dir: Path = option(MISSING, "folder of images: <class>/... subfolders, or flat", cli=False, recorded=False)
    out_dir: Path = option(
        DEFAULT_OUT_DIR,
        "output folder (default: ./%(default)s)",
        flags=("-o", "--out"),
        metavar="OUT_DIR",
        recorded=False,
        shapes_outputs=False,
    )
    backbone: str = option(
        "auto",
        "feature extractor (default: auto = resnet50 if its weights are available, else efficientnet-lite0)",
        choices=_backbone_choices,
    )
    weights: Path | None = option(None, "state-dict file for the backbone", metavar="FILE", cli_type=Path)
    method: str = option("kmeans", "clustering method (default: %(default)s)", choices=_method_choices)
    k: int | None = option(None, "use N global clusters instead of choosing K", metavar="N", minimum=1, cli_type=int)
    k_min: int = option(2, "smallest K tried (default %(default)s)", metavar="N", minimum=1)
    k_max: int = option(15, "largest K tried (default %(default)s, capped by the data)", metavar="N", minimum=1)
    within_k: int = option(2, "sub-clusters per class (default %(default)s)", metavar="N", minimum=2)
    within_classes: tuple[str, ...] | None = option(
        None, "classes to split (default: every class)", metavar="A,B,...", cli_type=split_names
    )
    pca_dims: int = option(50, "PCA components (default %(default)s, capped by the data)", metavar="N", minimum=1)
    power_norm: bool = option(
        True,
        "skip the signed square root before L2-normalising (the classic lab's plain L2 + PCA)",
        flags=("--no-power-norm",),
        negate=True,
    )
    seed: int = option(0, "random seed (default %(default)s)")
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
        cli_type=int,
        shapes_outputs=False,
    )
    workers: int | None = option(
        None,
        "decoding processes (default: 0 on 2 cores or fewer, else up to 4; 0 = in-process)",
        metavar="N",
        minimum=0,
        cli_type=int,
        shapes_outputs=False,
    )
    cache_dir: Path | None = option(
        None,
        "embedding cache (default: ~/.cache/reportgen)",
        metavar="DIR",
        cli_type=Path,
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
    title: str | None = option(None, "report title (default: from the folder name)", cli_type=str, recorded=False)
    offline: bool = option(False, "never use the network")
    max_report_mb: float = option(
        15.0, "size budget of report.html; thumbnails shrink to fit (default %(default)s)", metavar="MB", minimum=1e-9
    )
    progress: bool = option(True, "show progress bars", cli=False, recorded=False, shapes_outputs=False)

    def __post_init__(self) -> None:
        for name in ("data_dir", "out_dir", "weights", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.within_classes is not None:
            object.__setattr__(self, "within_classes", tuple(self.within_classes))
        self._validate()

    def _validate(self) -> None:
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            flag = flag_of(f.name)
            if meta.get("minimum") is not None and value is not None and value < meta["minimum"]:
                least = "positive" if meta["minimum"] < 1 and meta["minimum"] > 0 else f"at least {meta['minimum']}"
                raise InvalidOptionError(f"{flag} must be {least}, got {value}")
            choices = meta.get("choices")
            allowed = list(choices()) if callable(choices) else choices
            if allowed and value not in allowed:
                raise InvalidOptionError(f"{flag} must be {_one_of(allowed)}, got {value!r}")
        if self.k_min > self.k_max:
            raise InvalidOptionError(f"--k-min {self.k_min} is larger than --k-max {self.k_max}")

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
                value = value.name if value else None
            elif f.name == "workers":
                value = self.resolved_workers
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

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


def _one_of(values: Sequence[str]) -> str:
    """``a, b or c``."""
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def options_shaping_outputs() -> list[str]:
    """The fields the outputs can depend on (the rerun fingerprint covers these)."""
    return [f.name for f in fields(Config) if f.metadata["shapes_outputs"]]


def flag_of(name: str) -> str:
    """The CLI flag that sets the field ``name`` (its long form)."""
    meta = next(f.metadata for f in fields(Config) if f.name == name)
    long = [flag for flag in meta.get("flags", ()) if flag.startswith("--")]
    return long[0] if long else "--" + name.replace("_", "-")
