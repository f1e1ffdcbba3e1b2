"""Unit tests for tier_migrate's preflight (_migrate_preflight.py): overlap, mounts, probes, space."""

from __future__ import annotations

import errno
import os

import pytest
from migrate_helpers import _local_stat, _mounts_for, _policy

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_preflight as m_preflight
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout


def test_overlap_by_path(tmp_path):
    (tmp_path / "src" / "inner").mkdir(parents=True)
    with pytest.raises(m.MigrateError, match=r"destination .* is inside source"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "src" / "inner"))
    with pytest.raises(m.MigrateError, match=r"source .* is inside destination"):
        m.check_overlap(bytes(tmp_path / "src" / "inner"), bytes(tmp_path / "src"))
    with pytest.raises(m.MigrateError, match="the same directory"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "src") + b"/.")


def test_overlap_through_symlink(tmp_path):
    (tmp_path / "src" / "inner").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "src" / "inner")
    with pytest.raises(m.MigrateError, match="inside source"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "alias"))


def test_overlap_by_inode(monkeypatch, tmp_path):
    """A bind mount shows the same directory under another path: caught by device and inode."""
    (tmp_path / "src").mkdir()
    (tmp_path / "bind" / "sub").mkdir(parents=True)
    real_stat = os.stat
    src_st = real_stat(tmp_path / "src")
    bind = bytes(tmp_path / "bind")

    def fake_stat(path, *a, **kw):
        if os.fsencode(path) == bind:
            return src_st
        return real_stat(path, *a, **kw)

    monkeypatch.setattr(os, "stat", fake_stat)
    with pytest.raises(m.MigrateError, match="bind mount or link"):
        m.check_overlap(bytes(tmp_path / "src"), bytes(tmp_path / "bind" / "sub"))
    with pytest.raises(m.MigrateError, match=r"source .* is inside destination .*bind mount"):
        m.check_overlap(bytes(tmp_path / "bind" / "sub"), bytes(tmp_path / "src"))


def test_overlap_none(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rs, rd = m.check_overlap(bytes(tmp_path / "a"), bytes(tmp_path / "b"))
    assert rs.endswith(b"/a") and rd.endswith(b"/b")


def test_preflight_refuses_unmounted_destination(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path, require_mounted=True)
    dev = os.stat(tmp_path / "d").st_dev
    with pytest.raises(m.MigrateError, match="is on the root filesystem, not on a mounted filesystem"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, root_dev=dev)
    info, warnings = m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, root_dev=dev + 1)
    assert info["dest_mount"]["fstype"] == "xfs"
    assert warnings == []


def test_preflight_skips_a_destination_on_the_root_filesystem_with_missing_skip(tmp_path):
    """require_mounted means one thing in both modules: the destination is missing, and missing decides."""
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path, require_mounted=True, missing="skip")
    dev = os.stat(tmp_path / "d").st_dev
    with pytest.raises(Skipped, match="is on the root filesystem") as caught:
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, root_dev=dev)
    assert caught.value.missing == "destination_mount"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"destination_mount": "/mnt/synology"}, "destination_mount: /mnt/synology is expected to be a mount point"),
        ({"source_mount": "/srv"}, "source_mount: /srv is expected"),
        ({"destination_fstype": "nfs"}, "destination_fstype: expected nfs but"),
        ({"source_fstype": "btrfs"}, "source_fstype: expected btrfs but"),
    ],
)
def test_preflight_mount_expectations(tmp_path, kw, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path, **kw)
    with pytest.raises(m.MigrateError, match=message):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat)


def test_preflight_accepts_matching_mount_and_warns_on_noatime(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(
        tmp_path / "s",
        tmp_path / "d",
        tmp_path,
        destination_mount=str(tmp_path),
        destination_fstype="xf",
        age_stamp="atime",
    )
    _info, warnings = m.preflight(pol, mounts=_mounts_for(tmp_path, options="rw,noatime"), stat_fn=_local_stat)
    assert "mounted noatime" in warnings[0]


@pytest.mark.parametrize(
    ("side", "exc", "message"),
    [
        ("d", ProbeTimeout("slow"), "destination .* does not answer within 10s"),
        ("s", FileNotFoundError(errno.ENOENT, "gone"), "source .* does not exist"),
        ("d", PermissionError(errno.EACCES, "Permission denied"), "destination .*: Permission denied"),
    ],
)
def test_preflight_probe_errors(tmp_path, side, exc, message):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)

    def stat_fn(path, timeout):
        if path.endswith(b"/" + side.encode()):
            raise exc
        return _local_stat(path, timeout)

    with pytest.raises(m.MigrateError, match=message):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=stat_fn)


