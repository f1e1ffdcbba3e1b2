"""Timestamps and retention (_retention): snapshot names, which copies a count keeps."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _retention as ret


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
    assert ret.parse_stamp(name) == expected


def test_format_stamp_is_utc_and_round_trips():
    aware = datetime.datetime(2026, 11, 23, 3, 30, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert ret.format_stamp(aware) == "2026-11-23T013005Z"
    assert ret.parse_stamp(ret.format_stamp(aware)) == datetime.datetime(2026, 11, 23, 1, 30, 5)


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
    assert ret.select_retention(stamps, **kw) == kept


def test_retention_keeps_protected_and_newest():
    stamps = [dt("2026-11-01 03:00"), dt("2026-11-02 03:00"), dt("2026-11-03 03:00")]
    # latest points to an older one (e.g. a run renamed its snapshot but died before moving latest)
    kept = ret.select_retention(stamps, keep_last=1, protect={dt("2026-11-01 03:00"), dt("2020-01-01 00:00")})
    assert kept == {dt("2026-11-01 03:00"), dt("2026-11-03 03:00")}
    # duplicates do not count twice
    assert ret.select_retention([*stamps, stamps[-1]], keep_last=2) == set(stamps[1:])


def test_retention_keeps_future_dated_snapshots_without_counting_them():
    # issue 14 case 5: a snapshot named by a clock that was ahead does not take the newest day's place
    days = [dt("2026-11-0%d 03:00" % d) for d in range(1, 8)]
    future = [dt("2036-01-01 03:00"), dt("2036-01-01 03:01")]
    now = dt("2026-11-07 03:00")
    kept = ret.select_retention(days + future, keep_daily=3, now=now)
    assert kept == set(future) | set(days[-3:])
    kept = ret.select_retention(days + future, keep_last=2, now=now)
    assert kept == set(future) | set(days[-2:])
    # without now nothing is future-dated: the old counting
    assert ret.select_retention(days + future, keep_last=2) == set(future)
    assert ret.future_stamps(days + future, now) == future
    # a snapshot named up to a minute ahead (two runs within a second) is not future-dated
    assert ret.future_stamps([now + datetime.timedelta(seconds=59)], now) == []


def test_retention_keeps_protected_even_when_counts_would_drop_them():
    stamps = [dt("2026-11-0%d 03:00" % d) for d in range(1, 7)]
    # the newest snapshot that held data (11-03) stays whatever keep_last says
    assert ret.select_retention(stamps, keep_last=3, protect={stamps[2]}) == {stamps[2], *stamps[3:]}
