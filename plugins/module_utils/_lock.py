# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Non-blocking exclusive locks on files (flock), so two runs never overlap.

A lock is held by an open file descriptor: it is released when the process exits, also after
``kill -9``, so a crashed run never leaves a stale lock behind. Lock files live in a directory
that only this user can write (``/run/jts`` by default, made 0700), reached without following
symlinks and opened with ``O_NOFOLLOW``: a user cannot point a lock at another file, nor hold
the nightly run off by creating the lock first.

``TreeLock`` locks directory trees rather than names: each tree exclusively and each of its
parents shared, so two runs conflict exactly when one's tree contains or equals the other's,
whatever role (source or destination) each gives it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, open_private_dir

DEFAULT_LOCK_DIR = "/run/jts"


class LockBusy(RuntimeError):
    """Another process holds the lock; the message names the lock file and its holder."""


def _open_lock(directory, name):
    try:
        dir_fd = open_private_dir(directory)
    except UnsafePath as exc:
        raise UnsafePath("lock_dir %s refused: %s" % (directory, exc)) from exc
    try:
        return os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _take(fd, shared):
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


def _mark(fd, text):
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8", "backslashreplace"), 0)


class FileLock:
    """Context manager: ``with FileLock('/run/jts/jts-x.lock', 'tier_migrate'):``."""

    def __init__(self, path, purpose=""):
        self.path = path
        self.purpose = purpose
        self._fd = None

    def acquire(self):
        directory, name = os.path.split(self.path)
        fd = _open_lock(directory or ".", name)
        if not _take(fd, shared=False):
            holder = _read_holder(fd)
            os.close(fd)
            raise LockBusy(
                "%s is locked by another run%s (lock file %s); try again when it has finished"
                % (self.purpose or "this task", holder, self.path)
            )
        _mark(fd, "%d\n" % os.getpid())
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


class TreeLock:
    """Lock directory trees (real paths) for one run: ``with TreeLock([src, dst], 'tier_migrate a -> b'):``.

    Each tree is locked exclusively and every directory above it shared, one lock file per
    directory (named by a hash of its path). A run on ``/a`` and one on ``/a/b`` conflict
    (``/a`` is exclusive for one and shared for the other); runs on ``/a/b`` and ``/a/c`` do not.
    """

    def __init__(self, trees, purpose="", lock_dir=DEFAULT_LOCK_DIR):
        self.purpose = purpose
        self.lock_dir = lock_dir
        wanted = {}
        for tree in trees:
            tree = os.path.normpath(os.fsencode(tree))
            wanted[tree] = "exclusive"
            parent = tree
            while parent != b"/":
                parent = os.path.dirname(parent)
                wanted.setdefault(parent, "shared")
        self.wanted = sorted(wanted.items())
        self._fds = []

    @staticmethod
    def name_for(tree):
        return "jts-tree-%s.lock" % hashlib.sha256(os.fsencode(tree)).hexdigest()[:20]

    def acquire(self):
        try:
            for tree, how in self.wanted:
                fd = _open_lock(self.lock_dir, self.name_for(tree))
                if not _take(fd, shared=how == "shared"):
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockBusy(
                        "%s: %s is in use by another run%s (lock %s); try again when it has finished"
                        % (
                            self.purpose or "this task",
                            tree.decode("utf-8", "backslashreplace"),
                            holder,
                            os.path.join(self.lock_dir, self.name_for(tree)),
                        )
                    )
                self._fds.append((fd, how))
                if how == "exclusive":
                    _mark(fd, "%d %s\n" % (os.getpid(), self.purpose))
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        while self._fds:
            fd, how = self._fds.pop()
            try:
                if how == "exclusive":
                    os.ftruncate(fd, 0)  # no stale holder for the next one to report
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


def _read_holder(fd):
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    pid, _sep, what = text.partition(" ")
    if not pid.isdigit():
        return ""
    return " (pid %s%s)" % (pid, ", " + what if what else "")


def lock_path_for(name, *parts, lock_dir=DEFAULT_LOCK_DIR):
    """A stable lock file name for ``name`` and some paths, e.g. a destination."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(lock_dir, "jts-%s-%s.lock" % (name, digest))