def test_preflight_asks_the_server_when_stat_comes_from_the_cache(tmp_path):
    """The NAS went away seconds after the destination was last read: the NFS client still answers
    ``stat`` from its attribute cache, but the run must be refused before it starts, not hang in
    its first uncached call (seen on the lab VM: a move to the absent NAS hung for 120 s)."""
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)
    asked = []

    def statfs_fn(path, timeout):
        asked.append(path)
        raise ProbeTimeout("statfs did not finish within %gs" % timeout)

    with pytest.raises(m.MigrateError, match=r"destination .* does not answer within .*nothing was moved"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, statfs_fn=statfs_fn)
    assert asked == [pol.dest]


def test_preflight_statfs_error_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)

    def statfs_fn(path, timeout):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(m.MigrateError, match="Input/output error; nothing was moved"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat, statfs_fn=statfs_fn)


def test_preflight_not_a_directory(tmp_path):
    (tmp_path / "s").write_text("file")
    (tmp_path / "d").mkdir()
    pol = _policy(tmp_path / "s", tmp_path / "d", tmp_path)
    with pytest.raises(m.MigrateError, match="is not a directory"):
        m.preflight(pol, mounts=_mounts_for(tmp_path), stat_fn=_local_stat)


@pytest.mark.parametrize(
    ("min_free", "needed", "free", "total", "ok"),
    [
        ("0", 100, 100, 1000, True),
        ("0", 101, 100, 1000, False),
        ("10%", 100, 200, 1000, True),
        ("10%", 101, 200, 1000, False),
        ("50", 50, 100, 1000, True),
        ("51", 50, 100, 1000, False),
    ],
)
def test_check_space(tmp_path, min_free, needed, free, total, ok):
    pol = _policy("/s", "/d", tmp_path, min_free=min_free)
    if ok:
        m_preflight.check_space(pol, needed, free, total)
    else:
        with pytest.raises(m.MigrateError, match="do not fit; nothing was moved"):
            m_preflight.check_space(pol, needed, free, total)


@pytest.mark.parametrize(
    ("s_mount", "d_mount", "source", "dest", "message"),
    [
        # /alias is a bind mount of /srv/data/inner: same device, the destination is inside the source
        (
            {"dev": "7:1", "root": b"/", "mount_point": b"/srv/data"},
            {"dev": "7:1", "root": b"/inner", "mount_point": b"/alias"},
            b"/srv/data",
            b"/alias/x",
            "destination /alias/x is inside source /srv/data",
        ),
        (
            {"dev": "7:1", "root": b"/deep/src", "mount_point": b"/b"},
            {"dev": "7:1", "root": b"/", "mount_point": b"/mnt"},
            b"/b",
            b"/mnt/deep",
            "source /b is inside destination /mnt/deep",
        ),
        (
            {"dev": "7:1", "root": b"/", "mount_point": b"/"},
            {"dev": "7:2", "root": b"/", "mount_point": b"/mnt"},
            b"/srv",
            b"/mnt",
            None,
        ),
        (
            {"dev": "7:1", "root": b"/a", "mount_point": b"/x"},
            {"dev": "7:1", "root": b"/ab", "mount_point": b"/y"},
            b"/x",
            b"/y",
            None,
        ),
    ],
)
def test_check_bind_overlap(tmp_path, s_mount, d_mount, source, dest, message):
    pol = _policy(os.fsdecode(source), os.fsdecode(dest), tmp_path)
    if message is None:
        m_preflight.check_bind_overlap(pol, source, dest, s_mount, d_mount)
    else:
        with pytest.raises(m.MigrateError, match=message):
            m_preflight.check_bind_overlap(pol, source, dest, s_mount, d_mount)
