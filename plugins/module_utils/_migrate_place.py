# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steps 3 and 4 of tier_migrate's transfer: a flushed copy read back and checked, then placed.

``Checker`` drops the copy's cached pages, reads it back from the disk and compares it with the
file it was made from (or, coming back from the tier, with the journal's checksum). ``Placer``
hard-links the checked copy to its final name, never over anything, with every other name of
the file or none. Used by ``_migrate_transfer.Transfer``.
"""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import same_stat
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import CodecError, CopyError, display
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_jobs import (
    NOT_THE_JOURNALS,
    Skip,
    drop_tmp,
    unlink_quiet,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_readback import (
    compare_back,
    prefetch,
    read_back,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import rename_noreplace_at, split

_CHANGED = "changed during the copy (left at the source)"


class Checker:
    """Reads flushed copies back from the disk and checks them (step 3)."""

    def __init__(self, zstd_bin=None):
        self.zstd_bin = zstd_bin

    @staticmethod
    def _open_tmp(job):
        return os.open(job.tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=job.dst_dir.fd)

    def prefetch(self, job):
        """Drop the flushed copy's cached pages and queue its read from the disk (no wait)."""
        try:
            fd = self._open_tmp(job)
        except OSError:
            return  # verify() reports it
        try:
            job.prefetched = prefetch(fd)
        finally:
            os.close(fd)

    def verify(self, job):
        """The flushed copy, read back from the disk, against the file it was made from.

        A copy made from an uncompressed file is compared byte for byte with it (which is hashed
        on the way when the copying step did not hash it); a copy decompressed from a tier copy
        (an undo) was hashed while it was written and its read-back is hashed again.
        """
        fd = self._open_tmp(job)
        try:
            if job.compare:
                digest, job.length = self._compare(job, fd, hashing=job.digest is None)
                job.digest = job.digest or digest
                if job.expect is not None and job.digest != job.expect:
                    raise CopyError(NOT_THE_JOURNALS)
                return
            digest, length = read_back(fd, job.dst_codec, self.zstd_bin, prefetched=job.prefetched)
        finally:
            os.close(fd)
        if digest != job.digest or length != job.length:
            raise CopyError("verification failed: the copy read back from the disk differs")

    def _compare(self, job, fd, hashing):
        name = split(job.src_rel)[1]
        try:
            sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise Skip("vanished during the copy") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Skip(_CHANGED) from exc
            raise
        changed = Skip(_CHANGED)
        try:
            if not same_stat(os.fstat(sfd), job.st):
                raise changed
            try:
                result = compare_back(fd, sfd, job.dst_codec, self.zstd_bin, job.prefetched, hashing)
            except CopyError:
                if not same_stat(os.fstat(sfd), job.st):
                    raise changed from None
                raise
            if not same_stat(os.fstat(sfd), job.st):
                raise changed
            return result
        finally:
            os.close(sfd)


class Placer:
    """Gives checked copies their final names (step 4)."""

    def __init__(self, zstd_bin=None):
        self.zstd_bin = zstd_bin

    @staticmethod
    def _still_same(job):
        try:
            now = os.lstat(split(job.src_rel)[1], dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise Skip("vanished during the copy") from exc
        if not same_stat(now, job.st):
            raise Skip(_CHANGED)

    def place(self, job):
        """Link the verified temporary file to its final name, never over anything."""
        self._still_same(job)
        name = split(job.dst_rel)[1]
        fd = job.dst_dir.fd
        try:
            rename_noreplace_at(fd, job.tmp, fd, name)
        except FileExistsError:
            self._existing(job)
            self._place_links(job, placed_here=False)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links here (some FUSE/SMB filesystems): check, then a plain rename.
            try:
                os.lstat(name, dir_fd=fd)
                self._existing(job)
                return
            except FileNotFoundError:
                os.rename(job.tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        job.tmp = None
        self._place_links(job, placed_here=True)

    @staticmethod
    def _place_links(job, placed_here):
        """Give the placed copy the other names the source file has (hard links), all or none:
        when one cannot be made, the names made so far and the copy placed by this run go again
        (nothing is journalled yet) and every name stays at the source."""
        made = []
        leader_name = split(job.dst_rel)[1]
        for link in job.links:
            link.st, link.digest, link.length = job.st, job.digest, job.length
            name = split(link.dst_rel)[1]
            try:
                os.link(leader_name, name, src_dir_fd=job.dst_dir.fd, dst_dir_fd=link.dst_dir.fd, follow_symlinks=False)
                made.append(link)
                continue
            except FileExistsError:
                have = os.lstat(name, dir_fd=link.dst_dir.fd)
                mine = os.lstat(leader_name, dir_fd=job.dst_dir.fd)
                if (have.st_dev, have.st_ino) == (mine.st_dev, mine.st_ino):
                    continue  # linked by an earlier run that stopped half-way
                reason = "destination exists"
            except OSError as exc:
                reason = exc.strerror or str(exc)
            for done in made:
                unlink_quiet(split(done.dst_rel)[1], done.dst_dir.fd)
            if placed_here:
                mine = os.lstat(leader_name, dir_fd=job.dst_dir.fd)
                if mine.st_ino == job.tmp_ino:
                    os.unlink(leader_name, dir_fd=job.dst_dir.fd)
            raise Skip(
                "hard link %s not made at the destination (%s); all its names left at the source"
                % (display(link.rel), reason)
            )

    def _existing(self, job):
        drop_tmp(job)
        name = split(job.dst_rel)[1]
        try:
            have = os.lstat(name, dir_fd=job.dst_dir.fd)
            if stat.S_ISLNK(have.st_mode):
                raise Skip("destination exists (a symlink); left alone")
            if (have.st_dev, have.st_ino) == (job.st.st_dev, job.st.st_ino):
                raise CopyError("the destination is the source file itself (reached through a link); nothing removed")
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=job.dst_dir.fd)
            try:
                digest, length = read_back(fd, job.dst_codec, self.zstd_bin)
            finally:
                os.close(fd)
        except (OSError, CodecError) as exc:
            raise Skip("destination exists and cannot be compared: %s" % exc) from exc
        if digest != job.digest or length != job.length:
            raise Skip("destination exists with different content; left alone")
        # Same content already there (an earlier run stopped after placing it): finish the job.
