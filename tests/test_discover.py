from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_image

from reportgen.config import Config
from reportgen.discover import discover
from reportgen.errors import DataDirError, NoImagesError


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_image("circles", seed=len(str(path))).save(path)


def test_labeled_folders_give_classes_sorted_paths_and_nested_files(tmp_path: Path) -> None:
    _img(tmp_path / "dogs" / "b.jpg")
    _img(tmp_path / "dogs" / "puppies" / "a.PNG")
    _img(tmp_path / "cats" / "z.webp")
    _img(tmp_path / "cats" / ".hidden.jpg")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / ".git").mkdir()
    _img(tmp_path / ".git" / "x.jpg")

    images = discover(Config(tmp_path))

    assert images.labeled
    assert images.classes == ("cats", "dogs")
    assert images.paths == ("cats/z.webp", "dogs/b.jpg", "dogs/puppies/a.PNG")
    assert images.labels == ("cats", "dogs", "dogs")
    assert images.skipped == ()


def test_flat_folder_is_unlabeled_and_says_so(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "c.tiff"):
        _img(tmp_path / name)
    images = discover(Config(tmp_path))
    assert not images.labeled
    assert images.paths == ("a.jpg", "b.png", "c.tiff")
    assert images.labels == (None, None, None)
    assert any("unlabeled" in note for note in images.notes)


def test_empty_class_folder_is_ignored_with_a_note_and_loose_files_are_skipped(tmp_path: Path) -> None:
    _img(tmp_path / "full" / "a.jpg")
    _img(tmp_path / "full" / "b.jpg")
    (tmp_path / "empty").mkdir()
    _img(tmp_path / "loose.jpg")
    images = discover(Config(tmp_path))
    assert images.classes == ("full",)
    assert "class folder 'empty' has no images and was ignored" in images.notes
    assert [(s.path, s.reason) for s in images.skipped] == [
        ("loose.jpg", "not inside a class folder (the data folder has class folders)")
    ]


def test_broken_symlink_is_skipped_and_a_link_loop_terminates(tmp_path: Path) -> None:
    _img(tmp_path / "a" / "one.jpg")
    _img(tmp_path / "a" / "two.jpg")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "a" / "dangling.jpg")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    images = discover(Config(tmp_path))
    assert images.paths == ("a/one.jpg", "a/two.jpg")
    reasons = {s.path: s.reason for s in images.skipped}
    assert reasons["a/dangling.jpg"] == "broken symbolic link"
    assert "loops back" in reasons["a/loop"]


def test_missing_folder_file_and_empty_folder_raise_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=r"data folder '.*nope' does not exist"):
        discover(Config(tmp_path / "nope"))
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(DataDirError, match=r"is not a folder"):
        discover(Config(tmp_path / "file.jpg"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoImagesError, match=r"found no images in '.*empty'"):
        discover(Config(tmp_path / "empty"))
    _img(tmp_path / "single" / "a.jpg")
    with pytest.raises(NoImagesError, match=r"found 1 image in '.*single', need at least 2"):
        discover(Config(tmp_path / "single"))
