"""Unit tests for the verified-copy building blocks (_migrate_copy.py)."""

from __future__ import annotations

import ctypes
import errno
import gzip
import hashlib
import os
import shutil
import stat
import struct
import subprocess

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_codec as m_codec
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_copy as c
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_durable as m_durable
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_errors as m_errors
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_metadata as m_metadata
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_readback as m_readback

ZSTD = shutil.which("zstd")
DATA = (b"2026-01-01 INFO order filled id=42\n" * 5000) + os.urandom(70000)


def _write(tmp_path, codec, data=DATA, level=None):
    src = tmp_path / "src"
    src.write_bytes(data)
    dst = tmp_path / ("dst" + m_codec.SUFFIXES[codec].decode())
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = m_codec.write_stream(m_codec.open_reader(sfd), dfd, codec, level, ZSTD)
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


def test_hash_path_does_not_follow_symlinks(tmp_path):
    (tmp_path / "t").write_bytes(b"x")
    (tmp_path / "l").symlink_to(tmp_path / "t")
    with pytest.raises(OSError) as exc:
        m_readback.hash_path(bytes(tmp_path / "l"))
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
        assert m_metadata.copy_metadata(fd, st) == ""
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

    monkeypatch.setattr(os, "fchown", deny)
    fd = os.open(src, os.O_RDONLY)
    try:
        assert "not kept" in m_metadata.copy_metadata(fd, st)
    finally:
        os.close(fd)


def test_syncfs_and_fsync_dir(tmp_path, monkeypatch):
    m_durable.syncfs(bytes(tmp_path))
    m_durable.fsync_dir(bytes(tmp_path))

    class Failing:
        @staticmethod
        def syncfs(_fd):
            return -1

    monkeypatch.setattr(m_durable, "_libc", lambda: Failing)
    monkeypatch.setattr(ctypes, "get_errno", lambda: errno.EIO)
    with pytest.raises(OSError, match="syncfs"):
        m_durable.syncfs(bytes(tmp_path))


def test_drop_cache_failure_is_tolerated(monkeypatch):
    def boom(*_a):
        raise OSError(errno.EINVAL, "no")

    monkeypatch.setattr(os, "posix_fadvise", boom)
    assert m_durable.drop_cache(0) is False


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


def test_same_stat(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    a = os.stat(f)
    assert m_durable.same_stat(a, os.stat(f))
    f.write_bytes(b"xy")
    assert not m_durable.same_stat(a, os.stat(f))


# -- metadata: extended attributes, POSIX ACLs, capabilities (issue 14, case 7)

ACCESS = "system.posix_acl_access"
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, security.capability)")
needs_acl_tools = pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian package acl)")
# security.capability v2 (VFS_CAP_REVISION_2, effective): cap_net_bind_service (10) permitted
CAP = bytes.fromhex("01000002") + (1 << 10).to_bytes(4, "little") + bytes(12)


def _acl(*entries):
    """A system.posix_acl_access value from (tag, perm, id) entries."""
    value = struct.pack("<I", 2)
    for tag, perm, ident in entries:
        value += struct.pack("<HHI", tag, perm, ident)
    return value


