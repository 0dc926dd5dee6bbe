"""Reruns over an unchanged folder: keep the outputs when they were built from exactly these inputs.

A scheduled rerun over a folder that has not changed should not rebuild anything. Every run writes, beside
its outputs, a state file (:data:`STATE_FILE`, not part of the public outputs) with a **fingerprint** of what
the outputs depend on and the SHA-256 of report.html, assignments.csv and summary.json. A later run with the
same fingerprint, whose out folder still holds those exact files, keeps them (``--force`` rebuilds anyway).
The fingerprint covers:

* every file under the data folder (path, size and modification time, as ``make`` and ``rsync`` judge change;
  hidden files are ignored, as discovery ignores them);
* every option that changes the result (not ``--workers``, ``--batch-size``, the cache folder or progress
  bars: the tests show the outputs do not depend on them);
* the backbone and weights the run would use (``auto`` is resolved the way the extract stage resolves it);
* reportgen's own code and templates, and the versions of the libraries that shape the result.

This module imports no scientific library, so a rerun that keeps its outputs costs a folder walk and a few
hashes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from importlib import metadata
from pathlib import Path

from .config import Config, options_shaping_outputs
from .errors import InvalidOptionError
from .extract.stack import resolve_stack
from .fsutil import STATE_FILE, is_own, own_folders, template_dir

log = logging.getLogger(__name__)

FORMAT = 2  # 2: the state moved out of summary.json into its own file
VERSIONED_PACKAGES = (
    "reportgen", "torch", "torchvision", "numpy", "scikit-learn", "kneed", "pandas", "Pillow", "captum",
    "onnxruntime", "openvino",  # the --runtime choices: they compute the features of a run that uses them
)  # fmt: skip
OUTPUTS = ("report.html", "assignments.csv", "summary.json")  # what the state must vouch for, all of them


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the result."""
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def fingerprint(config: Config) -> str:
    """A hex digest of everything the outputs of ``config`` depend on (see the module docstring)."""
    options = {name: str(getattr(config, name)) for name in options_shaping_outputs()}
    features = resolve_stack(config.backbone, config.weights, config.offline)
    parts = {
        "format": FORMAT,
        "options": options,
        "data_dir": str(config.data_dir.resolve()),
        "backbone": [features.spec, features.weights_id],
        "code": _code_digest(),
        "versions": versions(),
        "files": _file_states(config.data_dir, own_folders(config.data_dir, config.out_dir, config.resolved_cache_dir)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def state(inputs: str, files: dict[str, bytes], data_dir: Path | None = None) -> bytes:
    """The state file's content for outputs ``files`` (name -> bytes) built from ``inputs`` over the folder
    ``data_dir`` (recorded absolute: :func:`reportgen.load` reads the images back from it)."""
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    record = {"format": FORMAT, "fingerprint": inputs, "output_sha256": digests}
    if data_dir is not None:
        record["data_dir"] = str(data_dir.resolve())
    return json.dumps(record, indent=2).encode("utf-8")


def check_out_dir(config: Config, force: bool) -> str:
    """Refuse (one line) an out folder whose outputs were built from another data folder, unless ``force``: a
    scheduled job pointed at the wrong folder must not overwrite another dataset's report and history. Returns
    what the out folder holds: ``"same"`` (a run of this data folder: the run it replaces is compared with it and
    lends it its cluster ids), ``"other"`` (another data folder's run, replaced with ``force``) or ``"none"``."""
    recorded = recorded_data_dir(config.out_dir)
    if recorded is None:
        return "none"
    if recorded == config.data_dir.resolve():
        return "same"
    if not force:
        raise InvalidOptionError(
            f"'{config.out_dir}' holds the report of another data folder, '{recorded}'; choose another --out, "
            "or --force to replace it"
        )
    return "other"


def recorded_data_dir(out: Path) -> Path | None:
    """The data folder the outputs in ``out`` were built from, as their state file records it, or ``None``."""
    try:
        recorded = json.loads((out / STATE_FILE).read_text(encoding="utf-8")).get("data_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(recorded) if isinstance(recorded, str) else None


def current_outputs(config: Config, inputs: str) -> Path | None:
    """The out folder's report when it was built from exactly ``inputs`` (``fingerprint(config)``), else ``None``.

    ``None`` also when the cache is off (``--no-cache`` asks for a full rebuild), when the state file is missing
    or unreadable, or when an output it names is missing or differs from what that run wrote.
    """
    if not config.use_cache:
        return None
    out = config.out_dir
    try:
        recorded = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
        digests = recorded["output_sha256"]
        if recorded["format"] != FORMAT or not isinstance(digests, dict) or not digests:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if recorded["fingerprint"] != inputs:
        log.debug("inputs changed since the report in %s was written", out)
        return None
    for name in OUTPUTS:  # only these: a state file edited to name other files vouches for nothing else
        try:
            data = (out / name).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != digests.get(name):
            log.info("%s differs from what the last run wrote: building again", out / name)
            return None
    return out / "report.html"


def _code_digest() -> str:
    h = hashlib.sha256()
    package = Path(__file__).parent
    for folder, pattern in ((package, "**/*.py"), (template_dir(), "**/*")):
        for path in sorted(folder.glob(pattern)):
            if path.is_file():
                h.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0" + path.read_bytes())
    return h.hexdigest()


def _file_states(root: Path, own: frozenset[str]) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every non-hidden file under ``root``, following links once, outside
    the folders of reportgen's own files (``own``, :func:`fsutil.is_own`): discovery skips them too."""
    states: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_own(os.path.join(folder, d), own))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:  # a broken link or an unreadable entry: its presence still counts
                states.append((os.path.relpath(path, root), -1, -1))
                continue
            states.append((os.path.relpath(path, root), st.st_size, st.st_mtime_ns))
    return states
