"""The project's exceptions: one base class, specific ones also inherit the builtin they resemble."""

from __future__ import annotations

import signal


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


class EngineError(ReportgenError, RuntimeError):
    """The Ray engine cannot start, connect or finish (``--engine ray``)."""


class DecodeError(ReportgenError, ValueError):
    """One image cannot be used; the message is the reason shown in the report."""


class UnwritableError(ReportgenError, OSError):
    """An output or cache folder that cannot be created or written, a disk without room, or a write that failed;
    ``reason`` is the system's words when there are some."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises :class:`KeyboardInterrupt` (the CLI installs the handler)."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT (Ctrl-C) or SIGTERM (``signum``); ``cached`` of its images are in the cache
    (``None``: it stopped before any image was embedded)."""

    def __init__(self, signum: int, cached: int | None = None) -> None:
        super().__init__(signum, cached)
        self.signum, self.cached = signum, cached

    @classmethod
    def of(cls, exc: KeyboardInterrupt, cached: int | None = None) -> Interrupted:
        """``exc`` with what the run leaves in the cache (an :class:`Interrupted` already says it)."""
        if isinstance(exc, Interrupted):
            return exc
        return cls(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT, cached)

    def line(self, use_cache: bool = True) -> str:
        """What the CLI says, in one line (``use_cache``: the run caches its embeddings)."""
        if not use_cache:
            return "interrupted; nothing is kept with --no-cache, rerun to start over"
        if self.cached is None:
            return "interrupted before any image was embedded; rerun to start"
        return f"interrupted; {self.cached} image{'s' if self.cached != 1 else ''} cached, rerun to continue"
