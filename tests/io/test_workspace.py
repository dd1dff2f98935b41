import os

import pytest

from medview.io import workspace


def test_data_dir_honours_override(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "store"))
    assert workspace.data_dir() == tmp_path / "store"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("1.2.840.113", "1.2.840.113"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("", "unnamed"),
        ("a/b#stack 2", "a_b_stack_2"),
    ],
)
def test_safe_name_never_leaves_the_folder(key, name):
    assert workspace.safe_name(key) == name
    assert "/" not in workspace.safe_name(key)


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "m.json"
    workspace.atomic_write_text(target, "one")
    workspace.atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["m.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    workspace.atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        workspace.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["m.json"]


def test_keep_aside_never_overwrites_an_earlier_copy(tmp_path):
    f = tmp_path / "m.json"
    f.write_text("first")
    assert workspace.keep_aside(f, move=False).name == "m.json.damaged-1"
    assert f.read_text() == "first"
    assert workspace.keep_aside(f, move=True).name == "m.json.damaged-2"
    assert not f.exists()
    assert (tmp_path / "m.json.damaged-1").read_text() == "first"
