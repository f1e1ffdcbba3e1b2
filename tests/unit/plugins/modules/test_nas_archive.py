"""Pure parts of nas_archive: retention tables, the delete guard, rsync output parsing, arguments."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive as na


def dt(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- snapshot names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("2026-11-23T013000Z", datetime.datetime(2026, 11, 23, 1, 30, 0)),
        ("2026-02-30T000000Z", None),  # no such day
        ("2026-11-23T013000Z.partial", None),
        ("2026-11-23T013000", None),
        ("latest", None),
        ("x2026-11-23T013000Z", None),
    ],
)
def test_parse_stamp(name, expected):
    assert na.parse_stamp(name) == expected


def test_format_stamp_is_utc_and_round_trips():
    aware = datetime.datetime(2026, 11, 23, 3, 30, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert na.format_stamp(aware) == "2026-11-23T013005Z"
    assert na.parse_stamp(na.format_stamp(aware)) == datetime.datetime(2026, 11, 23, 1, 30, 5)


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
    assert na.format_iso(now) in msg and "2026-11-05T030000Z" in msg and "max_clock_jump_days %d" % limit in msg
    assert exc.value.details["clock"]["problem"] == problem


# --------------------------------------------------------------------------- retention

# Twice a day at 03:00 and 15:00 from 2026-10-01 to 2026-11-23 (Monday 2026-11-23, ISO week 48).
TWICE_DAILY = [datetime.datetime(2026, 10, 1) + datetime.timedelta(days=d, hours=h) for d in range(54) for h in (3, 15)]
ALL = sorted(TWICE_DAILY)


@pytest.mark.parametrize(
    "stamps, kw, kept",
    [
        # retention off: everything kept
        (ALL, {}, set(ALL)),
        # keep_last only
        (ALL, {"keep_last": 3}, set(ALL[-3:])),
        # daily 3: the newest of each of the last 3 days that hold one (15:00 of 21, 22, 23 Nov)
        (ALL, {"keep_daily": 3}, {dt("2026-11-21 15:00"), dt("2026-11-22 15:00"), dt("2026-11-23 15:00")}),
        # weekly 3: newest in ISO weeks 48 (Mon 23), 47 (Sun 22), 46 (Sun 15)
        (ALL, {"keep_weekly": 3}, {dt("2026-11-23 15:00"), dt("2026-11-22 15:00"), dt("2026-11-15 15:00")}),
        # monthly 2: newest of November and of October
        (ALL, {"keep_monthly": 2}, {dt("2026-11-23 15:00"), dt("2026-10-31 15:00")}),
        # monthly more than there are months: all months kept, nothing invented
        (ALL, {"keep_monthly": 12}, {dt("2026-11-23 15:00"), dt("2026-10-31 15:00")}),
        # combined: last 2 + daily 2 + weekly 2 + monthly 2 overlap
        (
            ALL,
            {"keep_last": 2, "keep_daily": 2, "keep_weekly": 2, "keep_monthly": 2},
            {
                dt("2026-11-23 03:00"),
                dt("2026-11-23 15:00"),
                dt("2026-11-22 15:00"),
                dt("2026-10-31 15:00"),
            },
        ),
        # a gap (host off for a week): the daily periods are those that hold a snapshot, not the calendar
        (
            [dt("2026-11-01 03:00"), dt("2026-11-02 03:00"), dt("2026-11-03 03:00"), dt("2026-11-12 03:00")],
            {"keep_daily": 3},
            {dt("2026-11-02 03:00"), dt("2026-11-03 03:00"), dt("2026-11-12 03:00")},
        ),
        # ISO week across the year end: 2026-12-31 (Thu) and 2027-01-03 (Sun) are both in 2026-W53
        (
            [dt("2026-12-28 03:00"), dt("2026-12-31 03:00"), dt("2027-01-03 03:00"), dt("2027-01-04 03:00")],
            {"keep_weekly": 2},
            {dt("2027-01-03 03:00"), dt("2027-01-04 03:00")},
        ),
        # the only complete copy is kept whatever the counts
        (
            [dt("2026-11-01 03:00")],
            {"keep_last": 0, "keep_daily": 0, "keep_monthly": 0, "keep_weekly": 1},
            {dt("2026-11-01 03:00")},
        ),
        ([], {"keep_last": 1}, set()),
    ],
)
def test_select_retention_table(stamps, kw, kept):
    assert na.select_retention(stamps, **kw) == kept


def test_retention_keeps_protected_and_newest():
    stamps = [dt("2026-11-01 03:00"), dt("2026-11-02 03:00"), dt("2026-11-03 03:00")]
    # latest points to an older one (e.g. a run renamed its snapshot but died before moving latest)
    kept = na.select_retention(stamps, keep_last=1, protect={dt("2026-11-01 03:00"), dt("2020-01-01 00:00")})
    assert kept == {dt("2026-11-01 03:00"), dt("2026-11-03 03:00")}
    # duplicates do not count twice
    assert na.select_retention([*stamps, stamps[-1]], keep_last=2) == set(stamps[1:])


def test_retention_keeps_future_dated_snapshots_without_counting_them():
    # issue 14 case 5: a snapshot named by a clock that was ahead does not take the newest day's place
    days = [dt("2026-11-0%d 03:00" % d) for d in range(1, 8)]
    future = [dt("2036-01-01 03:00"), dt("2036-01-01 03:01")]
    now = dt("2026-11-07 03:00")
    kept = na.select_retention(days + future, keep_daily=3, now=now)
    assert kept == set(future) | set(days[-3:])
    kept = na.select_retention(days + future, keep_last=2, now=now)
    assert kept == set(future) | set(days[-2:])
    # without now nothing is future-dated: the old counting
    assert na.select_retention(days + future, keep_last=2) == set(future)
    assert na.future_stamps(days + future, now) == future
    # a snapshot named up to a minute ahead (two runs within a second) is not future-dated
    assert na.future_stamps([now + datetime.timedelta(seconds=59)], now) == []


def test_retention_keeps_protected_even_when_counts_would_drop_them():
    stamps = [dt("2026-11-0%d 03:00" % d) for d in range(1, 7)]
    # the newest snapshot that held data (11-03) stays whatever keep_last says
    assert na.select_retention(stamps, keep_last=3, protect={stamps[2]}) == {stamps[2], *stamps[3:]}


# --------------------------------------------------------------------------- delete guard


@pytest.mark.parametrize(
    "args, kw, ok, in_reason",
    [
        ((0, 100, 20), {}, True, ""),
        ((20, 100, 20), {}, True, ""),  # exactly at the limit
        ((21, 100, 20), {}, False, "21 of 100 destination entries (21.0%)"),
        ((21, 100, 20), {"force": True}, True, ""),
        ((3, 4, 20), {"grace_count": 3}, True, ""),  # small tree: within the grace count
        ((4, 4, 20), {"grace_count": 3}, False, "delete_grace_count 3"),
        ((5, 0, 20), {}, False, "above max_delete_percent 20%"),  # nothing known at the destination
        ((0, 0, 20), {"source_entries": 0}, True, ""),  # empty source, empty archive: nothing to lose
        ((10, 10, 100), {"source_entries": 0}, False, "is empty"),  # empty source: refused even at 100 %
        ((10, 10, 100), {"source_entries": 0, "force": True}, False, "is empty"),  # force does not help
        ((0, None, 20), {"source_entries": 0}, False, "would remove everything at the destination;"),
        ((1, 3, 50), {"source_entries": 2}, True, ""),
        ((2, 3, 50.5), {"label": "/data/x"}, False, "max_delete_percent 50.5%"),
    ],
)
def test_delete_guard(args, kw, ok, in_reason):
    verdict = na.delete_guard(*args, **kw)
    assert verdict["ok"] is ok
    assert in_reason in verdict["reason"]
    if not ok:
        assert "nothing was done" in verdict["reason"]
    assert verdict["forced"] is (bool(kw.get("force")) and ok and args[0] > 0 and kw.get("source_entries") != 0)


@pytest.mark.parametrize(
    "kw, ok, forced, in_reason",
    [
        # same entries and bytes: fine
        (
            {"deletions": 0, "ref_entries": 100, "ref_bytes": 5000, "source_entries": 100, "source_bytes": 5000},
            True,
            False,
            "",
        ),
        # empty source: refused, force_delete does not help
        (
            {
                "deletions": 100,
                "ref_entries": 100,
                "ref_bytes": 5000,
                "source_entries": 0,
                "source_bytes": 0,
                "force": True,
            },
            False,
            False,
            "is empty",
        ),
        # far fewer entries: refused, allowed by force_delete
        (
            {"deletions": 60, "ref_entries": 100, "ref_bytes": 5000, "source_entries": 40, "source_bytes": 4900},
            False,
            False,
            "60 of the 100 entries",
        ),
        (
            {
                "deletions": 60,
                "ref_entries": 100,
                "ref_bytes": 5000,
                "source_entries": 40,
                "source_bytes": 4900,
                "force": True,
            },
            True,
            True,
            "",
        ),
        # within the grace count
        (
            {
                "deletions": 3,
                "ref_entries": 4,
                "ref_bytes": 10,
                "source_entries": 1,
                "source_bytes": 9,
                "grace_count": 3,
            },
            True,
            False,
            "",
        ),
        # as many entries, far fewer bytes (the big file is now empty): refused
        (
            {"deletions": 0, "ref_entries": 10, "ref_bytes": 10_000_000, "source_entries": 10, "source_bytes": 100},
            False,
            False,
            "bytes",
        ),
        (
            {"deletions": 0, "ref_entries": 10, "ref_bytes": 1000, "source_entries": 10, "source_bytes": 800},
            True,
            False,
            "",
        ),
        (
            {"deletions": 0, "ref_entries": 10, "ref_bytes": 1000, "source_entries": 10, "source_bytes": 799},
            False,
            False,
            "20.1%",
        ),
        # renames: as many entries, but most of the newest snapshot's names are gone
        (
            {"deletions": 9, "ref_entries": 10, "ref_bytes": 1000, "source_entries": 10, "source_bytes": 1000},
            False,
            False,
            "9 of the 10",
        ),
        # the newest snapshot with data held no bytes (empty files): nothing to shrink
        ({"deletions": 0, "ref_entries": 3, "ref_bytes": 0, "source_entries": 3, "source_bytes": 0}, True, False, ""),
    ],
)
def test_snapshot_guard(kw, ok, forced, in_reason):
    kw = dict(kw)
    args = {"max_delete_percent": 20, "reference": "/nas/cfg/2026-11-03T030000Z", "label": "/data/x"}
    args.update(kw)
    verdict = na.snapshot_guard(**args)
    assert verdict["ok"] is ok and verdict["forced"] is forced
    assert in_reason in verdict["reason"]
    if not ok:
        assert "no snapshot made, retention not run" in verdict["reason"]
        assert "2026-11-03T030000Z" in verdict["reason"]
    assert verdict["reference"] == "/nas/cfg/2026-11-03T030000Z"


def test_delete_guard_reports_numbers():
    verdict = na.delete_guard(3, 12, 20.0, source_entries=9, label="/src")
    assert verdict == {
        "ok": False,
        "reason": verdict["reason"],
        "deletions": 3,
        "dest_entries": 12,
        "source_entries": 9,
        "percent": 25.0,
        "limit_percent": 20.0,
        "grace_count": 0,
        "forced": False,
    }
    assert "source /src is complete" in verdict["reason"]


# --------------------------------------------------------------------------- rsync output

RSYNC_OUT = """\
created directory /mnt/nas/x
*deleting   0 olddir/z
*deleting   0 olddir/
*deleting   0 a file with  spaces
.d..t...... 4,096 ./
>f.st...... 1,234,567 data/big file.csv
>f+++++++++ 6 new
cd+++++++++ 4096 sub/
cL+++++++++ 7 sub/link -> ../new
hf+++++++++ 6 sub/hard => new
.f...p..... 10 mode-only
.f          10 unchanged-listed
>f..tpog.ax 3 all-attrs
skipping non-regular file "dev/null"

