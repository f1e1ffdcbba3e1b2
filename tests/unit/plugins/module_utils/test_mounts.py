"""Unit tests for the mount table (_mounts.py): mountinfo parsing and which mount holds a path."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _mounts as mounts_mod

MOUNTINFO = (
    b"22 1 252:0 / / rw,relatime - ext4 /dev/vda rw\n"
    b"30 22 7:0 / /data/warm\\040storage rw,noatime shared:1 - btrfs /dev/loop0 rw,compress=zstd:3\n"
    b"31 22 0:50 / /mnt/synology rw,relatime - nfs4 127.0.0.1:/srv/nas rw,hard\n"
    b"32 31 0:51 / /mnt/synology/jts/inner rw - tmpfs tmpfs rw\n"
    b"garbage line\n"
)


@pytest.mark.parametrize(
    ("path", "mount_point", "fstype"),
    [
        (b"/var/log", b"/", "ext4"),
        (b"/data/warm storage/logs", b"/data/warm storage", "btrfs"),
        (b"/data/warm storagex", b"/", "ext4"),
        (b"/mnt/synology", b"/mnt/synology", "nfs4"),
        (b"/mnt/synology/jts/inner/x", b"/mnt/synology/jts/inner", "tmpfs"),
    ],
)
def test_mount_of(path, mount_point, fstype):
    mounts = mounts_mod.parse_mountinfo(MOUNTINFO)
    entry = mounts_mod.mount_of(path, mounts)
    assert entry["mount_point"] == mount_point
    assert entry["fstype"] == fstype


def test_parse_mountinfo_options():
    mounts = mounts_mod.parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 4
    assert "noatime" in mounts[1]["options"]
    assert "compress=zstd:3" in mounts[1]["options"]
    assert mounts[2]["source"] == "127.0.0.1:/srv/nas"


def test_mount_table_and_mount_points():
    table = mounts_mod.mount_table(mounts_mod.parse_mountinfo(MOUNTINFO))
    assert table["/data/warm storage"] == {
        "source": "/dev/loop0",
        "fstype": "btrfs",
        "options": ["rw", "noatime", "compress=zstd:3"],
    }
    mounts = mounts_mod.parse_mountinfo(MOUNTINFO)
    assert mounts_mod.is_mount_point(b"/mnt/synology", mounts)
    assert not mounts_mod.is_mount_point(b"/mnt/synology/jts", mounts)
    assert mounts_mod.fstype_matches("nfs4", "nfs") and not mounts_mod.fstype_matches("ext4", "nfs")
