# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steps 5 and 6 of tier_migrate's transfer: placed jobs journalled, then the file they read removed.

Going out (``OutCommit``), the journal gets one record per name (what ``undo`` reads back) and a
move then removes the sources. Coming back (``UndoCommit``), the originals are back and flushed:
the tier copies go, then the journal gets one ``rolled_back`` record per name. Either way a file is
removed only when it is still the file that was copied. The journal's records keep their shape
(see ``_migrate_journal``). Used by ``_migrate_transfer.Transfer`` and ``_migrate_undo``.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import encode_path
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import same_stat
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import display
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import split

ROLLED_BACK = "rolled_back"  # the journal's op for a file put back, the transfer's op and the result's mode of an undo


def undo_record(run_id, job):
    """The journal's record that the file of ``job`` is back: it names the tier copy."""
    return {"op": ROLLED_BACK, "run": run_id, "dst": encode_path(job.copy)}


def remove_source(job, outcome):
    """Remove the file the job read (every name of it), each checked to be the file copied;
    False (with a warning) when one changed since."""
    names = [job, *job.links]
    for each in names:
        try:
            now = os.lstat(split(each.src_rel)[1], dir_fd=each.src_dir.fd)
        except FileNotFoundError:
            continue
        if not same_stat(now, job.st):
            outcome.warn(
                "%s changed after it was copied; both copies kept, the destination holds the earlier content"
                % display(each.src)
            )
            return False
    for each in names:
        try:
            os.unlink(split(each.src_rel)[1], dir_fd=each.src_dir.fd)
        except FileNotFoundError:
            pass
    return True


class OutCommit:
    """Commits jobs going out: journal records, then (mode ``move``) the sources go."""

    def __init__(self, mode, journal, run_id, outcome):
        self.mode = mode
        self.journal = journal
        self.run_id = run_id
        self.outcome = outcome

    def commit(self, placed):
        self.journal.append([self.record(each) for job in placed for each in (job, *job.links)])
        for job in placed:
            if job.st.st_nlink > 1 + len(job.links):
                self.outcome.links_split += 1
            if self.mode == "move" and not remove_source(job, self.outcome):
                for each in (job, *job.links):
                    self.outcome.skip(each, "changed after the copy (both kept)")
                continue
            for each in (job, *job.links):
                self.outcome.ok(each)

    def record(self, job):
        return {
            "op": self.mode,
            "run": self.run_id,
            "src": encode_path(job.orig),
            "dst": encode_path(job.copy),
            "size": job.length,
            "sha256": job.digest,
            "codec": job.dst_codec,
        }


class UndoCommit:
    """Commits jobs coming back: the tier copies go, each checked unchanged, then undo records."""

    def __init__(self, journal, run_id, outcome):
        self.journal = journal
        self.run_id = run_id
        self.outcome = outcome

    def commit(self, placed):
        undone = []
        for job in placed:
            names = (job, *job.links)
            if not remove_source(job, self.outcome):
                for each in names:
                    self.outcome.skip(each, "the tier copy changed after it was read back (both kept)")
                continue
            undone.extend(names)
            for each in names:
                self.outcome.ok(each)
        self.journal.append([undo_record(self.run_id, job) for job in undone])


def commit_step(op, journal, run_id, outcome):
    """The commit of a transfer whose op is ``move``, ``copy`` or ``rolled_back``."""
    if op == ROLLED_BACK:
        return UndoCommit(journal, run_id, outcome)
    return OutCommit(op, journal, run_id, outcome)
