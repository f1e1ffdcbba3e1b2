# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""snapshot_archive's files beside an archive: its checksum file and the temporary files of a run.

Standard library only, Python 3.8. Used by ``_snapshot_archive`` (create, verify, restore) and
``_archive_members``:

* ``SnapshotArchiveError``: a user-facing failure of snapshot_archive, naming the paths involved;
* ``checksum_path``, ``read_checksum``, ``file_sha256``/``fd_sha256``: ``<archive>.sha256`` in
  ``sha256sum`` format and the digest of the file as it is on the disk;
* ``_open_unnamed`` (``O_TMPFILE``), ``_open_named`` (``.<archive>.<8 characters>.partial``,
  ``flock``-ed while it lives), ``is_temporary`` and ``clean_stale``: the temporary files, and
  those killed runs left behind; ``_write_checksum``: the checksum file, written aside and renamed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

CHUNK = 1 << 20
_SHA_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
# A temporary file of ours: the names this module gives (and gave: tempfile.mkstemp's 8 characters).
_TEMPORARY = re.compile(r"^\..+\.tar\.zst\.[a-z0-9_]{8}(?:\.sha256)?\.partial$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class SnapshotArchiveError(JtsError):
    """A user-facing failure; the message names the paths involved."""


def checksum_path(archive):
    return archive + ".sha256"


def file_sha256(path):
    """SHA-256 of a file as it is on the disk (its cached pages dropped first where possible)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return fd_sha256(fd)
    finally:
        os.close(fd)


def fd_sha256(fd):
    """SHA-256 of an open file from its start, as it is on the disk (cached pages dropped first)."""
    digest = hashlib.sha256()
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    offset = 0
    while True:
        chunk = os.pread(fd, CHUNK, offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def read_checksum(archive):
    """The hex digest recorded in ``<archive>.sha256`` (``sha256sum`` format, for this file's name)."""
    path = checksum_path(archive)
    try:
        with open(path) as handle:
            line = handle.readline().strip()
    except OSError as exc:
        raise SnapshotArchiveError("cannot read the checksum file %s: %s" % (path, exc.strerror or exc)) from None
    match = _SHA_LINE.match(line)
    if not match or match.group(2) != os.path.basename(archive):
        raise SnapshotArchiveError("%s is not a sha256sum line for %s: %r" % (path, os.path.basename(archive), line))
    return match.group(1)


def is_temporary(name):
    """True for a temporary file this module writes (or wrote) next to an archive."""
    return bool(_TEMPORARY.match(name))


def _open_unnamed(dir_fd):
    """An unnamed file in the directory (``O_TMPFILE``), or None where the filesystem or kernel has none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(".", flag | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        # EISDIR: a kernel without O_TMPFILE; EOPNOTSUPP: a filesystem without it (NFS).
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def _open_named(dir_fd, archive_name, suffix):
    """``.<archive>.<8 characters><suffix>``, created (never reused) and locked; returns (fd, name)."""
    for _attempt in range(100):
        name = ".%s.%s%s" % (archive_name, os.urandom(4).hex(), suffix)
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours alone: just created
        return fd, name
    raise SnapshotArchiveError("could not create a temporary file for %s" % archive_name)  # pragma: no cover


def clean_stale(directory, check_mode=False, dir_fd=None):
    """Remove the temporary files that killed runs left in ``directory``; return their names.

    Only names of ours (``is_temporary``), only regular files (opened without following a
    symlink), only when no live run holds their lock, and only when the name still refers to the
    file we locked. In check mode, the names that would be removed.
    """
    own = dir_fd is None
    if own:
        dir_fd = os.open(directory, _DIR_FLAGS)
    cleaned = []
    try:
        for name in sorted(os.listdir(dir_fd)):
            if not is_temporary(name):
                continue
            try:
                fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                continue  # a symlink (ELOOP), gone meanwhile: not ours to remove
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        continue  # a run is writing it
                    raise
                if not check_mode:
                    now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                        continue
                    os.unlink(name, dir_fd=dir_fd)
                cleaned.append(name)
            finally:
                os.close(fd)
    finally:
        if own:
            os.close(dir_fd)
    return cleaned


def _write_checksum(dir_fd, archive_name, digest):
    fd, tmp = _open_named(dir_fd, archive_name, ".sha256.partial")
    try:
        os.write(fd, ("%s  %s\n" % (digest, archive_name)).encode())
        os.fchmod(fd, 0o640)
        os.fsync(fd)
        os.rename(tmp, archive_name + ".sha256", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
    finally:
        os.close(fd)
        if tmp is not None:
            os.unlink(tmp, dir_fd=dir_fd)
