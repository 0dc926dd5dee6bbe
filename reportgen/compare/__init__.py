"""``reportgen compare``: feature specs x clustering methods x seeds, scored, compared and written as
compare.html, compare.json and compare.csv (:mod:`.study` says how)."""

from __future__ import annotations

from .study import Study, run_study
from .write import write_compare

__all__ = ["Study", "run_study", "write_compare"]
