# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's transfer pipeline: batches of jobs through the verified-copy protocol.

``Transfer`` runs the batches (staging the next one while the previous one is finished in a
second thread) and hands each step to its own part: ``_migrate_stage`` copies (step 1),
``_migrate_place`` reads back, compares and places (steps 3-4), ``_migrate_commit`` journals and
removes what the run's op says (steps 5-6). Step 2, the flush, is here. Used by
``_migrate.migrate`` and ``_migrate_undo.undo``.
"""

from __future__ import annotations

import errno
import sys
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_commit import commit_step
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import syncfs
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    CodecError,
    CopyError,
    DestinationFull,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_jobs import Skip, drop_tmp
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_place import Checker, Placer
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_stage import Stager
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import split

SWITCH_INTERVAL = 0.0005  # seconds; see Transfer.run_all


class Transfer:
    """Runs batches of Jobs through the verified-copy protocol.

    ``op`` is ``move``, ``copy`` or ``undo``; ``src``/``dst`` are the Trees the jobs read from and
    write to: every file is reached from their roots without following symlinks and every
    operation is made relative to a directory descriptor, so nothing a user plants below a root
    can send a write or an unlink elsewhere. Directories made at the destination take the owner
    and mode of the same directory at the source.
    """

    def __init__(self, op, src, dst, journal, run_id, registry, outcome, zstd_bin=None, drop_metadata=False):
        self.op = op
        self.src = src
        self.dst = dst
        self.outcome = outcome
        self.stager = Stager(src, dst, run_id, registry, outcome, zstd_bin, drop_metadata)
        self.checker = Checker(zstd_bin)
        self.placer = Placer(zstd_bin)
        self.committer = commit_step(op, journal, run_id, outcome)
        self.registry = registry

    def stage(self, job):
        """Step 1 (see ``_migrate_stage``)."""
        self.stager.stage(job)

    def prefetch(self, job):
        self.checker.prefetch(job)

    def verify(self, job):
        """Step 3 (see ``_migrate_place.Checker``)."""
        self.checker.verify(job)

    def place(self, job):
        """Step 4 (see ``_migrate_place.Placer``)."""
        self.placer.place(job)

    def commit(self, placed):
        """Steps 5 and 6 (see ``_migrate_commit``)."""
        self.committer.commit(placed)

    def run_batch(self, jobs):
        """Transfer ``jobs``; raise DestinationFull when the destination filled up."""
        staged, full = self.stage_batch(jobs)
        self.finish_batch(staged)
        self._raise_full(full)

    def run_all(self, batch_iter):
        """Transfer every batch, staging the next one while the previous one is finished.

        Step 1 (copy) of batch N+1 runs in this thread while steps 2-6 of batch N (flush, read
        back and compare, place, journal, remove the sources) run in a second one; at most two
        batches are in flight. One flush serves two batches: the flush that makes batch N+1's
        data durable also makes batch N's new names durable, and only after it are batch N's
        records journalled and its sources removed (a last flush commits the last batch). The
        per-file protocol is unchanged: nothing is journalled or removed before the flush that
        follows its placing.
        """
        run_overlapped(self, batch_iter)

    def stage_batch(self, jobs):
        """Step 1 for each job; return the staged jobs and the ENOSPC error that stopped it, if any."""
        staged = []
        # Every directory that gets a temporary file is recorded before it gets one: the whole
        # batch's with one flush (stage() checks each again), not one flush per directory.
        self.registry.add_many(self.dst.root, sorted({split(job.dst_rel)[0] for job in jobs}))
        for i, job in enumerate(jobs):
            try:
                self.stage(job)
                staged.append(job)
                continue
            except Skip as exc:
                self._skip_all(job, str(exc))
            except (CopyError, CodecError) as exc:
                self._fail_all(job, exc.reason)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    for left in jobs[i:]:
                        self.stager.close_dirs(left)
                    return staged, exc
                self._fail_all(job, "%s" % (exc.strerror or exc))
            self.stager.close_dirs(job)
        return staged, None

    def finish_batch(self, staged, carry=(), flush=True):
        """Steps 2 to 6 for the staged jobs of one batch.

        ``carry``: jobs of the previous batch placed but not committed yet; the first flush here
        makes their names durable, then they are committed (journal, sources). With ``flush``
        the jobs placed here are flushed and committed before returning; without it they are
        returned, to be the ``carry`` of the next batch. Returns the jobs not committed yet.
        """
        carried = []
        try:
            if staged or carry:
                syncfs(self.dst.root)
            if carry:
                self.commit(carry)
            for job in staged:
                self.prefetch(job)
            placed = []
            for job in staged:
                try:
                    self.verify(job)
                    self.place(job)
                    placed.append(job)
                except Skip as exc:
                    self._skip_all(job, str(exc))
                except (CopyError, CodecError) as exc:
                    self._fail_all(job, exc.reason)
                except OSError as exc:
                    self._fail_all(job, "%s" % (exc.strerror or exc))
                finally:
                    drop_tmp(job)
            if placed and flush:
                syncfs(self.dst.root)
                self.commit(placed)
            elif placed:
                carried = placed
            return carried
        finally:
            keep = set(map(id, carried))
            for job in (*carry, *staged):
                if id(job) not in keep:
                    self.stager.close_dirs(job)

    def _skip_all(self, job, reason):
        for each in (job, *job.links):
            self.outcome.skip(each, reason)

    def _fail_all(self, job, reason):
        for each in (job, *job.links):
            self.outcome.fail(each, reason)

    def _raise_full(self, full):
        if full is not None:
            raise DestinationFull(
                "destination %s is full (%s); the run stopped, files not yet moved stay at the source"
                % (display(self.dst.root), full.strerror or full)
            )


def run_overlapped(transfer, batch_iter):
    """Transfer.run_all's loop (see there): ``transfer.stage_batch`` here, ``finish_batch`` in a second thread."""
    full = None
    pending = None
    carry = []
    pool = ThreadPoolExecutor(max_workers=1)
    # Both threads spend most of their time in system calls: hand the GIL over sooner than
    # the default 5 ms, so neither waits on the other's bookkeeping.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        for batch in batch_iter:
            staged, full = transfer.stage_batch(batch)
            if pending is not None:
                carry, pending = pending.result(), None
            if staged or carry:
                pending = pool.submit(transfer.finish_batch, staged, carry, False)
                carry = []
            if full is not None:
                break
        if pending is not None:
            carry, pending = pending.result(), None
        if carry:
            done, carry = carry, []
            transfer.finish_batch([], done)
    finally:
        # After an error in this thread the batch in flight still finishes and what it placed
        # is committed; an error of that work is not raised over the one that stopped the run.
        if pending is not None:
            try:
                carry = pending.result()
            except BaseException:
                carry = []
        if carry:
            try:
                transfer.finish_batch([], carry)
            except Exception as exc:  # reported, not raised over the first error
                transfer.outcome.warn("placed files not committed after the run stopped (the next run does): %s" % exc)
        pool.shutdown(wait=True)
        sys.setswitchinterval(interval)
    transfer._raise_full(full)
