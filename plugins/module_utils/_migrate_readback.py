# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's read-back: a flushed copy's pages dropped from the page cache and its content
read from the disk again, hashed (``read_back``) or compared byte for byte with the source
(``compare_back``); ``prefetch`` queues the read ahead of time. Used by ``_migrate_place`` and
``_migrate_undo``.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_codec import (
    _SPARE_BUFFERS,
    CHUNK,
    READ_AHEAD,
    open_reader,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import drop_cache, will_need
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    CopyError,
)


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


def _read_full(fd, buf, n):
    """Read up to ``n`` bytes into ``buf`` (a bytearray), as many as there are; return how many."""
    view = memoryview(buf)
    got = 0
    while got < n:
        step = os.readv(fd, [view[got:n]])
        if not step:
            break
        got += step
    return got


def _equal(data, buf, n):
    """``data`` (n bytes: bytes or a view of a reader's buffer) equals the first n bytes of ``buf``."""
    if n == len(buf):
        owner = data.obj if isinstance(data, memoryview) else data
        if len(owner) == n:
            return owner == buf  # memcmp
    return bytes(data) == buf[:n]


def compare_back(fd, src_fd, codec="none", zstd_bin=None, prefetched=False, hashing=True):
    """Read the (flushed) copy at ``fd`` back from the disk and compare it with the source's bytes.

    The copy's content (decompressed when ``codec`` says so) is read as ``read_back`` reads it,
    after its pages were dropped from the page cache; the source is read from ``src_fd`` (from its
    start; normally still in the page cache) and the two are compared byte for byte. Returns the
    SHA-256 (None unless ``hashing``) and length of the content; raises CopyError when they differ.
    """
    if not prefetched:
        prefetch(fd)
    os.lseek(fd, 0, os.SEEK_SET)
    os.lseek(src_fd, 0, os.SEEK_SET)
    digest = hashlib.sha256()
    length = 0
    buf = _SPARE_BUFFERS.pop() if _SPARE_BUFFERS else bytearray(CHUNK)
    chunks = open_reader(fd, codec, zstd_bin, ahead=READ_AHEAD)
    try:
        for data in chunks:
            n = len(data)
            if n > len(buf):
                buf = bytearray(n)
            if _read_full(src_fd, buf, n) != n or not _equal(data, buf, n):
                raise CopyError("verification failed: the copy read back from the disk differs")
            if hashing:
                digest.update(data)
            length += n
        if os.read(src_fd, 1):
            raise CopyError("verification failed: the copy read back from the disk differs")
    finally:
        chunks.close()
        if len(_SPARE_BUFFERS) < 4 and len(buf) == CHUNK:
            _SPARE_BUFFERS.append(buf)
    return (digest.hexdigest() if hashing else None), length


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
