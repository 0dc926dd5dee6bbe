"""reportgen: cluster a folder of images with a pretrained CNN and write one self-contained HTML report."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .errors import ReportgenError  # noqa: E402

if TYPE_CHECKING:
    from .notebook import Finished, load
    from .pipeline import Result, build_report

__all__ = ["Config", "Finished", "ReportgenError", "Result", "build_report", "load", "__version__"]


def __getattr__(name: str) -> object:
    # The pipeline (and with it scikit-learn, pandas and scipy) loads on first use, so that the CLI can keep
    # current outputs without paying for those imports.
    if name in ("Result", "build_report"):
        from . import pipeline

        return getattr(pipeline, name)
    if name in ("Finished", "load"):
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'reportgen' has no attribute {name!r}")
