"""Unit tests for tier_migrate's metadata copy (_migrate_metadata.py): owner, xattrs, ACLs, capabilities."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
import subprocess

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_codec as m_codec
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_errors as m_errors
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_metadata as m_metadata


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