def _copy(src, dst, **kwargs):
    """Copy content and metadata of src to a new file dst the way Transfer.stage does; return the warning."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        st = os.fstat(sfd)
        m_codec.write_stream(m_codec.open_reader(sfd), dfd)
        return m_metadata.copy_metadata(dfd, st, kwargs.pop("keep_owner", os.geteuid() == 0), src_fd=sfd, **kwargs)
    finally:
        os.close(sfd)
        os.close(dfd)


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _xattrs(path):
    return {name: os.getxattr(path, name) for name in os.listxattr(path)}


def _acl_file(tmp_path, name="src"):
    """A 0750 file that `setfacl -m u:nobody:rwx` widened: ls shows 0770 (the mask)."""
    src = tmp_path / name
    src.write_bytes(b"position log\n")
    os.chmod(src, 0o750)  # noqa: S103 - the case of the issue
    subprocess.run(["setfacl", "-m", "u:nobody:rwx", str(src)], check=True)
    assert _mode(src) == 0o770
    return src


@needs_acl_tools
def test_copy_metadata_keeps_user_xattrs_and_the_acl(tmp_path):
    src = _acl_file(tmp_path)
    os.setxattr(src, "user.origin", b"desk-7")
    os.utime(src, ns=(1_000_000_123, 2_000_000_456))
    dst = tmp_path / "dst"
    assert _copy(src, dst) == ""
    assert _mode(dst) == 0o770
    assert _xattrs(dst) == _xattrs(src)
    assert os.getxattr(dst, ACCESS) == os.getxattr(src, ACCESS)
    assert os.stat(dst).st_mtime_ns == 2_000_000_456
    assert "user:nobody:rwx" in subprocess.run(["getfacl", "-p", str(dst)], capture_output=True, text=True).stdout


@needs_root
def test_copy_metadata_sets_the_capability_after_the_owner(tmp_path):
    """chown clears security.capability: it must be set after fchown, or a moved binary loses it."""
    src = tmp_path / "src"
    src.write_bytes(b"\x7fELF binary")
    os.chown(src, NOBODY, NOBODY)
    os.chmod(src, 0o755)  # noqa: S103 - an executable
    os.setxattr(src, "security.capability", CAP)
    dst = tmp_path / "dst"
    assert _copy(src, dst) == ""
    got = os.stat(dst)
    assert (got.st_uid, got.st_gid, _mode(dst)) == (NOBODY, NOBODY, 0o755)
    assert os.getxattr(dst, "security.capability") == CAP


@needs_acl_tools
def test_acl_refused_fails_the_file_unless_dropping_is_allowed(tmp_path, monkeypatch):
    src = _acl_file(tmp_path)
    os.setxattr(src, "user.origin", b"desk-7")
    real = os.setxattr

    def no_acls(fd, name, value, *args):
        if name.startswith("system.posix_acl"):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real(fd, name, value, *args)

    monkeypatch.setattr(os, "setxattr", no_acls)
    with pytest.raises(m_errors.MetadataError, match=r"system\.posix_acl_access") as exc:
        _copy(src, tmp_path / "refused")
    assert isinstance(exc.value, m_errors.CopyError) and "user.origin" not in exc.value.reason
    warning = _copy(src, tmp_path / "dropped", drop_unsupported=True)
    assert "system.posix_acl_access" in warning and "dropped" in warning
    # the ACL's owning-group entry (r-x), not its mask (rwx): never wider than the source allowed
    assert _mode(tmp_path / "dropped") == 0o750
    assert _xattrs(tmp_path / "dropped") == {"user.origin": b"desk-7"}


@needs_acl_tools
def test_dropped_acl_with_a_narrow_mask_keeps_the_mask(tmp_path, monkeypatch):
    """group::rwx but mask::r-x (chmod g-w after setfacl): the owning group could only read and run."""
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.chmod(src, 0o770)  # noqa: S103 - the group's entry before the mask narrows it
    subprocess.run(["setfacl", "-m", "u:nobody:rwx", str(src)], check=True)
    os.chmod(src, 0o750)  # noqa: S103 - the mask narrows to r-x
    assert "group::rwx" in subprocess.run(["getfacl", "-p", str(src)], capture_output=True, text=True).stdout

    def refuse(*_a):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    _copy(src, tmp_path / "dst", drop_unsupported=True)
    assert _mode(tmp_path / "dst") == 0o750


@needs_acl_tools
def test_acl_inherited_from_the_destination_directory_is_removed(tmp_path):
    """A default ACL on the destination directory must not give the copy access the source never had."""
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.chmod(src, 0o750)  # noqa: S103 - what the copy must keep
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["setfacl", "-d", "-m", "u:nobody:rwx", str(shared)], check=True)
    dst = shared / "dst"
    assert _copy(src, dst) == ""
    assert ACCESS not in os.listxattr(dst)
    assert _mode(dst) == 0o750


@pytest.mark.parametrize(
    ("entries", "bits"),
    [
        ([(1, 7, 0xFFFFFFFF), (2, 7, NOBODY), (4, 5, 0xFFFFFFFF), (0x10, 7, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)], 5),
        ([(1, 7, 0xFFFFFFFF), (4, 7, 0xFFFFFFFF), (8, 7, NOBODY), (0x10, 5, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)], 5),
        ([(1, 6, 0xFFFFFFFF), (4, 4, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)], 4),
    ],
    ids=["named-user-mask-rwx", "mask-narrower-than-group", "no-mask"],
)
def test_acl_group_bits(entries, bits):
    assert m_metadata.acl_group_bits(_acl(*entries)) == bits


@pytest.mark.parametrize(
    "value",
    [b"", b"\x02\x00\x00", struct.pack("<I", 1) + bytes(8), _acl((1, 7, 0)) + b"x", _acl((1, 7, 0))],
    ids=["empty", "short", "version-1", "trailing-byte", "no-group-entry"],
)
def test_acl_group_bits_of_a_bad_value_is_none(value):
    assert m_metadata.acl_group_bits(value) is None


def test_unreadable_acl_dropped_leaves_the_group_nothing(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.chmod(src, 0o775)  # noqa: S103 - the group bits at stake
    _fake_source_xattrs(monkeypatch, {ACCESS: b"garbage"})
    warning = _copy(src, tmp_path / "dst", drop_unsupported=True)
    assert "system.posix_acl_access" in warning
    assert _mode(tmp_path / "dst") == 0o705


def _fake_source_xattrs(monkeypatch, extra):
    """Let the source (opened O_RDONLY first by _copy) also list ``extra``; the destination is real."""
    real_list, real_get, real_set = os.listxattr, os.getxattr, os.setxattr
    sources = set()
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if not flags & (os.O_WRONLY | os.O_RDWR):
            sources.add(fd)
        return fd

    def fake_list(fd):
        return real_list(fd) + (sorted(extra) if fd in sources else [])

    def fake_get(fd, name):
        if fd in sources and name in extra:
            return extra[name]
        return real_get(fd, name)

    def fake_set(fd, name, value, *args):
        if name in extra and name.startswith(("system.nfs4", "security.selinux", "system.posix_acl")):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_set(fd, name, value, *args)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "listxattr", fake_list)
    monkeypatch.setattr(os, "getxattr", fake_get)
    monkeypatch.setattr(os, "setxattr", fake_set)


def _nfs4_acl(*aces, prefix=b""):
    value = prefix + struct.pack(">I", len(aces))
    for typ, flag, mask, who in aces:
        value += struct.pack(">IIII", typ, flag, mask, len(who)) + who + bytes(-len(who) % 4)
    return value


TRIVIAL_NFS4 = _nfs4_acl((0, 0, 0x1F01FF, b"OWNER@"), (0, 0x40, 0x1200A9, b"GROUP@"), (0, 0, 0x120088, b"EVERYONE@"))
NAMED_NFS4 = _nfs4_acl((0, 0, 0x1F01FF, b"OWNER@"), (0, 0, 0x1F01FF, b"trader@example.com"))


def test_nfs4_acl_equivalent_to_the_mode_is_not_a_loss(tmp_path, monkeypatch):
    """An NFSv4 mount lists system.nfs4_acl on every file: undoing a move to local disks must still work."""
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.chmod(src, 0o640)
    _fake_source_xattrs(monkeypatch, {"system.nfs4_acl": TRIVIAL_NFS4, "security.selinux": b"system_u:object_r:nfs_t"})
    assert _copy(src, tmp_path / "dst") == ""
    assert _mode(tmp_path / "dst") == 0o640


def test_nfs4_acl_with_named_entries_is_a_loss(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    _fake_source_xattrs(monkeypatch, {"system.nfs4_acl": NAMED_NFS4})
    with pytest.raises(m_errors.MetadataError, match=r"system\.nfs4_acl"):
        _copy(src, tmp_path / "dst")


@pytest.mark.parametrize(
    ("name", "value", "trivial"),
    [
        ("system.nfs4_acl", TRIVIAL_NFS4, True),
        ("system.nfs4_acl", NAMED_NFS4, False),
        ("system.nfs4_acl", _nfs4_acl((0, 0x3, 0x1F01FF, b"OWNER@")), False),  # inherited by new files
        ("system.nfs4_acl", _nfs4_acl((2, 0x10, 0x1, b"EVERYONE@")), False),  # audit entry
        ("system.nfs4_acl", TRIVIAL_NFS4[:-3], False),
        ("system.nfs4_dacl", _nfs4_acl((0, 0, 0x1F01FF, b"OWNER@"), prefix=bytes(4)), True),
        ("system.nfs4_sacl", _nfs4_acl(prefix=bytes(4)), True),
        ("system.nfs4_sacl", _nfs4_acl((2, 0x10, 0x1, b"EVERYONE@"), prefix=bytes(4)), False),
    ],
    ids=["mode-only", "named-user", "inheritable", "audit", "truncated", "dacl", "empty-sacl", "audit-sacl"],
)
def test_nfs4_acl_is_trivial(name, value, trivial):
    assert m_metadata.nfs4_acl_is_trivial(name, value) is trivial


def test_filesystem_properties_are_not_copied(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    _fake_source_xattrs(monkeypatch, {"btrfs.compression": b"zstd", "security.evm": b"\x03sig"})
    assert _copy(src, tmp_path / "dst") == ""
    assert _xattrs(tmp_path / "dst") == {}


def test_xattr_too_large_for_the_destination(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.setxattr(src, "user.big", b"v" * 100)

    def too_big(*_a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "setxattr", too_big)
    with pytest.raises(m_errors.MetadataError, match=r"user\.big \(too large"):
        _copy(src, tmp_path / "dst")
    assert "user.big" in _copy(src, tmp_path / "dst2", drop_unsupported=True)


def test_enospc_on_a_full_destination_is_not_a_metadata_refusal(tmp_path, monkeypatch):
    """A full filesystem must stop the run (DestinationFull), not fail files one by one."""
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.setxattr(src, "user.note", b"v")

    def full(*_a):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = os.fstatvfs

    class Full:
        def __init__(self, st):
            self.f_frsize, self.f_bfree = st.f_frsize, 3

    monkeypatch.setattr(os, "setxattr", full)
    monkeypatch.setattr(os, "fstatvfs", lambda fd: Full(real(fd)))
    with pytest.raises(OSError) as exc:
        _copy(src, tmp_path / "dst", drop_unsupported=True)
    assert exc.value.errno == errno.ENOSPC and not isinstance(exc.value, m_errors.CopyError)


def test_unexpected_xattr_error_is_raised(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.setxattr(src, "user.note", b"v")

    def eio(*_a):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "setxattr", eio)
    with pytest.raises(OSError, match="Input/output"):
        _copy(src, tmp_path / "dst", drop_unsupported=True)


def test_source_without_xattr_support(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.chmod(src, 0o640)

    def unsupported(_fd):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "listxattr", unsupported)
    assert _copy(src, tmp_path / "dst") == ""
    assert _mode(tmp_path / "dst") == 0o640


def test_xattr_that_vanished_from_the_source_is_skipped(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.write_bytes(b"x")
    os.setxattr(src, "user.note", b"v")

    def gone(*_a):
        raise OSError(errno.ENODATA, "No data available")

    monkeypatch.setattr(os, "getxattr", gone)
    assert _copy(src, tmp_path / "dst") == ""
    assert _xattrs(tmp_path / "dst") == {}


# -- sparse files (issue 14, case 7)

BLOCK = 4096


def _sparse(path, size, data_at=()):
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in data_at:
            handle.seek(offset)
            handle.write(b"\xa5" * BLOCK)


def _sha(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


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


@needs_acl_tools
def test_copy_metadata_of_a_directory_keeps_its_default_acl(tmp_path):
    """Called on directory descriptors, the default ACL (what new files inherit) is copied too."""
    src, plain = tmp_path / "src", tmp_path / "plain"
    src.mkdir()
    plain.mkdir()
    subprocess.run(["setfacl", "-d", "-m", "g:nogroup:rx", str(src)], check=True)
    parent = tmp_path / "dst"
    parent.mkdir()
    subprocess.run(["setfacl", "-d", "-m", "u:nobody:rwx", str(parent)], check=True)
    for source, target in ((src, parent / "a"), (plain, parent / "b")):
        target.mkdir()  # inherits the parent's default ACL
        sfd = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
        dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert m_metadata.copy_metadata(dfd, os.fstat(sfd), True, src_fd=sfd) == ""
        finally:
            os.close(sfd)
            os.close(dfd)
        assert _xattrs(target) == _xattrs(source)
        assert _mode(target) == _mode(source)
    assert "system.posix_acl_default" in os.listxattr(parent / "a")


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
