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
