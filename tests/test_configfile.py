"""Settings in a file: ``reportgen init`` writes every option, ``--config`` reads it, flags override it, and a bad
file is one line naming the file, the key and the value."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from reportgen.cli import main
from reportgen.config import Config
from reportgen.configfile import load, settable


def test_init_writes_every_option_with_its_default(tmp_path: Path, labeled_dir: Path, capsys) -> None:  # noqa: ANN001
    target = tmp_path / "settings" / "reportgen.toml"
    target.parent.mkdir()
    assert main(["init", str(labeled_dir), "-o", str(target)]) == 0
    assert "reportgen --config" in capsys.readouterr().err
    text = target.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    defaults = {f.name: f.default for f in fields(Config)}
    for name in settable():
        if name == "data_dir":
            assert (target.parent / data[name]).resolve() == labeled_dir.resolve()  # relative to the file
        elif defaults[name] is None:
            assert f"# {name} = " in text and name not in data  # shown, not set
        else:
            expected = str(defaults[name]) if isinstance(defaults[name], Path) else defaults[name]
            assert data[name] == expected, name
    assert "progress" not in data and "config_file" not in data  # not options a user sets
    assert load(target)["k_max"] == 15  # what it writes, it reads
    assert main(["init", str(labeled_dir), "-o", str(target)]) == 2  # never overwritten silently
    assert "--force overwrites it" in capsys.readouterr().err
    assert main(["init", "-o", str(target), "--force"]) == 0
    assert "data_dir" not in tomllib.loads(target.read_text(encoding="utf-8"))


def test_a_config_file_round_trips_and_flags_override_it(tmp_path: Path, labeled_dir: Path) -> None:
    target = tmp_path / "reportgen.toml"
    assert main(["init", str(labeled_dir), "-o", str(target)]) == 0
    text = target.read_text(encoding="utf-8").replace("k_max = 15", "k_max = 5").replace('method = "kmeans"',
                                                                                         'method = "gmm"')  # fmt: skip
    text = text.replace('out_dir = "reportgen-out"', 'out_dir = "nightly"')
    text = text.replace('backbone = "auto"', 'backbone = "efficientnet-lite0"')
    text = text.replace("\nexplain = true", "\nexplain = false")
    target.write_text(text + f'\ncache_dir = "{tmp_path / "cache"}"\n', encoding="utf-8")
    assert main(["--config", str(target), "-q", "--method", "kmeans"]) == 0
    summary = json.loads((tmp_path / "nightly" / "summary.json").read_text(encoding="utf-8"))  # beside the file
    parameters = summary["parameters"]
    assert parameters["k_max"] == 5 and summary["k_selection"]["k"] == [2, 3, 4, 5]  # from the file
    assert parameters["method"] == "kmeans"  # the command line wins
    assert parameters["explain"] is False and parameters["config_file"] == str(target.resolve())
    assert main(["--config", str(target), "-q", "--method", "kmeans"]) == 0  # same settings: the outputs are kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k_maxx = 5\n", "unknown key 'k_maxx' = 5; did you mean k_max?"),
        ('k_max = "five"\n', "key 'k_max' = 'five': --k-max must be a whole number, got 'five'"),
        ("k_max = 1\n", "key 'k_max' = 1: --k-max must be at least 2, got 1"),
        ('power_norm = "no"\n', "key 'power_norm' = 'no': power_norm must be True or False"),
        ('method = "kmeanz"\n', "key 'method' = 'kmeanz': --method must be"),
        ("k_max = \n", "not valid TOML"),
        ("seed = 1979-05-27\n", "key 'seed' = datetime.date(1979, 5, 27): --seed must be a whole number"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path: Path, labeled_dir: Path, capsys, text: str, message: str) -> None:  # noqa: ANN001
    target = tmp_path / "bad.toml"
    target.write_text(f'data_dir = "{labeled_dir}"\n' + text, encoding="utf-8")
    assert main(["--config", str(target), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "bad.toml" in err
    assert not (tmp_path / "out").exists()  # checked before any work


def test_the_image_folder_comes_from_the_command_line_or_the_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["-o", str(tmp_path / "out")]) == 2
    assert "give the image folder: DATA_DIR, or data_dir in a --config file" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: --config ") and "missing.toml: cannot read it" in err
