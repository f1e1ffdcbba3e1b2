"""nas_archive's base (_nas_archive): leftovers, a new snapshot's name, the checked parameters, rsync arguments."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive as na
from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_rsync as rs
from ansible_collections.jts.tiered_storage.plugins.module_utils import _retention as ret

# --------------------------------------------------------------------------- snapshot names


@pytest.mark.parametrize(
    "name, leftover",
    [
        ("2026-11-23T013000Z.partial", True),
        ("2026-11-23T013000Z.deleting", True),
        (".latest.tmp", True),
        ("2026-11-23T013000Z", False),
        ("notes.partial", False),  # not ours: left alone
        ("latest", False),
    ],
)
def test_is_leftover(name, leftover):
    assert na.is_leftover(name) is leftover


def test_next_stamp_stays_after_existing():
    newest = datetime.datetime(2026, 11, 23, 1, 30, 0)
    now = datetime.datetime(2026, 11, 23, 1, 30, 0, 500000, tzinfo=datetime.timezone.utc)
    # two runs within a second: names stay unique and in order
    assert na.next_stamp(now, [newest]) == datetime.datetime(2026, 11, 23, 1, 30, 1)
    # a clock a few seconds behind (runs in quick succession, a small correction): still after the newest
    assert na.next_stamp(newest - datetime.timedelta(seconds=30), [newest]) == datetime.datetime(2026, 11, 23, 1, 30, 1)
    assert na.next_stamp(datetime.datetime(2026, 12, 1, 0, 0, 0, 9), []) == datetime.datetime(2026, 12, 1)
    assert na.next_stamp(datetime.datetime(2026, 11, 24, 1, 30), [newest]) == datetime.datetime(2026, 11, 24, 1, 30)


def test_next_stamp_refuses_a_clock_behind_the_newest_snapshot():
    # issue 14 case 5: a snapshot name is never older than the newest one, nor bumped after it for ever
    newest = datetime.datetime(2036, 1, 1, 3, 0, 0)
    with pytest.raises(na.ClockError) as exc:
        na.next_stamp(datetime.datetime(2026, 11, 7, 3, 0, 0), [datetime.datetime(2026, 11, 5, 3), newest])
    msg = str(exc.value)
    assert "2026-11-07T03:00:00Z" in msg and "2036-01-01T030000Z" in msg and "behind" in msg
    assert "no snapshot made, retention not run" in msg
    clock = exc.value.details["clock"]
    assert clock["problem"] == "behind" and clock["now"] == "2026-11-07T03:00:00Z"
    assert clock["newest_snapshot"] == "2036-01-01T030000Z" and clock["days"] == 3342


@pytest.mark.parametrize(
    "now, limit, problem",
    [
        (datetime.datetime(2036, 1, 1, 3), 366, "ahead"),  # the scenario's jump: refused
        (datetime.datetime(2027, 11, 7, 3), 366, "ahead"),  # 367 days
        (datetime.datetime(2027, 11, 6, 3), 366, None),  # 366 days: at the limit
        (datetime.datetime(2026, 12, 20, 3), 366, None),  # a host off for 45 days
        (datetime.datetime(2036, 1, 1, 3), 0, None),  # the check turned off for one run
        (datetime.datetime(2026, 11, 12, 3), 5, "ahead"),  # a tighter limit
    ],
)
def test_next_stamp_refuses_a_clock_that_jumped_ahead(now, limit, problem):
    newest = datetime.datetime(2026, 11, 5, 3)
    if problem is None:
        assert na.next_stamp(now, [newest], max_clock_jump_days=limit) == now
        return
    with pytest.raises(na.ClockError) as exc:
        na.next_stamp(now, [newest], max_clock_jump_days=limit)
    msg = str(exc.value)
    assert ret.format_iso(now) in msg and "2026-11-05T030000Z" in msg and "max_clock_jump_days %d" % limit in msg
    assert exc.value.details["clock"]["problem"] == problem


# --------------------------------------------------------------------------- arguments

BASE = {
    "mode": "mirror",
    "source": "/data/src",
    "sources": None,
    "destination": "/mnt/nas/dst",
    "name": None,
    "delete": False,
    "max_delete_percent": 20.0,
    "delete_grace_count": 0,
    "force_delete": False,
    "exclude": [],
    "hard_links": True,
    "acls": False,
    "xattrs": False,
    "numeric_ids": True,
    "preserve_owner": True,
    "one_file_system": True,
    "delay_updates": True,
    "partial_dir": ".rsync-partial",
    "bwlimit": None,
    "verify": False,
    "skip_unchanged": False,
    "ignore_missing_sources": False,
    "keep_last": 0,
    "keep_daily": 0,
    "keep_weekly": 0,
    "keep_monthly": 0,
    "nas_host": None,
    "nas_port": 2049,
    "destination_mount": None,
    "destination_fstype": None,
    "source_mount": None,
    "require_mounted": True,
    "probe_timeout": 10.0,
    "rsync_timeout": 3600.0,
    "lock_dir": "/run/jts",
    "max_clock_jump_days": 366,
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"source": None}, "one of source or sources is required"),
        ({"source": "data/src"}, "data/src is not an absolute path"),
        ({"destination": "nas"}, "nas is not an absolute path"),
        ({"destination": "/"}, "destination / is refused"),
        ({"source": None, "sources": ["/a", "/b"]}, "mode mirror takes exactly one source"),
        ({"max_delete_percent": 120.0}, "max_delete_percent must lie in 0..100 (got 120)"),
        ({"max_delete_percent": -1.0}, "max_delete_percent must lie in 0..100"),
        ({"keep_daily": -1}, "keep_daily must not be negative"),
        ({"delete_grace_count": -2}, "delete_grace_count must not be negative"),
        ({"probe_timeout": 0.0}, "probe_timeout must be positive"),
        ({"rsync_timeout": -5.0}, "rsync_timeout must be positive"),
        ({"mode": "snapshot", "delete": True}, "delete applies to mode mirror only"),
        ({"force_delete": True}, "force_delete needs delete: true (mode mirror)"),
        ({"mode": "snapshot", "max_clock_jump_days": -1}, "max_clock_jump_days must not be negative"),
        ({"partial_dir": "a/b"}, "partial_dir 'a/b' must be one directory name"),
        ({"mode": "snapshot", "source": None, "sources": ["/a", "/b"]}, "name is required with several sources"),
        ({"mode": "snapshot", "name": "../up"}, "must be one directory name"),
        ({"mode": "snapshot", "name": ".hidden"}, "must be one directory name"),
        ({"mode": "snapshot", "name": "latest"}, "must be one directory name"),
        ({"destination": "/data/src/archive"}, "overlap"),
        ({"destination": "/data"}, "overlap"),
    ],
)
def test_build_policy_errors(change, message):
    with pytest.raises(na.NasArchiveError) as exc:
        na.build_policy(dict(BASE, **change))
    assert message in str(exc.value)


def test_force_delete_applies_to_snapshots_without_delete():
    policy = na.build_policy(dict(BASE, mode="snapshot", force_delete=True))
    assert policy.force_delete is True and policy.delete is False and policy.max_clock_jump_days == 366


def test_build_policy_defaults_and_snapshot_name():
    policy = na.build_policy(dict(BASE, mode="snapshot", source="/etc/jts/", destination="/mnt/nas/cfg/"))
    assert (policy.name, policy.dest, policy.sources, policy.relative) == ("jts", "/mnt/nas/cfg", ["/etc/jts"], False)
    several = na.build_policy(dict(BASE, mode="snapshot", source=None, sources=["/etc/fstab"], name="configs"))
    assert several.relative is True and several.name == "configs"


def test_rsync_argv():
    policy = na.build_policy(
        dict(BASE, acls=True, xattrs=True, preserve_owner=False, exclude=["*.tmp"], hard_links=False, bwlimit="1M")
    )
    argv = rs.rsync_argv(
        policy, "/usr/bin/rsync", rs.source_args(False, ["/data/src"], {"/data/src"}), "/mnt/d", ["--delete"], True
    )
    assert argv == [
        "/usr/bin/rsync",
        "--archive",
        "--stats",
        "--out-format=%i %l %n",
        "--acls",
        "--xattrs",
        "--numeric-ids",
        "--no-owner",
        "--no-group",
        "--one-file-system",
        "--partial-dir=.rsync-partial",
        "--exclude=*.tmp",
        "--delete",
        "--dry-run",
        "--",
        "/data/src/",
        "/mnt/d/",
    ]
    assert rs.source_args(False, ["/etc/fstab"], set()) == ["/etc/fstab"]
    assert rs.source_args(True, ["/etc/fstab", "/etc/jts"], {"/etc/jts"}) == ["/etc/fstab", "/etc/jts"]
    rel = na.build_policy(dict(BASE, mode="snapshot", source=None, sources=["/etc/fstab"], name="c", partial_dir=""))
    argv = rs.rsync_argv(rel, "rsync", ["/etc/fstab"], "/x/")
    assert "--relative" in argv and "--hard-links" in argv and not any(a.startswith("--partial-dir") for a in argv)
    assert argv[-3:] == ["--", "/etc/fstab", "/x/"]
