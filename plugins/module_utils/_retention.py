# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timestamps in names and the retention of timestamped copies: which copies a count keeps.

Standard library only, importable on Python 3.8. Pure: nothing here touches the filesystem. Used
by nas_archive's snapshots (``_nas_archive``, ``_nas_archive_snapshot``, ``_nas_archive_retention``),
by backup_retention (``_backup_retention``) and by the freshness checks of storage_health
(``_freshness``, which reads snapshot names):

* ``format_stamp``/``parse_stamp``: snapshot directory names ``2026-11-23T013000Z`` (UTC);
  ``format_iso``: a time in messages;
* ``future_stamps``: copies named by a clock that was ahead (more than ``CLOCK_SLACK`` after now);
* ``select_retention``: complete copies' datetimes in, the set kept out (keep_last, newest of each
  day, ISO week and month, protected copies, the newest always).
"""

from __future__ import annotations

import datetime
import re

STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
STAMP_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})Z$")
# A new snapshot's name is after the newest one's. A clock up to this far behind it (runs within the
# same seconds, a small correction) gets the newest name plus one second; further behind, the run is
# refused. Snapshots named more than this far after the clock are future-dated.
CLOCK_SLACK = datetime.timedelta(seconds=60)
# A clock more than this many days after the newest copy is taken to have jumped ahead (nas_archive's
# next_stamp refuses to name a snapshot by it; backup_retention does not apply max_age by it).
DEFAULT_MAX_CLOCK_JUMP_DAYS = 366


def utc_naive(when):
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return when


def format_stamp(when):
    """``2026-11-23T013000Z`` for a datetime (naive datetimes are taken as UTC)."""
    return utc_naive(when).strftime(STAMP_FORMAT)


def parse_stamp(name):
    """The UTC datetime (naive) in a snapshot name, or None when the name is not exactly a stamp."""
    match = STAMP_RE.match(name)
    if not match:
        return None
    try:
        return datetime.datetime(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def format_iso(when):
    """``2026-11-23T01:30:00Z``: a time (not a snapshot name) in messages."""
    return utc_naive(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def future_stamps(stamps, now):
    """The ``stamps`` more than CLOCK_SLACK after ``now``, oldest first (named by a clock that was ahead)."""
    now = utc_naive(now)
    return sorted(s for s in set(stamps) if s - now > CLOCK_SLACK)


_PERIODS = (
    ("daily", lambda d: d.date()),
    ("weekly", lambda d: tuple(d.isocalendar()[:2])),  # ISO year and week
    ("monthly", lambda d: (d.year, d.month)),
)


def select_retention(stamps, keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=0, protect=(), now=None):
    """Return the set of ``stamps`` (datetimes of complete snapshots) to keep.

    * the newest ``keep_last``;
    * daily / weekly (ISO week) / monthly: the newest snapshot of each of the newest ``keep_<period>``
      periods that hold a snapshot (as snapper's timeline, borg prune and sanoid count them: a host
      that was off for a week does not lose its daily copies to the calendar);
    * everything in ``protect`` (what ``latest`` points to, the run's new snapshot, the newest
      snapshot that held data);
    * the newest snapshot always: the only complete copy is never removed;
    * with ``now``, future-dated snapshots (``future_stamps``): kept, and not counted: a snapshot
      named by a clock that was ahead never takes the place of the newest day, week or month.

    With every count at 0 nothing is removed (retention off).
    """
    ordered = sorted(set(stamps), reverse=True)
    if not ordered:
        return set()
    counts = {"daily": keep_daily, "weekly": keep_weekly, "monthly": keep_monthly}
    if keep_last <= 0 and all(c <= 0 for c in counts.values()):
        return set(ordered)
    future = set(future_stamps(ordered, now)) if now is not None else set()
    keep = set(future)
    ordered = [s for s in ordered if s not in future]
    if not ordered:
        return keep
    keep.update(ordered[: max(keep_last, 0)])
    for period, key in _PERIODS:
        want = counts[period]
        if want <= 0:
            continue
        seen = set()
        for when in ordered:
            k = key(when)
            if k in seen:
                continue
            seen.add(k)
            keep.add(when)
            if len(seen) >= want:
                break
    keep.update(s for s in protect if s in ordered)
    keep.add(ordered[0])
    return keep
