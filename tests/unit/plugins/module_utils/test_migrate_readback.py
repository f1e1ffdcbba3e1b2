"""Unit tests for tier_migrate's read-back (_migrate_readback.py): read_back, prefetch, compare_back, hash_path."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import subprocess

import pytest
from migrate_helpers import DATA, ZSTD

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_codec as m_codec
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_errors as m_errors
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_readback as m_readback


def test_hash_path_does_not_follow_symlinks(tmp_path):
    (tmp_path / "t").write_bytes(b"x")
    (tmp_path / "l").symlink_to(tmp_path / "t")
    with pytest.raises(OSError) as exc:
        m_readback.hash_path(bytes(tmp_path / "l"))
    assert exc.value.errno == errno.ELOOP


def test_read_back_drops_the_cache_unless_prefetched_and_keeps_reading_ahead(monkeypatch, tmp_path):
    data = os.urandom(5 * m_codec.CHUNK + 123)
    f = tmp_path / "f"
    f.write_bytes(data)
    advice = []
    real = os.posix_fadvise

    def fadvise(fd, offset, length, what):
        advice.append((offset, length, what))
        real(fd, offset, length, what)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    monkeypatch.setattr(m_readback, "READ_AHEAD", 2 * m_codec.CHUNK)
    fd = os.open(f, os.O_RDONLY)
    try:
        assert m_readback.read_back(fd) == (hashlib.sha256(data).hexdigest(), len(data))
        dropped = [a for a in advice if a[2] == os.POSIX_FADV_DONTNEED]
        ahead = [a[0] for a in advice if a[2] == os.POSIX_FADV_WILLNEED]
        assert len(dropped) == 1
        # queued from the start, then a window further each time the reader is half a window from the end
        assert ahead == [0, 2 * m_codec.CHUNK, 4 * m_codec.CHUNK, 6 * m_codec.CHUNK]
        advice.clear()
        assert m_readback.read_back(fd, prefetched=True)[1] == len(data)
        assert not [a for a in advice if a[2] == os.POSIX_FADV_DONTNEED]
    finally:
        os.close(fd)


def test_prefetch_reports_when_the_cache_cannot_be_dropped(monkeypatch):
    def boom(*_a):
        raise OSError(errno.ESPIPE, "pipe")

    monkeypatch.setattr(os, "posix_fadvise", boom)
    assert m_readback.prefetch(0) is False


def _compare(tmp_path, source, copy, codec="none"):
    src = tmp_path / "cmp-src"
    src.write_bytes(source)
    dst = tmp_path / "cmp-dst"
    dst.write_bytes(copy)
    sfd, dfd = os.open(src, os.O_RDONLY), os.open(dst, os.O_RDONLY)
    try:
        return m_readback.compare_back(dfd, sfd, codec, ZSTD)
    finally:
        os.close(sfd)
        os.close(dfd)


@pytest.mark.parametrize("size", [0, 100, m_codec.CHUNK, 3 * m_codec.CHUNK + 5])
def test_compare_back_returns_the_contents_hash(tmp_path, size):
    data = os.urandom(size)
    assert _compare(tmp_path, data, data) == (hashlib.sha256(data).hexdigest(), size)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("change", ["flip", "shorter", "longer"])
def test_compare_back_finds_any_difference(tmp_path, where, change):
    data = bytearray(os.urandom(3 * m_codec.CHUNK + 5))
    at = {"first": 0, "middle": m_codec.CHUNK + 17, "last": len(data) - 1}[where]
    copy = bytearray(data)
    if change == "flip":
        copy[at] ^= 0x01
    elif change == "shorter":
        del copy[at:]
    else:
        copy[at:at] = b"x"
    with pytest.raises(m_errors.CopyError, match="verification failed: the copy read back from the disk differs"):
        _compare(tmp_path, bytes(data), bytes(copy))


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_compare_back_decompresses_the_copy(tmp_path, codec):
    packed = (
        gzip.compress(DATA)
        if codec == "gzip"
        else subprocess.run([ZSTD, "-q", "-c"], input=DATA, capture_output=True, check=True).stdout
    )
    assert _compare(tmp_path, DATA, packed, codec) == (hashlib.sha256(DATA).hexdigest(), len(DATA))
    with pytest.raises(m_errors.CopyError, match="differs"):
        _compare(tmp_path, DATA[:-1] + b"?", packed, codec)
