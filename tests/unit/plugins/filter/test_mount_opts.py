from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.mount_opts import (
    FilterModule,
    mount_options_missing,
    mounts_to_remount,
    split_options,
)

EXT4_LIVE = "rw,noatime,commit=60"
XFS_LIVE = "rw,noatime,attr2,inode64,largeio,logbufs=8,logbsize=256k,swalloc,sunit=128,swidth=128,noquota"
NFS_LIVE = (
    "rw,relatime,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,"
    "mountaddr=127.0.0.1,mountvers=3,mountport=20048,mountproto=tcp,local_lock=none,addr=127.0.0.1"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b=1", ["a", "b=1"]),
        (" a , ,b ", ["a", "b"]),
        (["a", "b,c"], ["a", "b", "c"]),
        ((), []),
        (None, []),
        ("", []),
    ],
)
def test_split_options(value, expected):
    assert split_options(value) == expected


@pytest.mark.parametrize("value", [5, {"a": 1}, ["a", 3]])
def test_split_options_rejects_other_types(value):
    with pytest.raises(AnsibleFilterError, match="wanted"):
        mount_options_missing(value, "rw")


@pytest.mark.parametrize(
    ("wanted", "live", "ignore", "missing"),
    [
        # the specification's options as the kernel reports them: nothing to do
        ("noatime,commit=60,data=ordered", EXT4_LIVE, ["data=ordered"], []),
        ("noatime,logbufs=8,logbsize=256k,largeio,swalloc", XFS_LIVE, None, []),
        (
            "compress=zstd:3,autodefrag,noatime",
            "rw,noatime,compress=zstd:3,space_cache=v2,autodefrag,subvol=/",
            None,
            [],
        ),
        # fstab-only options are never missing
        ("rw,hard,_netdev,nofail,x-systemd.mount-timeout=30s,comment=jts,noauto,defaults", NFS_LIVE, None, []),
        # a changed inventory value: the live mount lacks it
        ("noatime,commit=30", EXT4_LIVE, None, ["commit=30"]),
        ("noatime,nodev,nosuid", "rw,noatime", None, ["nodev", "nosuid"]),
        ("compress=zstd:3,autodefrag,noatime", "rw,relatime,compress=zstd:3", None, ["autodefrag", "noatime"]),
        # data=ordered only counts when not ignored
        ("noatime,data=ordered", EXT4_LIVE, None, ["data=ordered"]),
        # NFS versions
        ("vers=3,rsize=1048576", NFS_LIVE, None, []),
        ("vers=4", NFS_LIVE, None, ["vers=4"]),
        ("vers=4", "rw,vers=4.2,hard", None, []),
        ("nfsvers=4", "rw,vers=4.1", None, []),
        ("nfsvers=3", NFS_LIVE, None, []),
        ("nfsvers=4.2", NFS_LIVE, None, ["nfsvers=4.2"]),
        # the server lowers rsize/wsize to its maximum: fine; more than asked: a change
        ("rsize=1048576,wsize=1048576", "rw,rsize=262144,wsize=262144", None, []),
        ("rsize=131072", "rw,rsize=262144", None, ["rsize=131072"]),
        ("rsize=1048576", "rw,hard", None, ["rsize=1048576"]),
        ("rsize=big", "rw,rsize=262144", None, ["rsize=big"]),
        (["noatime", "commit=60"], ["rw", "noatime"], None, ["commit=60"]),
    ],
)
def test_mount_options_missing(wanted, live, ignore, missing):
    assert mount_options_missing(wanted, live, ignore) == missing


def test_mounts_to_remount_lists_only_mounted_volumes_lacking_an_option():
    volumes = [
        {"name": "postgres", "mount": "/var/lib/postgres", "mount_opts": "noatime,commit=60,data=ordered"},
        {"name": "redis", "mount": "/var/lib/redis", "mount_opts": "noatime,commit=30,_netdev"},
        {"name": "kafka", "mount": "/var/lib/kafka", "mount_opts": "noatime,largeio"},
        {"name": "new", "mount": "/var/lib/new", "mount_opts": "noatime"},
    ]
    filesystems = [
        {"target": "/", "options": "rw,relatime"},
        {"target": "/var/lib/postgres", "options": EXT4_LIVE},
        {"target": "/var/lib/redis", "options": EXT4_LIVE},
        {"target": "/var/lib/kafka", "options": XFS_LIVE},
    ]
    assert mounts_to_remount(volumes, filesystems, ["data=ordered"]) == [
        {"target": "/var/lib/redis", "opts": "noatime,commit=30", "missing": ["commit=30"]}
    ]


def test_mounts_to_remount_other_keys_and_empty_inputs():
    volumes = [{"path": "/mnt/synology", "opts": ["rw", "hard", "vers=3", "_netdev", "x-systemd.mount-timeout=30s"]}]
    live = [{"target": "/mnt/synology", "options": "rw,relatime,vers=4.2,hard"}]
    assert mounts_to_remount(volumes, live, target_key="path", opts_key="opts") == [
        {"target": "/mnt/synology", "opts": "rw,hard,vers=3", "missing": ["vers=3"]}
    ]
    assert mounts_to_remount(None, None) == []
    assert mounts_to_remount(volumes, [], target_key="path", opts_key="opts") == []


def test_filters_are_registered():
    filters = FilterModule().filters()
    assert filters["mount_options_missing"] is mount_options_missing
    assert filters["mounts_to_remount"] is mounts_to_remount
