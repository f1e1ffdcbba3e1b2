# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's pure parts: snapshot names, retention, the delete guard, rsync output, arguments.

Standard library only, importable on Python 3.8. Nothing here touches the filesystem or runs a
command, so each part is tested with tables (tests/unit/plugins/modules/test_nas_archive.py):

* ``format_stamp``/``parse_stamp``: snapshot directory names ``2026-11-23T013000Z`` (UTC);
* ``next_stamp``: the name of a new snapshot, or a ClockError for a clock behind the newest
  snapshot or far ahead of it;
* ``select_retention``: complete snapshots' datetimes in, the set kept out;
* ``delete_guard``: counts in, a verdict (may the mirror delete?) out;
* ``snapshot_guard``: counts in, a verdict (may a snapshot this much smaller than the newest one
  with data be made?) out;
* ``parse_rsync_output``: ``--out-format='%i %l %n'`` lines and the ``--stats`` block out;
* ``build_policy``: the module's parameters checked, a Policy out;
* ``rsync_argv``: the argument list of one rsync pass.
"""

from __future__ import annotations

import datetime
import os
import re

STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
STAMP_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})Z$")
# What a run leaves while it works, and what a killed run may leave behind: never a snapshot,
# never linked from, never pointed to; removed by the next run (under the same lock).
PARTIAL_SUFFIX = ".partial"
DELETING_SUFFIX = ".deleting"
LATEST = "latest"
LATEST_TMP = ".latest.tmp"
OUT_FORMAT = "--out-format=%i %l %n"
REPORT_LIMIT = 1000
# A new snapshot's name is after the newest one's. A clock up to this far behind it (runs within the
# same seconds, a small correction) gets the newest name plus one second; further behind, the run is
# refused. Snapshots named more than this far after the clock are future-dated.
CLOCK_SLACK = datetime.timedelta(seconds=60)
DEFAULT_MAX_CLOCK_JUMP_DAYS = 366
# rsync exit codes: 24 = source files vanished during the transfer (a live tree); 25 = --max-delete hit.
RC_VANISHED = 24
RC_MAX_DELETE = 25

# %i is 11 characters: update type, file type, then 9 attribute letters, dots, plus signs or spaces.
_ITEM_RE = re.compile(r"^([<>ch.][fdLDS][\w.+? ]{9}) +(-?\d[\d,.]*) (.+)$")
_DELETING_RE = re.compile(r"^\*deleting +(?:(-?\d[\d,.]*) )?(.+)$")
_STAT_KEYS = {
    "Number of files": "total_entries",
    "Number of created files": "created_entries",
    "Number of deleted files": "deleted_entries",
    "Number of regular files transferred": "files_transferred",
    "Total file size": "total_bytes",
    "Total transferred file size": "bytes_transferred",
    "Literal data": "literal_bytes",
    "Matched data": "matched_bytes",
    "Total bytes sent": "bytes_sent",
    "Total bytes received": "bytes_received",
}


class ArchiveError(Exception):
    """A refusal or failure; the message says what was (not) done. ``details`` go into the result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.details = details


class ClockError(ArchiveError):
    """The clock is behind the newest snapshot, or far ahead of it: no snapshot is named by it."""


class Skipped(Exception):
    """The NAS or the destination mount is away or does not answer: nothing was done."""


# --------------------------------------------------------------------------- snapshot names


def _utc_naive(when):
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return when


def format_stamp(when):
    """``2026-11-23T013000Z`` for a datetime (naive datetimes are taken as UTC)."""
    return _utc_naive(when).strftime(STAMP_FORMAT)


