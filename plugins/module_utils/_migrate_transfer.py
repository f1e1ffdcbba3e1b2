# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's transfer pipeline: batches of jobs through the verified-copy protocol.

``Transfer`` runs the batches (staging the next one while the previous one is finished in a
second thread) and hands each step to its own part: ``_migrate_stage`` copies (step 1),
``_migrate_place`` reads back, compares and places (steps 3-4), ``_migrate_commit`` journals and
removes what the direction says (steps 5-6). Used by ``_migrate.migrate`` and ``_migrate_undo``.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_copy import (
    CodecError,
    CopyError,
    compare_back,
    copy_content,
    copy_metadata,
    prefetch,
    read_back,
    same_stat,
    syncfs,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    DestinationFull,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_journal import (
    encode_path,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import (
    TMP_PREFIX,
    TMP_SUFFIX,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    UnsafePath,
    rename_noreplace_at,
    split,
)

SWITCH_INTERVAL = 0.0005  # seconds; see Transfer.run_all


class Skip(Exception):
    pass


_NOT_THE_JOURNALS = "content does not match the journal's checksum"
UNSAFE_SRC = "a parent directory at the source is a symlink or not a directory; not followed"
UNSAFE_DST = "a directory on the way at the destination is a symlink or not a directory; left alone"


class Transfer:
    """Runs batches of Jobs through the verified-copy protocol.

    ``op`` is ``move``, ``copy`` or ``undo``; ``src``/``dst`` are the two Trees: every file is
    reached from their roots without following symlinks and every operation is made relative
    to a directory descriptor, so nothing a user plants below a root can send a write or an
    unlink elsewhere. Directories made at the destination take the owner and mode of the same
    directory at the source.
    """

    # Where the SHA-256 of an uncompressed source is taken: by the copying thread right after its
    # copy (reading the source again from the page cache), or by the finishing thread while it
    # compares the read-back with the source. Both give the same digest.
    HASH_WHILE_COPYING = True

    def __init__(self, op, src, dst, journal, run_id, registry, outcome, zstd_bin=None, drop_metadata=False):
        self.op = op
        self.src = src
        self.dst = dst
        self.journal = journal
        self.run_id = run_id
        self.registry = registry
        self.outcome = outcome
        self.zstd_bin = zstd_bin
        self.keep_owner = dst.keep_owner
        self.drop_metadata = drop_metadata
        self._counter = 0
        self._tag = run_id.encode("ascii", "replace")[-8:].replace(b"/", b"_")

    # -- directory handles held by a job from its staging to its end
    def _open_dirs(self, job):
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

    def _close_dirs(self, job):
        for each in (job, *job.links):
            self._close_dirs_of(each)

    def _drop_tmp(self, job):
        if job.tmp is not None and job.dst_dir is not None:
            unlink_quiet(job.tmp, job.dst_dir.fd)
        job.tmp = None

    # -- step 1
    def stage(self, job):
        self._open_dirs(job)
        self._open_links(job)
        name = split(job.src_rel)[1]
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=job.src_dir.fd)
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
                raise CopyError(_NOT_THE_JOURNALS)
            warning = copy_metadata(tfd, st, self.keep_owner, src_fd=fd, drop_unsupported=self.drop_metadata)
            if warning:
                self.outcome.warn(warning)
            job.tmp_ino = os.fstat(tfd).st_ino
        except BaseException:
            if tfd is not None:
                os.close(tfd)
                tfd = None
            self._drop_tmp(job)
            raise
        finally:
            if tfd is not None:
                os.close(tfd)
            os.close(fd)

    def _open_links(self, job):
        """Directory handles for the other names of a hard-linked file. The names go together or
        not at all: one that cannot be reached safely keeps every name at the source."""
        for link in job.links:
            try:
                self._open_dirs(link)
            except Skip as exc:
                raise Skip("hard link %s: %s; all its names left at the source" % (display(link.rel), exc)) from exc

    def _close_dirs_of(self, link):
        for attr, tree in (("src_dir", self.src), ("dst_dir", self.dst)):
            handle = getattr(link, attr)
            if handle is not None:
                tree.release(handle)
                setattr(link, attr, None)

    # -- steps 3 and 4
    def _open_tmp(self, job):
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
        """Step 3: the flushed copy, read back from the disk, against the source.

        A copy made from an uncompressed source is compared byte for byte with the source (which
        is hashed on the way when the copying step did not hash it); a copy decompressed from a
        tier copy (an undo) was hashed while it was written and its read-back is hashed again.
        """
        fd = self._open_tmp(job)
        try:
            if job.compare:
                digest, job.length = self._compare(job, fd, hashing=job.digest is None)
                job.digest = job.digest or digest
                if job.expect is not None and job.digest != job.expect:
                    raise CopyError(_NOT_THE_JOURNALS)
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
                raise Skip("changed during the copy (left at the source)") from exc
            raise
        changed = Skip("changed during the copy (left at the source)")
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

    def _still_same(self, job):
        try:
            now = os.lstat(split(job.src_rel)[1], dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise Skip("vanished during the copy") from exc
        if not same_stat(now, job.st):
            raise Skip("changed during the copy (left at the source)")

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

    def _place_links(self, job, placed_here):
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
        self._drop_tmp(job)
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

    # -- step 6
    def remove_source(self, job):
        """Remove the source (every name of it), each checked to be the file copied; False if kept."""
        names = [job, *job.links]
        for each in names:
            try:
                now = os.lstat(split(each.src_rel)[1], dir_fd=each.src_dir.fd)
            except FileNotFoundError:
                continue
            if not same_stat(now, job.st):
                self.outcome.warn(
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
                staged, full = self.stage_batch(batch)
                if pending is not None:
                    carry, pending = pending.result(), None
                if staged or carry:
                    pending = pool.submit(self.finish_batch, staged, carry, False)
                    carry = []
                if full is not None:
                    break
            if pending is not None:
                carry, pending = pending.result(), None
            if carry:
                done, carry = carry, []
                self.finish_batch([], done)
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
                    self.finish_batch([], carry)
                except Exception as exc:  # reported, not raised over the first error
                    self.outcome.warn("placed files not committed after the run stopped (the next run does): %s" % exc)
            pool.shutdown(wait=True)
            sys.setswitchinterval(interval)
        self._raise_full(full)

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
                        self._close_dirs(left)
                    return staged, exc
                self._fail_all(job, "%s" % (exc.strerror or exc))
            self._close_dirs(job)
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
                    self._drop_tmp(job)
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
                    self._close_dirs(job)

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

    def commit(self, placed):
        if self.op == "undo":
            # The originals are back and flushed; the tier copies go, each checked to be unchanged.
            undone = []
            for job in placed:
                names = (job, *job.links)
                if not self.remove_source(job):
                    for each in names:
                        self.outcome.skip(each, "the tier copy changed after it was read back (both kept)")
                    continue
                undone.extend(names)
                for each in names:
                    self.outcome.ok(each)
            self.journal.append([{"op": "undo", "run": self.run_id, "dst": encode_path(j.src)} for j in undone])
            return
        self.journal.append([self.record(each) for job in placed for each in (job, *job.links)])
        for job in placed:
            if job.st.st_nlink > 1 + len(job.links):
                self.outcome.links_split += 1
            if self.op == "move" and not self.remove_source(job):
                for each in (job, *job.links):
                    self.outcome.skip(each, "changed after the copy (both kept)")
                continue
            for each in (job, *job.links):
                self.outcome.ok(each)

    def record(self, job):
        return {
            "op": self.op,
            "run": self.run_id,
            "src": encode_path(job.src),
            "dst": encode_path(job.dst),
            "size": job.length,
            "sha256": job.digest,
            "codec": job.dst_codec,
        }


def unlink_quiet(name, dir_fd):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
