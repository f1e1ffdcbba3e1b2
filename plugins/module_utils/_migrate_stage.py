# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step 1 of tier_migrate's transfer: a job's file copied to a temporary file beside its final name.

The directories of both ends are reached from the trees' roots without following symlinks and
held (with those of the file's other names) from staging to the job's end; the copy is made
relative to them, with the owner, mode, times and extended attributes of the file it reads. A
file that changed during its copy is left alone. Used by ``_migrate_transfer.Transfer``.
"""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_copy import copy_content
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import same_stat
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import CodecError, CopyError, display
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_jobs import (
    NOT_THE_JOURNALS,
    UNSAFE_DST,
    UNSAFE_SRC,
    Skip,
    drop_tmp,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_metadata import copy_metadata
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import TMP_PREFIX, TMP_SUFFIX
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, split

_OPEN_SOURCE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class Stager:
    """Copies jobs' files from the ``src`` Tree to temporary files in the ``dst`` Tree."""

    # Where the SHA-256 of an uncompressed source is taken: by the copying thread right after its
    # copy (reading the source again from the page cache), or by the finishing thread while it
    # compares the read-back with the source. Both give the same digest.
    HASH_WHILE_COPYING = True

    def __init__(self, src, dst, run_id, registry, outcome, zstd_bin=None, drop_metadata=False):
        self.src = src
        self.dst = dst
        self.registry = registry
        self.outcome = outcome
        self.zstd_bin = zstd_bin
        self.keep_owner = dst.keep_owner
        self.drop_metadata = drop_metadata
        self._counter = 0
        self._tag = run_id.encode("ascii", "replace")[-8:].replace(b"/", b"_")

    # -- directory handles held by a job from its staging to its end
    def open_dirs(self, job):
        src_parent, _name = split(job.src_rel)
        try:
            job.src_dir = self.src.acquire(src_parent)
        except UnsafePath as exc:
            raise Skip(UNSAFE_SRC) from exc
        except FileNotFoundError as exc:
            raise Skip("vanished before the copy") from exc
        dst_parent, _name = split(job.dst_rel)
        try:
            job.dst_dir = self.dst.acquire(dst_parent, create=True)
        except UnsafePath as exc:
            raise Skip(UNSAFE_DST) from exc

    def open_links(self, job):
        """Directory handles for the other names of a hard-linked file. The names go together or
        not at all: one that cannot be reached safely keeps every name at the source."""
        for link in job.links:
            try:
                self.open_dirs(link)
            except Skip as exc:
                raise Skip("hard link %s: %s; all its names left at the source" % (display(link.rel), exc)) from exc

    def close_dirs(self, job):
        for each in (job, *job.links):
            for attr, tree in (("src_dir", self.src), ("dst_dir", self.dst)):
                handle = getattr(each, attr)
                if handle is not None:
                    tree.release(handle)
                    setattr(each, attr, None)

    def stage(self, job):
        self.open_dirs(job)
        self.open_links(job)
        name = split(job.src_rel)[1]
        try:
            fd = os.open(name, _OPEN_SOURCE, dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise Skip("vanished before the copy") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Skip("symlink (not followed)") from exc
            raise CopyError("cannot open: %s" % (exc.strerror or exc), exc.errno) from exc
        tfd = None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Skip("not a regular file")
            if job.sel_st is not None and not same_stat(st, job.sel_st):
                raise Skip("changed since it was selected")
            job.st = st
            self.registry.add(self.dst.root, split(job.dst_rel)[0])
            self._counter += 1
            job.tmp = TMP_PREFIX + self._tag + b"-%d" % self._counter + TMP_SUFFIX
            tfd = os.open(
                job.tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=job.dst_dir.fd,
            )
            self._copy(job, fd, tfd, st)
            job.tmp_ino = os.fstat(tfd).st_ino
        except BaseException:
            if tfd is not None:
                os.close(tfd)
                tfd = None
            drop_tmp(job)
            raise
        finally:
            if tfd is not None:
                os.close(tfd)
            os.close(fd)

    def _copy(self, job, fd, tfd, st):
        """Content, then the checks that it is the file selected, then metadata."""
        try:
            job.digest, job.length = copy_content(
                fd, tfd, st.st_size, job.src_codec, job.dst_codec, job.level, self.zstd_bin, self.HASH_WHILE_COPYING
            )
            job.compare = job.src_codec == "none"
        except CodecError:
            raise
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            if exc.filename is None and exc.errno in (errno.EIO, errno.EACCES, errno.EISDIR):
                raise CopyError("cannot read: %s" % (exc.strerror or exc), exc.errno) from exc
            raise
        after = os.fstat(fd)
        if not same_stat(st, after) or (job.src_codec == "none" and job.length != st.st_size):
            raise Skip("changed during the copy (left at the source)")
        if job.expect is not None and job.digest is not None and job.digest != job.expect:
            raise CopyError(NOT_THE_JOURNALS)
        warning = copy_metadata(tfd, st, self.keep_owner, src_fd=fd, drop_unsupported=self.drop_metadata)
        if warning:
            self.outcome.warn(warning)
