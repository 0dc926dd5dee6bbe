"""How an option's value is checked and described: its flag, its kind, its range in words, its text read from the
command line, and the one-line refusal of a value (:class:`~reportgen.config.Config` runs :func:`_checked` on every
field; the CLI, a --config file and the Python API refuse the same values with the same message)."""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import Field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import Config, split_names
from .errors import InvalidOptionError

_NUMBER = {int: "a whole number", float: "a number"}  # how messages name what a number option takes


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


def check_packages(config: Config) -> None:
    """The options that need an optional package or go together: one line naming the option and the fix."""
    if config.save_embeddings == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InvalidOptionError(
            "--save-embeddings parquet needs pyarrow: pip install 'reportgen[parquet]'; or --save-embeddings npy"
        )
    if config.runtime in ("onnxruntime", "openvino") and importlib.util.find_spec(config.runtime) is None:
        extra = "onnxruntime" if config.runtime == "onnxruntime" else "'reportgen[openvino]'"
        raise InvalidOptionError(f"--runtime {config.runtime} needs the {config.runtime} package: pip install {extra}")
    if config.runtime in ("onnxruntime", "openvino") and config.precision == "bf16":
        raise InvalidOptionError(f"--runtime {config.runtime} computes in fp32; with --precision bf16 use torch")
    if config.ray_address is not None and config.engine != "ray":  # --ray-workers may sit in a settings file
        raise InvalidOptionError(f"--ray-address is for --engine ray (the engine is {config.engine})")
    if config.engine == "ray" and importlib.util.find_spec("ray") is None:
        raise InvalidOptionError("--engine ray needs Ray: pip install 'reportgen[ray]'")
    address = config.ray_address
    if address is not None and address != "auto" and not _ray_url(address):
        raise InvalidOptionError(f"--ray-address {address!r} is not auto or ray://HOST:PORT")


def _ray_url(address: str) -> bool:
    """``ray://HOST:PORT`` with a host and a port in 1..65535."""
    try:
        parts = urlsplit(address)
        return parts.scheme == "ray" and bool(parts.hostname) and parts.port is not None and 0 < parts.port
    except ValueError:  # a port that is not a number or out of range
        return False
