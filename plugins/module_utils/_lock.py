# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A non-blocking exclusive lock on a file (flock), so two runs never overlap.

The lock is held by an open file descriptor: it is released when the process exits,
also after ``kill -9``, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import os


class LockBusy(RuntimeError):
    """Another process holds the lock; the message names the lock file and its holder."""


class FileLock:
    """Context manager: ``with FileLock('/run/lock/jts-x.lock', 'tier_migrate'):``."""

    def __init__(self, path, purpose=""):
        self.path = path
        self.purpose = purpose
        self._fd = None

    def acquire(self):
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise LockBusy(
                    "%s is locked by another run%s (lock file %s); try again when it has finished"
                    % (self.purpose or "this task", holder, self.path)
                ) from exc
            raise
        os.ftruncate(fd, 0)
        os.write(fd, ("%d\n" % os.getpid()).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return " (pid %s)" % pid if pid.isdigit() else ""


def lock_path_for(name, *parts, lock_dir="/run/lock"):
    """A stable lock file name for ``name`` and some paths, e.g. a source/destination pair."""
    import hashlib

    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(lock_dir, "jts-%s-%s.lock" % (name, digest))
