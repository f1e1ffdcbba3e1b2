"""Unit tests for tier_migrate's logic (_migrate.py): policy, mounts, overlap, selection, transfer."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_jobs as m_jobs
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_journal as m_journal
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_place as m_place
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_policy as m_policy
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_preflight as m_preflight
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_registry as m_registry
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_stage as m_stage
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_transfer as m_transfer
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_journal import Journal
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_readback import hash_path
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import Tree
from ansible_collections.jts.tiered_storage.plugins.modules import tier_migrate

DAY = 86400


# The module's defaults (its argument_spec's): build_policy gets every parameter, as from the module.
DEFAULTS = {name: spec.get("default") for name, spec in tier_migrate.ARGUMENT_SPEC.items()}


def _params(src, dst, **kw):
    base = dict(DEFAULTS, source=str(src), destination=str(dst), settle_time="0", older_than="7d")
    base.update(kw)
    return base


def _policy(src, dst, tmp_path, **kw):
    kw.setdefault("lock_dir", str(tmp_path / "locks"))
    kw.setdefault("require_mounted", False)
    return m.build_policy(_params(src, dst, **kw))


def _old_file(path, data=b"x", days=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def _local_stat(path, timeout):
    st = os.stat(path)
    return {"st_mode": st.st_mode, "st_dev": st.st_dev, "st_ino": st.st_ino, "st_size": st.st_size}


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"source": "relative/dir"}, "source: 'relative/dir' is not an absolute path"),
        ({"destination": "dst"}, "destination: 'dst' is not an absolute path"),
        ({"source": ""}, "source is required"),
        ({"older_than": "7x"}, "older_than: '7x' is not an age"),
        ({"settle_time": "soon"}, "settle_time: 'soon' is not an age"),
        ({"min_size": "lots"}, "min_size: 'lots' is not a size"),
        ({"max_bytes": "-1G"}, "max_bytes"),
        ({"min_free": "120%"}, "min_free"),
        ({"batch_bytes": "x"}, "batch_bytes"),
        ({"compression": "zstd", "compression_level": 30}, "compression_level: 30 is outside 1..22 for zstd"),
        ({"compression": "gzip", "compression_level": 0}, "compression_level: 0 is outside 1..9 for gzip"),
        ({"min_size": "2M", "max_size": "1M"}, "min_size '2M' is larger than max_size '1M'"),
        ({"max_files": -1}, "max_files: -1 is negative"),
        ({"journal": "j.jsonl"}, "journal: 'j.jsonl' is not an absolute path"),
        ({"destination_mount": "mnt"}, "destination_mount: 'mnt' is not an absolute path"),
    ],
)
def test_build_policy_rejects_bad_input(override, message):
    with pytest.raises(m.MigrateError) as exc:
        m.build_policy(_params("/src", "/dst", **override))
    assert message in str(exc.value)


def test_build_policy_defaults_and_conversions():
    pol = m.build_policy(
        dict(
            DEFAULTS,
            **{
                "source": "/a/b/",
                "destination": "/c",
                "older_than": "2w",
                "include": ["*.log"],
                "min_free": "5%",
                "max_bytes": "1G",
                "compression": "zstd",
                "compression_level": 19,
            },
        )
    )
    assert pol.source == b"/a/b"
    assert pol.older_than == 14 * DAY
    assert pol.settle == 600
    assert pol.include == [b"*.log"]
    assert pol.min_free == ("percent", 5.0)
    assert pol.max_bytes == 1 << 30
    assert pol.journal == b"/c/.jts-migrate/journal.jsonl"
    assert pol.batch_bytes == 256 << 20
    assert (pol.codec, pol.level, pol.mode, pol.age_stamp) == ("zstd", 19, "move", "mtime")


# --------------------------------------------------------------------------- overlap and preflight


def test_overlap_by_path(tmp_path):
    (tmp_path / "src" / "inner").mkdir(parents=True)
    with pytest.raises(m.MigrateError, match=r"destination .* is inside source"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "src" / "inner"))
    with pytest.raises(m.MigrateError, match=r"source .* is inside destination"):
        m.check_overlap(bytes(tmp_path / "src" / "inner"), bytes(tmp_path / "src"))
    with pytest.raises(m.MigrateError, match="the same directory"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "src") + b"/.")


def test_overlap_through_symlink(tmp_path):
    (tmp_path / "src" / "inner").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "src" / "inner")
    with pytest.raises(m.MigrateError, match="inside source"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "alias"))


def test_overlap_by_inode(monkeypatch, tmp_path):
    """A bind mount shows the same directory under another path: caught by device and inode."""
    (tmp_path / "src").mkdir()
    (tmp_path / "bind" / "sub").mkdir(parents=True)
    real_stat = os.stat
    src_st = real_stat(tmp_path / "src")
    bind = bytes(tmp_path / "bind")

    def fake_stat(path, *a, **kw):
        if os.fsencode(path) == bind:
            return src_st
        return real_stat(path, *a, **kw)

    monkeypatch.setattr(os, "stat", fake_stat)
    with pytest.raises(m.MigrateError, match="bind mount or link"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "bind" / "sub"))
    with pytest.raises(m.MigrateError, match=r"source .* is inside destination .*bind mount"):
        m.check_overlap(bytes(tmp_path / "bind" / "sub"), bytes(tmp_path / "src"))


def test_overlap_none(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rs, rd = m.check_overlap(bytes(tmp_path / "a"), bytes(tmp_path / "b"))
    assert rs.endswith(b"/a") and rd.endswith(b"/b")


def _mounts_for(tmp_path, fstype="xfs", options="rw"):
    return [
        {"mount_point": b"/", "fstype": "ext4", "source": "/dev/vda", "options": {"rw"}},
        {"mount_point": bytes(tmp_path), "fstype": fstype, "source": "/dev/loop9", "options": set(options.split(","))},
    ]


def test_preflight_refuses_unmounted_destination(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path, require_mounted=True)
    dev = os.stat(tmp_path / "d").st_dev
    with pytest.raises(m.MigrateError, match="is on the root filesystem, not on a mounted filesystem"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, root_dev=dev)
    info, warnings = m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, root_dev=dev + 1)
    assert info["dest_mount"]["fstype"] == "xfs"
    assert warnings == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"destination_mount": "/mnt/synology"}, "destination_mount: /mnt/synology is expected to be a mount point"),
        ({"source_mount": "/srv"}, "source_mount: /srv is expected"),
        ({"destination_fstype": "nfs"}, "destination_fstype: expected nfs but"),
        ({"source_fstype": "btrfs"}, "source_fstype: expected btrfs but"),
    ],
)
def test_preflight_mount_expectations(tmp_path, kw, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path, **kw)
    with pytest.raises(m.MigrateError, match=message):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat)


def test_preflight_accepts_matching_mount_and_warns_on_noatime(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(
        tmp_path / "s",
        tmp_path / "d",
        tmp_path,
        destination_mount=str(tmp_path),
        destination_fstype="xf",
        age_stamp="atime",
    )
    _info, warnings = m.preflight(pol, mounts=_mounts_for(tmp_path, options="rw,noatime"), stat_fn=_local_stat)
    assert "mounted noatime" in warnings[0]


@pytest.mark.parametrize(
    ("side", "exc", "message"),
    [
        ("d", ProbeTimeout("slow"), "destination .* does not answer within 10s"),
        ("s", FileNotFoundError(errno.ENOENT, "gone"), "source .* does not exist"),
        ("d", PermissionError(errno.EACCES, "Permission denied"), "destination .*: Permission denied"),
    ],
)
def test_preflight_probe_errors(tmp_path, side, exc, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)

    def stat_fn(path, timeout):
        if path.endswith(b"/" + side.encode()):
            raise exc
        return _local_stat(path, timeout)

    with pytest.raises(m.MigrateError, match=message):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=stat_fn)


def test_preflight_asks_the_server_when_stat_comes_from_the_cache(tmp_path):
    """The NAS went away seconds after the destination was last read: the NFS client still answers
    ``stat`` from its attribute cache, but the run must be refused before it starts, not hang in
    its first uncached call (seen on the lab VM: a move to the absent NAS hung for 120 s)."""
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)
    asked = []

    def statfs_fn(path, timeout):
        asked.append(path)
        raise ProbeTimeout("statfs did not finish within %gs" % timeout)

    with pytest.raises(m.MigrateError, match=r"destination .* does not answer within .*nothing was moved"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, statfs_fn=statfs_fn)
    assert asked == [pol.dest]


def test_preflight_statfs_error_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)

    def statfs_fn(path, timeout):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(m.MigrateError, match="Input/output error; nothing was moved"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, statfs_fn=statfs_fn)


def test_preflight_not_a_directory(tmp_path):
    (tmp_path / "s").write_text("file")
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)
    with pytest.raises(m.MigrateError, match="is not a directory"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat)


@pytest.mark.parametrize(
    ("min_free", "needed", "free", "total", "ok"),
    [
        ("0", 100, 100, 1000, True),
        ("0", 101, 100, 1000, False),
        ("10%", 100, 200, 1000, True),
        ("10%", 101, 200, 1000, False),
        ("50", 50, 100, 1000, True),
        ("51", 50, 100, 1000, False),
    ],
)
def test_check_space(tmp_path, min_free, needed, free, total, ok):
    pol = _policy("/s", "/d", tmp_path, min_free=min_free)
    if ok:
        m_preflight.check_space(pol, needed, free, total)
    else:
        with pytest.raises(m.MigrateError, match="do not fit; nothing was moved"):
            m_preflight.check_space(pol, needed, free, total)


# --------------------------------------------------------------------------- selection


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


@pytest.mark.parametrize(
    ("rel", "codec", "expected"),
    [(b"a.log", "zstd", "zstd"), (b"a.log.gz", "zstd", "none"), (b"A.ZST", "gzip", "none"), (b"a.gz", "none", "none")],
)
def test_dest_codec_for(rel, codec, expected):
    assert m_policy.dest_codec_for(rel, codec) == expected


def test_batches():
    jobs = [SimpleNamespace(size=s) for s in (5, 5, 5, 20, 1)]
    sizes = [[j.size for j in b] for b in m_jobs.batches(jobs, max_files=2, max_bytes=12)]
    assert sizes == [[5, 5], [5], [20], [1]]


class _ScriptedTransfer(m.Transfer):
    """A Transfer whose steps only log: shows how run_all interleaves and stops."""

    def __init__(self, log, full_at=None, finish_error_at=None):
        self.outcome = m_jobs.Outcome()
        self.dst = SimpleNamespace(root=b"/dst")
        self.log = log
        self.full_at = full_at
        self.finish_error_at = finish_error_at
        self.finishing = threading.Event()
        self.release = threading.Event()

    def stage_batch(self, jobs):
        self.log.append(("stage", jobs[0]))
        if jobs[0] == 2:
            # batch 2 is staged while batch 1 is still being finished in the other thread
            assert self.finishing.wait(5)
            self.log.append(("stage-overlaps-finish", 1))
            self.release.set()
        if jobs[0] == self.full_at:
            return [], OSError(errno.ENOSPC, "No space left on device")
        return list(jobs), None

    def finish_batch(self, staged, carry=(), flush=True):
        if staged and staged[0] == 1:
            self.finishing.set()
            assert self.release.wait(5)
        if staged and staged[0] == self.finish_error_at:
            raise m_journal.JournalError("journal: disk gone")
        self.log.append(("flush", staged[0] if staged else None))
        if carry:
            self.log.append(("commit", carry[0]))
        if not staged:
            return []
        self.log.append(("finish", staged[0]))
        if flush:
            self.log.append(("flush", staged[0]))
            self.log.append(("commit", staged[0]))
            return []
        return list(staged)


def test_run_all_stages_the_next_batch_while_the_previous_finishes():
    log = []
    _ScriptedTransfer(log).run_all(iter([[1], [2], [3]]))
    assert log.index(("stage-overlaps-finish", 1)) < log.index(("finish", 1))
    assert [e for e in log if e[0] == "finish"] == [("finish", 1), ("finish", 2), ("finish", 3)]
    # one flush per batch: batch N is committed after the flush of batch N+1, the last after one more
    finishing = [e for e in log if e[0] in ("flush", "commit", "finish")]
    assert finishing == [
        ("flush", 1),
        ("finish", 1),
        ("flush", 2),
        ("commit", 1),
        ("finish", 2),
        ("flush", 3),
        ("commit", 2),
        ("finish", 3),
        ("flush", None),
        ("commit", 3),
    ]


def test_run_all_commits_what_was_placed_when_staging_fails():
    """An error while staging batch 3: batch 2, finished in the other thread, is still committed."""

    class Failing(_ScriptedTransfer):
        def stage_batch(self, jobs):
            if jobs[0] == 3:
                raise RuntimeError("staging broke")
            return super().stage_batch(jobs)

    log = []
    with pytest.raises(RuntimeError, match="staging broke"):
        Failing(log).run_all(iter([[1], [2], [3], [4]]))
    assert log[-2:] == [("flush", None), ("commit", 2)] and ("commit", 1) in log


def test_run_all_finishes_what_was_staged_then_reports_a_full_destination():
    log = []
    with pytest.raises(m.DestinationFull, match="files not yet moved stay at the source"):
        _ScriptedTransfer(log, full_at=3).run_all(iter([[1], [2], [3], [4]]))
    assert ("finish", 2) in log and ("stage", 4) not in log


def test_run_all_raises_an_error_of_the_finishing_thread_and_stops():
    log = []
    with pytest.raises(m_journal.JournalError, match="disk gone"):
        _ScriptedTransfer(log, finish_error_at=2).run_all(iter([[1], [2], [3], [4]]))
    assert ("finish", 1) in log and ("stage", 4) not in log


def test_run_all_restores_the_switch_interval_also_after_an_error():
    before = sys.getswitchinterval()
    with pytest.raises(m_journal.JournalError):
        _ScriptedTransfer([], finish_error_at=2).run_all(iter([[1], [2], [3]]))
    assert sys.getswitchinterval() == before


def test_finish_batch_queues_every_read_back_before_verifying_the_first(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(m_transfer, "syncfs", lambda _path: calls.append("syncfs"))
    monkeypatch.setattr(m_place, "prefetch", lambda fd: calls.append("prefetch") or True)

    def read_back(fd, codec, zstd_bin, prefetched=False):
        calls.append(("read_back", prefetched))
        return "d", 1

    monkeypatch.setattr(m_place, "read_back", read_back)
    dst = Tree(bytes(tmp_path))
    t = m.Transfer("copy", Tree(b"/"), dst, None, "run", None, m_jobs.Outcome())
    monkeypatch.setattr(t, "place", lambda job: calls.append("place"))
    monkeypatch.setattr(t, "commit", lambda placed: calls.append(("commit", len(placed))))
    jobs = []
    for name in (b"a", b"b"):
        job = m_jobs.Job(name, b"/s/" + name, bytes(tmp_path / name.decode()))
        job.dst_dir = dst.acquire(b"")
        job.tmp = b"t" + name
        (tmp_path / ("t" + name.decode())).write_bytes(b"")
        job.digest, job.length = "d", 1
        jobs.append(job)
    t.finish_batch(jobs)
    assert calls == [
        "syncfs",
        "prefetch",
        "prefetch",
        ("read_back", True),
        "place",
        ("read_back", True),
        "place",
        "syncfs",
        ("commit", 2),
    ]


def test_outcome_counts_from_two_threads():
    outcome = m_jobs.Outcome()
    job = SimpleNamespace(src=b"/s", dst=b"/d", size=1)

    def report():
        for _ in range(2000):
            outcome.ok(job)
            outcome.skip(job, "r")

    threads = [threading.Thread(target=report) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome.done_count == outcome.skipped_count == outcome.skipped["r"] == 8000


def test_display_non_utf8():
    assert m.display(b"a\xffb") == "a\\xffb"
    assert m.display("plain") == "plain"


# --------------------------------------------------------------------------- migrate / rollback


def _run(src, dst, tmp_path, check_mode=False, **kw):
    pol = _policy(src, dst, tmp_path, **kw)
    return m.migrate(pol, check_mode=check_mode, zstd_bin="/usr/bin/zstd", mounts=_mounts_for(tmp_path))


def _snapshot(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as handle:
                out[os.path.relpath(p, root)] = handle.read()
    return out


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
def test_migrate_and_rollback_round_trip(tmp_path, codec):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "x" / "one.log", os.urandom(3000))
    _old_file(src / "two.log", b"hello " * 1000)
    os.chmod(src / "two.log", 0o640)
    dst.mkdir()
    before = _snapshot(src)
    st_before = os.stat(src / "two.log")
    res = _run(src, dst, tmp_path, compression=codec)
    assert (res["changed"], res["moved"], res["failed_count"]) == (True, 2, 0)
    assert res["moved_bytes"] == 6000 + 3000
    suffix = {"none": "", "zstd": ".zst", "gzip": ".gz"}[codec]
    placed = dst / ("two.log" + suffix)
    st_after = os.stat(placed)
    assert (st_after.st_mode, st_after.st_mtime_ns, st_after.st_uid) == (
        st_before.st_mode,
        st_before.st_mtime_ns,
        st_before.st_uid,
    )
    assert hash_path(bytes(placed), codec, "/usr/bin/zstd")[1] == 6000
    assert not (src / "two.log").exists()
    assert [n for n in os.listdir(dst) if n.startswith(".jts-migrate-")] == []
    records, damaged = Journal(bytes(dst / ".jts-migrate" / "journal.jsonl")).read()
    assert damaged == 0 and len(records) == 2 and records[0]["run"] == res["run_id"]
    again = _run(src, dst, tmp_path, compression=codec)
    assert again["changed"] is False and again["moved"] == 0
    back = m.undo(_policy(src, dst, tmp_path), zstd_bin="/usr/bin/zstd")
    assert back["restored"] == 2 and back["changed"] is True
    assert _snapshot(src) == before
    assert os.stat(src / "two.log").st_mode == st_before.st_mode
    assert _snapshot(dst).keys() == {".jts-migrate/journal.jsonl", ".jts-migrate/journal.jsonl.tmpdirs"}
    again = m.undo(_policy(src, dst, tmp_path), zstd_bin="/usr/bin/zstd")
    assert again["changed"] is False


def test_migrate_check_mode_changes_nothing(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"abc")
    dst.mkdir()
    res = _run(src, dst, tmp_path, check_mode=True)
    assert res["moved"] == 1 and res["moved_bytes"] == 3 and res["run_id"] is None
    assert res["files"] == [{"src": str(src / "a.log"), "dst": str(dst / "a.log"), "size": 3}]
    assert (src / "a.log").exists() and os.listdir(dst) == []


def test_migrate_copy_mode_keeps_source_and_is_idempotent(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"abc")
    dst.mkdir()
    res = _run(src, dst, tmp_path, mode="copy")
    assert res["moved"] == 1
    assert (src / "a.log").read_bytes() == (dst / "a.log").read_bytes() == b"abc"
    again = _run(src, dst, tmp_path, mode="copy")
    assert again["changed"] is False and again["moved"] == 0
    assert again["skipped_count"] == 0


def test_migrate_existing_different_destination_is_left_alone(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"new content")
    (dst).mkdir()
    (dst / "a.log").write_bytes(b"other")
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_reasons"] == {"destination exists with different content; left alone": 1}
    assert (src / "a.log").read_bytes() == b"new content"
    assert (dst / "a.log").read_bytes() == b"other"


def test_migrate_finishes_a_half_done_move(tmp_path):
    """A crash after the copy was linked into place but before the source went: no duplicate."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"same")
    dst.mkdir()
    (dst / "a.log").write_bytes(b"same")
    (dst / ".jts-migrate-old-1.tmp").write_bytes(b"partial")
    registry = m_registry.TempRegistry(bytes(dst / ".jts-migrate" / "journal.jsonl") + b".tmpdirs")
    registry.add(bytes(dst), b"")
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 1 and res["cleaned_temp_files"] == 1
    assert not (src / "a.log").exists()
    assert sorted(os.listdir(dst)) == [".jts-migrate", "a.log"]


