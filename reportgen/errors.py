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
