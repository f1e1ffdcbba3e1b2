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


def entry(mount_point, source):
    return {"mount_point": mount_point.encode(), "source": source, "fstype": "ext4", "dev": "0:0", "root": b"/"}


def test_mount_point_state_of_a_path_that_does_not_exist(tmp_path):
    state = mounts_mod.mount_point_state(str(tmp_path / "nope"), "/dev/vg/pg", [])
    assert state == {
        "path": str(tmp_path / "nope"),
        "real": str(tmp_path / "nope"),
        "exists": False,
        "mounted": False,
        "source": None,
        "same_device": False,
        "entries": 0,
        "names": [],
    }


def test_mount_point_state_lists_what_an_unmounted_directory_would_hide(tmp_path):
    point = tmp_path / "postgres"
    point.mkdir()
    assert mounts_mod.mount_point_state(str(point), "/dev/vg/pg", [])["entries"] == 0
    (point / "15").mkdir()
    for name in (".psql_history", "a", "b", "c", "d"):
        (point / name).write_text("x")
    state = mounts_mod.mount_point_state(str(point), "/dev/vg/pg", [entry(str(tmp_path), "/dev/sda1")])
    assert state["exists"] and state["directory"] and not state["mounted"]
    assert state["entries"] == 6 and state["names"] == [".psql_history", "15", "a", "b", "c"]


def test_mount_point_state_of_a_mount_says_whether_it_is_the_device(tmp_path):
    point = tmp_path / "postgres"
    point.mkdir()
    (point / "data").write_text("on the mounted filesystem: never counted")
    table = [entry(str(point), "/dev/sda9"), entry(str(point), "/dev/null")]  # the last mount on a path wins
    same = mounts_mod.mount_point_state(str(point), "/dev/null", table)
    assert same["mounted"] and same["source"] == "/dev/null" and same["same_device"] and same["entries"] == 0
    other = mounts_mod.mount_point_state(str(point), "/dev/zero", table)
    assert other["mounted"] and not other["same_device"]
    gone = mounts_mod.mount_point_state(str(point), str(tmp_path / "no-device"), table)
    assert gone["mounted"] and not gone["same_device"]


def test_mount_point_state_follows_a_symlink_as_mount_does(tmp_path):
    """mount(8) follows a mount point that is a symlink: the files of its target would be hidden."""
    (tmp_path / "target" / "pgdata").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for path in (str(tmp_path / "link"), str(tmp_path / "link") + "/"):
        state = mounts_mod.mount_point_state(path, "/dev/vg/pg", [])
        assert state["directory"] and state["entries"] == 1 and state["names"] == ["pgdata"], path
        assert state["real"] == str(tmp_path / "target")
    mounted = mounts_mod.mount_point_state(
        str(tmp_path / "link"), "/dev/null", [entry(str(tmp_path / "target"), "/dev/null")]
    )
    assert mounted["mounted"] and mounted["same_device"]


def test_mount_point_state_of_a_file_or_a_dangling_link(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    file_state = mounts_mod.mount_point_state(str(tmp_path / "file"), "/dev/vg/pg", [])
    assert file_state["exists"] and file_state["directory"] is False and file_state["names"] == []
    assert mounts_mod.mount_point_state(str(tmp_path / "dangling"), "/dev/vg/pg", [])["exists"] is False
