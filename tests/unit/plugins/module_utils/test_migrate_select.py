"""Unit tests for tier_migrate's selection (_migrate_select.py): the find-based and the walking selector."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time

import pytest
from migrate_helpers import DAY, _old_file, _policy

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m


def _tree(tmp_path):
    src = tmp_path / "src"
    _old_file(src / "a.log", b"a" * 10, days=10)
    _old_file(src / "sub" / "b.log", b"b" * 2000, days=20)
    _old_file(src / "sub" / "c.txt", b"c", days=30)
    _old_file(src / "young.log", b"y", days=1)
    _old_file(src / "skip" / "d.log", b"d", days=40)
    _old_file(src / ".jts-migrate-x-1.tmp", b"t", days=40)
    (src / "link.log").symlink_to("/etc/hostname")
    os.mkfifo(src / "fifo.log")
    return src


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, [b"skip/d.log", b"sub/c.txt", b"sub/b.log", b"a.log"]),
        ({"include": ["*.log"]}, [b"skip/d.log", b"sub/b.log", b"a.log"]),
        ({"exclude": ["skip"]}, [b"sub/c.txt", b"sub/b.log", b"a.log"]),
        ({"exclude": ["sub/*.txt"]}, [b"skip/d.log", b"sub/b.log", b"a.log"]),
        ({"older_than": "15d"}, [b"skip/d.log", b"sub/c.txt", b"sub/b.log"]),
        ({"older_than": "0", "settle_time": "2d"}, [b"skip/d.log", b"sub/c.txt", b"sub/b.log", b"a.log"]),
        ({"min_size": "5"}, [b"sub/b.log", b"a.log"]),
        ({"max_size": "100"}, [b"skip/d.log", b"sub/c.txt", b"a.log"]),
        ({"max_files": 2}, [b"skip/d.log", b"sub/c.txt"]),
        ({"max_bytes": "12"}, [b"skip/d.log", b"sub/c.txt", b"a.log"]),
    ],
)
def test_select_files(tmp_path, kw, expected):
    src = _tree(tmp_path)
    pol = _policy(src, tmp_path / "dst", tmp_path, **kw)
    sel = m.select_files(pol)
    assert [rel for rel, _st in sel.items] == expected


def test_select_files_reasons(tmp_path):
    src = _tree(tmp_path)
    pol = _policy(src, tmp_path / "dst", tmp_path, include=["*.log"], max_files=1, max_size="1000")
    sel = m.select_files(pol)
    assert sel.skipped["symlink (not followed)"] == 1
    assert sel.skipped["not a regular file"] == 1
    assert sel.skipped["too young"] == 1
    assert sel.skipped["not included"] == 1
    assert sel.skipped["larger than max_size"] == 1
    assert sel.skipped["over the per-run cap"] == 1
    assert {"path": "link.log", "reason": "symlink (not followed)", "size": 0} in sel.skipped_files
    assert sel.scanned == 9  # the temporary file is not even counted


def test_select_files_atime_and_settle(tmp_path):
    src = tmp_path / "src"
    f = _old_file(src / "a", b"x", days=10)
    now = time.time()
    os.utime(f, (now, now - 10 * DAY))  # read today, written 10 days ago
    assert [r for r, _ in m.select_files(_policy(src, tmp_path / "d", tmp_path)).items] == [b"a"]
    assert m.select_files(_policy(src, tmp_path / "d", tmp_path, age_stamp="atime")).items == []
    os.utime(f, (now - 10 * DAY, now - 60))
    sel = m.select_files(_policy(src, tmp_path / "d", tmp_path, older_than="0", settle_time="10m"))
    assert sel.items == [] and sel.skipped["changed within settle_time"] == 1


def test_select_files_skips_destination_inside_by_identity(tmp_path):
    src = _tree(tmp_path)
    st = os.stat(src / "sub")
    sel = m.select_files(_policy(src, tmp_path / "d", tmp_path), dest_id=(st.st_dev, st.st_ino))
    assert sel.skipped["is the destination"] == 1
    assert all(not rel.startswith(b"sub/") for rel, _ in sel.items)


FIND = shutil.which("find")
needs_find = pytest.mark.skipif(FIND is None, reason="GNU find is not installed")


def _rich_tree(tmp_path):
    """Everything the selectors must agree on: odd names, young and old, types, excluded dirs."""
    src = _tree(tmp_path)
    _old_file(src / "with space" / "new\nline.log", b"n" * 30, days=9)
    bad = os.fsencode(str(src)) + b"/latin1-\xe9.log"
    with open(bad, "wb") as handle:
        handle.write(b"l" * 7)
    when = time.time() - 12 * DAY
    os.utime(bad, (when, when))
    _old_file(src / "deep" / "a" / "b" / "c" / "old.bin", b"o" * 50, days=100)
    _old_file(src / "deep" / "a" / "young.bin", b"y", days=0)
    _old_file(src / "skip" / "inner" / "e.log", b"e", days=50)
    _old_file(src / ".jts-migrate" / "journal", b"j", days=50)
    (src / "deep" / "dirlink").symlink_to(src / "sub")
    _old_file(src / "edge.log", b"z", days=0).touch()
    return src


def _same_selection(a, b):
    key = lambda d: (d["path"], d["reason"])  # noqa: E731
    assert [rel for rel, _ in a.items] == [rel for rel, _ in b.items]
    assert a.skipped == b.skipped
    assert sorted(a.skipped_files, key=key) == sorted(b.skipped_files, key=key)
    assert a.scanned == b.scanned


@needs_find
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"include": ["*.log"]},
        {"exclude": ["skip"]},
        {"exclude": ["sub/*.txt", "deep/a"]},
        {"exclude": ["*"]},
        {"older_than": "15d"},
        {"older_than": "0", "settle_time": "2d"},
        {"min_size": "5", "max_size": "40"},
        {"max_files": 3},
        {"age_stamp": "ctime", "older_than": "0"},
        {"age_stamp": "atime"},
        {"one_filesystem": False},
    ],
)
def test_find_selector_agrees_with_the_walk(tmp_path, kw):
    src = _rich_tree(tmp_path)
    pol = _policy(src, tmp_path / "dst", tmp_path, **kw)
    now = time.time()
    walked = m.select_files(pol, now=now)
    found = m.select_files(pol, now=now, find_bin=FIND)
    _same_selection(walked, found)


@needs_find
def test_find_selector_skips_the_destination_inside_the_source(tmp_path):
    src = _rich_tree(tmp_path)
    st = os.stat(src / "sub")
    pol = _policy(src, tmp_path / "d", tmp_path)
    walked = m.select_files(pol, dest_id=(st.st_dev, st.st_ino))
    found = m.select_files(pol, dest_path=os.fsencode(str(src / "sub")), find_bin=FIND)
    assert found.skipped["is the destination"] == 1
    assert all(not rel.startswith(b"sub/") for rel, _ in found.items)
    _same_selection(walked, found)


@needs_find
def test_find_selector_runs_find_once_and_lstats_only_candidates(tmp_path, monkeypatch):
    src = tmp_path / "src"
    for n in range(50):
        _old_file(src / ("young%02d" % n), days=0)
    _old_file(src / "old", days=30)
    calls = []
    real_lstat, real_run = os.lstat, subprocess.run
    monkeypatch.setattr(os, "lstat", lambda p: calls.append(p) or real_lstat(p))
    runs = []
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: runs.append(argv) or real_run(argv, **kw))
    sel = m.select_files(_policy(src, tmp_path / "d", tmp_path), find_bin=FIND)
    assert [rel for rel, _ in sel.items] == [b"old"]
    assert sel.skipped["too young"] == 50 and sel.scanned == 51
    assert len(runs) == 1 and len(calls) == 2  # the root's device, then the one candidate
    assert all(isinstance(arg, (str, bytes)) for arg in runs[0])


@pytest.mark.parametrize(
    "script",
    [
        "echo 'find: /x: Permission denied' >&2; exit 1",
        "printf 'fa\\0'; echo 'find: warning: something' >&2",
        "printf 'Qodd\\0'",
    ],
)
def test_find_selector_falls_back_to_the_walk(tmp_path, script):
    src = _tree(tmp_path)
    fake = tmp_path / "fake-find"
    fake.write_text("#!/bin/sh\n" + script + "\n")
    fake.chmod(0o755)
    pol = _policy(src, tmp_path / "d", tmp_path)
    now = time.time()
    _same_selection(m.select_files(pol, now=now), m.select_files(pol, now=now, find_bin=str(fake)))


def test_find_selector_not_used_for_bracket_or_backslash_excludes(tmp_path, monkeypatch):
    src = _tree(tmp_path)

    def no_find(*_a, **_kw):
        raise AssertionError("find must not run")

    sel = m.select_files(_policy(src, tmp_path / "d", tmp_path), find_bin=str(tmp_path / "no-such-find"))
    assert sel.scanned == 9  # a missing binary falls back to the walk
    monkeypatch.setattr(subprocess, "run", no_find)
    for pat in ("[s]kip", "sk\\ip"):
        pol = _policy(src, tmp_path / "d", tmp_path, exclude=[pat])
        now = time.time()
        _same_selection(m.select_files(pol, now=now), m.select_files(pol, now=now, find_bin="/usr/bin/find"))


def test_select_files_unreadable_directory(tmp_path, monkeypatch):
    src = _tree(tmp_path)
    real = os.scandir

    def scandir(path):
        if path.endswith(b"/skip"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    sel = m.select_files(_policy(src, tmp_path / "d", tmp_path))
    assert sel.skipped["directory not readable: Permission denied"] == 1
