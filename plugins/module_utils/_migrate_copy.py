# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verified copies: copy (in the kernel where possible), flush, read back and compare with the source.

Reusable by any module that must never lose a byte. Standard library only (the ``zstd``
tool is called with argument lists when zstd compression is asked for), Python 3.8.

The building blocks:

* ``open_reader(fd, codec)``: a chunk iterator over a file's *content* (decompressing
  ``zstd`` or ``gzip`` files when asked).
* ``copy_content(src_fd, dst_fd, size, src_codec, dst_codec, ...)``: the copy a verified move
  makes: from an uncompressed source ``copy_raw`` (``copy_file_range``/``sendfile``, holes kept)
  or the ``zstd`` tool reading the file itself, then the source's SHA-256 (``hash_at_offsets``);
  from a compressed source ``write_stream``.
* ``write_stream(chunks, dst_fd, codec, level)``: write the content to ``dst_fd``,
  compressing when asked; returns the SHA-256 and length of the uncompressed content.
* ``compare_back(fd, src_fd, codec)``: ``read_back``'s read of the flushed copy, compared byte
  for byte with the source instead of hashed.
* ``read_back(fd, codec)``: drop the file's clean pages from the page cache
  (``posix_fadvise(DONTNEED)``, which only works once the data is on disk, so call it after a
  flush) and hash the content from the disk again. ``prefetch(fd)`` does the drop and queues
  the read ahead of time, so a batch of small files is read back in parallel.
* ``copy_metadata``: owner, group, extended attributes (``user.*``, ``security.*`` such as
  ``security.capability``, ``trusted.*`` as root, POSIX ACLs), mode and times. What the
  destination refuses fails the file (``MetadataError``) unless the caller allows dropping it;
  a dropped POSIX ACL never leaves the mode wider than the owning group's ACL entry.
* ``fsync_dir``, ``syncfs``: flushes.

Raw copies keep holes: ``copy_raw`` copies only the source's data segments; ``write_stream``
(codec ``none``) skips blocks of zeros.
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
import struct
import subprocess
import zlib

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

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


class CopyError(JtsError):
    """A copy step failed; ``reason`` is a short, user-facing explanation."""

    def __init__(self, reason, errno_=None):
        super().__init__(reason)
        self.reason = reason
        self.errno = errno_


class CodecError(CopyError):
    """The compressor or decompressor failed (bad data, missing tool)."""


class MetadataError(CopyError):
    """The destination cannot keep some of the file's metadata (extended attributes, ACLs)."""


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
        _write_all(fd, whole)
        return
    view = memoryview(whole)
    pending = 0  # start of the data not written yet
    for start in range(0, size, BLOCK):
        end = min(start + BLOCK, size)
        if whole[start:end] == _ZERO_BLOCK[: end - start]:
            if pending < start:
                _write_all(fd, view[pending:start])
            os.lseek(fd, end - start, os.SEEK_CUR)
            pending = end
    if pending < size:
        _write_all(fd, view[pending:])


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
                _write_all(dst_fd, data)
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


ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"
# Never copied: written by the kernel (evm), obsolete XFS forms of ACLs and capabilities (the
# system.* ones are copied instead), and filesystem properties that are the destination's own
# business (btrfs.compression): the same list as /etc/xattr.conf of the attr package, plus btrfs.
_NOT_COPIED = ("security.evm", "trusted.SGI_", "xfsroot.", "afs.", "btrfs.")
# Copied where the destination takes it, else left to it: the destination's policy or mount
# labels the file (as cp/mv do with the SELinux context).
_BEST_EFFORT = ("security.selinux",)
_NFS4_ACLS = ("system.nfs4_acl", "system.nfs4_dacl", "system.nfs4_sacl")
_REFUSALS = {
    errno.EOPNOTSUPP: "not supported by the destination",
    errno.ENOTSUP: "not supported by the destination",
    errno.EPERM: "not permitted",
    errno.EACCES: "not permitted",
    errno.EINVAL: "refused by the destination",
    errno.E2BIG: "too large for the destination",
    errno.ENOSPC: "too large for the destination",
    errno.ERANGE: "too large for the destination",
}
_FULL_BELOW = 1 << 20  # ENOSPC with less free than this is a full filesystem, not a size limit
_ACL_GROUP_OBJ, _ACL_MASK = 0x04, 0x10


def acl_group_bits(value):
    """rwx bits (0-7) of the owning group in a ``system.posix_acl_access`` value, or None.

    The owning group's entry (ACL_GROUP_OBJ) limited by the mask when there is one: what the
    group could really do. With an ACL the mode's group bits show the mask (all named users
    and groups), so they are not a safe mode once the ACL is gone.
    """
    if len(value) < 4 or (len(value) - 4) % 8 or struct.unpack_from("<I", value)[0] != 2:
        return None
    group = mask = None
    for offset in range(4, len(value), 8):
        tag, perm, _ident = struct.unpack_from("<HHI", value, offset)
        if tag == _ACL_GROUP_OBJ:
            group = perm & 7
        elif tag == _ACL_MASK:
            mask = perm & 7
    if group is None:
        return None
    return group if mask is None else group & mask


