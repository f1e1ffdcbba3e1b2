# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's jobs: one file to carry (with its direction, its hard links), the run's
outcome (counts and capped lists) and the cutting of a run into batches. Used by the transfer,
``_migrate.migrate`` and ``_migrate_undo``.
"""

from __future__ import annotations

import os
import threading

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    MigrateError,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import (
    REPORT_LIMIT,
)

NOT_THE_JOURNALS = "content does not match the journal's checksum"
UNSAFE_SRC = "a parent directory at the source is a symlink or not a directory; not followed"
UNSAFE_DST = "a directory on the way at the destination is a symlink or not a directory; left alone"


class Skip(Exception):
    """A job left where it is, for the reason in the message (not a failure)."""


def unlink_quiet(name, dir_fd):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def drop_tmp(job):
    """Remove the job's temporary file, if it has one."""
    if job.tmp is not None and job.dst_dir is not None:
        unlink_quiet(job.tmp, job.dst_dir.fd)
    job.tmp = None


OUT = "out"  # from the source tree to the tier (a move or a copy)
BACK = "back"  # from the tier back to the source tree (an undo)


class Job:
    """One file to carry between the source tree and the tier, in one ``direction``.

    ``orig`` is the file's full path in the source tree and ``copy`` its full path on the tier,
    whichever way the job goes (the journal's ``src`` and ``dst``). ``src``/``dst`` are where this
    job reads and writes: ``orig`` -> ``copy`` going ``out``, ``copy`` -> ``orig`` coming ``back``.
    ``src_rel``/``dst_rel`` are the same ends below their trees (bytes), with a content codec on
    each side. ``links`` are other names of the same file (hard links) that follow it.
    """

    __slots__ = (
        "compare",
        "copy",
        "digest",
        "direction",
        "dst_codec",
        "dst_dir",
        "dst_rel",
        "expect",
        "length",
        "level",
        "links",
        "orig",
        "prefetched",
        "record",
        "rel",
        "sel_st",
        "size",
        "src_codec",
        "src_dir",
        "src_rel",
        "st",
        "tmp",
        "tmp_ino",
    )

    def __init__(
        self, rel, orig, copy, src_codec="none", dst_codec="none", level=None, sel_st=None, expect=None, direction=OUT
    ):
        self.rel = rel
        self.orig = orig
        self.copy = copy
        self.direction = direction
        self.src_rel = None
        self.dst_rel = None
        self.src_codec = src_codec
        self.dst_codec = dst_codec
        self.level = level
        self.sel_st = sel_st
        self.expect = expect
        self.size = sel_st.st_size if sel_st is not None else 0
        self.compare = False
        self.st = None
        self.tmp = None
        self.tmp_ino = None
        self.digest = None
        self.length = None
        self.record = None
        self.prefetched = False
        self.src_dir = None
        self.dst_dir = None
        self.links = []

    @property
    def src(self):
        """The full path this job reads."""
        return self.orig if self.direction == OUT else self.copy

    @property
    def dst(self):
        """The full path this job writes."""
        return self.copy if self.direction == OUT else self.orig

    def at(self, src_tree, dst_tree):
        """Set the paths relative to the two trees (from the full paths)."""
        self.src_rel = _rel_below(self.src, src_tree.root)
        self.dst_rel = _rel_below(self.dst, dst_tree.root)
        return self


def _rel_below(path, root):
    rel = os.path.relpath(path, root)
    if rel == b"." or rel.startswith(b"../") or rel == b"..":
        raise MigrateError("%s is not below %s" % (display(path), display(root)))
    return rel


class Outcome:
    """Counts and capped lists for the module result."""

    def __init__(self):
        self.done = []
        self.done_count = 0
        self.done_bytes = 0
        self.skipped = {}
        self.skipped_count = 0
        self.skipped_bytes = 0
        self.skipped_files = []
        self.failed_files = []
        self.failed_count = 0
        self.failed_bytes = 0
        self.links_split = 0
        self.warnings = []
        self._lock = threading.Lock()  # the staging and the finishing thread both report

    def ok(self, job):
        with self._lock:
            self.done_count += 1
            self.done_bytes += job.size
            if len(self.done) < REPORT_LIMIT:
                self.done.append({"src": display(job.src), "dst": display(job.dst), "size": job.size})

    def skip(self, job, reason):
        with self._lock:
            self.skipped_count += 1
            self.skipped_bytes += job.size
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            if len(self.skipped_files) < REPORT_LIMIT:
                self.skipped_files.append({"path": display(job.src), "reason": reason, "size": job.size})

    def fail(self, job, reason):
        with self._lock:
            self.failed_count += 1
            self.failed_bytes += job.size
            if len(self.failed_files) < REPORT_LIMIT:
                self.failed_files.append({"path": display(job.src), "reason": reason, "size": job.size})

    def warn(self, message):
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(message)


def group_links(jobs, left=None):
    """Fold the other names of a hard-linked file into the first job's ``links``.

    Names that would need different codecs (``a.log`` and ``b.gz`` of one file, with compression)
    cannot arrive as one file: the whole group is handed to ``left(job, reason)`` and stays.
    """
    groups = {}
    for job in jobs:
        st = job.sel_st
        if st is not None and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(job)
    out = []
    for job in jobs:
        st = job.sel_st
        group = groups.get((st.st_dev, st.st_ino)) if st is not None and st.st_nlink > 1 else None
        if group is None or len(group) == 1:
            out.append(job)
            continue
        if job is not group[0]:
            continue
        if len(set(each.dst_codec for each in group)) > 1:
            for each in group:
                if left is not None:
                    left(each, "hard links that would need different compression; all names left at the source")
            continue
        for link in group[1:]:
            link.size = 0  # the bytes travel once
        job.links = group[1:]
        out.append(job)
    return out


SPLIT_IN = 4  # a run smaller than this many full batches is cut in about this many ...
SPLIT_FLOOR = 16 << 20  # ... of at least this many bytes


def batch_limit(jobs, batch_bytes):
    """Bytes per batch: ``batch_bytes``, or less for a run smaller than ``SPLIT_IN`` batches of it,
    so that flushing and checking one batch overlaps copying the next (one batch does not)."""
    total = sum(job.size for job in jobs)
    return min(batch_bytes, max(SPLIT_FLOOR, -(-total // SPLIT_IN)))


def batches(jobs, max_files, max_bytes):
    batch, size = [], 0
    for job in jobs:
        if batch and (len(batch) >= max_files or size + job.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(job)
        size += job.size
    if batch:
        yield batch
