# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy a verified move makes: ``copy_content(src_fd, dst_fd, size, src_codec, dst_codec, ...)``.

From an uncompressed source it is ``copy_raw`` (``copy_file_range``/``sendfile`` in the kernel,
only the source's data segments, so holes are kept) or the ``zstd`` tool reading the file itself,
then the source's SHA-256 (``hash_at_offsets``); from a compressed source ``write_stream``.
Standard library only, Python 3.8. Used by ``_migrate_stage``.

The other building blocks of a verified copy, reusable by any module that must never lose a
byte, live beside it: ``_migrate_codec`` (``open_reader``, ``write_stream``, ``compress_fd``),
``_migrate_readback`` (``read_back``, ``compare_back``, ``prefetch``, ``hash_path``),
``_migrate_metadata`` (``copy_metadata``), ``_migrate_durable`` (``syncfs``, ``fsync_dir``,
``same_stat``, page-cache hints) and ``_migrate_errors`` (``CopyError``, ``CodecError``,
``MetadataError``).
"""

from __future__ import annotations

import errno
import hashlib
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_codec import (
    _SPARE_BUFFERS,
    CHUNK,
    compress_fd,
    open_reader,
    write_stream,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import same_stat  # noqa: F401 (re-export for tests/functional/test_migrate_metadata.py; the lead redirects it)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (  # noqa: F401 (re-export for tests/functional/test_migrate_metadata.py; the lead redirects it)
    CodecError,
    CopyError,
    MetadataError,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_metadata import copy_metadata  # noqa: F401 (re-export for tests/functional/test_migrate_metadata.py; the lead redirects it)

_KERNEL_STEP = 16 << 20  # bytes per copy_file_range/sendfile call (signals are handled between calls)
_NOT_HERE = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)


def _copy_range(src_fd, dst_fd, offset, count, how):
    """Copy ``count`` bytes at ``offset`` of ``src_fd`` to the same offset of ``dst_fd`` in the kernel.

    ``how`` (a one-item list, shared by the calls for one file) says which call works here:
    ``copy_file_range`` (same filesystem: a reflink or a server-side copy where there is one),
    else ``sendfile`` (any two files: one copy from page cache to page cache), else ``pread``/``pwrite``.
    Returns the bytes copied, fewer when the source ended early (it shrank).
    """
    done = 0
    while done < count:
        step = min(count - done, _KERNEL_STEP)
        pos = offset + done
        if how[0] == "copy_file_range":
            try:
                got = os.copy_file_range(src_fd, dst_fd, step, pos, pos)
            except OSError as exc:
                if exc.errno not in _NOT_HERE:
                    raise
                how[0] = "sendfile"
                continue
        elif how[0] == "sendfile":
            try:
                os.lseek(dst_fd, pos, os.SEEK_SET)
                got = os.sendfile(dst_fd, src_fd, pos, step)
            except OSError as exc:
                if exc.errno not in _NOT_HERE:
                    raise
                how[0] = "pread"
                continue
        else:
            data = os.pread(src_fd, step, pos)
            got = len(data)
            view = memoryview(data)
            while view:
                written = os.pwrite(dst_fd, view, pos + got - len(view))
                view = view[written:]
        if not got:
            break
        done += got
    return done


def copy_raw(src_fd, dst_fd, size):
    """Copy the first ``size`` bytes of ``src_fd`` into the new, empty file ``dst_fd``, in the kernel.

    The data never passes through Python, and the source's holes (``SEEK_HOLE``) stay holes: only
    its data segments are copied and the file is extended to ``size`` at the end. Returns the
    length copied: ``size``, or less when the source shrank (the caller checks).
    """
    how = ["copy_file_range" if hasattr(os, "copy_file_range") else "sendfile"]
    offset = 0
    written_to = 0
    while offset < size:
        try:
            start = os.lseek(src_fd, offset, os.SEEK_DATA)
            end = min(os.lseek(src_fd, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break  # nothing but a hole from here on
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
            start, end = offset, size  # no hole information: copy it all
        if start >= size:
            break
        got = _copy_range(src_fd, dst_fd, start, end - start, how)
        written_to = start + got
        if got < end - start:
            return written_to  # the source shrank
        offset = end
    if written_to < size:
        now = os.fstat(src_fd).st_size
        if now < size:
            return now  # the source shrank: what looked like a trailing hole is its new end
        os.ftruncate(dst_fd, size)  # the content ends in a hole
    return size


def hash_at_offsets(fd):
    """(sha256, length) of the file at ``fd`` read with ``pread`` from its start (the offset stays)."""
    buf = _SPARE_BUFFERS.pop() if _SPARE_BUFFERS else bytearray(CHUNK)
    view = memoryview(buf)
    digest = hashlib.sha256()
    length = 0
    try:
        while True:
            n = os.preadv(fd, [buf], length)
            if not n:
                return digest.hexdigest(), length
            digest.update(view[:n])
            length += n
    finally:
        if len(_SPARE_BUFFERS) < 4:
            _SPARE_BUFFERS.append(buf)


def copy_content(src_fd, dst_fd, size, src_codec="none", dst_codec="none", level=None, zstd_bin=None, hashing=True):
    """Copy a file's content from ``src_fd`` to the new file ``dst_fd``; return (sha256 or None, length).

    From an uncompressed source the copy is made the cheapest way (``copy_raw`` in the kernel, or
    ``zstd`` reading the file itself) and ``compare_back`` later checks the flushed copy against
    the source. The SHA-256 of the content (what the journal keeps) is taken here by reading the
    source once more (from the page cache) when ``hashing``, else it is None and ``compare_back``
    takes it. From a compressed source (an undo) the content is decompressed here and hashed while
    it is written, as ``write_stream`` does.
    """
    if src_codec != "none":
        return write_stream(open_reader(src_fd, src_codec, zstd_bin), dst_fd, dst_codec, level, zstd_bin)
    if dst_codec == "zstd":  # hashed while the tool compresses, in a process of its own
        hashed = compress_fd(src_fd, dst_fd, level, zstd_bin, (lambda: hash_at_offsets(src_fd)) if hashing else None)
        return hashed or (None, size)
    if dst_codec == "none":
        length = copy_raw(src_fd, dst_fd, size)
    else:
        os.lseek(src_fd, 0, os.SEEK_SET)
        length = write_stream(open_reader(src_fd), dst_fd, dst_codec, level, zstd_bin)[1]
    if not hashing:
        return None, length
    digest, hashed = hash_at_offsets(src_fd)
    return digest, min(length, hashed)
