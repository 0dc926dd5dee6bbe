"""reportgen: cluster a folder of images with a pretrained CNN and write one self-contained HTML report."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .errors import ReportgenError  # noqa: E402
from .pipeline import Result, build_report  # noqa: E402

__all__ = ["Config", "ReportgenError", "Result", "build_report", "__version__"]
