"""How a :class:`~reportgen.config.Config` field describes itself: its CLI flag, help, bounds and kind.

One source for every option: the CLI builds its parser from these, ``Config`` checks values against them, the
rerun fingerprint reads which options shape the outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import field
from typing import Any


def option(
    default: Any,
    help: str,  # noqa: A002 - argparse's word
    *,
    flags: Sequence[str] = (),
    metavar: str | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    why: str | None = None,
    max_chars: int | None = None,
    path: str | None = None,
    keywords: Sequence[str] = (),
    cli_type: Callable[[str], Any] | None = None,
    negate: bool = False,
    cli: bool = True,
    recorded: bool = True,
    shapes_outputs: bool = True,
    shapes_clusters: bool = False,
) -> Any:
    """A Config field with its CLI description.

    Parameters
    ----------
    default : the field's default (also the CLI's).
    help : the CLI help text; ``%(default)s`` is filled in by argparse.
    flags : the CLI flags (default ``--<name with dashes>``).
    metavar : as in argparse.
    cli_type : the value's kind when the default does not show it: ``int``, ``float``, ``Path``, :func:`split_names`.
    choices : allowed values, or a function returning them (a registry's names, read when the parser is built).
    minimum, maximum : the smallest and largest allowed values (numbers; ``None`` is always allowed for optional
        numbers, and a float must also be finite).
    above : values must be greater than this (an exclusive lower bound).
    why : a reason added to the out-of-range message when the bound is not obvious.
    max_chars : for text, its largest length (text that is given must not be blank).
    path : ``"file"`` (an existing file), ``"folder"`` (a folder, or a path where one can be made) or
        ``"writable folder"`` (the same, and writable: the outputs go there).
    keywords : words a path option also takes as themselves (``--weights random``).
    negate : a boolean option whose flag turns it off (``--no-cache`` sets ``use_cache=False``).
    cli : ``False`` for fields the CLI sets itself (``progress``) or as a positional argument.
    recorded : listed in summary.json ``parameters``.
    shapes_outputs : the outputs can depend on it, so the rerun fingerprint covers it (tests check that
        ``workers`` and ``batch_size`` do not change the outputs).
    shapes_clusters : a cluster setting: a rerun keeps the last run's cluster ids only when every one is the same
        (:mod:`reportgen.identity`).
    """
    meta = {name: value for name, value in locals().items() if name != "default"}  # every argument, by name
    meta["flags"] = tuple(flags)
    return field(default=default, metadata=meta)
