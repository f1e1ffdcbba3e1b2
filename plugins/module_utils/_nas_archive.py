# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's base: its errors, the names in a snapshot root, a new snapshot's name, the policy.

Standard library only, importable on Python 3.8. Nothing here touches the filesystem or runs a
command, so each part is tested with tables (tests/unit/plugins/module_utils/test_nas_archive.py).
Used by every ``_nas_archive_*`` file and by the module nas_archive:

* ``NasArchiveError`` (a refusal or failure of a run) and ``ClockError``;
* ``PARTIAL_SUFFIX``, ``DELETING_SUFFIX``, ``LATEST``: what a snapshot root holds besides
  snapshots; ``is_leftover``: what an unfinished run leaves;
* ``next_stamp``: the name of a new snapshot, or a ClockError for a clock behind the newest
  snapshot or far ahead of it (the stamps themselves and retention: ``_retention``);
* ``build_policy``: the module's parameters checked across fields, a Policy out.

The rest of a run: ``_nas_archive_rsync`` (one rsync pass), ``_nas_archive_guard`` (delete and
snapshot guards), ``_nas_archive_fs`` (calls in a timed child), ``_nas_archive_run`` (the
``Archiver``, with its probe, mirror, snapshot and retention steps in ``_nas_archive_probe``,
``_nas_archive_mirror``, ``_nas_archive_snapshot``, ``_nas_archive_snapshot_guard`` and
``_nas_archive_retention``).
"""

from __future__ import annotations

import datetime
import os
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import (
    CLOCK_SLACK,
    DEFAULT_MAX_CLOCK_JUMP_DAYS,
    format_iso,
    format_stamp,
    parse_stamp,
    utc_naive,
)

# What a run leaves while it works, and what a killed run may leave behind: never a snapshot,
# never linked from, never pointed to; removed by the next run (under the same lock).
PARTIAL_SUFFIX = ".partial"
DELETING_SUFFIX = ".deleting"
LATEST = "latest"
LATEST_TMP = ".latest.tmp"
REPORT_LIMIT = 1000


class NasArchiveError(JtsError):
    """A refusal or failure; the message says what was (not) done. ``details`` go into the result."""


class ClockError(NasArchiveError):
    """The clock is behind the newest snapshot, or far ahead of it: no snapshot is named by it."""


def num(value):
    """A number in a message: ``20`` for 20.0, ``12.5`` as it is."""
    return ("%d" % value) if float(value).is_integer() else ("%s" % value)


# --------------------------------------------------------------------------- snapshot names


def is_leftover(name):
    """True for what an unfinished run leaves: ``<stamp>.partial``, ``<stamp>.deleting``, ``.latest.tmp*``."""
    for suffix in (PARTIAL_SUFFIX, DELETING_SUFFIX):
        if name.endswith(suffix) and parse_stamp(name[: -len(suffix)]) is not None:
            return True
    return name.startswith(LATEST_TMP)


def next_stamp(now, existing, max_clock_jump_days=DEFAULT_MAX_CLOCK_JUMP_DAYS):
    """The stamp for a new snapshot at ``now`` (seconds resolution), after every existing one.

    Raises ClockError (nothing named) when ``now`` is more than CLOCK_SLACK behind the newest
    snapshot (the clock went back, or that snapshot was named by a clock that was ahead), and when
    ``now`` is more than ``max_clock_jump_days`` days after it (a clock that jumped ahead would name
    a snapshot that sorts after every later one; 0 turns this check off).
    """
    now = utc_naive(now).replace(microsecond=0)
    newest = max(existing) if existing else None
    if newest is None:
        return now
    if now <= newest:
        if newest - now < CLOCK_SLACK:
            # Two runs within a second, a clock corrected by a few seconds: names stay unique and in order.
            return newest + datetime.timedelta(seconds=1)
        days = (newest - now).days
        raise ClockError(
            "clock: now is %s, %s before the newest snapshot %s: this host's clock is behind, or that snapshot "
            "was named by a clock that was ahead. A new snapshot is always named after the newest one; refusing: "
            "no snapshot made, retention not run. Check the clock (timedatectl); if it is right, move the "
            "future-dated snapshot out of the snapshot directory (or remove it) and run again"
            % (format_iso(now), _span(newest - now), format_stamp(newest)),
            clock={"problem": "behind", "now": format_iso(now), "newest_snapshot": format_stamp(newest), "days": days},
        )
    if max_clock_jump_days and now - newest > datetime.timedelta(days=max_clock_jump_days):
        raise ClockError(
            "clock: now is %s, %s after the newest snapshot %s, more than max_clock_jump_days %d: a clock that "
            "jumped ahead? A snapshot named by it would sort after every later one. Refusing: no snapshot made, "
            "retention not run. Check the clock (timedatectl); if it is right (no snapshot for that long), run "
            "once with max_clock_jump_days: 0"
            % (format_iso(now), _span(now - newest), format_stamp(newest), max_clock_jump_days),
            clock={
                "problem": "ahead",
                "now": format_iso(now),
                "newest_snapshot": format_stamp(newest),
                "days": (now - newest).days,
            },
        )
    return now


def _span(delta):
    if delta.days >= 2:
        return "%d days" % delta.days
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return "%.1f hours" % (seconds / 3600.0)
    return "%d seconds" % seconds


# --------------------------------------------------------------------------- policy


class Policy:
    """The checked parameters of one run (attributes named as the module's options)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


def build_policy(params):
    """Check the module parameters; return a Policy. Raises NasArchiveError with a clear message."""
    mode = params["mode"]
    sources = [params["source"]] if params.get("source") else list(params.get("sources") or [])
    if not sources:
        raise NasArchiveError("one of source or sources is required")
    for path in [*sources, params["destination"]]:
        if not os.path.isabs(path):
            raise NasArchiveError("%s is not an absolute path" % path)
    dest = os.path.normpath(params["destination"])
    if dest == "/":
        raise NasArchiveError("destination / is refused")
    if mode == "mirror" and len(sources) != 1:
        raise NasArchiveError("mode mirror takes exactly one source (sources is for mode snapshot)")
    if not 0 <= params["max_delete_percent"] <= 100:
        raise NasArchiveError("max_delete_percent must lie in 0..100 (got %s)" % num(params["max_delete_percent"]))
    for key in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "delete_grace_count", "max_clock_jump_days"):
        if params[key] < 0:
            raise NasArchiveError("%s must not be negative (got %d)" % (key, params[key]))
    for key in ("probe_timeout", "rsync_timeout"):
        if params[key] <= 0:
            raise NasArchiveError("%s must be positive (got %s)" % (key, num(params[key])))
    if params.get("delete") and mode != "mirror":
        raise NasArchiveError("delete applies to mode mirror only (each snapshot is a fresh copy)")
    if params.get("force_delete") and mode == "mirror" and not params.get("delete"):
        raise NasArchiveError("force_delete needs delete: true (mode mirror)")
    partial_dir = params.get("partial_dir") or ""
    if partial_dir and ("/" in partial_dir or partial_dir in (".", "..")):
        raise NasArchiveError("partial_dir %r must be one directory name (kept inside each directory)" % partial_dir)
    name = params.get("name")
    if mode == "snapshot":
        if not name:
            if len(sources) != 1:
                raise NasArchiveError("name is required with several sources")
            name = os.path.basename(os.path.normpath(sources[0])) or "root"
        if not _NAME_RE.match(name) or name == LATEST:
            raise NasArchiveError(
                "name %r must be one directory name of letters, digits and . _ @ + - (not starting with a dot, "
                "not %r)" % (name, LATEST)
            )
    normalised = [os.path.normpath(s) for s in sources]
    for src in normalised:
        if _inside(dest, src) or _inside(src, dest):
            raise NasArchiveError("source %s and destination %s overlap" % (src, dest))
    return Policy(
        mode=mode,
        sources=normalised,
        relative=bool(params.get("sources")),
        dest=dest,
        name=name,
        delete=bool(params.get("delete")),
        max_delete_percent=float(params["max_delete_percent"]),
        delete_grace_count=params["delete_grace_count"],
        force_delete=bool(params.get("force_delete")),
        exclude=list(params.get("exclude") or []),
        hard_links=params["hard_links"],
        acls=params["acls"],
        xattrs=params["xattrs"],
        numeric_ids=params["numeric_ids"],
        preserve_owner=params["preserve_owner"],
        one_file_system=params["one_file_system"],
        delay_updates=params["delay_updates"],
        partial_dir=partial_dir,
        bwlimit=params.get("bwlimit"),
        verify=params["verify"],
        skip_unchanged=params["skip_unchanged"],
        ignore_missing_sources=params["ignore_missing_sources"],
        keep_last=params["keep_last"],
        keep_daily=params["keep_daily"],
        keep_weekly=params["keep_weekly"],
        keep_monthly=params["keep_monthly"],
        max_clock_jump_days=params["max_clock_jump_days"],
        nas_host=params.get("nas_host"),
        nas_port=params["nas_port"],
        dest_mount=os.path.normpath(params["destination_mount"]) if params.get("destination_mount") else None,
        dest_fstype=params.get("destination_fstype"),
        source_mount=os.path.normpath(params["source_mount"]) if params.get("source_mount") else None,
        require_mounted=params["require_mounted"],
        missing=params.get("missing", "skip"),
        probe_timeout=float(params["probe_timeout"]),
        rsync_timeout=float(params["rsync_timeout"]),
        lock_dir=params["lock_dir"],
    )


def _inside(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")
