"""tier_migrate under hostile and unlucky conditions (issue 14): each test replays one reported
case on real temporary trees and failed on the code before the fix."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from migrate_helpers import _old_file as _old

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_jobs as m_jobs
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_runs as m_runs
from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import Journal
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy, TreeLock
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.modules import tier_migrate

DAY = 86400


def _policy(src, dst, tmp_path, **kw):
    params = {name: spec.get("default") for name, spec in tier_migrate.ARGUMENT_SPEC.items()}
    params.update({"source": str(src), "destination": str(dst), "settle_time": "0", "older_than": "1d"})
    params.setdefault("lock_dir", str(tmp_path / "locks"))
    params["require_mounted"] = False
    params.update(kw)
    return m.build_policy(params)


def _mounts(tmp_path):
    return [
        {"mount_point": b"/", "fstype": "ext4", "source": "/dev/vda", "options": {"rw"}},
        {"mount_point": bytes(tmp_path), "fstype": "xfs", "source": "/dev/loop9", "options": {"rw"}},
    ]


def _run(src, dst, tmp_path, **kw):
    find_bin = kw.pop("find_bin", None)
    return m.migrate(
        _policy(src, dst, tmp_path, **kw), zstd_bin=shutil.which("zstd"), mounts=_mounts(tmp_path), find_bin=find_bin
    )


# 1. A symlink inside the destination that points back into the source.
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_symlink_in_destination_into_the_source_loses_nothing(tmp_path, compression):
    src, dst = tmp_path / "src", tmp_path / "dst"
    log = _old(src / "app" / "live" / "2026-01-01.log", b"the only copy\n")
    (dst / "app").mkdir(parents=True)
    (dst / "app" / "live").symlink_to(src / "app" / "live")
    for _night in range(2):
        res = _run(src, dst, tmp_path, compression=compression)
        assert res["moved"] == 0
    assert log.read_bytes() == b"the only copy\n"
    assert res["skipped_reasons"] == {m_jobs.UNSAFE_DST: 1}
    assert [p for p in os.listdir(src / "app" / "live")] == ["2026-01-01.log"]


def test_a_destination_that_is_the_source_file_is_refused(tmp_path):
    """The last guard: whatever leads there, a destination name that is the source's own inode."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    log = _old(src / "a.log", b"keep me")
    dst.mkdir()
    os.link(log, dst / "a.log")  # same inode at both ends (a hard link, or the same file via a mount)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["failed_count"] == 1
    assert "is the source file itself" in res["failed_files"][0]["reason"]
    assert log.read_bytes() == b"keep me"


