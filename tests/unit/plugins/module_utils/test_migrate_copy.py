"""Unit tests for the verified-copy building blocks (_migrate_copy.py)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import subprocess

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_copy as c

ZSTD = shutil.which("zstd")
DATA = (b"2026-01-01 INFO order filled id=42\n" * 5000) + os.urandom(70000)


def _write(tmp_path, codec, data=DATA, level=None):
    src = tmp_path / "src"
    src.write_bytes(data)
    dst = tmp_path / ("dst" + c.SUFFIXES[codec].decode())
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = c.write_stream(c.open_reader(sfd), dfd, codec, level, ZSTD)
    finally:
        os.close(sfd)
        os.close(dfd)
    return dst, result


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_write_stream_and_read_back(tmp_path, codec):
    dst, (digest, length) = _write(tmp_path, codec)
    assert digest == hashlib.sha256(DATA).hexdigest() and length == len(DATA)
    fd = os.open(dst, os.O_RDONLY)
    try:
        assert c.read_back(fd, codec, ZSTD) == (digest, length)
    finally:
        os.close(fd)
    assert c.hash_path(bytes(dst), codec, ZSTD, drop=True) == (digest, length)
    if codec == "gzip":
        assert gzip.decompress(dst.read_bytes()) == DATA
    if codec == "zstd":
        out = subprocess.run([ZSTD, "-d", "-c", str(dst)], capture_output=True, check=True).stdout
        assert out == DATA
        assert dst.stat().st_size < len(DATA)


@pytest.mark.parametrize(("codec", "level"), [("gzip", 1), ("zstd", 9)])
def test_levels(tmp_path, codec, level):
    """Non-default levels still give the content's hash."""
    _dst, (digest, _n) = _write(tmp_path, codec, level=level)
    assert digest == hashlib.sha256(DATA).hexdigest()


def test_empty_file(tmp_path):
    for codec in c.CODECS:
        dst, (_digest, length) = _write(tmp_path, codec, data=b"")
        assert length == 0 and c.hash_path(bytes(dst), codec, ZSTD)[1] == 0


def test_corrupt_compressed_data_is_a_codec_error(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"not really gzip" * 10)
    with pytest.raises(c.CodecError, match="gzip data is corrupt"):
        c.hash_path(bytes(bad), "gzip")
    with pytest.raises(c.CodecError, match="zstd -d failed"):
        c.hash_path(bytes(bad), "zstd", ZSTD)


def test_missing_zstd_tool(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(c.CodecError, match="zstd tool is needed"):
        c.hash_path(bytes(f), "zstd", None)
    fd = os.open(f, os.O_RDONLY)
    try:
        with pytest.raises(c.CodecError, match="needs the zstd tool"):
            c.write_stream([b"x"], fd, "zstd", None, None)
    finally:
        os.close(fd)


def test_zstd_failure_is_reported(tmp_path):
    out = os.open(tmp_path / "o", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(c.CodecError, match="zstd failed"):
            c.write_stream([b"x"], out, "zstd", 3, shutil.which("false"))
    finally:
        os.close(out)


def test_unknown_codec(tmp_path):
    with pytest.raises(ValueError, match="unknown codec"):
        c.open_reader(0, "lz4")
    with pytest.raises(ValueError, match="unknown codec"):
        c.write_stream([], 0, "lz4")


def test_hash_path_does_not_follow_symlinks(tmp_path):
    (tmp_path / "t").write_bytes(b"x")
    (tmp_path / "l").symlink_to(tmp_path / "t")
    with pytest.raises(OSError) as exc:
        c.hash_path(bytes(tmp_path / "l"))
    assert exc.value.errno == errno.ELOOP


def test_copy_metadata(tmp_path):
    src = tmp_path / "s"
    src.write_bytes(b"x")
    os.chmod(src, 0o4751)  # noqa: S103 - set-id bits must survive the copy
    os.utime(src, ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(src)
    dst = tmp_path / "d"
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert c.copy_metadata(fd, st) == ""
    finally:
        os.close(fd)
    got = os.stat(dst)
    assert (got.st_mode, got.st_atime_ns, got.st_mtime_ns, got.st_uid, got.st_gid) == (
        st.st_mode,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_uid,
        st.st_gid,
    )


def test_copy_metadata_without_permission(tmp_path, monkeypatch):
    src = tmp_path / "s"
    src.write_bytes(b"x")
    st = os.stat(src)

    def deny(*_a):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(c.os, "fchown", deny)
    fd = os.open(src, os.O_RDONLY)
    try:
        assert "not kept" in c.copy_metadata(fd, st)
    finally:
        os.close(fd)


def test_syncfs_and_fsync_dir(tmp_path, monkeypatch):
    c.syncfs(bytes(tmp_path))
    c.fsync_dir(bytes(tmp_path))

    class Failing:
        @staticmethod
        def syncfs(_fd):
            return -1

    monkeypatch.setattr(c, "_libc", lambda: Failing)
    monkeypatch.setattr(c.ctypes, "get_errno", lambda: errno.EIO)
    with pytest.raises(OSError, match="syncfs"):
        c.syncfs(bytes(tmp_path))


def test_drop_cache_failure_is_tolerated(monkeypatch):
    def boom(*_a):
        raise OSError(errno.EINVAL, "no")

    monkeypatch.setattr(c.os, "posix_fadvise", boom)
    assert c.drop_cache(0) is False


def test_read_back_drops_the_cache_unless_prefetched_and_keeps_reading_ahead(monkeypatch, tmp_path):
    data = os.urandom(5 * c.CHUNK + 123)
    f = tmp_path / "f"
    f.write_bytes(data)
    advice = []
    real = os.posix_fadvise

    def fadvise(fd, offset, length, what):
        advice.append((offset, length, what))
        real(fd, offset, length, what)

    monkeypatch.setattr(c.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(c, "READ_AHEAD", 2 * c.CHUNK)
    fd = os.open(f, os.O_RDONLY)
    try:
        assert c.read_back(fd) == (hashlib.sha256(data).hexdigest(), len(data))
        dropped = [a for a in advice if a[2] == os.POSIX_FADV_DONTNEED]
        ahead = [a[0] for a in advice if a[2] == os.POSIX_FADV_WILLNEED]
        assert len(dropped) == 1
        # queued from the start, then a window further each time the reader is half a window from the end
        assert ahead == [0, 2 * c.CHUNK, 4 * c.CHUNK, 6 * c.CHUNK]
        advice.clear()
        assert c.read_back(fd, prefetched=True)[1] == len(data)
        assert not [a for a in advice if a[2] == os.POSIX_FADV_DONTNEED]
    finally:
        os.close(fd)


def test_prefetch_reports_when_the_cache_cannot_be_dropped(monkeypatch):
    def boom(*_a):
        raise OSError(errno.ESPIPE, "pipe")

    monkeypatch.setattr(c.os, "posix_fadvise", boom)
    assert c.prefetch(0) is False


def test_same_stat(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    a = os.stat(f)
    assert c.same_stat(a, os.stat(f))
    f.write_bytes(b"xy")
    assert not c.same_stat(a, os.stat(f))