Number of files: 1,007 (reg: 1,000, dir: 6, link: 1)
Number of created files: 4 (reg: 2, dir: 1, link: 1)
Number of deleted files: 3 (reg: 2, dir: 1)
Number of regular files transferred: 3
Total file size: 5,000,000 bytes
Total transferred file size: 1.234.573 bytes
Literal data: 1,234,573 bytes
Matched data: 0 bytes
File list size: 0
Total bytes sent: 1,240,000
Total bytes received: 321

sent 1,240,000 bytes  received 321 bytes  2,480,642.00 bytes/sec
total size is 5,000,000  speedup is 4.03
"""


def test_parse_rsync_output():
    parsed = na.parse_rsync_output(RSYNC_OUT)
    assert parsed["deleted"] == ["olddir/z", "olddir/", "a file with  spaces"]
    names = [n for _i, _s, n in parsed["items"]]
    assert names == [
        "./",
        "data/big file.csv",
        "new",
        "sub/",
        "sub/link -> ../new",
        "sub/hard => new",
        "mode-only",
        "unchanged-listed",
        "all-attrs",
    ]
    assert parsed["items"][1] == (">f.st......", 1234567, "data/big file.csv")
    assert parsed["stats"] == {
        "total_entries": 1007,
        "created_entries": 4,
        "deleted_entries": 3,
        "files_transferred": 3,
        "total_bytes": 5000000,
        "bytes_transferred": 1234573,
        "literal_bytes": 1234573,
        "matched_bytes": 0,
        "bytes_sent": 1240000,
        "bytes_received": 321,
    }
    assert na.dest_entries_from_stats(parsed["stats"]) == 1007 - 4 + 3 - 1
    assert na.source_entries_from_stats(parsed["stats"]) == 1006


def test_parse_rsync_output_edge_cases():
    assert na.parse_rsync_output("") == {"items": [], "deleted": [], "stats": {}}
    assert na.parse_rsync_output(None)["items"] == []
    # CRLF, an old rsync without %l on deletions, a file named like a stats line
    text = "*deleting gone.txt\r\n>f+++++++++ 5 Number of files: 3\r\nNumber of files: 2\r\n"
    parsed = na.parse_rsync_output(text)
    assert parsed["deleted"] == ["gone.txt"]
    assert parsed["items"] == [(">f+++++++++", 5, "Number of files: 3")]
    assert parsed["stats"] == {"total_entries": 2}
    # --relative names lose their leading slash
    assert na.parse_rsync_output(">f+++++++++ 1 /etc/fstab")["items"][0][2] == "etc/fstab"
    assert na.dest_entries_from_stats({}) == 0


@pytest.mark.parametrize(
    "item, change, content",
    [
        (">f+++++++++", True, True),
        (">f.st......", True, True),
        ("cd+++++++++", True, True),
        ("hf+++++++++", True, True),
        ("*deleting", True, True),
        (".d..t......", True, False),
        (".f...p.....", True, False),
        (".f         ", False, False),
        (".d.........", False, False),
    ],
)
def test_itemize_classes(item, change, content):
    assert na.is_change(item) is change
    assert na.is_content_difference(item) is content


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
    with pytest.raises(na.ArchiveError) as exc:
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
    argv = na.rsync_argv(
        policy, "/usr/bin/rsync", na.source_args(False, ["/data/src"], {"/data/src"}), "/mnt/d", ["--delete"], True
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
    assert na.source_args(False, ["/etc/fstab"], set()) == ["/etc/fstab"]
    assert na.source_args(True, ["/etc/fstab", "/etc/jts"], {"/etc/jts"}) == ["/etc/fstab", "/etc/jts"]
    rel = na.build_policy(dict(BASE, mode="snapshot", source=None, sources=["/etc/fstab"], name="c", partial_dir=""))
    argv = na.rsync_argv(rel, "rsync", ["/etc/fstab"], "/x/")
    assert "--relative" in argv and "--hard-links" in argv and not any(a.startswith("--partial-dir") for a in argv)
    assert argv[-3:] == ["--", "/etc/fstab", "/x/"]
