"""Every option is checked before any work: one line naming the flag, exit 2; the Python API refuses the same values.

The walk over ``dataclasses.fields(Config)`` covers a new option automatically: it gets bad values by its kind
(number, choice, path, text, class names), and a kind this file does not know fails the walk.
"""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import reportgen
from reportgen import cli
from reportgen.config import SEED_MAX, Config, bounds_of, flag_of, split_names, value_kind
from reportgen.errors import InvalidOptionError, ReportgenError

CLI_FIELDS = [f for f in dataclasses.fields(Config) if f.metadata["cli"]]


def _bad_values(f: dataclasses.Field[Any]) -> tuple[list[str], list[object]]:
    """Command-line texts and Python values that must be refused for the field ``f``.

    ``{file}``, ``{folder}`` and ``{missing}`` in a string stand for an existing file, an existing folder and a
    path that does not exist (filled in by :func:`_fill`).
    """
    meta, kind = f.metadata, value_kind(f.name)
    if meta["choices"] is not None:  # None is "not set" for a choice that is off by default
        return ["no-such-choice", ""], ["no-such-choice", 3, *([None] if f.default is not None else [])]
    if kind is bool:
        return [], ["yes", 1, None]  # on the command line a flag without a value: nothing to get wrong
    if kind is int or kind is float:
        lo, above, hi = meta["minimum"], meta["above"], meta["maximum"]
        assert bounds_of(f.name), f"{flag_of(f.name)} is a number without a stated range: give it one"
        out_of_range = [lo - 1] if lo is not None else [above]
        out_of_range += [hi + 1] if hi is not None else []
        if kind is int:
            texts = ["x", "1.5", "", "1e3", *(str(v) for v in out_of_range)]
            return texts, ["3", 1.5, True, float("nan"), *out_of_range]
        texts = ["x", "", "nan", "inf", "-inf", *(str(v) for v in out_of_range)]
        if above == 0:
            texts.append("-0")
        return texts, ["3", True, float("nan"), math.inf, -math.inf, *(float(v) for v in out_of_range)]
    if kind is Path:
        if meta["path"] == "file":
            return ["{missing}", "{folder}", ""], ["{missing}", "{folder}", 3, ""]
        assert meta["path"] in ("folder", "writable folder"), f"{f.name}: path={meta['path']!r} needs bad values here"
        return ["{file}", "{file}/sub", ""], ["{file}", "{file}/sub", 3, ""]
    if kind is split_names:
        return [",", " , "], [",", [], ["a", ""], 3]
    if kind is str:
        long = "x" * (meta["max_chars"] + 1) if meta["max_chars"] else None
        return ["", "   ", *([long] if long else [])], ["", "  ", 3, *([long] if long else [])]
    pytest.fail(f"{f.name} holds {kind!r}: this walk has no bad values for that kind yet; add them")


CLI_CASES = [(f.name, text) for f in CLI_FIELDS for text in _bad_values(f)[0]]
API_CASES = [(f.name, value) for f in dataclasses.fields(Config) if f.name != "data_dir" for value in _bad_values(f)[1]]


