"""The command line: flags -> Config -> build_report; the project's errors become one line and exit 2.

Every option is checked before any work: argparse checks the choices, :class:`Config` everything else (its
fields' metadata says what is allowed), then the data folder is checked before it is walked. A rerun whose outputs
are already current (:mod:`reportgen.freshness`) keeps them without importing the pipeline's scientific
libraries; ``--force`` rebuilds.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from . import __version__
from .config import Config, bounds_of, from_text
from .discover import check_data_dir
from .errors import ReportgenError
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
    p.add_argument("data_dir", metavar="DATA_DIR", help=data.metadata["help"])  # Config makes it a Path
    for f in fields(Config):
        meta = f.metadata
        if not meta["cli"]:
            continue
        flags = meta["flags"] or ("--" + f.name.replace("_", "-"),)
        if f.type == "bool" or isinstance(f.default, bool):
            action = "store_false" if meta["negate"] else "store_true"
            p.add_argument(*flags, dest=f.name, action=action, help=meta["help"])
            continue
        choices, bounds, chars = meta["choices"], bounds_of(f.name), meta["max_chars"]
        # No argparse type: config.from_text reads the text in main(), so a bad number gets Config's one-line message.
        p.add_argument(
            *flags,
            dest=f.name,
            default=f.default,
            choices=list(choices()) if callable(choices) else choices,
            metavar=meta["metavar"],
            help=meta["help"] + (f"; {bounds}" if bounds else "") + (f"; at most {chars} characters" if chars else ""),
        )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log details")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar")
    p.add_argument("--force", action="store_true", help="rebuild even when the outputs are current")
    p.add_argument("--version", action="version", version=f"reportgen {__version__}")
    return p


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


COMMANDS = {"layers": layers, "backbones": backbones}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code. ``reportgen layers BACKBONE`` lists a backbone's layers and ``reportgen
    backbones`` the backbones (when no folder of that name is in the way)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in COMMANDS and not Path(argv[0]).is_dir():
        return COMMANDS[argv[0]](argv[1:])
    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        options = {f.name: getattr(args, f.name) for f in fields(Config) if f.metadata["cli"]}
        options = {name: from_text(name, v) if isinstance(v, str) else v for name, v in options.items()}
        config = Config(data_dir=args.data_dir, progress=not args.quiet and sys.stderr.isatty(), **options)
        check_data_dir(config.data_dir)  # before the backbone is resolved (a network probe) and the folder walked
        inputs = fingerprint(config)  # one folder walk, shared by the check and the build
        kept = None if args.force else current_outputs(config, inputs)
        if kept is not None:
            logging.getLogger(__name__).info("nothing changed since %s was written: kept it (--force rebuilds)", kept)
            report = kept
        else:
            from .pipeline import build_report  # the scientific libraries load only when something is built

            report = build_report(config, inputs=inputs).outputs.report
    except ReportgenError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return EXIT_USAGE
    if not args.quiet:
        sys.stderr.write(f"Report: {report}\n")
    return 0