def test_migrate_unreadable_file_is_reported_and_rest_go_on(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"a")
    _old_file(src / "secret.log", b"s")
    dst.mkdir()
    real_open = os.open

    def fake_open(path, flags, *a, **kw):
        if os.fsencode(path).endswith(b"secret.log"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 1 and res["failed_count"] == 1
    assert res["failed_files"][0]["reason"] == "cannot open: Permission denied"
    assert (src / "secret.log").exists() and (dst / "a.log").exists()


def test_migrate_destination_full_stops_cleanly(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(4):
        _old_file(src / ("f%d" % i), b"%d" % i * 100, days=10 + i)
    dst.mkdir()
    calls = {"n": 0}
    real = m_stage.copy_content

    def filling(src_fd, fd, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src_fd, fd, *a, **kw)

    monkeypatch.setattr(m_stage, "copy_content", filling)
    res = _run(src, dst, tmp_path, check_space=False)
    assert "is full (No space left on device)" in res["error"]
    assert res["moved"] == 2
    assert sorted(os.listdir(src)) == ["f0", "f1"]
    assert sorted(os.listdir(dst)) == [".jts-migrate", "f2", "f3"]


def test_migrate_source_changed_during_copy(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    f = _old_file(src / "grow.log", b"start\n")
    dst.mkdir()
    real = m_stage.copy_content

    def appending(src_fd, fd, *a, **kw):
        out = real(src_fd, fd, *a, **kw)
        with open(f, "ab") as handle:
            handle.write(b"more\n")
        return out

    monkeypatch.setattr(m_stage, "copy_content", appending)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_reasons"] == {"changed during the copy (left at the source)": 1}
    assert f.read_bytes() == b"start\nmore\n"
    assert os.listdir(dst) == [".jts-migrate"]


def test_migrate_space_refusal_moves_nothing(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"a" * 100)
    dst.mkdir()
    with pytest.raises(m.MigrateError, match="do not fit"):
        _run(src, dst, tmp_path, min_free="100%")
    assert (src / "a").exists()


def test_migrate_is_locked(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    pol = _policy(src, dst, tmp_path)
    with m._lock(pol, bytes(src), bytes(dst)), pytest.raises(LockBusy, match="is in use by another run"):
        m.migrate(pol, mounts=_mounts_for(tmp_path))


def test_rollback_errors(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    with pytest.raises(m.MigrateError, match="records no moves"):
        m.undo(_policy(src, dst, tmp_path))
    _old_file(src / "a", b"a")
    res = _run(src, dst, tmp_path)
    with pytest.raises(m.MigrateError, match="run nope is not in journal"):
        m.undo(_policy(src, dst, tmp_path, run_id="nope"))
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(m.MigrateError, match="is not under source"):
        m.undo(_policy(other, dst, tmp_path, run_id=res["run_id"]))


def test_rollback_original_path_reused_and_missing_copies(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"a")
    _old_file(src / "b", b"b")
    dst.mkdir()
    res = _run(src, dst, tmp_path)
    (src / "a").write_bytes(b"someone else")
    (dst / "b").unlink()
    back = m.undo(_policy(src, dst, tmp_path, run_id=res["run_id"]))
    assert back["restored"] == 0
    assert back["skipped_reasons"] == {"the original path holds a different file; left alone": 1}
    assert back["failed_files"][0]["reason"] == "neither the original nor the tier copy exists"
    assert (dst / "a").read_bytes() == b"a"


def test_rollback_check_mode(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"a")
    dst.mkdir()
    _run(src, dst, tmp_path)
    res = m.undo(_policy(src, dst, tmp_path), check_mode=True)
    assert res["restored"] == 1 and (dst / "a").exists() and not (src / "a").exists()


def test_rollback_detects_corrupted_tier_copy(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"aaaa")
    dst.mkdir()
    _run(src, dst, tmp_path)
    (dst / "a").write_bytes(b"aaab")
    res = m.undo(_policy(src, dst, tmp_path))
    assert res["failed_files"][0]["reason"] == "content does not match the journal's checksum"
    assert not (src / "a").exists() and (dst / "a").exists()


@pytest.mark.parametrize(
    ("s_mount", "d_mount", "source", "dest", "message"),
    [
        # /alias is a bind mount of /srv/data/inner: same device, the destination is inside the source
        (
            {"dev": "7:1", "root": b"/", "mount_point": b"/srv/data"},
            {"dev": "7:1", "root": b"/inner", "mount_point": b"/alias"},
            b"/srv/data",
            b"/alias/x",
            "destination /alias/x is inside source /srv/data",
        ),
        (
            {"dev": "7:1", "root": b"/deep/src", "mount_point": b"/b"},
            {"dev": "7:1", "root": b"/", "mount_point": b"/mnt"},
            b"/b",
            b"/mnt/deep",
            "source /b is inside destination /mnt/deep",
        ),
        (
            {"dev": "7:1", "root": b"/", "mount_point": b"/"},
            {"dev": "7:2", "root": b"/", "mount_point": b"/mnt"},
            b"/srv",
            b"/mnt",
            None,
        ),
        (
            {"dev": "7:1", "root": b"/a", "mount_point": b"/x"},
            {"dev": "7:1", "root": b"/ab", "mount_point": b"/y"},
            b"/x",
            b"/y",
            None,
        ),
    ],
)
def test_check_bind_overlap(tmp_path, s_mount, d_mount, source, dest, message):
    pol = _policy(os.fsdecode(source), os.fsdecode(dest), tmp_path)
    if message is None:
        m_preflight.check_bind_overlap(pol, source, dest, s_mount, d_mount)
    else:
        with pytest.raises(m.MigrateError, match=message):
            m_preflight.check_bind_overlap(pol, source, dest, s_mount, d_mount)


def test_rename_noreplace_at(tmp_path):
    from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import rename_noreplace_at

    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            rename_noreplace_at(fd, b"a", fd, b"b")
        assert (tmp_path / "b").read_bytes() == b"b"
        rename_noreplace_at(fd, b"a", fd, b"c")
    finally:
        os.close(fd)
    assert (tmp_path / "c").read_bytes() == b"a" and not (tmp_path / "a").exists()


# --------------------------------------------------------------------------- issue 17: fewer flushes, cheaper checks


def test_a_batch_records_its_temporary_directories_with_one_flush(tmp_path, monkeypatch):
    """Every directory that gets a temporary file is recorded (and flushed) before it gets one,
    but a batch of files in many directories costs one append to the registry, not one each."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(6):
        _old_file(src / ("d%d" % i) / "f", b"%d" % i * 100)
    dst.mkdir()
    appends = []
    real = m_registry.append_private

    def counting(path, data):
        if path.endswith(b".tmpdirs"):
            appends.append(data)
            # the temporary files of the batch come after this flush
            assert not any(name.startswith(".jts-migrate-") for _r, _d, names in os.walk(dst) for name in names)
        return real(path, data)

    monkeypatch.setattr(m_registry, "append_private", counting)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 6
    assert len(appends) == 1 and appends[0].count(b"\n") == 6


def test_one_flush_per_batch_and_every_commit_after_the_flush_that_follows_its_placing(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(3):
        _old_file(src / ("f%d" % i), b"%d" % i * 100, days=10 + i)
    dst.mkdir()
    log = []
    real_sync, real_place, real_commit = m_transfer.syncfs, m.Transfer.place, m.Transfer.commit
    monkeypatch.setattr(m_transfer, "syncfs", lambda path: log.append("flush") or real_sync(path))
    monkeypatch.setattr(m.Transfer, "place", lambda self, job: log.append(("place", job.rel)) or real_place(self, job))
    monkeypatch.setattr(
        m.Transfer,
        "commit",
        lambda self, placed: log.append(("commit", [j.rel for j in placed])) or real_commit(self, placed),
    )
    res = _run(src, dst, tmp_path, batch_files=1)
    assert res["moved"] == 3 and sorted(os.listdir(src)) == []
    assert log.count("flush") == 4  # three batches, one flush each, and one to commit the last
    for i, event in enumerate(log):
        if event[0] == "commit":
            for rel in event[1]:
                placed_at = log.index(("place", rel))
                assert "flush" in log[placed_at:i], "%s committed before a flush after its placing" % rel


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_copy_that_reads_back_different_from_the_source_is_not_moved(tmp_path, monkeypatch, codec):
    """The copy is changed on the destination after the flush (a lost write, a bad block): the
    read-back differs from the source, the file fails and the source stays."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(3 * 1024 * 1024 + 11)
    _old_file(src / "big.log", data)
    _old_file(src / "ok.log", b"fine\n" * 100)
    dst.mkdir()
    real = m_transfer.syncfs
    damaged = []

    def flush_then_damage(path):
        real(path)
        for name in os.listdir(dst):
            big = os.path.getsize(dst / name) > 1024 * 1024  # big.log's (ok.log's may be there too)
            if name.startswith(".jts-migrate-") and name.endswith(".tmp") and big and not damaged:
                damaged.append(name)
                with open(dst / name, "r+b") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    handle.seek(size - 5 if codec == "none" else size // 2)
                    byte = handle.read(1)
                    handle.seek(-1, os.SEEK_CUR)
                    handle.write(bytes([byte[0] ^ 0x10]))
                break  # the first one only

    monkeypatch.setattr(m_transfer, "syncfs", flush_then_damage)
    res = _run(src, dst, tmp_path, compression=codec, batch_files=1)
    assert res["failed_count"] == 1 and res["moved"] == 1
    reason = res["failed_files"][0]["reason"]
    assert reason.startswith("verification failed") or (codec == "zstd" and "zstd -d failed" in reason)
    assert (src / "big.log").read_bytes() == data
    names = sorted(n for n in os.listdir(dst) if n != ".jts-migrate")
    assert names == ["ok.log" + (".zst" if codec == "zstd" else "")]


def test_a_source_changed_between_its_copy_and_the_comparison_stays(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    f = _old_file(src / "grow.log", b"start\n" * 1000)
    dst.mkdir()
    real = m_transfer.syncfs

    def flush_then_append(path):
        real(path)
        if f.stat().st_size == 6000:
            with open(f, "ab") as handle:
                handle.write(b"more\n")

    monkeypatch.setattr(m_transfer, "syncfs", flush_then_append)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_reasons"] == {"changed during the copy (left at the source)": 1}
    assert f.read_bytes() == b"start\n" * 1000 + b"more\n"
    assert os.listdir(dst) == [".jts-migrate"]


@pytest.mark.parametrize(
    ("sizes", "batch_bytes", "limit"),
    [
        ([16 << 20] * 16, 256 << 20, 64 << 20),  # 256 MiB of logs: four batches, not one and a bit
        ([256 << 20] * 10 + [40 << 10] * 20000, 256 << 20, 256 << 20),  # a big run keeps the limit
        ([100] * 5, 256 << 20, 16 << 20),  # a small run stays one batch
        ([64 << 20] * 2, 32 << 20, 32 << 20),  # never above batch_bytes
    ],
)
def test_batch_limit_cuts_a_small_run_in_about_four(sizes, batch_bytes, limit):
    jobs = [SimpleNamespace(size=size) for size in sizes]
    assert m_jobs.batch_limit(jobs, batch_bytes) == limit


def _trading_log(size, seed=7):
    """Log lines full of ids and prices, like the benchmark's set C (benchmarks/bench_tier_migrate.py)."""
    import random

    rng = random.Random(seed)
    words = [
        "order",
        "fill",
        "cancel",
        "quote",
        "book",
        "trade",
        "risk",
        "limit",
        "venue",
        "session",
        "heartbeat",
        "latency",
    ]
    t, out, n = 1_700_000_000.0, [], 0
    while n < size:
        t += rng.random() / 50
        line = "%s.%06d %s [%s] %s id=%d px=%.4f qty=%d venue=%s\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
            int((t % 1) * 1e6),
            rng.choice(["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]),
            rng.choice(words),
            " ".join(rng.choice(words) for _ in range(rng.randint(2, 6))),
            rng.randint(1, 10**9),
            rng.random() * 1000,
            rng.randint(1, 5000),
            rng.choice(("XNAS", "XNYS", "BATS", "EDGX")),
        )
        out.append(line)
        n += len(line)
    return "".join(out).encode()


@pytest.mark.skipif(not shutil.which("zstd"), reason="needs the zstd tool")
def test_default_zstd_compresses_logs_within_ten_percent_of_gzip_6(tmp_path):
    """Issue 17, set C: at its default settings zstd must land within 10 % of gzip -6's size
    (plain level 3 was 10.3 % above it on such logs)."""
    import gzip

    src, dst = tmp_path / "src", tmp_path / "dst"
    data = _trading_log(4 << 20)
    _old_file(src / "app.log", data)
    dst.mkdir()
    res = _run(src, dst, tmp_path, compression="zstd")
    assert res["moved"] == 1
    assert (dst / "app.log.zst").stat().st_size <= 1.10 * len(gzip.compress(data, 6))
