"""Functional tests for the metadata and holes of verified copies (_migrate_copy), on real filesystems.

The copy functions are called directly, the way ``Transfer.stage`` calls them, between loop
mounted ext4, XFS and btrfs images and memory filesystems: ``btrfs -o noacl`` keeps user
extended attributes but refuses POSIX ACLs (and values over a leaf's size), ``ramfs`` refuses
every extended attribute, as an NFSv3 export without the NFSACL protocol does. Needs root
(mounts, chown, security.capability) and the ``acl`` package (``setfacl``/``getfacl``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_copy as c

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
ACCESS = "system.posix_acl_access"
# security.capability v2 (effective) with cap_net_bind_service permitted, as `setcap cap_net_bind_service+ep`
CAP = bytes.fromhex("01000002") + (1 << 10).to_bytes(4, "little") + bytes(12)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices, mounts and chown"),
    pytest.mark.skipif(shutil.which("losetup") is None, reason="needs util-linux losetup"),
    pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl/getfacl (Debian package acl)"),
]

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F", "-m", "0"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}
SIZES = {"ext4": 64, "xfs": 320, "btrfs": 128}  # MiB, sparse images; XFS wants 300 MiB at least


@pytest.fixture
def mount():
    """mount(fstype, options="") -> a fresh mounted filesystem (loop image, or ramfs/tmpfs).

    Under a 0755 directory of its own (pytest's are 0700), so the unprivileged user reaches it.
    """
    tmp_path = Path(tempfile.mkdtemp(prefix="jts-metadata-", dir="/tmp"))
    os.chmod(tmp_path, 0o755)  # noqa: S103 - the second user must reach the mounts
    undo = [lambda: _remove_unmounted(tmp_path)]

    def make(fstype, options=""):
        point = tmp_path / ("%s-%d" % (fstype, len(undo)))
        point.mkdir()
        if fstype in ("ramfs", "tmpfs"):
            args = ["mount", "-t", fstype] + (["-o", options] if options else []) + [fstype, str(point)]
            subprocess.run(args, check=True)
            undo.append(lambda: subprocess.run(["umount", "-l", str(point)], check=False))
            return point
        image = tmp_path / ("%s-%d.img" % (fstype, len(undo)))
        with open(image, "wb") as handle:
            handle.truncate(SIZES[fstype] << 20)
        loop = subprocess.run(
            ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
        ).stdout.strip()
        undo.append(lambda: subprocess.run(["losetup", "-d", loop], check=False))
        subprocess.run([*MKFS[fstype], loop], check=True, capture_output=True)
        subprocess.run(["mount"] + (["-o", options] if options else []) + [loop, str(point)], check=True)
        undo.append(lambda: subprocess.run(["umount", "-l", str(point)], check=False))
        return point

    yield make
    for step in reversed(undo):
        step()


def _remove_unmounted(base):
    """Remove the test's directory unless something is still mounted in it."""
    if not any(os.path.ismount(entry) for entry in base.iterdir()):
        shutil.rmtree(base)


def copy(src, dst, **kwargs):
    """Copy src to dst as Transfer.stage does: content, then metadata; on an error no dst is left."""
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        st = os.fstat(sfd)
        digest, length = c.write_stream(c.open_reader(sfd), dfd)
        warning = c.copy_metadata(dfd, st, kwargs.pop("keep_owner", True), src_fd=sfd, **kwargs)
    except BaseException:
        os.unlink(dst)
        raise
    finally:
        os.close(sfd)
        os.close(dfd)
    return warning, digest, length


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def xattrs(path):
    return {name: os.getxattr(path, name) for name in os.listxattr(path)}


def getfacl(path):
    return subprocess.run(["getfacl", "-cp", str(path)], capture_output=True, text=True, check=True).stdout.split()


def sha(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_source(directory):
    """The issue's file: 0750, `setfacl -m u:nobody:rwx` (ls: 0770), a user xattr and a capability."""
    src = directory / "trader.bin"
    src.write_bytes(b"\x7fELF order router\n" * 100)
    os.chown(src, NOBODY, NOBODY)
    os.chmod(src, 0o750)  # noqa: S103 - the case of the issue
    subprocess.run(["setfacl", "-m", "u:nobody:rwx", str(src)], check=True)
    os.setxattr(src, "user.origin", b"desk-7")
    os.setxattr(src, "security.capability", CAP)
    os.utime(src, ns=(1_700_000_000_000_000_001, 1_700_000_000_000_000_002))
    assert mode(src) == 0o770
    return src


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs"])
def test_everything_is_kept_where_the_destination_supports_it(mount, fstype):
    src = make_source(mount("ext4"))
    dst = mount(fstype) / "trader.bin"
    warning, digest, _length = copy(src, dst)
    assert warning == ""
    assert digest == sha(src) == sha(dst)
    assert mode(dst) == 0o770
    assert "user:nobody:rwx" in getfacl(dst) and getfacl(dst) == getfacl(src)
    assert xattrs(dst)["user.origin"] == b"desk-7"
    assert xattrs(dst)["security.capability"] == CAP  # set after the chown, which clears it
    got = os.stat(dst)
    assert (got.st_uid, got.st_gid, got.st_mtime_ns) == (NOBODY, NOBODY, 1_700_000_000_000_000_002)


def test_nothing_supported_fails_the_file_and_keeps_the_source(mount):
    """ramfs has no extended attributes at all (like an NFSv3 export without NFSACL)."""
    src = make_source(mount("ext4"))
    before = (sha(src), xattrs(src), os.stat(src))
    dst = mount("ramfs") / "trader.bin"
    with pytest.raises(c.MetadataError) as exc:
        copy(src, dst)
    for name in ("user.origin", "security.capability", ACCESS, "drop_unsupported_metadata"):
        assert name in exc.value.reason
    assert not dst.exists()
    assert (sha(src), xattrs(src)) == before[:2] and c.same_stat(os.stat(src), before[2])


def test_nothing_supported_dropped_on_request_never_widens_the_mode(mount):
    src = make_source(mount("ext4"))
    dst = mount("ramfs") / "trader.bin"
    warning, digest, _length = copy(src, dst, drop_unsupported=True)
    for name in ("user.origin", "security.capability", ACCESS):
        assert name in warning
    assert digest == sha(dst)
    assert mode(dst) == 0o750  # the owning group's entry (r-x), not the ACL mask (rwx)
    assert os.listxattr(dst) == []


def test_acls_refused_user_xattrs_kept(mount):
    """btrfs mounted noacl takes user.* and security.* but not POSIX ACLs."""
    src = make_source(mount("ext4"))
    dst_dir = mount("btrfs", "noacl")
    with pytest.raises(c.MetadataError) as exc:
        copy(src, dst_dir / "refused")
    assert ACCESS in exc.value.reason and "user.origin" not in exc.value.reason
    assert not (dst_dir / "refused").exists()
    warning, _digest, _length = copy(src, dst_dir / "dropped", drop_unsupported=True)
    assert ACCESS in warning and "user.origin" not in warning
    assert mode(dst_dir / "dropped") == 0o750
    assert xattrs(dst_dir / "dropped") == {"user.origin": b"desk-7", "security.capability": CAP}


def test_value_too_large_for_the_destination(mount):
    """tmpfs holds a 32 KiB user xattr; a btrfs leaf cannot (ENOSPC with plenty of free space)."""
    src_dir = mount("tmpfs", "size=8m")
    src = src_dir / "big"
    src.write_bytes(b"x")
    try:
        os.setxattr(src, "user.manifest", b"m" * 32768)
    except OSError as exc:
        pytest.skip("this kernel's tmpfs holds no large user xattrs: %s" % exc)
    dst_dir = mount("btrfs")
    with pytest.raises(c.MetadataError, match=r"user\.manifest \(too large for the destination\)"):
        copy(src, dst_dir / "big")
    assert "user.manifest" in copy(src, dst_dir / "big", drop_unsupported=True)[0]


def test_capability_as_non_root_is_refused(mount):
    """A run without root cannot set security.capability: the file fails, the source stays."""
    src = make_source(mount("ext4"))
    os.chmod(src, 0o755)  # noqa: S103 - readable by the unprivileged copier
    subprocess.run(["setfacl", "-b", str(src)], check=True)
    dst_dir = mount("ext4") / "out"
    dst_dir.mkdir()
    os.chown(dst_dir, NOBODY, NOBODY)
    script = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_copy as c\n"
        "from test_migrate_metadata import copy\n"
        "out = {}\n"
        "try:\n"
        "    copy(%r, %r + '/refused', keep_owner=False)\n"
        "except c.MetadataError as exc:\n"
        "    out['error'] = exc.reason\n"
        "out['warning'] = copy(%r, %r + '/dropped', keep_owner=False, drop_unsupported=True)[0]\n"
        "print(json.dumps(out))\n"
    ) % (str(ROOT / ".collections"), str(src), str(dst_dir), str(src), str(dst_dir))
    proc = subprocess.run(
        ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=str(Path(__file__).parent),
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent)),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "security.capability (not permitted)" in out["error"]
    assert "security.capability" in out["warning"]
    assert sorted(os.listdir(dst_dir)) == ["dropped"]
    assert xattrs(dst_dir / "dropped") == {"user.origin": b"desk-7"}
    assert xattrs(src)["security.capability"] == CAP


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs"])
def test_sparse_file_stays_sparse(mount, fstype):
    """64 MiB with one 4 KiB block of data in the middle: the copy allocates about that block."""
    src = mount("ext4") / "sparse"
    with open(src, "wb") as handle:
        handle.truncate(64 << 20)
        handle.seek(40 << 20)
        handle.write(os.urandom(4096))
    assert os.stat(src).st_blocks * 512 <= 64 << 10
    dst = mount(fstype) / "sparse"
    _warning, digest, length = copy(src, dst)
    got = os.stat(dst)
    assert (digest, length) == (sha(src), 64 << 20)
    assert sha(dst) == digest and got.st_size == 64 << 20
    assert got.st_blocks * 512 <= 256 << 10, "the copy allocated %d bytes" % (got.st_blocks * 512)
