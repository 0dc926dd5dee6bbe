"""The CLI's exact error lines and exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code)
    return code, capsys.readouterr().err


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run([str(tmp_path / "nope"), "-o", str(tmp_path / "out")], capsys)
    assert (code, err) == (2, f"Error: data folder '{tmp_path / 'nope'}' does not exist\n")


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, err = _run([str(tmp_path / "empty"), "-q"], capsys)
    assert code == 2
    assert err == (
        f"Error: found no images in '{tmp_path / 'empty'}' (looked for .jpg, .jpeg, .png, .webp, .bmp, .gif, "
        ".tif, .tiff directly inside it or in class folders)\n"
    )


def test_one_image(tmp_path: Path, labeled_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "one").mkdir()
    shutil.copy(labeled_dir / "circles" / "img_0.jpg", tmp_path / "one" / "a.jpg")
    code, err = _run([str(tmp_path / "one"), "-o", str(tmp_path / "o")], capsys)
    assert (code, err) == (2, f"Error: found 1 image in '{tmp_path / 'one'}', need at least 2\n")
    assert not (tmp_path / "o" / "report.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "0"], "Error: --k must be at least 1, got 0\n"),
        (["--k-min", "5", "--k-max", "3"], "Error: --k-min 5 is larger than --k-max 3\n"),
        (["--within-k", "1"], "Error: --within-k must be between 2 and 20, got 1\n"),
        (["--k", "x"], "Error: --k must be a whole number, got 'x'\n"),
    ],
)
def test_bad_option_values(tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run([str(tmp_path), *args], capsys)
    assert (code, err) == (2, message)


def test_unknown_backbone_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run([str(tmp_path), "--backbone", "lenet5"], capsys)
    assert code == 2
    assert err.startswith("Error: --features: unknown backbone 'lenet5'; choose one of: auto, ")
    assert "efficientnet-lite0" in err and "resnet50" in err and err.count("\n") == 1
    code, err = _run([str(tmp_path), "--features", "resnet05"], capsys)
    assert (code, err.count("\n")) == (2, 1) and "did you mean resnet50" in err
    code, err = _run([str(tmp_path), "--features", "efficientnet-lite0@_blocks.10:maxx"], capsys)
    assert code == 2 and err == (
        "Error: --features: unknown pooling 'maxx' in 'efficientnet-lite0@_blocks.10:maxx'; did you mean: max, mean\n"
    )


def test_python_dash_m_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reportgen", str(tmp_path / "missing")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr == f"Error: data folder '{tmp_path / 'missing'}' does not exist\n"


def test_defaults_leave_the_measured_choices_to_the_config() -> None:
    from reportgen.cli import _parser

    args = _parser().parse_args(["data"])
    # None lets Config pick per device and machine (batch 8 on a CPU, 256 on a GPU; workers by core count)
    assert args.batch_size is None and args.workers is None
    assert (args.precision, args.jpeg_decoder, args.device) == ("auto", "auto", "auto")
    assert _parser().parse_args(["data"]).power_norm is True
    assert _parser().parse_args(["data", "--no-power-norm"]).power_norm is False