def _fill(value: object, root: Path) -> object:
    """``value`` with ``{file}``, ``{folder}`` and ``{missing}`` replaced by real paths under ``root``."""
    if not isinstance(value, str) or "{" not in value:
        return value
    (root / "a_file").write_text("not a folder")
    (root / "a_folder").mkdir(exist_ok=True)
    return value.format(file=root / "a_file", folder=root / "a_folder", missing=root / "missing.pth")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse's own errors (the choices)
        code = int(exc.code)
    return code, capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the CLI gets as far as walking the data folder (let alone decoding an image)."""

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run started before every option was checked")

    monkeypatch.setattr(cli, "fingerprint", started)
    monkeypatch.setattr(cli, "current_outputs", started)


def test_every_option_is_walked() -> None:
    walked = {name for name, _ in CLI_CASES}
    flags_without_values = {f.name for f in CLI_FIELDS if value_kind(f.name) is bool}
    assert walked | flags_without_values == {f.name for f in CLI_FIELDS}
    assert {"seed", "k", "max_report_mb", "out_dir", "cache_dir", "weights", "title", "within_classes"} <= walked


@pytest.mark.parametrize(("name", "text"), CLI_CASES, ids=[f"{flag_of(n)}={t!r}"[:40] for n, t in CLI_CASES])
@pytest.mark.usefixtures("no_work")
def test_the_cli_refuses_a_bad_value_in_one_line_before_any_work(
    name: str, text: str, labeled_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    flag = flag_of(name)
    # --flag=value: a value that starts with '-' (-1, -inf) is the option's value, not another flag
    args = [str(labeled_dir), "-o", str(out), "--cache-dir", str(cache), "-q", f"{flag}={_fill(text, tmp_path)}"]
    code, err = _run(args, capsys)
    assert code == 2
    assert err.startswith("Error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert flag in err
    assert not out.exists() and not cache.exists()


@pytest.mark.parametrize(("name", "value"), API_CASES, ids=[f"{n}={v!r}"[:40] for n, v in API_CASES])
def test_the_python_api_refuses_the_same_values(
    name: str, value: object, labeled_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = _fill(value, tmp_path)
    with pytest.raises(InvalidOptionError) as refused:
        Config(labeled_dir, **{name: value})
    assert isinstance(refused.value, ReportgenError) and isinstance(refused.value, ValueError)
    message = str(refused.value)
    assert "\n" not in message
    f = next(f for f in dataclasses.fields(Config) if f.name == name)
    assert (flag_of(name) if f.metadata["cli"] and value_kind(name) is not bool else name) in message

    from reportgen import pipeline

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("build_report started before checking its options")

    monkeypatch.setattr(pipeline, "discover", started)
    monkeypatch.setattr(pipeline, "extract", started)
    with pytest.raises(InvalidOptionError, match=re.escape(message)):
        reportgen.build_report(labeled_dir, **({"cache_dir": tmp_path / "cache"} | {name: value}))
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("value", [3, "", None])
def test_the_python_api_refuses_a_data_folder_that_is_not_a_path(value: object) -> None:
    with pytest.raises(InvalidOptionError, match=re.escape(f"data_dir must be a path, got {value!r}")):
        Config(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed=-1"], "--seed must be between 0 and 2147483647, got -1"),
        (["--seed", str(2**32 - 1)], f"--seed must be between 0 and 2147483647, got {2**32 - 1}"),
        (["--max-report-mb", "nan"], "--max-report-mb must be a finite number, got nan"),
        (["--max-report-mb", "inf"], "--max-report-mb must be a finite number, got inf"),
        (["--max-report-mb", "0"], "--max-report-mb must be greater than 0 and at most 1000, got 0.0"),
        (["--max-report-mb=-0"], "--max-report-mb must be greater than 0 and at most 1000, got -0.0"),
        (["--k", "1.5"], "--k must be a whole number, got '1.5'"),
        (
            ["--k-min", "1"],
            "--k-min must be at least 2, got 1 (the sweep compares 2 or more clusters; --k 1 asks for one cluster)",
        ),
        (["--k-max", "1"], "--k-max must be at least 2, got 1"),
        (["--within-k", "40"], "--within-k must be between 2 and 20, got 40"),
        (["--pca-dims", "5000"], "--pca-dims must be between 1 and 4096, got 5000"),
        (["--batch-size", "0"], "--batch-size must be between 1 and 4096, got 0"),
        (["--workers", "65"], "--workers must be between 0 and 64, got 65"),
        (["--title", ""], "--title must be non-blank text, got ''"),
        (["--title", "t" * 201], "--title must be at most 200 characters, got 201"),
        (["--within-classes", ","], "--within-classes must be a list of one class name or more, none blank, got ','"),
        (["--k-min", "5", "--k-max", "3"], "--k-min 5 is larger than --k-max 3"),
    ],
)
@pytest.mark.usefixtures("no_work")
def test_messages_name_the_option_the_value_and_what_is_allowed(
    args: list[str], message: str, labeled_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run([str(labeled_dir), *args], capsys) == (2, f"Error: {message}\n")


@pytest.mark.usefixtures("no_work")
def test_paths_are_checked_up_front(tmp_path: Path, labeled_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    data = str(labeled_dir)
    assert _run([data, "-o", str(a_file)], capsys) == (2, f"Error: --out '{a_file}' is a file, not a folder\n")
    expected = f"Error: --out '{a_file / 'out'}' cannot be created: '{a_file}' is not a folder\n"
    assert _run([data, "-o", str(a_file / "out")], capsys) == (2, expected)
    assert _run([data, "--cache-dir", str(a_file)], capsys) == (
        2,
        f"Error: --cache-dir '{a_file}' is a file, not a folder\n",
    )
    missing = tmp_path / "missing.pth"
    assert _run([data, "--weights", str(missing)], capsys) == (2, f"Error: --weights file '{missing}' does not exist\n")
    assert _run([data, "--weights", str(tmp_path)], capsys) == (2, f"Error: --weights '{tmp_path}' is not a file\n")
    # the data folder too, before the backbone is resolved (auto may probe the network) or the folder walked
    assert _run([str(tmp_path / "nope")], capsys) == (2, f"Error: data folder '{tmp_path / 'nope'}' does not exist\n")
    assert _run([""], capsys) == (2, "Error: data_dir must be a path, got ''\n")


def test_allowed_values_and_legitimate_combinations_pass(labeled_dir: Path, tmp_path: Path) -> None:
    for f in CLI_FIELDS:
        meta = f.metadata
        if value_kind(f.name) in (int, float):
            for bound in (meta["minimum"], meta["maximum"]):
                if bound is not None:
                    assert getattr(Config(labeled_dir, **{f.name: bound}), f.name) == bound
    assert Config(labeled_dir, k=1).k == 1  # one cluster is a legitimate request (only a sweep needs two)
    assert Config(labeled_dir, k=3, k_min=2, k_max=5).k == 3  # --k with a sweep range: the sweep still runs
    assert Config(labeled_dir, max_report_mb=5).max_report_mb == 5.0  # a whole number is a number
    assert Config(labeled_dir, max_report_mb=0.01).max_report_mb == 0.01
    assert Config(labeled_dir, within_classes="a, b,a").within_classes == ("a", "b")  # the CLI's form, once each
    assert Config(labeled_dir, out_dir=tmp_path / "new" / "deeper").out_dir == tmp_path / "new" / "deeper"
    assert Config(labeled_dir, weights=str(labeled_dir / "circles" / "img_0.jpg")).weights.is_file()
    assert Config(labeled_dir, title="t" * 200).title == "t" * 200
    assert Config(Path("/unused")).data_dir == Path("/unused")  # the folder itself is discovery's to check


def test_a_refused_option_loads_no_scientific_library(tmp_path: Path) -> None:
    probe = (
        "import sys; from reportgen.cli import main; assert main(sys.argv[1:]) == 2; "
        "print(sorted({'sklearn', 'torch', 'pandas', 'scipy', 'matplotlib'} & set(sys.modules)))"
    )
    for args in ([str(tmp_path), "--seed=-1"], [str(tmp_path), "--max-report-mb", "nan"], [str(tmp_path / "no")]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.stdout.strip() == "[]", done.stderr
        assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1


def test_help_ends_with_an_example_and_the_three_outputs() -> None:
    text = cli._parser().format_help()
    tail = text[text.index("example:") :]
    assert "reportgen photos/ -o out/" in tail
    for name in ("out/report.html", "out/assignments.csv", "out/summary.json"):
        assert name in tail
    flat = " ".join(text.split())
    assert f"between 0 and {SEED_MAX}" in flat and "greater than 0 and at most 1000" in flat
