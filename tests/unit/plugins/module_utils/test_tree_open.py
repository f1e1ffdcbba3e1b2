"""Tests for _tree.open_dir_from_root: the one walk from ``/`` that never follows a symlink (no creation)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, open_dir_from_root


def test_opens_the_directory_itself(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for path in (str(tmp_path / "a" / "b"), os.fsencode(tmp_path / "a" / "b"), "//%s/./a//b/" % tmp_path):
        fd = open_dir_from_root(path)
        try:
            assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "a" / "b"))
        finally:
            os.close(fd)


@pytest.mark.parametrize("where", ["leaf", "parent"])
def test_a_symlink_on_the_way_is_refused_naming_it(tmp_path, where):
    (tmp_path / "real" / "b").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "link")
    link = tmp_path / "link"
    path = link if where == "leaf" else link / "b"
    with pytest.raises(UnsafePath, match="^%s is a symlink or not a directory; not followed$" % link):
        open_dir_from_root(str(path))


def test_a_file_a_dotdot_a_relative_path_and_a_missing_one(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafePath, match="file is a symlink or not a directory"):
        open_dir_from_root(str(tmp_path / "file"))
    with pytest.raises(UnsafePath, match=r"contains '\.\.'"):
        open_dir_from_root(str(tmp_path / "x" / ".." / "file"))
    with pytest.raises(UnsafePath, match="not an absolute path"):
        open_dir_from_root("relative/dir")
    with pytest.raises(FileNotFoundError):
        open_dir_from_root(str(tmp_path / "missing" / "x"))


def test_replace_private_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import replace_private

    state = tmp_path / "state"
    replace_private(str(state), "last.json", b"old\n")
    replace_private(str(state), "last.json", b"new\n" * 100000)
    assert (state / "last.json").read_bytes() == b"new\n" * 100000
    assert os.listdir(state) == ["last.json"] and os.stat(state).st_mode & 0o777 == 0o700
    assert os.stat(state / "last.json").st_mode & 0o777 == 0o600


def test_replace_private_keeps_the_old_file_and_removes_its_temporary_one_when_the_rename_fails(tmp_path, monkeypatch):
    from ansible_collections.jts.tiered_storage.plugins.module_utils import _tree

    state = tmp_path / "state"
    _tree.replace_private(str(state), "last.json", b"old\n")

    def no_rename(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_tree.os, "rename", no_rename)
    with pytest.raises(OSError, match="No space left"):
        _tree.replace_private(str(state), "last.json", b"new\n")
    assert os.listdir(state) == ["last.json"] and (state / "last.json").read_bytes() == b"old\n"


def test_replace_private_refuses_a_directory_others_can_write(tmp_path):
    from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import replace_private

    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)  # noqa: S103 - the unsafe directory under test
    with pytest.raises(UnsafePath):
        replace_private(str(state), "last.json", b"x")
    assert os.listdir(state) == []
