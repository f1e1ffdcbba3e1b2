"""storage_benchmark's host side (_benchmark_host): the mount table, the probe of a target."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _benchmark_host as sb
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath


def test_mount_entry_reads_mountinfo(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
        "30 22 0:30 / /mnt/with\\040space rw - nfs nas:/x rw\n"
        "31 22 7:1 / /data/warm-storage rw - btrfs /dev/sda1 rw\n"
        "32 31 0:33 / /data/warm-storage rw - tmpfs tmpfs rw\n"
    )
    assert sb.mount_entry("/mnt/with space", str(info)) == (True, "nfs")
    assert sb.mount_entry("/data/warm-storage", str(info)) == (True, "tmpfs")  # the one on top
    assert sb.mount_entry("/data/warm-storage/logs", str(info)) == (False, "tmpfs")
    assert sb.mount_entry("/mnt/synology", str(info)) == (False, "ext4")


def test_real_probe_on_a_plain_directory(tmp_path):
    (tmp_path / "d").mkdir()
    found = sb.probe_target(str(tmp_path), str(tmp_path / "d"))
    assert found["same_device"] is True and found["vfs"]["f_blocks"] > 0
    (tmp_path / "l").symlink_to(tmp_path / "d")
    with pytest.raises(UnsafePath):
        sb.probe_target(str(tmp_path), str(tmp_path / "l"))
