# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's content codecs: a file's content read (``open_reader``, decompressing ``zstd``
or ``gzip``) and written (``write_stream``, compressing when asked, holes kept for ``none``), and
the ``zstd`` tool run on a file (``compress_fd``). Standard library only; ``zstd`` is called with
argument lists. Used by ``_migrate_copy``, ``_migrate_readback`` and the transfer's steps.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import subprocess
import zlib

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import will_need
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    CodecError,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import write_all

CHUNK = 1 << 20
READ_AHEAD = 16 << 20  # how far read_back asks the kernel to read ahead of its offset
CODECS = ("none", "zstd", "gzip")
SUFFIXES = {"none": b"", "zstd": b".zst", "gzip": b".gz"}
DEFAULT_LEVELS = {"none": 0, "zstd": 3, "gzip": 6}
# Without a level asked for, zstd's level 3 looks for matches of 6 bytes or more instead of 5:
# as fast, and on logs full of ids and prices 7 % smaller (within 10 % of gzip -6, where plain
# level 3 is 10.3 % above it); level 6 gets there too but runs 2.3 times slower.
ZSTD_DEFAULT_EXTRA = ("--zstd=mml=6",)
BLOCK = 4096  # a run of zeros this long, at a multiple of it, is left as a hole in a raw copy
_ZERO_BLOCK = bytes(BLOCK)
_ZEROS = bytes(CHUNK)


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


def _can_punch(fd):
    """True when ``fd`` is a seekable file with nothing at or after its offset (a new copy)."""
    try:
        return os.fstat(fd).st_size <= os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return False  # a pipe


def _write_sparse(fd, data):
    """Write ``data`` at the offset of ``fd``, seeking over (not writing) its blocks of zeros.

    The file must hold nothing past the offset, so what is skipped reads back as zeros.
    Blocks are ``BLOCK`` bytes from the start of ``data`` (chunks start at multiples of it).
    """
    whole = bytes(data)  # a copy, so the comparisons below are memcmp
    size = len(whole)
    if whole == (_ZEROS if size == CHUNK else bytes(size)):
        os.lseek(fd, size, os.SEEK_CUR)
        return
    if _ZERO_BLOCK not in whole:
        write_all(fd, whole)
        return
    view = memoryview(whole)
    pending = 0  # start of the data not written yet
    for start in range(0, size, BLOCK):
        end = min(start + BLOCK, size)
        if whole[start:end] == _ZERO_BLOCK[: end - start]:
            if pending < start:
                write_all(fd, view[pending:start])
            os.lseek(fd, end - start, os.SEEK_CUR)
            pending = end
    if pending < size:
        write_all(fd, view[pending:])


def write_stream(chunks, dst_fd, codec="none", level=None, zstd_bin=None):
    """Write ``chunks`` to ``dst_fd`` (compressed with ``codec``); return (sha256 hex, length).

    The hash and length are those of the uncompressed content, so a copy and its
    compressed form compare equal. Raises OSError from the writes (ENOSPC and friends).
    With codec ``none`` into a new file, blocks of zeros become holes (a sparse source stays
    sparse; the content read back is the same).
    """
    digest = hashlib.sha256()
    length = 0
    if codec == "none":
        sparse = _can_punch(dst_fd)
        for data in chunks:
            digest.update(data)
            if sparse:
                _write_sparse(dst_fd, data)
            else:
                write_all(dst_fd, data)
            length += len(data)
        if sparse:
            end = os.lseek(dst_fd, 0, os.SEEK_CUR)
            if os.fstat(dst_fd).st_size < end:
                os.ftruncate(dst_fd, end)  # the content ends in a hole
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
        proc = subprocess.Popen(
            _zstd_args(zstd_bin, level), stdin=subprocess.PIPE, stdout=dst_fd, stderr=subprocess.PIPE
        )
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
            raise _zstd_failed(rc, err)
        return digest.hexdigest(), length
    raise ValueError("unknown codec %r" % (codec,))


def _zstd_args(zstd_bin, level):
    lvl = DEFAULT_LEVELS["zstd"] if level is None else level
    args = [zstd_bin, "-q", "-c", "--no-progress", "-%d" % lvl]
    if level is None:
        args.extend(ZSTD_DEFAULT_EXTRA)
    if lvl > 19:
        args.insert(1, "--ultra")
    return args


def _zstd_failed(rc, err):
    text = err.decode("utf-8", "replace").strip()
    if "No space left" in text:
        return OSError(errno.ENOSPC, "No space left on device")
    return CodecError("zstd failed (rc=%d): %s" % (rc, text))


def compress_fd(src_fd, dst_fd, level=None, zstd_bin=None, meanwhile=None):
    """Compress ``src_fd`` (from offset 0) into ``dst_fd`` with the ``zstd`` tool reading the file itself.

    ``meanwhile()`` runs while the tool works (it must not move the file offset: ``pread``);
    its result is returned.
    """
    if not zstd_bin:
        raise CodecError("compression zstd needs the zstd tool on the host and it was not found")
    os.lseek(src_fd, 0, os.SEEK_SET)
    proc = subprocess.Popen(_zstd_args(zstd_bin, level), stdin=src_fd, stdout=dst_fd, stderr=subprocess.PIPE)
    try:
        result = meanwhile() if meanwhile is not None else None
        err = proc.stderr.read()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stderr.close()
    rc = proc.wait()
    if rc != 0:
        raise _zstd_failed(rc, err)
    return result
