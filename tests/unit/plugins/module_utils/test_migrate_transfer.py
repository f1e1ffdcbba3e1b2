"""Unit tests for tier_migrate's transfer pipeline (_migrate_transfer.py): run_all's overlap, finish_batch's order."""

from __future__ import annotations

import errno
import sys
import threading
from types import SimpleNamespace

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _journal as m_journal
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_jobs as m_jobs
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_place as m_place
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_transfer as m_transfer
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import Tree


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
