"""Unit tests for tier_migrate's content codecs (_migrate_codec.py): write_stream, open_reader, compress_fd, holes."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import subprocess

import pytest
from migrate_helpers import BLOCK, DATA, ZSTD, _sha, _sparse, _write

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_codec as m_codec
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_errors as m_errors
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_readback as m_readback


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_write_stream_and_read_back(tmp_path, codec):
    dst, (digest, length) = _write(tmp_path, codec)
    assert digest == hashlib.sha256(DATA).hexdigest() and length == len(DATA)
    fd = os.open(dst, os.O_RDONLY)
    try:
        assert m_readback.read_back(fd, codec, ZSTD) == (digest, length)
    finally:
        os.close(fd)
    assert m_readback.hash_path(bytes(dst), codec, ZSTD, drop=True) == (digest, length)
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
    for codec in m_codec.CODECS:
        dst, (_digest, length) = _write(tmp_path, codec, data=b"")
        assert length == 0 and m_readback.hash_path(bytes(dst), codec, ZSTD)[1] == 0


def test_corrupt_compressed_data_is_a_codec_error(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"not really gzip" * 10)
    with pytest.raises(m_errors.CodecError, match="gzip data is corrupt"):
        m_readback.hash_path(bytes(bad), "gzip")
    with pytest.raises(m_errors.CodecError, match="zstd -d failed"):
        m_readback.hash_path(bytes(bad), "zstd", ZSTD)


def test_missing_zstd_tool(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(m_errors.CodecError, match="zstd tool is needed"):
        m_readback.hash_path(bytes(f), "zstd", None)
    fd = os.open(f, os.O_RDONLY)
    try:
        with pytest.raises(m_errors.CodecError, match="needs the zstd tool"):
            m_codec.write_stream([b"x"], fd, "zstd", None, None)
    finally:
        os.close(fd)


def test_zstd_failure_is_reported(tmp_path):
    out = os.open(tmp_path / "o", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(m_errors.CodecError, match="zstd failed"):
            m_codec.write_stream([b"x"], out, "zstd", 3, shutil.which("false"))
    finally:
        os.close(out)


def test_unknown_codec(tmp_path):
    with pytest.raises(ValueError, match="unknown codec"):
        m_codec.open_reader(0, "lz4")
    with pytest.raises(ValueError, match="unknown codec"):
        m_codec.write_stream([], 0, "lz4")


@pytest.mark.parametrize(
    ("size", "data_at"),
    [
        (64 << 20, [32 << 20]),  # one 4 KiB block in a 64 MiB file
        (64 << 20, [0]),  # a trailing hole: the copy must still be 64 MiB long
        (8 << 20, []),  # nothing but a hole
        (
            3 * m_codec.CHUNK + 100,
            [m_codec.CHUNK + BLOCK, 3 * m_codec.CHUNK - BLOCK],
        ),  # holes inside chunks, odd length
    ],
    ids=["one-block-in-64MiB", "trailing-hole", "all-hole", "holes-inside-chunks"],
)
def test_write_stream_keeps_holes(tmp_path, size, data_at):
    src = tmp_path / "src"
    _sparse(src, size, data_at)
    dst_path, (digest, length) = _write(tmp_path, "none", data=src.read_bytes())
    assert (digest, length) == (_sha(src), size)
    got = os.stat(dst_path)
    assert got.st_size == size and _sha(dst_path) == digest
    assert got.st_blocks * 512 <= (len(data_at) + 16) * BLOCK


def test_write_stream_writes_mixed_blocks_in_place(tmp_path):
    """Zero blocks between data blocks of one chunk: the content is exact, data at its offsets."""
    data = (b"a" * BLOCK + bytes(BLOCK) + b"b" * 10 + bytes(BLOCK - 10) + bytes(2 * BLOCK) + b"c" * 5) * 3
    dst, (digest, length) = _write(tmp_path, "none", data=data)
    assert dst.read_bytes() == data and (digest, length) == (hashlib.sha256(data).hexdigest(), len(data))


def test_write_stream_to_a_pipe_or_a_file_with_content_writes_the_zeros(tmp_path):
    data = b"x" + bytes(3 * BLOCK)
    r, w = os.pipe()
    try:
        assert m_codec.write_stream([data], w)[1] == len(data)
        assert os.read(r, 2 * len(data)) == data
    finally:
        os.close(r)
        os.close(w)
    f = tmp_path / "old"
    f.write_bytes(b"z" * (8 * BLOCK))
    fd = os.open(f, os.O_WRONLY)
    try:
        m_codec.write_stream([data], fd)
    finally:
        os.close(fd)
    assert f.read_bytes() == data + b"z" * (8 * BLOCK - len(data))


def test_compress_fd_reports_a_full_destination(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(1 << 20))
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as info:
            m_codec.compress_fd(sfd, dfd, None, ZSTD)
        assert info.value.errno == errno.ENOSPC
    finally:
        os.close(sfd)
        os.close(dfd)
