"""The one Config object that every stage reads, and the one place each option is defined.

Each field of :class:`Config` carries its command-line flag, help text, allowed values (choices, bounds, what a
path must be) and whether it is a result parameter (recorded in summary.json ``parameters``) in its metadata:
the CLI builds its parser from those and :func:`from_text` reads its flags' text, and :meth:`Config._validate`
checks every value against the same metadata plus a few rules across fields, so no option is described twice and
the CLI and the Python API refuse the same values, with the same one-line message, before any work starts.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import MISSING, Field, dataclass, fields, replace
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
_NUMBER = {int: "a whole number", float: "a number"}  # how messages name what a number option takes


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
    )
    weights: Path | str | None = option(
        None,
        "state-dict file for the backbone, or 'random' for its untrained architecture (a floor for studies)",
        metavar="FILE",
        cli_type=Path,
        path="file",
        keywords=("random",),
    )
    method: str = option("kmeans", "clustering method (default: %(default)s)", choices=_method_choices)
    ensemble_features: str | None = option(
        None,
        "feature specs --method ensemble combines with the report's own, as a stack A+B (default: two earlier "
        "layers of the backbone)",
        metavar="SPEC",
        cli_type=str,
    )
    linkage: str = option(
        "ward",
        "how --method agglomerative merges: ward on the vectors, or average or complete linkage of cosine distances "
        "(default: %(default)s)",
        choices=("ward", "average", "complete"),
    )
    k: int | None = option(None, "use N global clusters instead of choosing K", metavar="N", minimum=1, cli_type=int)
    # K=1 is a legitimate --k but not a sweep's start: the criteria compare 2+ clusters (the silhouette crashed at 1).
    k_min: int = option(
        2,
        "smallest K tried (default %(default)s)",
        metavar="N",
        minimum=2,
        why="the sweep compares 2 or more clusters; --k 1 asks for one cluster",
    )
    k_max: int = option(15, "largest K tried (default %(default)s, capped by the data)", metavar="N", minimum=2)
    within_k: int = option(
        2, "sub-clusters per class (default %(default)s)", metavar="N", minimum=2, maximum=WITHIN_K_MAX
    )
    within_classes: tuple[str, ...] | None = option(
        None, "classes to split (default: every class)", metavar="A,B,...", cli_type=split_names
    )
    # 4096 is the widest built-in feature (vgg16); PCA keeps at most the data's own width anyway.
    pca_dims: int = option(
        50, "PCA components (default %(default)s, capped by the data)", metavar="N", minimum=1, maximum=4096
    )
    power_norm: bool = option(
        True,
        "skip the signed square root before L2-normalising (the classic lab's plain L2 + PCA)",
        flags=("--no-power-norm",),
        negate=True,
    )
    seed: int = option(0, "random seed (default %(default)s)", metavar="N", minimum=0, maximum=SEED_MAX)
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
        if self.save_embeddings == "parquet" and importlib.util.find_spec("pyarrow") is None:
            raise InvalidOptionError(
                "--save-embeddings parquet needs pyarrow: pip install 'reportgen[parquet]'; or --save-embeddings npy"
            )
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


def _one_of(values: Sequence[str]) -> str:
    """``a, b or c``."""
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def options_shaping_outputs() -> list[str]:
    """The fields the outputs can depend on (the rerun fingerprint covers these)."""
    return [f.name for f in fields(Config) if f.metadata["shapes_outputs"]]


def flag_of(name: str) -> str:
    """The CLI flag that sets the field ``name`` (its long form)."""
    long = [flag for flag in _field(name).metadata["flags"] if flag.startswith("--")]
    return long[0] if long else "--" + name.replace("_", "-")


def value_kind(name: str) -> Any:
    """What the field ``name`` holds: ``bool``, ``int``, ``float``, ``str``, ``Path`` or :func:`split_names` (names)."""
    f = _field(name)
    if isinstance(f.default, bool):
        return bool
    kind = f.metadata["cli_type"] or type(f.default)
    return Path if isinstance(kind, type) and issubclass(kind, Path) else kind


def bounds_of(name: str) -> str | None:
    """The allowed range of the number ``name`` in words (``between 2 and 20``), or ``None`` when it has none."""
    meta = _field(name).metadata
    lo, above, hi = meta["minimum"], meta["above"], meta["maximum"]
    low = f"at least {_num(lo)}" if lo is not None else f"greater than {_num(above)}" if above is not None else None
    if hi is None:
        return low
    if lo is not None:
        return f"between {_num(lo)} and {_num(hi)}"
    return f"{low} and at most {_num(hi)}" if low else f"at most {_num(hi)}"


def from_text(name: str, text: str) -> Any:
    """The value of the field ``name`` from its command-line text: numbers are read here, any other text is passed
    on as it is (:class:`Config` takes paths and ``"a,b"`` class names as text, and checks every value)."""
    kind = value_kind(name)
    if kind is not int and kind is not float:
        return text
    try:
        return kind(text)
    except ValueError:
        raise InvalidOptionError(f"{flag_of(name)} must be {_NUMBER[kind]}, got {text!r}") from None


def check_value(name: str, value: Any) -> Any:  # noqa: ANN401 - any option's value
    """``value`` checked and normalised as the field ``name`` takes it, or a one-line :class:`InvalidOptionError`."""
    return _checked(_field(name), value)


def _field(name: str) -> Field[Any]:
    return next(f for f in fields(Config) if f.name == name)


def _num(value: float) -> str:
    """``1000.0`` -> ``1000``; other numbers as Python writes them."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _checked(f: Field[Any], value: Any) -> Any:
    """``value`` checked against the metadata of the field ``f`` and normalised; or :class:`InvalidOptionError`
    naming the flag (booleans and fields without a flag of their own: the Python name)."""
    meta, kind = f.metadata, value_kind(f.name)
    label = flag_of(f.name) if meta["cli"] and kind is not bool else f.name
    if value is None and f.default is None:  # an optional option left unset
        return None
    if (choices := meta["choices"]) is not None:
        allowed = list(choices()) if callable(choices) else list(choices)
        if not isinstance(value, str) or value not in allowed:
            raise InvalidOptionError(f"{label} must be {_one_of(allowed)}, got {value!r}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise InvalidOptionError(f"{label} must be True or False, got {value!r}")
    elif kind is int or kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real):
            raise InvalidOptionError(f"{label} must be {_NUMBER[kind]}, got {value!r}")
        if kind is float and not math.isfinite(value):
            raise InvalidOptionError(f"{label} must be a finite number, got {value}")
        value = kind(value)
        lo, above, hi = meta["minimum"], meta["above"], meta["maximum"]
        if (lo is not None and value < lo) or (above is not None and value <= above) or (hi is not None and value > hi):
            why = f" ({meta['why']})" if meta["why"] else ""
            raise InvalidOptionError(f"{label} must be {bounds_of(f.name)}, got {value}{why}")
    elif kind is Path and isinstance(value, str) and value in meta["keywords"]:
        return value
    elif kind is Path:
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise InvalidOptionError(f"{label} must be a path, got {value!r}")
        value = Path(value)
        if meta["path"]:
            _check_path(label, meta["path"], value)
    elif kind is split_names:
        names = split_names(value) if isinstance(value, str) else value  # "a,b" as on the command line
        valid = isinstance(names, (list, tuple)) and all(isinstance(n, str) and n.strip() for n in names)
        if not valid or not names:
            raise InvalidOptionError(f"{label} must be a list of one class name or more, none blank, got {value!r}")
        value = tuple(dict.fromkeys(names))  # a class named twice is split once
    elif not isinstance(value, str) or not value.strip():
        raise InvalidOptionError(f"{label} must be non-blank text, got {value!r}")
    elif meta["max_chars"] is not None and len(value) > meta["max_chars"]:
        raise InvalidOptionError(f"{label} must be at most {meta['max_chars']} characters, got {len(value)}")
    return value


def _check_path(label: str, want: str, path: Path) -> None:
    """``path`` is what ``want`` (see :func:`option`) says, or :class:`InvalidOptionError`."""
    try:
        if want == "file":
            if not path.exists():
                raise InvalidOptionError(f"{label} file '{path}' does not exist")
            if not path.is_file():
                raise InvalidOptionError(f"{label} '{path}' is not a file")
            return
        if path.exists():
            if not path.is_dir():
                raise InvalidOptionError(f"{label} '{path}' is {'a file, ' if path.is_file() else ''}not a folder")
            nearest = path
        else:
            nearest = next(parent for parent in path.absolute().parents if parent.exists())
            if not nearest.is_dir():
                raise InvalidOptionError(f"{label} '{path}' cannot be created: '{nearest}' is not a folder")
    except OSError as exc:  # e.g. a folder on the way that cannot be read
        raise InvalidOptionError(f"{label} '{path}' cannot be checked: {exc.strerror or exc}") from None
    if want == "writable folder" and not os.access(nearest, os.W_OK | os.X_OK):
        raise InvalidOptionError(f"{label} '{path}' cannot be written: '{nearest}' is not writable")
