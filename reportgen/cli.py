"""The command line: flags -> Config -> build_report; the project's errors become one line and exit 2.

Every option is checked before any work: argparse checks the choices, :class:`Config` everything else (its
fields' metadata says what is allowed), then the data folder is checked before it is walked. A rerun whose outputs
are already current (:mod:`reportgen.freshness`) keeps them without importing the pipeline's scientific
libraries; ``--force`` rebuilds.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

from . import __version__
from .config import Config, bounds_of, from_text
from .discover import check_data_dir
from .errors import Interrupted, InvalidOptionError, ReportgenError, Terminated
from .freshness import current_outputs, fingerprint

EXIT_USAGE = 2
EPILOG = """\
example:
  reportgen photos/ -o out/
    -> out/report.html       the report: one self-contained HTML page
       out/assignments.csv   one row per image: its label, cluster and distance
       out/summary.json      every result in the report, for scripts

A rerun over unchanged images and options keeps the outputs (--force rebuilds).
  reportgen backbones 'tv:*'            lists the backbones --features can take
  reportgen layers efficientnet-lite0   lists the layers of one
  reportgen compare photos/ --features A B --methods kmeans hdbscan --seeds 5
                                        compares feature specs and methods (compare.html)
  reportgen init photos/                writes reportgen.toml, every option with its default
  reportgen diff old-out/ out/          what changed between two runs (diff.html, diff.json)
  reportgen --config reportgen.toml     runs with those settings (flags given here win)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"Error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    """The parser, built from the fields of :class:`Config` (their flags, help, defaults and choices)."""
    p = _Parser(
        prog="reportgen",
        description="Cluster a folder of images and write one self-contained HTML report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = next(f for f in fields(Config) if f.name == "data_dir")
    p.add_argument("data_dir", metavar="DATA_DIR", nargs="?", help=data.metadata["help"] + " (or data_dir in --config)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="read settings from a TOML file ('reportgen init' writes one); flags given here override it",
    )
    _config_arguments(p)
    p.add_argument(
        "--from-compare",
        metavar="FILE",
        help="take --features, --method and --linkage from the best configuration of a compare.json",
    )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log details")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar")
    p.add_argument("--force", action="store_true", help="rebuild even when the outputs are current")
    p.add_argument("--version", action="version", version=f"reportgen {__version__}")
    return p


def _config_arguments(p: argparse.ArgumentParser, skip: frozenset[str] = frozenset(), suppress: bool = False) -> None:
    """One argument per :class:`Config` field shown on the command line (its flags, help, default and choices);
    ``suppress``: no defaults, so that the parsed namespace holds only the options given."""
    for f in fields(Config):
        meta = f.metadata
        if not meta["cli"] or f.name in skip:
            continue
        flags = meta["flags"] or ("--" + f.name.replace("_", "-"),)
        if f.type == "bool" or isinstance(f.default, bool):
            action = "store_false" if meta["negate"] else "store_true"
            extra = {"default": argparse.SUPPRESS} if suppress else {}
            p.add_argument(*flags, dest=f.name, action=action, help=meta["help"], **extra)
            continue
        choices, bounds, chars = meta["choices"], bounds_of(f.name), meta["max_chars"]
        # No argparse type: config.from_text reads the text in main(), so a bad number gets Config's one-line message.
        p.add_argument(
            *flags,
            dest=f.name,
            default=argparse.SUPPRESS if suppress else f.default,
            choices=list(choices()) if callable(choices) else choices,
            metavar=meta["metavar"],
            help=meta["help"] + (f"; {bounds}" if bounds else "") + (f"; at most {chars} characters" if chars else ""),
        )


def _options(args: argparse.Namespace, skip: frozenset[str] = frozenset()) -> dict[str, object]:
    """The Config fields' values from parsed arguments, numbers read from their text (one-line errors)."""
    options = {f.name: getattr(args, f.name) for f in fields(Config) if f.metadata["cli"] and f.name not in skip}
    return {name: from_text(name, v) if isinstance(v, str) else v for name, v in options.items()}


def _given(argv: Sequence[str]) -> set[str]:
    """The :class:`Config` fields given on the command line ``argv`` (they override a --config file)."""
    p = _Parser(add_help=False)
    _config_arguments(p, suppress=True)
    known, _ = p.parse_known_args(argv)
    return set(vars(known))


def _settings(args: argparse.Namespace, argv: Sequence[str]) -> tuple[object, dict[str, object]]:
    """The data folder and the options: a --config file's, then the command line's over them."""
    options = _options(args)
    data_dir: object = args.data_dir
    if args.config:
        from .configfile import load

        path = Path(args.config)
        from_file = load(path)
        data_dir = data_dir if data_dir is not None else from_file.pop("data_dir", None)
        given = _given(argv)
        options |= {k: v for k, v in from_file.items() if k not in given and k != "data_dir"}
        options["config_file"] = path.resolve()
    if data_dir is None:
        raise InvalidOptionError("give the image folder: DATA_DIR, or data_dir in a --config file")
    return data_dir, options


