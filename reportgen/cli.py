"""The command line: flags -> Config -> build_report; the project's errors become one line and exit 2.

A rerun whose outputs are already current (:mod:`reportgen.freshness`) keeps them without importing the
pipeline's scientific libraries; ``--force`` rebuilds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .backbones import BACKBONES
from .config import DEFAULT_OUT_DIR, Config
from .errors import ReportgenError
from .freshness import current_outputs, fingerprint

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"Error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="reportgen", description="Cluster a folder of images and write one self-contained HTML report.")
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="folder of images: <class>/... subfolders, or flat")
    p.add_argument(
        "-o",
        "--out",
        dest="out_dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        metavar="OUT_DIR",
        help=f"output folder (default: ./{DEFAULT_OUT_DIR})",
    )
    p.add_argument(
        "--backbone",
        default="auto",
        choices=["auto", *BACKBONES],
        help="feature extractor (default: auto = resnet50 if its weights are available, else efficientnet-lite0)",
    )
    p.add_argument("--weights", type=Path, metavar="FILE", help="state-dict file for the backbone")
    p.add_argument("--k", type=int, metavar="N", help="use N global clusters instead of choosing K")
    p.add_argument("--k-min", type=int, default=2, metavar="N", help="smallest K tried (default 2)")
    p.add_argument(
        "--k-max", type=int, default=15, metavar="N", help="largest K tried (default 15, capped by the data)"
    )
    p.add_argument("--within-k", type=int, default=2, metavar="N", help="sub-clusters per class (default 2)")
    p.add_argument("--within-classes", metavar="A,B,...", help="classes to split (default: every class)")
    p.add_argument(
        "--pca-dims", type=int, default=50, metavar="N", help="PCA components (default 50, capped by the data)"
    )
    p.add_argument(
        "--no-power-norm",
        dest="power_norm",
        action="store_false",
        help="skip the signed square root before L2-normalising (the classic lab's plain L2 + PCA)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the model runs (default auto)"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="forward-pass arithmetic (default auto: bf16 on a GPU or a CPU with bf16 instructions, else fp32)",
    )
    p.add_argument(
        "--jpeg-decoder",
        default="auto",
        choices=["auto", "pillow", "torchvision"],
        help="who decodes JPEGs (default auto: torchvision on the GPU when the model runs there, else Pillow)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="images per forward pass (default: 8 on CPU, 256 on GPU)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="decoding processes (default: 0 on 2 cores or fewer, else up to 4; 0 = in-process)",
    )
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="embedding cache (default: ~/.cache/reportgen)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument("--title", help="report title (default: from the folder name)")
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument(
        "--max-report-mb",
        type=float,
        default=15.0,
        metavar="MB",
        help="size budget of report.html; thumbnails shrink to fit (default 15)",
    )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log details")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bar")
    p.add_argument("--force", action="store_true", help="rebuild even when the outputs are current")
    p.add_argument("--version", action="version", version=f"reportgen {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        config = Config(
            data_dir=args.data_dir,
            out_dir=args.out_dir,
            backbone=args.backbone,
            weights=args.weights,
            k=args.k,
            k_min=args.k_min,
            k_max=args.k_max,
            within_k=args.within_k,
            within_classes=_split_names(args.within_classes),
            pca_dims=args.pca_dims,
            power_norm=args.power_norm,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
            jpeg_decoder=args.jpeg_decoder,
            batch_size=args.batch_size,
            workers=args.workers,
            cache_dir=args.cache_dir,
            use_cache=not args.no_cache,
            title=args.title,
            offline=args.offline,
            max_report_mb=args.max_report_mb,
            progress=not args.quiet and sys.stderr.isatty(),
        )
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


def _split_names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(name.strip() for name in value.split(",") if name.strip())
