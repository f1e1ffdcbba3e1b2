"""Unit tests for the copy a verified move makes (_migrate_copy.py): copy_raw, copy_content."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import subprocess

import pytest
from migrate_helpers import BLOCK, DATA, ZSTD, _sha, _sparse

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_codec as m_codec
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_copy as c
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_readback as m_readback

# -- metadata: extended attributes, POSIX ACLs, capabilities (issue 14, case 7)


# -- sparse files (issue 14, case 7)


# -- issue 17: copies in the kernel, verified by comparing the read-back with the source


def _copy_raw(tmp_path, data=None, sparse=None):
    src = tmp_path / "src"
    if sparse is not None:
        _sparse(src, *sparse)
    else:
        src.write_bytes(data)
    dst = tmp_path / "dst"
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        length = c.copy_raw(sfd, dfd, os.fstat(sfd).st_size)
    finally:
        os.close(sfd)
        os.close(dfd)
    return src, dst, length


@pytest.mark.parametrize("refuse", [(), ("copy_file_range",), ("copy_file_range", "sendfile")])
def test_copy_raw_copies_exactly_with_each_kernel_call(tmp_path, monkeypatch, refuse):
    """copy_file_range (EXDEV between filesystems), else sendfile, else pread/pwrite: the same bytes."""
    for name in refuse:

        def refused(*_a, _name=name, **_kw):
            raise OSError(errno.EXDEV if _name == "copy_file_range" else errno.EINVAL, "refused")

        monkeypatch.setattr(os, name, refused)
    monkeypatch.setattr(c, "_KERNEL_STEP", 3 * BLOCK)  # several calls per segment
    data = os.urandom(5 * m_codec.CHUNK + 77)
    _src, dst, length = _copy_raw(tmp_path, data)
    assert length == len(data) and dst.read_bytes() == data


@pytest.mark.parametrize(
    ("size", "data_at"),
    [
        (64 << 20, [32 << 20]),
        (64 << 20, [0]),
        (8 << 20, []),
        (3 * m_codec.CHUNK + 100, [m_codec.CHUNK + BLOCK, 3 * m_codec.CHUNK - BLOCK]),
    ],
    ids=["one-block-in-64MiB", "trailing-hole", "all-hole", "holes-inside-chunks"],
)
def test_copy_raw_keeps_the_sources_holes(tmp_path, size, data_at):
    src, dst, length = _copy_raw(tmp_path, sparse=(size, data_at))
    got = os.stat(dst)
    assert length == size and got.st_size == size and _sha(dst) == _sha(src)
    assert got.st_blocks * 512 <= (len(data_at) + 16) * BLOCK


def test_copy_raw_reports_a_source_that_shrank(tmp_path, monkeypatch):
    data = os.urandom(3 * BLOCK)
    src = tmp_path / "src"
    src.write_bytes(data)
    dst = tmp_path / "dst"
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.truncate(src, BLOCK)  # after the caller's fstat
        assert c.copy_raw(sfd, dfd, len(data)) == BLOCK
    finally:
        os.close(sfd)
        os.close(dfd)


@pytest.mark.parametrize("hashing", [True, False])
@pytest.mark.parametrize(
    ("src_codec", "dst_codec"),
    [("none", "none"), ("none", "zstd"), ("none", "gzip"), ("zstd", "none"), ("gzip", "none")],
)
def test_copy_content_then_compare_back(tmp_path, src_codec, dst_codec, hashing):
    """Either step takes the content's hash (an undo's decompressed copy always hashes while written)."""
    packed = {"none": DATA, "gzip": gzip.compress(DATA)}.get(src_codec)
    if packed is None:
        packed = subprocess.run([ZSTD, "-q", "-c"], input=DATA, capture_output=True, check=True).stdout
    src = tmp_path / "src"
    src.write_bytes(packed)
    dst = tmp_path / "dst"
    want = (hashlib.sha256(DATA).hexdigest(), len(DATA))
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        digest, length = c.copy_content(sfd, dfd, len(packed), src_codec, dst_codec, None, ZSTD, hashing)
        rfd = os.open(dst, os.O_RDONLY)
        try:
            if src_codec == "none":
                assert (digest, length) == (want[0] if hashing else None, len(DATA))
                compared = m_readback.compare_back(rfd, sfd, dst_codec, ZSTD, hashing=not hashing)
                assert compared == (None if hashing else want[0], len(DATA))
            else:
                assert (digest, length) == want
                assert m_readback.read_back(rfd, dst_codec, ZSTD) == want
        finally:
            os.close(rfd)
    finally:
        os.close(sfd)
        os.close(dfd)