def init(argv: Sequence[str]) -> int:
    """``reportgen init [DATA_DIR]``: write reportgen.toml, every option with its default, for --config."""
    from .configfile import FILE_NAME, template

    p = _Parser(prog="reportgen init", description="Write a settings file for --config: every option, commented, "
                "with its default.")  # fmt: skip
    p.add_argument("data_dir", metavar="DATA_DIR", nargs="?", help="the image folder the file names (optional)")
    p.add_argument("-o", "--out", default=FILE_NAME, metavar="FILE", help="the file to write (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    args = p.parse_args(argv)
    target = Path(args.out)
    if target.exists() and not args.force:
        sys.stderr.write(f"Error: {target} exists; --force overwrites it\n")
        return EXIT_USAGE
    data = None
    if args.data_dir is not None:
        try:
            check_data_dir(Path(args.data_dir))
        except ReportgenError as exc:
            sys.stderr.write(f"Error: {exc}\n")
            return EXIT_USAGE
        data = os.path.relpath(Path(args.data_dir).resolve(), target.resolve().parent)
    try:
        target.write_text(template(data, target.name), encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"Error: cannot write {target}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    sys.stderr.write(f"Wrote {target}: edit it, then run: reportgen --config {target}\n")
    return 0


def layers(argv: Sequence[str]) -> int:
    """``reportgen layers BACKBONE``: print the layers a feature spec can take, with their shapes."""
    p = _Parser(prog="reportgen layers", description="List the layers of a backbone that --features can take.")
    p.add_argument("backbone", metavar="BACKBONE", help="e.g. efficientnet-lite0, tv:vgg16 or timm:xception41")
    args = p.parse_args(argv)
    try:
        from .extract.layers import describe

        sys.stdout.write("\n".join(describe(args.backbone)) + "\n")
    except ReportgenError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return EXIT_USAGE
    return 0


def backbones(argv: Sequence[str]) -> int:
    """``reportgen backbones [PATTERN]``: print the backbone specs --features takes (matching a shell pattern)."""
    p = _Parser(prog="reportgen backbones", description="List the backbones --features can take.")
    p.add_argument("pattern", nargs="?", default="*", help="a shell pattern, e.g. 'tv:*' or 'timm:*xception*'")
    args = p.parse_args(argv)
    from .extract.base import all_backbones

    names = [name for name in all_backbones() if fnmatch.fnmatchcase(name, args.pattern)]
    sys.stdout.write("".join(f"{name}\n" for name in names))
    if not names:
        sys.stderr.write(f"Error: no backbone matches '{args.pattern}'\n")
        return EXIT_USAGE
    return 0


BASELINES = ("pixels", "hog")  # reportgen.extract.baselines' specs, without importing torch here
COMPARE_SKIP = frozenset({"backbone", "method", "out_dir", "title", "max_report_mb", "within_k", "within_classes"})


def compare(argv: Sequence[str]) -> int:
    """``reportgen compare DATA --features A B --methods M N --seeds 5``: compare.html, compare.json, compare.csv."""
    from .cluster import method_names

    p = _Parser(
        prog="reportgen compare",
        description="Cluster a folder with several feature specs and methods over several seeds, score every run "
        "and write compare.html, compare.json and compare.csv.",
        epilog="example:\n  reportgen compare photos/ --features efficientnet-lite0 efficientnet-lite0@_blocks.10:max "
        "--methods kmeans agglomerative hdbscan --seeds 5 -o cmp/\n  reportgen photos/ --from-compare cmp/compare.json"
        "   builds the full report of the best configuration",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder of images: <class>/... subfolders, or flat")
    p.add_argument("-o", "--out", dest="out", default="reportgen-compare", metavar="OUT_DIR",
                   help="output folder (default: %(default)s)")  # fmt: skip
    p.add_argument("--features", nargs="+", default=["auto"], metavar="SPEC",
                   help="feature specs to compare, as --features of a report takes (default: auto)")  # fmt: skip
    p.add_argument("--methods", nargs="+", default=None, metavar="NAME", choices=method_names(),
                   help=f"clustering methods (default: all of {', '.join(method_names())})")  # fmt: skip
    p.add_argument("--seeds", default="3", metavar="N", help="seeds per configuration (default: %(default)s); 1 to 20")
    p.add_argument(
        "--no-baselines",
        action="store_true",
        help=f"leave out the {' and '.join(BASELINES)} baselines (compared by default: they cost almost nothing)",
    )
    _config_arguments(p, skip=COMPARE_SKIP)
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s")
    try:
        seeds = _count("--seeds", args.seeds, 1, 20)
        config = Config(
            data_dir=args.data_dir, progress=not args.quiet and sys.stderr.isatty(), **_options(args, COMPARE_SKIP)
        )
        for spec in args.features:
            replace(config, backbone=spec)  # each spec checked before any work
        check_data_dir(config.data_dir)
        from .compare import run_study, write_compare

        features = list(dict.fromkeys([*args.features, *(() if args.no_baselines else BASELINES)]))
        study = run_study(config, features, args.methods or method_names(),
                          [config.seed + j for j in range(seeds)])  # fmt: skip
        written = write_compare(study, Path(args.out))
    except ReportgenError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return EXIT_USAGE
    if not args.quiet:
        sys.stderr.write(f"{study.recommendation}\nComparison: {written['compare.html']}\n")
    return 0


def _count(flag: str, text: str, low: int, high: int) -> int:
    """A whole number from ``text`` between ``low`` and ``high``, else a one-line error naming ``flag``."""
    try:
        value = int(text)
    except ValueError:
        raise InvalidOptionError(f"{flag} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise InvalidOptionError(f"{flag} must be between {low} and {high}, got {value}")
    return value


def _recommended(path: Path, argv: Sequence[str]) -> dict[str, object]:
    """--features, --method and --linkage of the best configuration in the compare.json at ``path``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidOptionError(f"--from-compare {path}: cannot read it ({exc.__class__.__name__})") from None
    cells = data.get("cells", []) if isinstance(data, dict) else []
    cell = next((c for c in cells if isinstance(c, dict) and c.get("name") == data.get("best")), None)
    if cell is None:
        raise InvalidOptionError(f"--from-compare {path}: not a compare.json (it names no best configuration)")
    given = sorted({"--features", "--backbone", "--method", "--linkage"} & {a.split("=")[0] for a in argv})
    if given:
        raise InvalidOptionError(f"--from-compare sets {', '.join(given)} itself; give one or the other")
    return {"backbone": cell["features"], "method": cell["method"], "linkage": data.get("linkage", "ward")}


def diff(argv: Sequence[str]) -> int:
    """``reportgen diff OLD_OUT NEW_OUT``: what changed between two runs, as diff.html and diff.json."""
    p = _Parser(
        prog="reportgen diff",
        description="What changed between two runs' outputs: images added, removed, changed and moved, clusters new, "
        "gone, merged or split, K and the scores (diff.html, diff.json).",
    )
    p.add_argument("old", metavar="OLD_OUT", help="the out folder (or a history/ entry) of the earlier run")
    p.add_argument("new", metavar="NEW_OUT", help="the out folder (or a history/ entry) of the later run")
    p.add_argument("-o", "--out", default="reportgen-diff", metavar="DIR", help="where to write (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        from .diff import write_diff

        changes, page = write_diff(Path(args.old), Path(args.new), Path(args.out))
    except ReportgenError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return EXIT_USAGE
    counts = ", ".join(f"{v if v is not None else 'n/a'} {k.replace('_', ' ')}" for k, v in changes.counts.items())
    sys.stderr.write(f"{counts}\nDiff: {page}\n")
    return 0


COMMANDS = {"layers": layers, "backbones": backbones, "compare": compare, "init": init, "diff": diff}


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code. ``reportgen layers BACKBONE`` lists a backbone's layers and ``reportgen
    backbones`` the backbones (when no folder of that name is in the way). Ctrl-C (SIGINT) and SIGTERM stop any
    command with one line and exit code 128 + the signal's number."""
    argv = list(sys.argv[1:] if argv is None else argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None  # SIGTERM stops as Ctrl-C does
    try:
        if argv[:1] and argv[0] in COMMANDS and not Path(argv[0]).is_dir():
            return COMMANDS[argv[0]](argv[1:])
        return _run(argv)
    except KeyboardInterrupt as exc:
        sys.stderr.write("interrupted\n")
        return 128 + Interrupted.of(exc).signum
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str]) -> int:
    """``reportgen DATA_DIR [options]``: build the report, or keep the outputs when nothing changed."""
    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)
    for noisy in ("matplotlib", "PIL", "torch"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    config = None
    try:
        data_dir, options = _settings(args, argv)
        if args.from_compare:
            options |= _recommended(Path(args.from_compare), argv)
        config = Config(data_dir=data_dir, progress=not args.quiet and sys.stderr.isatty(), **options)  # type: ignore[arg-type]
        check_data_dir(config.data_dir)  # before the backbone is resolved (a network probe) and the folder walked
        inputs = fingerprint(config)  # one folder walk, shared by the check and the build
        kept = None if args.force else current_outputs(config, inputs)
        if kept is None:
            from .pipeline import build_report  # the scientific libraries load only when something is built

            report = build_report(config, inputs=inputs, force=args.force).outputs.report
    except ReportgenError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # at any stage: what the cache keeps, in one line
        stopped = Interrupted.of(exc)
        sys.stderr.write(stopped.line(config is None or config.use_cache) + "\n")
        return 128 + stopped.signum
    if kept is not None:  # one line, even with -q: a scheduled job's log says the run was a no-op
        sys.stderr.write(f"Unchanged since the last run: kept {kept} (--force rebuilds)\n")
    elif not args.quiet:
        sys.stderr.write(f"Report: {report}\n")
    return 0
