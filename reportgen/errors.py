"""The project's exceptions: one base class, specific ones also inherit the builtin they resemble."""

from __future__ import annotations


class ReportgenError(Exception):
    """Base class for every error reportgen raises on purpose (the CLI maps it to exit code 2)."""


class DataDirError(ReportgenError, FileNotFoundError):
    """The data folder is missing or is not a folder."""


class NoImagesError(ReportgenError, ValueError):
    """Too few usable images to build a report."""


class InvalidOptionError(ReportgenError, ValueError):
    """An option's value is not allowed (see its field in :mod:`reportgen.config`), or cannot be used with this data."""


class BackboneError(ReportgenError, ValueError):
    """An unknown backbone, or weights that do not fit it."""


class WeightsUnavailableError(ReportgenError, OSError):
    """Pretrained weights are neither given, cached, nor downloadable."""


class DecodeError(ReportgenError, ValueError):
    """One image cannot be used; the message is the reason shown in the report."""


class UnwritableError(ReportgenError, OSError):
    """An output or cache folder that cannot be created or written, a disk without room, or a write that failed;
    ``reason`` is the system's words when there are some."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT (Ctrl-C) or SIGTERM; ``cached`` images of this run are in the cache
    (``None``: the cache is off)."""

    def __init__(self, signum: int, cached: int | None = None) -> None:
        super().__init__(signum, cached)
        self.signum = signum
        self.cached = cached
