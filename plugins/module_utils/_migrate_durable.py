# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's flushes, page-cache hints and stat checks: ``fsync_dir``, ``syncfs`` (one flush
per filesystem), ``drop_cache``/``will_need`` (``posix_fadvise``) and ``same_stat`` (is this still
the file that was copied?). Used by the codecs, the read-back and the transfer's steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os


def fsync_dir(path):
    """Flush a directory, so a rename or unlink in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _LIBC


def syncfs(path):
    """Flush every dirty page and metadata of the filesystem holding ``path`` (syncfs(2)).

    Falls back to ``sync()`` where syncfs is not available. Raises OSError on a write-back
    error (syncfs reports those since Linux 5.8).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            func = _libc().syncfs
        except (OSError, AttributeError):
            os.sync()
            return
        if func(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "syncfs(%s): %s" % (os.fsdecode(path), os.strerror(err)))
    finally:
        os.close(fd)


def same_stat(a, b):
    """True when two stat results describe the same, unchanged file content."""
    return (
        a.st_ino == b.st_ino
        and a.st_dev == b.st_dev
        and a.st_size == b.st_size
        and a.st_mtime_ns == b.st_mtime_ns
        and a.st_ctime_ns == b.st_ctime_ns
    )


def drop_cache(fd):
    """Ask the kernel to forget the file's clean cached pages, so the next read hits the disk."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except (OSError, AttributeError):
        return False


def will_need(fd, offset, length):
    """Ask the kernel to start reading ``length`` bytes at ``offset`` into the cache (no wait)."""
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except (OSError, AttributeError):
        pass