def parse_stamp(name):
    """The UTC datetime (naive) in a snapshot name, or None when the name is not exactly a stamp."""
    match = STAMP_RE.match(name)
    if not match:
        return None
    try:
        return datetime.datetime(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def is_leftover(name):
    """True for what an unfinished run leaves: ``<stamp>.partial``, ``<stamp>.deleting``, ``.latest.tmp*``."""
    for suffix in (PARTIAL_SUFFIX, DELETING_SUFFIX):
        if name.endswith(suffix) and parse_stamp(name[: -len(suffix)]) is not None:
            return True
    return name.startswith(LATEST_TMP)


def format_iso(when):
    """``2026-11-23T01:30:00Z``: a time (not a snapshot name) in messages."""
    return _utc_naive(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_stamp(now, existing, max_clock_jump_days=DEFAULT_MAX_CLOCK_JUMP_DAYS):
    """The stamp for a new snapshot at ``now`` (seconds resolution), after every existing one.

    Raises ClockError (nothing named) when ``now`` is more than CLOCK_SLACK behind the newest
    snapshot (the clock went back, or that snapshot was named by a clock that was ahead), and when
    ``now`` is more than ``max_clock_jump_days`` days after it (a clock that jumped ahead would name
    a snapshot that sorts after every later one; 0 turns this check off).
    """
    now = _utc_naive(now).replace(microsecond=0)
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


def future_stamps(stamps, now):
    """The ``stamps`` more than CLOCK_SLACK after ``now``, oldest first (named by a clock that was ahead)."""
    now = _utc_naive(now)
    return sorted(s for s in set(stamps) if s - now > CLOCK_SLACK)


# --------------------------------------------------------------------------- retention

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


# --------------------------------------------------------------------------- delete guard


def _num(value):
    return ("%d" % value) if float(value).is_integer() else ("%s" % value)


def delete_guard(
    deletions, dest_entries, max_delete_percent, grace_count=0, source_entries=None, force=False, label=""
):
    """May a mirror delete ``deletions`` of the ``dest_entries`` entries on the destination?

    Returns a dict: ``ok``, ``reason``, ``deletions``, ``dest_entries``, ``source_entries``, ``percent``,
    ``limit_percent``, ``grace_count``, ``forced``.

    Refused when the source has no entries at all while the destination has some (an empty or
    unmounted source must not wipe the archive; ``force`` does not override this), and when the
    deletions are above ``max_delete_percent`` of the destination's entries and more than
    ``grace_count`` (``force`` overrides this one).
    """
    percent = 100.0 * deletions / dest_entries if dest_entries else (100.0 if deletions else 0.0)
    verdict = {
        "ok": True,
        "reason": "",
        "deletions": deletions,
        "dest_entries": dest_entries,
        "source_entries": source_entries,
        "percent": round(percent, 2),
        "limit_percent": max_delete_percent,
        "grace_count": grace_count,
        "forced": False,
    }
    where = (" " + label) if label else ""
    if source_entries is not None and source_entries <= 0 and (deletions > 0 or dest_entries != 0):
        # dest_entries None: not counted (refused before rsync looked at the destination).
        what = (
            "everything at the destination"
            if dest_entries is None
            else "all %d entries of the destination" % max(deletions, dest_entries)
        )
        verdict["ok"] = False
        verdict["reason"] = (
            "delete guard: the source%s is empty (unmounted or wiped?): mirroring it with delete would remove "
            "%s; refusing, nothing was done" % (where, what)
        )
        return verdict
    if deletions == 0 or deletions <= grace_count or percent <= max_delete_percent:
        return verdict
    if force:
        verdict["forced"] = True
        return verdict
    verdict["ok"] = False
    verdict["reason"] = (
        "delete guard: %d of %d destination entries (%.1f%%) would be deleted, above max_delete_percent %s%%%s; "
        "refusing, nothing was done. Check that the source%s is complete, then raise max_delete_percent or set "
        "force_delete for this run"
        % (
            deletions,
            dest_entries,
            percent,
            _num(max_delete_percent),
            (" and delete_grace_count %d" % grace_count) if grace_count else "",
            where,
        )
    )
    return verdict


def snapshot_guard(
    deletions,
    ref_entries,
    ref_bytes,
    source_entries,
    source_bytes,
    max_delete_percent,
    grace_count=0,
    force=False,
    reference="",
    label="",
):
    """May a snapshot of the sources be made, compared with ``reference``, the newest snapshot that held data?

    The mirror's guard, for snapshots: a snapshot removes nothing itself, but retention later removes
    the older copies, so a new snapshot that lacks what the newest one held is how an unmounted or
    wiped source ends the archive. ``deletions``: entries of the reference that the sources no longer
    hold (rsync ``--delete --dry-run`` against it); ``ref_entries``: its entries among those compared;
    ``ref_bytes``, ``source_bytes``: the sizes of its files and of the sources' (rsync's ``Total file
    size``).

    Refused when the sources hold no entry (``force`` does not override this), and when the
    deletions are above ``max_delete_percent`` of the reference's entries and more than
    ``grace_count``, or the sources hold more than ``max_delete_percent`` fewer bytes than the
    reference (``force`` overrides these two). Returns the verdict dict of ``delete_guard`` plus
    ``reference``, ``reference_bytes``, ``source_bytes`` and ``bytes_percent`` (how much smaller).
    """
    percent = 100.0 * deletions / ref_entries if ref_entries else (100.0 if deletions else 0.0)
    shrink = 100.0 * (ref_bytes - source_bytes) / ref_bytes if ref_bytes and source_bytes < ref_bytes else 0.0
    verdict = {
        "ok": True,
        "reason": "",
        "reference": reference,
        "deletions": deletions,
        "dest_entries": ref_entries,
        "source_entries": source_entries,
        "percent": round(percent, 2),
        "reference_bytes": ref_bytes,
        "source_bytes": source_bytes,
        "bytes_percent": round(shrink, 2),
        "limit_percent": max_delete_percent,
        "grace_count": grace_count,
        "forced": False,
    }
    where = (" " + label) if label else ""
    refused = "refusing: no snapshot made, retention not run"
    if source_entries <= 0:
        verdict["ok"] = False
        verdict["reason"] = (
            "snapshot guard: the source%s is empty (unmounted or wiped?): a snapshot of it would hold nothing, "
            "and retention would then remove the snapshots that hold data (the newest: %s); %s. An empty source "
            "is never snapshotted (force_delete does not change this)" % (where, reference or "none", refused)
        )
        return verdict
    problems = []
    if deletions > grace_count and percent > max_delete_percent:
        problems.append(
            "%d of the %d entries of the newest snapshot with data (%.1f%%) are gone from the source"
            % (deletions, ref_entries, percent)
        )
    if shrink > max_delete_percent:
        problems.append(
            "the source holds %d bytes where it held %d bytes (%.1f%% less)" % (source_bytes, ref_bytes, shrink)
        )
    if not problems:
        return verdict
    if force:
        verdict["forced"] = True
        return verdict
    verdict["ok"] = False
    verdict["reason"] = (
        "snapshot guard: compared with %s, %s: above max_delete_percent %s%%%s; %s. Check that the source%s is "
        "complete, then raise max_delete_percent or set force_delete for this run"
        % (
            reference,
            " and ".join(problems),
            _num(max_delete_percent),
            (" (delete_grace_count %d)" % grace_count) if grace_count else "",
            refused,
            where,
        )
    )
    return verdict


# --------------------------------------------------------------------------- rsync output


def _int(text):
    """An rsync number: ``1,234,567`` (3.1+ with its default --human-readable), ``1.234.567`` (some locales)."""
    digits = re.sub(r"[^0-9]", "", text)
    return int(digits) if digits else 0


def parse_rsync_output(text):
    """Parse rsync's ``--out-format='%i %l %n'`` lines and its ``--stats`` block.

    Returns ``{"items": [(itemize, size, name)], "deleted": [name], "stats": {key: int}}``. Names are
    as rsync prints them (relative to the transfer root; ``--relative`` names lose a leading ``/``).
    Lines that are neither (``created directory``, ``sent ... bytes``, warnings) are ignored.
    """
    items, deleted, stats = [], [], {}
    for line in (text or "").splitlines():
        line = line.rstrip("\r")
        match = _DELETING_RE.match(line)
        if match:
            deleted.append(match.group(2))
            continue
        match = _ITEM_RE.match(line)
        if match:
            items.append((match.group(1), _int(match.group(2)), match.group(3).lstrip("/")))
            continue
        key, sep, value = line.partition(":")
        name = _STAT_KEYS.get(key.strip()) if sep else None
        if name:
            words = value.strip().split(" ")
            stats[name] = _int(words[0]) if words else 0
    return {"items": items, "deleted": deleted, "stats": stats}


def is_change(itemize):
    """True for an itemized line that changes something (created, sent, linked or attributes changed)."""
    if itemize[0] in "<>ch*":
        return True
    # ".f..t......": nothing sent, some attribute changes; ".d         " (all dots/spaces): no change.
    return any(ch not in ". " for ch in itemize[2:])


def is_content_difference(itemize):
    """For a ``--checksum --dry-run`` pass: the entry would be (re)sent, created, linked or deleted."""
    return itemize[0] in "<>ch*"


def dest_entries_from_stats(stats):
    """Entries the destination holds among those rsync compared: total - created + deleted, minus ``.``."""
    total = stats.get("total_entries", 0)
    created = stats.get("created_entries", 0)
    deleted = stats.get("deleted_entries", 0)
    return max(total - created + deleted - 1, 0)


def source_entries_from_stats(stats):
    """Entries in the source's file list, minus the transfer root ``.``."""
    return max(stats.get("total_entries", 0) - 1, 0)


def tail(text, lines=5):
    return " | ".join((text or "").strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- policy


class Policy:
    """The checked parameters of one run (attributes named as the module's options)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


def build_policy(params):
    """Check the module parameters; return a Policy. Raises ArchiveError with a clear message."""
    mode = params["mode"]
    sources = [params["source"]] if params.get("source") else list(params.get("sources") or [])
    if not sources:
        raise ArchiveError("one of source or sources is required")
    for path in [*sources, params["destination"]]:
        if not os.path.isabs(path):
            raise ArchiveError("%s is not an absolute path" % path)
    dest = os.path.normpath(params["destination"])
    if dest == "/":
        raise ArchiveError("destination / is refused")
    if mode == "mirror" and len(sources) != 1:
        raise ArchiveError("mode mirror takes exactly one source (sources is for mode snapshot)")
    if not 0 <= params["max_delete_percent"] <= 100:
        raise ArchiveError("max_delete_percent must lie in 0..100 (got %s)" % _num(params["max_delete_percent"]))
    for key in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "delete_grace_count", "max_clock_jump_days"):
        if params[key] < 0:
            raise ArchiveError("%s must not be negative (got %d)" % (key, params[key]))
    for key in ("probe_timeout", "rsync_timeout"):
        if params[key] <= 0:
            raise ArchiveError("%s must be positive (got %s)" % (key, _num(params[key])))
    if params.get("delete") and mode != "mirror":
        raise ArchiveError("delete applies to mode mirror only (each snapshot is a fresh copy)")
    if params.get("force_delete") and mode == "mirror" and not params.get("delete"):
        raise ArchiveError("force_delete needs delete: true (mode mirror)")
    partial_dir = params.get("partial_dir") or ""
    if partial_dir and ("/" in partial_dir or partial_dir in (".", "..")):
        raise ArchiveError("partial_dir %r must be one directory name (kept inside each directory)" % partial_dir)
    name = params.get("name")
    if mode == "snapshot":
        if not name:
            if len(sources) != 1:
                raise ArchiveError("name is required with several sources")
            name = os.path.basename(os.path.normpath(sources[0])) or "root"
        if not _NAME_RE.match(name) or name == LATEST:
            raise ArchiveError(
                "name %r must be one directory name of letters, digits and . _ @ + - (not starting with a dot, "
                "not %r)" % (name, LATEST)
            )
    normalised = [os.path.normpath(s) for s in sources]
    for src in normalised:
        if _inside(dest, src) or _inside(src, dest):
            raise ArchiveError("source %s and destination %s overlap" % (src, dest))
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
        probe_timeout=float(params["probe_timeout"]),
        rsync_timeout=float(params["rsync_timeout"]),
        lock_dir=params["lock_dir"],
    )


def _inside(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def source_args(relative, sources, dirs):
    """rsync's source arguments: one directory as its contents (``src/``), a file as itself; several
    sources as they are (with ``--relative`` their full paths are kept under the destination)."""
    if relative:
        return list(sources)
    src = sources[0]
    return [src.rstrip("/") + "/"] if src in dirs else [src]


def rsync_argv(policy, rsync_bin, src_args, dest, extra=(), dry_run=False):
    """The argument list of one rsync pass: options, ``extra``, ``--``, sources, then ``dest/``."""
    argv = [rsync_bin, "--archive", "--stats", OUT_FORMAT]
    if policy.hard_links:
        argv.append("--hard-links")
    if policy.acls:
        argv.append("--acls")
    if policy.xattrs:
        argv.append("--xattrs")
    if policy.numeric_ids:
        argv.append("--numeric-ids")
    if not policy.preserve_owner:
        argv += ["--no-owner", "--no-group"]
    if policy.one_file_system:
        argv.append("--one-file-system")
    if policy.relative:
        argv.append("--relative")
    if policy.partial_dir:
        # Also in dry runs: a relative partial dir adds rsync's own rule protecting it from --delete.
        argv.append("--partial-dir=" + policy.partial_dir)
    for pattern in policy.exclude:
        argv.append("--exclude=" + pattern)
    argv += list(extra)
    if dry_run:
        argv.append("--dry-run")
    argv.append("--")
    argv += list(src_args)
    argv.append(dest.rstrip("/") + "/")
    return argv
