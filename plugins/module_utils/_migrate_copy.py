# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verified copies: hash while copying, optional compression, flush, re-read and compare.

Reusable by any module that must never lose a byte. Standard library only (the ``zstd``
tool is called with argument lists when zstd compression is asked for), Python 3.8.

The building blocks:

* ``open_reader(fd, codec)``: a chunk iterator over a file's *content* (decompressing
  ``zstd`` or ``gzip`` files when asked).
* ``write_stream(chunks, dst_fd, codec, level)``: write the content to ``dst_fd``,
  compressing when asked; returns the SHA-256 and length of the uncompressed content.
* ``read_back(fd, codec)``: drop the file's clean pages from the page cache
  (``posix_fadvise(DONTNEED)``, which only works once the data is on disk, so call it after a
  flush) and hash the content from the disk again. ``prefetch(fd)`` does the drop and queues
  the read ahead of time, so a batch of small files is read back in parallel.
* ``copy_metadata``, ``fsync_dir``, ``syncfs``: owner/group/mode/times and flushes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import gzip
import hashlib
import io
import os
import stat
import subprocess
import zlib

CHUNK = 1 << 20
READ_AHEAD = 16 << 20  # how far read_back asks the kernel to read ahead of its offset
CODECS = ("none", "zstd", "gzip")
SUFFIXES = {"none": b"", "zstd": b".zst", "gzip": b".gz"}
DEFAULT_LEVELS = {"none": 0, "zstd": 3, "gzip": 6}


class CopyError(Exception):
    """A copy step failed; ``reason`` is a short, user-facing explanation."""

    def __init__(self, reason, errno_=None):
        super().__init__(reason)
        self.reason = reason
        self.errno = errno_


class CodecError(CopyError):
    """The compressor or decompressor failed (bad data, missing tool)."""


_SPARE_BUFFERS = []


def _raw_chunks(fd, chunk=CHUNK, ahead=0):
    # A 1 MiB buffer costs a 1 MiB memset: reuse spare ones (tens of thousands of small files).
    # Each generator holds its own buffer while it runs, so two readers never share one.
    # ``ahead``: keep asking the kernel to read that far past the offset (see read_back).
    buf = _SPARE_BUFFERS.pop() if _SPARE_BUFFERS else bytearray(chunk)
    view = memoryview(buf)
    pos = 0
    hinted = ahead
    try:
        while True:
            n = os.readv(fd, [buf])
            if not n:
                return
            pos += n
            if ahead and pos + ahead // 2 >= hinted:
                will_need(fd, hinted, ahead)
                hinted += ahead
            yield view[:n]
    finally:
        if len(_SPARE_BUFFERS) < 4:
            _SPARE_BUFFERS.append(buf)


def _gzip_chunks(fd, chunk=CHUNK):
    raw = os.fdopen(os.dup(fd), "rb", buffering=0)
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            while True:
                try:
                    data = gz.read(chunk)
                except (OSError, EOFError, zlib.error) as exc:
                    raise CodecError("gzip data is corrupt: %s" % exc) from exc
                if not data:
                    return
                yield data
    finally:
        raw.close()