def nfs4_acl_is_trivial(name, value):
    """True when an NFSv4 ACL (``system.nfs4_acl``/``_dacl``/``_sacl``, XDR) says no more than the mode.

    Only allow/deny entries for OWNER@, GROUP@ and EVERYONE@ without inheritance (an NFS
    server derives those from the mode), and no audit entries: losing such an ACL loses nothing.
    """
    try:
        offset = 0 if name == "system.nfs4_acl" else 4  # dacl and sacl start with a flag word
        (count,) = struct.unpack_from(">I", value, offset)
        offset += 4
        if name == "system.nfs4_sacl" and count:
            return False
        for _ in range(count):
            kind, flags, _mask, size = struct.unpack_from(">IIII", value, offset)
            offset += 16
            who = value[offset : offset + size]
            offset += (size + 3) & ~3
            if kind not in (0, 1) or flags & 0x0F or who not in (b"OWNER@", b"GROUP@", b"EVERYONE@"):
                return False
        return offset == len(value)
    except struct.error:
        return False


def _list_xattrs(fd):
    try:
        return os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return []
        raise


def _refusal(fd, exc):
    """Why the destination refused an xattr (a short text), or None when ``exc`` is another error."""
    if exc.errno == errno.ENOSPC:
        try:
            vfs = os.fstatvfs(fd)
            if vfs.f_bfree * vfs.f_frsize < _FULL_BELOW:
                return None  # the filesystem is full: the caller stops the run
        except OSError:
            return None
    return _REFUSALS.get(exc.errno)


def _copy_xattrs(src_fd, fd, mode, is_dir):
    """Copy the extended attributes of ``src_fd`` to ``fd``; return (mode to set, [(name, why) lost])."""
    lost = []
    kept = set()
    acl_access = None
    for name in sorted(_list_xattrs(src_fd)):
        if name.startswith(_NOT_COPIED):
            continue
        try:
            value = os.getxattr(src_fd, name)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed since it was listed
            lost.append((name, "cannot be read: %s" % (exc.strerror or exc)))
            continue
        if name == ACL_ACCESS:
            acl_access = value
        try:
            os.setxattr(fd, name, value)
        except OSError as exc:
            why = _refusal(fd, exc)
            if why is None:
                raise
            if name.startswith(_BEST_EFFORT) or (name in _NFS4_ACLS and nfs4_acl_is_trivial(name, value)):
                continue
            lost.append((name, why))
            continue
        kept.add(name)
    # A default ACL on the destination directory gave the new file an ACL of its own: the copy
    # must not let in anyone the source did not.
    for name in (ACL_ACCESS, ACL_DEFAULT) if is_dir else (ACL_ACCESS,):
        if name not in kept and name in _list_xattrs(fd):
            os.removexattr(fd, name)
    if acl_access is not None and ACL_ACCESS not in kept:
        bits = acl_group_bits(acl_access)
        mode = (mode & ~0o070) | ((bits or 0) << 3)
    return mode, lost


def copy_metadata(fd, st, keep_owner=True, src_fd=None, drop_unsupported=False):
    """Give the file at ``fd`` the owner, group, extended attributes, mode and times of the source.

    ``st`` is the source's stat; ``src_fd`` the source open for reading (without it, only the
    owner, group, mode and times are copied). The order matters: the owner first (chown
    clears set-id bits and ``security.capability``), then the extended attributes (``user.*``,
    ``security.*``, ``trusted.*`` as root, POSIX ACLs), then the mode (over the ACL: its mask
    follows the group bits) and the times last.

    What the destination refuses (no xattr or ACL support, ``security.*`` as non-root, a value
    too large) raises ``MetadataError`` naming it, unless ``drop_unsupported``: then it is
    left out and named in the returned warning. A POSIX ACL left out makes the group bits
    those of the ACL's owning-group entry (never the mask): the mode is never wider than the
    source allowed. Returns a warning string ("" if none). Raises OSError for other errors
    (ENOSPC on a full filesystem, EDQUOT, EIO).
    """
    warnings = []
    if keep_owner:
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            warnings.append("owner %d:%d not kept (not permitted)" % (st.st_uid, st.st_gid))
    mode = stat.S_IMODE(st.st_mode)
    if src_fd is not None:
        mode, lost = _copy_xattrs(src_fd, fd, mode, stat.S_ISDIR(st.st_mode))
        if lost:
            what = ", ".join("%s (%s)" % item for item in lost)
            acl = any(name == ACL_ACCESS for name, _why in lost)
            if not drop_unsupported:
                raise MetadataError(
                    "the destination cannot keep %s; the file is left at the source "
                    "(drop_unsupported_metadata moves it without them)" % what
                )
            warnings.append(
                "metadata dropped (drop_unsupported_metadata): %s%s"
                % (what, "; group permissions set from the ACL's owning-group entry" if acl else "")
            )
    os.fchmod(fd, mode)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    return "; ".join(warnings)


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