# 2. Rollback after the tier copy was edited.
def test_rollback_keeps_a_tier_copy_edited_after_a_copy(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old(src / "a.log", b"original\n")
    dst.mkdir()
    assert _run(src, dst, tmp_path, mode="copy")["moved"] == 1
    with open(dst / "a.log", "ab") as handle:
        handle.write(b"edited on the tier\n")
    res = m.undo(_policy(src, dst, tmp_path))
    assert res["rolled_back"] == 0 and res["skipped_reasons"] == {
        "the tier copy was changed since the move; both kept": 1
    }
    assert (dst / "a.log").read_bytes() == b"original\nedited on the tier\n"
    assert (src / "a.log").read_bytes() == b"original\n"


def test_rollback_after_a_copy_removes_an_unchanged_tier_copy(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old(src / "a.log", b"original\n")
    dst.mkdir()
    _run(src, dst, tmp_path, mode="copy", compression="gzip")
    res = m.undo(_policy(src, dst, tmp_path))
    assert res["rolled_back"] == 1 and not (dst / "a.log.gz").exists()
    assert (src / "a.log").read_bytes() == b"original\n"


# 3. Runs on reversed or sharing pairs, at once.
@pytest.mark.parametrize(
    ("held", "wanted", "busy"),
    [
        (("S", "D"), ("D", "S"), True),  # reversed pair
        (("S", "D1"), ("S", "D2"), True),  # one source, two destinations
        (("S", "D"), ("S/sub", "X"), True),  # a tree inside another
        (("S", "D"), ("X", "D/sub"), True),
        (("S/a", "D"), ("S/b", "X"), False),  # siblings do not conflict
        (("S", "D"), ("X", "Y"), False),
    ],
)
def test_one_lock_covers_every_run_on_the_same_tree(tmp_path, held, wanted, busy):
    def paths(pair):
        return [os.fsencode(str(tmp_path / p)) for p in pair]

    with TreeLock(paths(held), "first", lock_dir=str(tmp_path / "locks")):
        second = TreeLock(paths(wanted), "second", lock_dir=str(tmp_path / "locks"))
        if busy:
            with pytest.raises(LockBusy, match="is in use by another run"):
                second.acquire()
        else:
            second.acquire().release()


def test_a_reversed_run_is_refused_while_the_first_holds_its_trees(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old(src / "a.log", b"a")
    dst.mkdir()
    reverse = _policy(dst, src, tmp_path)
    with m.lock(reverse, reverse.source, reverse.dest), pytest.raises(LockBusy):
        _run(src, dst, tmp_path)
    assert (src / "a.log").read_bytes() == b"a"


# 7. Hard links.
def test_hard_links_arrive_linked_without_a_false_warning(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    first = _old(src / "x" / "one.log", b"linked content")
    os.link(first, src / "y.log")
    dst.mkdir()
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 2 and res["warnings"] == [] and res["hard_links_split"] == 0
    assert res["moved_bytes"] == len(b"linked content")  # the bytes travelled once
    a, b = os.stat(dst / "x" / "one.log"), os.stat(dst / "y.log")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
    assert not first.exists() and not (src / "y.log").exists()
    res = m.undo(_policy(src, dst, tmp_path))
    assert res["rolled_back"] == 2 and (src / "y.log").read_bytes() == b"linked content"


def test_a_hard_link_outside_the_selection_is_reported_as_split(tmp_path):
    src, dst, elsewhere = tmp_path / "src", tmp_path / "dst", tmp_path / "elsewhere"
    first = _old(src / "one.log", b"linked content")
    elsewhere.mkdir()
    os.link(first, elsewhere / "other-name")
    dst.mkdir()
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 1 and res["hard_links_split"] == 1 and res["warnings"] == []
    assert (elsewhere / "other-name").read_bytes() == (dst / "one.log").read_bytes() == b"linked content"


# 12. A torn journal line.
def test_a_record_after_a_torn_journal_line_is_kept(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"op": "move", "run": "r1", "src": "/s/a", "dst": "/d/a", "sha2')
    journal = Journal(str(path))
    journal.append([{"op": "move", "run": "r2", "src": "/s/b", "dst": "/d/b", "sha256": "x", "size": 1}])
    records, damaged = journal.read()
    assert damaged == 1 and [r["run"] for r in records] == ["r2"]


# 13. A source that is a symlink to a directory: find and the walk agree.
@pytest.mark.parametrize("find_bin", [shutil.which("find"), None])
def test_a_symlinked_source_is_resolved_once_for_both_selectors(tmp_path, find_bin):
    real, dst = tmp_path / "real", tmp_path / "dst"
    _old(real / "a.log", b"a")
    (tmp_path / "link").symlink_to(real)
    dst.mkdir()
    res = _run(tmp_path / "link", dst, tmp_path, find_bin=find_bin)
    assert res["scanned"] == 1 and res["moved"] == 1
    assert any("reached through a symlink" in w for w in res["warnings"])
    assert (dst / "a.log").read_bytes() == b"a"


# 14. Temporary files in a directory whose name holds a newline.
def test_temp_files_in_a_directory_with_a_newline_are_cleaned(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    weird = dst / "odd\nname"
    weird.mkdir(parents=True)
    left = weird / ".jts-migrate-deadbeef-1.tmp"
    left.write_bytes(b"partial copy of a killed run")
    pol = _policy(src, dst, tmp_path)
    m_runs.registry_of(pol).add(os.fsencode(str(dst)), b"odd\nname")  # what the killed run had recorded
    src.mkdir()
    res = _run(src, dst, tmp_path)
    assert res["cleaned_temp_files"] == 1 and not left.exists()


def test_the_registry_refuses_to_clean_through_a_symlink(tmp_path):
    src, dst, victim = tmp_path / "src", tmp_path / "dst", tmp_path / "victim"
    victim.mkdir()
    bait = victim / ".jts-migrate-x-1.tmp"
    bait.write_bytes(b"not ours")
    dst.mkdir()
    src.mkdir()
    (dst / "sub").symlink_to(victim)
    pol = _policy(src, dst, tmp_path)
    m_runs.registry_of(pol).add(os.fsencode(str(dst)), b"sub")
    assert _run(src, dst, tmp_path)["cleaned_temp_files"] == 0
    assert bait.exists()


# 15. The free-space check after the preflight is time-limited too.
def test_a_destination_that_stops_answering_after_the_preflight_is_refused(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old(src / "a.log", b"a")
    dst.mkdir()

    def statvfs(path, timeout=5.0):
        raise ProbeTimeout("statvfs did not return within %ss" % timeout)

    # The preflight's own probe (bound when it was defined) answers; the later check does not.
    monkeypatch.setattr(m, "statvfs_with_timeout", statvfs)
    pol = _policy(src, dst, tmp_path)
    with pytest.raises(m.MigrateError, match="does not answer within"):
        m.migrate(pol, mounts=_mounts(tmp_path))
    assert (src / "a.log").exists()


def test_hard_links_that_need_different_codecs_all_stay(tmp_path):
    """a.log and b.gz of one file cannot arrive as one file once a.log is compressed."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    first = _old(src / "a.log", b"linked")
    os.link(first, src / "b.gz")
    dst.mkdir()
    res = _run(src, dst, tmp_path, compression="zstd")
    assert res["moved"] == 0 and res["warnings"] == []
    reason = "hard links that would need different compression; all names left at the source"
    assert res["selection_skipped"][reason] == 2
    assert sorted(os.listdir(src)) == ["a.log", "b.gz"] and os.listdir(dst) == [".jts-migrate"]


def test_a_hard_link_that_cannot_be_placed_keeps_every_name(tmp_path):
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    first = _old(src / "a.log", b"linked")
    (src / "sub").mkdir()
    os.link(first, src / "sub" / "b.log")
    outside.mkdir()
    dst.mkdir()
    (dst / "sub").symlink_to(outside)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_count"] == 2
    assert first.exists() and (src / "sub" / "b.log").exists()
    assert os.listdir(outside) == [] and not (dst / "a.log").exists()


def test_a_hard_link_whose_destination_is_taken_keeps_every_name(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    first = _old(src / "a.log", b"linked")
    os.link(first, src / "b.log")
    dst.mkdir()
    (dst / "b.log").write_bytes(b"someone else's")
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_count"] == 2
    assert "not made at the destination (destination exists)" in res["skipped_files"][0]["reason"]
    assert first.exists() and (src / "b.log").exists() and not (dst / "a.log").exists()
    assert (dst / "b.log").read_bytes() == b"someone else's"


def test_the_find_selector_leaves_no_file_behind_in_tmpdir(tmp_path, monkeypatch):
    """find writes its count of young files through /dev/fd into an unnamed file: a kill -9
    while it runs leaves nothing in TMPDIR."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old(src / "old.log")
    _old(src / "young.log", days=0)
    dst.mkdir()
    names = []
    real = tempfile.TemporaryFile

    def spy(*a, **kw):
        handle = real(*a, **kw)
        names.append(os.listdir(tmpdir))  # while find runs: nothing named there
        return handle

    monkeypatch.setattr(tempfile, "TemporaryFile", spy)
    res = _run(src, dst, tmp_path, find_bin=shutil.which("find"))
    assert res["moved"] == 1 and res["selection_skipped"]["too young"] == 1
    assert names == [[]] and os.listdir(tmpdir) == []