def _zstd_chunks(fd, zstd_bin, chunk=CHUNK):
    if not zstd_bin:
        raise CodecError("the zstd tool is needed to read a .zst file and was not found")
    proc = subprocess.Popen(
        [zstd_bin, "-q", "-d", "-c", "--no-progress"], stdin=fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        while True:
            data = proc.stdout.read(chunk)
            if not data:
                break
            yield data
    finally:
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0:
        raise CodecError("zstd -d failed (rc=%d): %s" % (rc, err.decode("utf-8", "replace").strip()))


def open_reader(fd, codec="none", zstd_bin=None, ahead=0):
    """Iterate over the content of the file open at ``fd`` (from its current offset)."""
    if codec == "none":
        return _raw_chunks(fd, ahead=ahead)
    if codec == "gzip":
        return _gzip_chunks(fd)
    if codec == "zstd":
        return _zstd_chunks(fd, zstd_bin)
    raise ValueError("unknown codec %r" % (codec,))


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_stream(chunks, dst_fd, codec="none", level=None, zstd_bin=None):
    """Write ``chunks`` to ``dst_fd`` (compressed with ``codec``); return (sha256 hex, length).

    The hash and length are those of the uncompressed content, so a copy and its
    compressed form compare equal. Raises OSError from the writes (ENOSPC and friends).
    """
    digest = hashlib.sha256()
    length = 0
    if codec == "none":
        for data in chunks:
            digest.update(data)
            _write_all(dst_fd, data)
            length += len(data)
        return digest.hexdigest(), length
    if codec == "gzip":
        raw = os.fdopen(os.dup(dst_fd), "wb", buffering=0)
        try:
            buffered = io.BufferedWriter(raw, CHUNK)
            gz = gzip.GzipFile(
                fileobj=buffered,
                mode="wb",
                compresslevel=DEFAULT_LEVELS["gzip"] if level is None else level,
                mtime=0,
            )
            for data in chunks:
                digest.update(data)
                gz.write(data)
                length += len(data)
            gz.close()
            buffered.flush()
        finally:
            raw.close()
        return digest.hexdigest(), length
    if codec == "zstd":
        if not zstd_bin:
            raise CodecError("compression zstd needs the zstd tool on the host and it was not found")
        lvl = DEFAULT_LEVELS["zstd"] if level is None else level
        args = [zstd_bin, "-q", "-c", "--no-progress", "-%d" % lvl]
        if lvl > 19:
            args.insert(1, "--ultra")
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=dst_fd, stderr=subprocess.PIPE)
        try:
            for data in chunks:
                digest.update(data)
                proc.stdin.write(data)
                length += len(data)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err = proc.stderr.read()
        proc.stderr.close()
        rc = proc.wait()
        if rc != 0:
            text = err.decode("utf-8", "replace").strip()
            if "No space left" in text:
                raise OSError(errno.ENOSPC, "No space left on device")
            raise CodecError("zstd failed (rc=%d): %s" % (rc, text))
        return digest.hexdigest(), length
    raise ValueError("unknown codec %r" % (codec,))


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


def prefetch(fd):
    """Drop the (flushed) file's cached pages, then start reading its first ``READ_AHEAD`` bytes back.

    The read is queued, not waited for: calling this for every file of a batch before reading
    any of them lets the device work on many small files at once instead of one at a time.
    The pages that come back are read from the disk, so ``read_back(..., prefetched=True)``
    still checks the bytes on the device. Returns False where the cache cannot be dropped.
    """
    if not drop_cache(fd):
        return False
    will_need(fd, 0, READ_AHEAD)
    return True


def read_back(fd, codec="none", zstd_bin=None, prefetched=False):
    """Hash the content of the (flushed) file at ``fd`` as read back from the disk.

    ``prefetched``: ``prefetch()`` already dropped the cache and started the read (dropping
    again would throw that read away). Raw content is read with the kernel asked to stay
    ``READ_AHEAD`` bytes ahead, so a large file streams at the device's speed.
    """
    if not prefetched:
        prefetch(fd)
    os.lseek(fd, 0, os.SEEK_SET)
    return _hash_content(open_reader(fd, codec, zstd_bin, ahead=READ_AHEAD))


def _hash_content(chunks):
    digest = hashlib.sha256()
    length = 0
    for data in chunks:
        digest.update(data)
        length += len(data)
    return digest.hexdigest(), length


def hash_path(path, codec="none", zstd_bin=None, drop=False):
    """(sha256, length) of the content of ``path`` without following a final symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if drop:
            return read_back(fd, codec, zstd_bin)
        return _hash_content(open_reader(fd, codec, zstd_bin))
    finally:
        os.close(fd)


def copy_metadata(fd, st, keep_owner=True):
    """Give the file at ``fd`` the owner, group, mode and times of ``st``.

    Returns a warning string when the owner could not be kept (not root), else "".
    The mode is set after the owner (chown clears set-id bits) and the times last.
    """
    warning = ""
    if keep_owner:
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            warning = "owner %d:%d not kept (not permitted)" % (st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    return warning


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


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_NOREPLACE_BROKEN = False


def rename_noreplace(src, dst):
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError), atomically.

    Uses renameat2(RENAME_NOREPLACE) (one metadata operation); where the kernel, libc or
    filesystem lacks it (NFS), falls back to link + unlink, which is just as safe.
    """
    global _NOREPLACE_BROKEN
    if not _NOREPLACE_BROKEN:
        try:
            func = _libc().renameat2
        except (OSError, AttributeError):
            func = None
        if func is not None:
            if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
                return
            err = ctypes.get_errno()
            if err == errno.EEXIST:
                raise FileExistsError(err, os.strerror(err), dst)
            if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), dst)
        _NOREPLACE_BROKEN = func is None
    os.link(src, dst)
    os.unlink(src)


def same_stat(a, b):
    """True when two stat results describe the same, unchanged file content."""
    return (
        a.st_ino == b.st_ino
        and a.st_dev == b.st_dev
        and a.st_size == b.st_size
        and a.st_mtime_ns == b.st_mtime_ns
        and a.st_ctime_ns == b.st_ctime_ns
    )
