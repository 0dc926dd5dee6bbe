"""How records become JSON: the one generic encoder of summary.json, and the field rules it reads.

A record is a frozen dataclass. Its fields' metadata say how it is written:

* ``json: False`` leaves the field out (arrays and indices the page needs, the CSV's columns);
* ``key: "name"`` writes it under another key (``name`` is taken by Python, ``class`` is a keyword);
* ``flatten: True`` merges a sub-record's keys into its parent (summary.json's top level is flat);
* ``by: "attr"`` writes a sequence of records as an object keyed by each one's ``attr``;
* a class attribute ``JSON_PROPERTIES`` names properties written after the fields.

Floats are rounded to 6 decimals; NaN and infinities become ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field, fields, is_dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

DIGITS = 6


def no_json(**kwargs: Any) -> Any:
    """A field left out of summary.json."""
    return field(metadata={"json": False}, **kwargs)


def keyed_by(attr: str) -> Any:
    """A sequence-of-records field written as an object keyed by each record's ``attr``."""
    return field(metadata={"by": attr})


def encode(value: Any) -> Any:
    """JSON-ready data for a record, by the rules in this module's docstring."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            meta = f.metadata
            if meta.get("json", True) is False:
                continue
            item = getattr(value, f.name)
            if meta.get("by") and item is not None:
                encoded = {str(getattr(r, meta["by"])): _without(encode(r), meta["by"]) for r in item}
            else:
                encoded = encode(item)
            if meta.get("flatten"):
                out.update(encoded)
            else:
                out[meta.get("key", f.name)] = encoded
        for name in getattr(value, "JSON_PROPERTIES", ()):
            out[name] = encode(getattr(value, name))
        return out
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        return [encode(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), DIGITS) if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return value.as_posix()
    return value


def _without(encoded: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in encoded.items() if k != key}
