"""Settings in a file: ``reportgen init`` writes ``reportgen.toml`` with every option and its default, and
``--config FILE`` reads one (the standard library's ``tomllib``); flags given on the command line win.

The keys are the option names of :class:`~reportgen.config.Config` (``k_max``, ``method``, ``power_norm``...), the
same as the Python API's keywords; the file is checked before any work, each value by the same rules as the flag
(:func:`reportgen.config.check_value`), and an unknown key, a value of the wrong type or a file that is not TOML is
one line naming the file, the key and the value. A relative path in the file is relative to the file's folder, so
that a scheduled job can run from anywhere.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from .config import Config, bounds_of, check_value, flag_of, value_kind
from .errors import InvalidOptionError

FILE_NAME = "reportgen.toml"
HEADER = """\
# reportgen settings. Run: reportgen --config {name}
# Every option is here with its default; a flag on the command line overrides the same setting in this file.
# Lines starting with # are not set. Relative paths are relative to this file's folder.
"""


def settable() -> list[str]:
    """The options a file may set: the data folder and every option the command line has."""
    return [f.name for f in fields(Config) if f.name == "data_dir" or f.metadata["cli"]]


def template(data_dir: str | None, name: str = FILE_NAME) -> str:
    """The text ``reportgen init`` writes: each option with its help, its default, and ``data_dir`` if given."""
    lines = [HEADER.format(name=name)]
    for f in fields(Config):
        if f.name not in settable():
            continue
        meta = f.metadata
        help_text = meta["help"].replace("%(default)s", str(f.default))
        if meta["negate"]:
            help_text = f"{flag_of(f.name)} sets false: {help_text}"
        if bounds := bounds_of(f.name):
            help_text += f"; {bounds}"
        if (choices := meta["choices"]) is not None:
            help_text += "; one of: " + ", ".join(choices() if callable(choices) else choices)
        lines.append(f"# {help_text}")
        value = data_dir if f.name == "data_dir" else f.default
        if value is None:
            lines.append(f"# {f.name} = {_example(f.name)}\n")
        else:
            lines.append(f"{f.name} = {_toml(value)}\n")
    return "\n".join(lines)


def _example(name: str) -> str:
    """A placeholder for an option that is not set by default."""
    kind = value_kind(name)
    return {int: "0", float: "0.0", bool: "false"}.get(kind, '["a", "b"]' if name == "within_classes" else '""')


def _toml(value: Any) -> str:  # noqa: ANN401 - any option's value
    """``value`` as a TOML value (strings escaped as JSON escapes them, which TOML's basic strings accept)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def load(path: Path) -> dict[str, Any]:
    """The options set in the TOML file at ``path``, checked, with relative paths resolved against its folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidOptionError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InvalidOptionError(f"--config {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidOptionError(f"--config {path}: not valid TOML ({exc})") from None
    known = settable()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            near = difflib.get_close_matches(key.replace("-", "_"), known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(near)}?" if near else "; 'reportgen init' writes every key"
            raise InvalidOptionError(f"{path}: unknown key '{key}' = {value!r}{hint}")
        if value_kind(key) is Path and isinstance(value, str) and value and not Path(value).is_absolute():
            if value not in next(f for f in fields(Config) if f.name == key).metadata["keywords"]:
                value = str(path.parent / value)
        try:
            out[key] = check_value(key, value)
        except InvalidOptionError as exc:
            raise InvalidOptionError(f"{path}: key '{key}' = {value!r}: {exc}") from None
    return out
