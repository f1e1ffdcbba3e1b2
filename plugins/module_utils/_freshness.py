# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freshness of what the nightly run leaves behind, the way sanoid --monitor and Nagios plugins see it.

Standard library only, importable on Python 3.8. Used by ``_health`` (``HealthChecker``), so by the
``storage_health`` module and by ``jts-storage-check``. Four kinds of check, each with a warning
and a critical age (at or above alerts) and a severity for "there is none" (``missing``):

* ``backup``: the newest ``<lv>_<YYYYmmddTHHMMSSZ>.tar.zst`` with its ``.sha256`` in
  ``<backups.directory>/<lv>/`` (snapshot_archive's names: the stamp is the snapshot's UTC time);
* ``nas_backup``: the same names in ``<nas_backups.directory>/<lv>/`` (the migrate step's
  destination of the daily backups, on the NAS);
* ``nas_snapshot``: the newest complete ``<destination>/<name>/<YYYY-mm-ddTHHMMSSZ>/`` directory of
  a nas_archive snapshot (``.partial`` and the ``latest`` pointer are not snapshots);
* ``last_run``: ``run.last_success`` of ``<state_dir>/last-run.json`` (the lifecycle report's state).

Ages come from the names (and the state), not from mtimes: a copy or a ``touch`` does not change them.
Every filesystem call runs in a forked child with a time-out (``_timeout.call_with_timeout``, the
health check's own); paths are opened from ``/`` one component at a time without following
symlinks. What cannot be looked at (NAS away, stalled mount, not mounted, a symlink, no permission,
a state that is not ours) is ``unknown`` with the reason, never a hang and never a guess.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import re
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot import TIMESTAMP_FORMAT
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import parse_stamp
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_age

KINDS = ("backup", "nas_backup", "nas_snapshot", "last_run")
ON_NAS = frozenset(("nas_backup", "nas_snapshot"))
MISSING = ("ok", "warning", "unknown", "critical")
# the blocks of the settings, their defaults (the module's option defaults are these)
DEFAULTS = {
    "backups": {"warning": "26h", "critical": "50h", "missing": "critical"},
    "nas_backups": {"warning": "770h", "critical": "794h", "missing": "warning"},
    "nas_snapshots": {"warning": "26h", "critical": "50h", "missing": "critical"},
    "last_run": {"warning": "26h", "critical": "50h", "missing": "critical"},
}
BLOCK_KEYS = {
    "backups": frozenset(("directory", "mount", "volumes", "warning", "critical", "missing")),
    "nas_backups": frozenset(("directory", "mount", "volumes", "warning", "critical", "missing")),
    "nas_snapshots": frozenset(("archives", "mount", "warning", "critical", "missing")),
    "last_run": frozenset(("state_dir", "warning", "critical", "missing")),
}
TOP_KEYS = frozenset(("nas_server", "nas_port", *BLOCK_KEYS))
STATE_NAME = "last-run.json"
FUTURE_SLACK = 300  # seconds a stamp may be after the clock before it is called future-dated
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ARCHIVE_SUFFIX = ".tar.zst"
_STAMP_LEN = len("YYYYmmddTHHMMSSZ")


class FreshnessError(ValueError):
    """Bad freshness settings; the message names the block and the key."""


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------


def _given(value):
    return value is not None and value != "" and value != [] and value != {}


def _abs(what, value):
    if not isinstance(value, str) or not value.startswith("/"):
        raise FreshnessError("freshness.%s: %r is not an absolute path" % (what, value))
    return os.path.normpath(value)


def _name(what, value):
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise FreshnessError(
            "freshness.%s: %r is not a name (letters, digits, '.', '_', '@', '+', '-')" % (what, value)
        )
    return value


def _ages(block, raw):
    defaults = DEFAULTS[block]
    ages = {}
    for key in ("warning", "critical"):
        value = raw.get(key)
        try:
            ages[key] = parse_age(value if _given(value) else defaults[key], "freshness.%s.%s" % (block, key))
        except UnitError as exc:
            raise FreshnessError(str(exc)) from None
    if ages["warning"] > ages["critical"]:
        raise FreshnessError(
            "freshness.%s: warning (%s) must not be above critical (%s)"
            % (block, raw.get("warning"), raw.get("critical") or defaults["critical"])
        )
    missing = raw.get("missing") or defaults["missing"]
    if missing not in MISSING:
        raise FreshnessError("freshness.%s.missing: %r is not one of %s" % (block, missing, ", ".join(MISSING)))
    return ages["warning"], ages["critical"], missing


def _check(kind, name, path, mount, levels):
    warning, critical, missing = levels
    return {
        "kind": kind,
        "name": name,
        "path": path,
        "mount": mount,
        "warning": warning,
        "critical": critical,
        "missing": missing,
    }


def build_freshness(raw):
    """The freshness settings (``None`` or a dict of blocks) -> ``{"nas_server", "nas_port", "checks"}``.

    A block that is absent, or whose list is empty (no LV to back up, no archive), gives no check.
    """
    config = {"nas_server": None, "nas_port": 2049, "checks": []}
    if not _given(raw):
        return config
    if not isinstance(raw, dict):
        raise FreshnessError("freshness must be a dict of backups, nas_backups, nas_snapshots, last_run")
    unknown = sorted(k for k, v in raw.items() if k not in TOP_KEYS and v is not None)
    if unknown:
        raise FreshnessError("freshness: unknown key(s) %s" % ", ".join(unknown))
    server = raw.get("nas_server")
    if _given(server):
        if not isinstance(server, str) or any(c.isspace() for c in server):
            raise FreshnessError("freshness.nas_server: %r is not a host name or address" % (server,))
        config["nas_server"] = server
    port = raw.get("nas_port")
    if _given(port):
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise FreshnessError("freshness.nas_port: %r is not a TCP port" % (port,))
        config["nas_port"] = int(port)
    for block in ("backups", "nas_backups", "nas_snapshots", "last_run"):
        value = raw.get(block)
        if not _given(value):
            continue
        if not isinstance(value, dict):
            raise FreshnessError("freshness.%s must be a dict" % block)
        extra = sorted(k for k, v in value.items() if k not in BLOCK_KEYS[block] and v is not None)
        if extra:
            raise FreshnessError("freshness.%s: unknown key(s) %s" % (block, ", ".join(extra)))
        config["checks"].extend(_block_checks(block, value))
    return config


def _block_checks(block, value):
    levels = _ages(block, value)
    mount = _abs(block + ".mount", value["mount"]) if _given(value.get("mount")) else None
    if block in ("backups", "nas_backups"):
        volumes = value.get("volumes") or []
        if isinstance(volumes, str) or not isinstance(volumes, (list, tuple)):
            raise FreshnessError("freshness.%s.volumes must be a list of LV names" % block)
        if not volumes or not _given(value.get("directory")):
            return []  # nothing backed up, or no destination: nothing to check
        directory = _abs(block + ".directory", value["directory"])
        kind = "backup" if block == "backups" else "nas_backup"
        names = [_name("%s.volumes[%d]" % (block, i), lv) for i, lv in enumerate(volumes)]
        return [_check(kind, lv, os.path.join(directory, lv), mount, levels) for lv in dict.fromkeys(names)]
    if block == "nas_snapshots":
        archives = value.get("archives") or {}
        if not isinstance(archives, dict):
            raise FreshnessError("freshness.nas_snapshots.archives must be a dict of name: destination")
        return [
            _check(
                "nas_snapshot",
                _name("nas_snapshots.archives", name),
                os.path.join(_abs("nas_snapshots.archives[%s]" % name, destination), name),
                mount,
                levels,
            )
            for name, destination in sorted(archives.items())
        ]
    state_dir = _abs("last_run.state_dir", value.get("state_dir"))
    return [_check("last_run", "nightly", os.path.join(state_dir, STATE_NAME), None, levels)]


# ----------------------------------------------------------------------------------------------
# Scanners: run in the time-limited child (they return JSON-serialisable values)
# ----------------------------------------------------------------------------------------------


class NotOurs(Exception):
    """A state file that is not root's (or ours) or that others may write: not to be believed."""


def open_dir(path):
    """A descriptor of ``path``, opened from ``/`` one component at a time, no symlink followed."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for name in [part for part in path.split("/") if part and part != "."]:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _epoch(when):
    return int(when.replace(tzinfo=datetime.timezone.utc).timestamp())


def archive_epoch(name, lv):
    """The UTC time in ``<lv>_<YYYYmmddTHHMMSSZ>.tar.zst``, or None when the name is not one."""
    prefix = lv + "_"
    if not name.startswith(prefix) or not name.endswith(_ARCHIVE_SUFFIX):
        return None
    stamp = name[len(prefix) : -len(_ARCHIVE_SUFFIX)]
    if len(stamp) != _STAMP_LEN:
        return None
    try:
        return _epoch(datetime.datetime.strptime(stamp, TIMESTAMP_FORMAT))
    except ValueError:
        return None


def scan_archives(path, lv):
    """``{"count", "newest", "newest_epoch", "unverified"}`` of the backup archives in ``path``.

    An archive counts with its ``.sha256`` beside it (both regular files, not symlinks); one
    without is counted in ``unverified`` only.
    """
    fd = open_dir(path)
    try:
        files = {}
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    files[entry.name] = True
    finally:
        os.close(fd)
    found = sorted((epoch, name) for name in files for epoch in [archive_epoch(name, lv)] if epoch is not None)
    verified = [(epoch, name) for epoch, name in found if name + ".sha256" in files]
    newest = verified[-1] if verified else (None, None)
    return {
        "count": len(verified),
        "newest": newest[1],
        "newest_epoch": newest[0],
        "unverified": len(found) - len(verified),
    }


def scan_snapshots(path):
    """``{"count", "newest", "newest_epoch"}`` of the complete dated snapshots in ``path``."""
    fd = open_dir(path)
    try:
        found = []
        with os.scandir(fd) as entries:
            for entry in entries:
                when = parse_stamp(entry.name)
                if when is not None and entry.is_dir(follow_symlinks=False):
                    found.append((_epoch(when), entry.name))
    finally:
        os.close(fd)
    found.sort()
    newest = found[-1] if found else (None, None)
    return {"count": len(found), "newest": newest[1], "newest_epoch": newest[0]}


def read_last_run(path):
    """``{"last_success": epoch or None}`` from the lifecycle report's state file ``path``.

    The file is opened without following a symlink, must be a regular file of root (or of this
    user) that no one else may write; anything else raises.
    """
    directory, name = os.path.split(path)
    dir_fd = open_dir(directory)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotOurs("%s is not a regular file" % path)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise NotOurs(
                "%s belongs to uid %d with mode %04o: not root's alone, not believed"
                % (path, st.st_uid, stat.S_IMODE(st.st_mode))
            )
        data = handle.read(16 << 20)
    state = json.loads(data.decode("utf-8"))
    run = state.get("run") if isinstance(state, dict) else None
    if not isinstance(run, dict) or "last_success" not in run:
        raise NotOurs("%s is not a lifecycle run state (no run.last_success)" % path)
    value = run["last_success"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise NotOurs("%s: run.last_success %r is not a Unix time" % (path, value))
    return {"last_success": value}


SCANNERS = {
    "backup": lambda check: (scan_archives, (check["path"], check["name"])),
    "nas_backup": lambda check: (scan_archives, (check["path"], check["name"])),
    "nas_snapshot": lambda check: (scan_snapshots, (check["path"],)),
    "last_run": lambda check: (read_last_run, (check["path"],)),
}


# ----------------------------------------------------------------------------------------------
# Evaluation (pure)
# ----------------------------------------------------------------------------------------------

WHAT = {
    "backup": "backup of %s",
    "nas_backup": "backup of %s on the NAS",
    "nas_snapshot": "NAS snapshot %s",
    "last_run": "successful %s run",
}


def format_age(seconds):
    """``2d 3h``, ``5h 07m``, ``12m``: an age for people."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return "%dd %dh" % (days, hours)
    if hours:
        return "%dh %02dm" % (hours, minutes)
    return "%dm" % minutes


def _limit(seconds):
    """A threshold as people write it: ``50h``, ``7d``, ``32d 2h``."""
    seconds = int(seconds)
    if seconds % 86400 == 0:
        return "%dd" % (seconds // 86400)
    if seconds % 3600 == 0 and seconds < 100 * 3600:
        return "%dh" % (seconds // 3600)
    if seconds % 60 == 0 and seconds < 3600:
        return "%dm" % (seconds // 60)
    return format_age(seconds) if seconds >= 60 else "%ds" % seconds


def unknown_entry(check, reason):
    entry = dict(check, status="unknown", error=reason, age_seconds=None, newest=None, newest_epoch=None)
    return entry, [
        _alert("unknown", check["path"], "%s: not checked: %s" % (WHAT[check["kind"]] % check["name"], reason))
    ]


def _alert(severity, path, message):
    return {"severity": severity, "tier": "freshness", "path": path, "message": message}


def evaluate(check, found, now):
    """``(entry, alerts)`` for a check and what its scanner found (``None``: the path does not exist)."""
    what = WHAT[check["kind"]] % check["name"]
    entry = dict(check, status="ok", age_seconds=None, newest=None, newest_epoch=None, count=None)
    if check["kind"] == "last_run":
        epoch = (found or {}).get("last_success")
        entry["newest_epoch"] = epoch
        if found is None:
            reason = "no %s: the nightly run never reported (never ran, or its state is gone)" % check["path"]
        elif epoch is None:
            reason = "%s records no successful run yet" % check["path"]
    else:
        entry["count"] = (found or {}).get("count", 0)
        entry["newest"] = (found or {}).get("newest")
        epoch = (found or {}).get("newest_epoch")
        entry["newest_epoch"] = epoch
        if found is None:
            reason = "%s does not exist" % check["path"]
        elif epoch is None:
            reason = "%s holds none" % check["path"]
            if found.get("unverified"):
                reason += " (%d archive(s) without their .sha256 not counted)" % found["unverified"]
    if epoch is None:
        entry["status"] = check["missing"]
        alerts = (
            [] if check["missing"] == "ok" else [_alert(check["missing"], check["path"], "no %s: %s" % (what, reason))]
        )
        return entry, alerts
    age = now - epoch
    entry["age_seconds"] = int(max(age, 0))
    newest = (" (%s)" % entry["newest"]) if entry.get("newest") else ""
    if age < -FUTURE_SLACK:
        entry["status"] = "warning"
        return entry, [
            _alert(
                "warning",
                check["path"],
                "newest %s%s is dated %s in the future: is the clock right?" % (what, newest, format_age(-age)),
            )
        ]
    if age >= check["critical"]:
        level, limit = "critical", check["critical"]
    elif age >= check["warning"]:
        level, limit = "warning", check["warning"]
    else:
        return entry, []
    entry["status"] = level
    return entry, [
        _alert(
            level,
            check["path"],
            "newest %s%s is %s old, %s at %s" % (what, newest, format_age(age), level, _limit(limit)),
        )
    ]


def os_error_reason(exc, check):
    """Why a scan failed, for people; ``None`` when the path simply does not exist."""
    if exc.errno == errno.ENOENT:
        return None
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "a symlink or not a directory on the way to %s: not followed" % check["path"]
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied on %s (run the check as root)" % check["path"]
    return "cannot read %s: %s" % (check["path"], exc.strerror or exc)


def check_freshness(config, call, budget, now, mounts=None, nas_up=None, stalled=None):
    """Run every check of ``config`` (from ``build_freshness``): ``(entries, alerts)``.

    ``call(func, args, timeout)`` runs a scanner with a time-out (``call_with_timeout``);
    ``budget()`` gives the seconds for the next call; ``mounts`` is the live mount table (None:
    unknown); ``nas_up`` is ``(up, message)`` of the NAS probe or None (no NAS server given);
    ``stalled`` maps mount points that did not answer to the reason (updated here).
    """
    stalled = {} if stalled is None else stalled
    entries, alerts = [], []
    for check in config["checks"]:
        entry, check_alerts = _one(check, call, budget, now, mounts, nas_up, stalled)
        entries.append(entry)
        alerts.extend(check_alerts)
    return entries, alerts


def _one(check, call, budget, now, mounts, nas_up, stalled):
    mount = check["mount"]
    if check["kind"] in ON_NAS and nas_up is not None and not nas_up[0]:
        return unknown_entry(
            check, "the NAS does not answer (%s); its mount is not touched (it would hang)" % (nas_up[1] or "down")
        )
    if mount and mount in stalled:
        return unknown_entry(check, stalled[mount])
    if mount and mounts is not None and mount not in mounts:
        return unknown_entry(check, "%s is not mounted" % mount)
    seconds = budget()
    if seconds <= 0:
        return unknown_entry(check, "the run's time-out was used up")
    func, args = SCANNERS[check["kind"]](check)
    try:
        found = call(func, args, seconds)
    except ProbeTimeout:
        reason = "%s did not answer within %.1fs (stalled mount?)" % (mount or check["path"], seconds)
        if mount:
            stalled[mount] = reason
        return unknown_entry(check, reason)
    except OSError as exc:
        reason = os_error_reason(exc, check)
        if reason is not None:
            return unknown_entry(check, reason)
        found = None
    except RuntimeError as exc:  # the scanner's own refusal (NotOurs, bad JSON), from the child
        return unknown_entry(check, str(exc).replace(NotOurs.__name__ + ": ", "", 1))
    return evaluate(check, found, now)


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------

PERF_LABELS = {
    "backup": "backup %s age",
    "nas_backup": "nas backup %s age",
    "nas_snapshot": "nas snapshot %s age",
    "last_run": "last success%.0s age",  # %.0s: the name ("nightly") is not shown
}


def perf_items(entries, label):
    """``'backup postgres age'=3600s;93600;180000;0;`` per entry with a known age."""
    items = []
    for entry in entries:
        if entry.get("age_seconds") is None:
            continue
        text = PERF_LABELS[entry["kind"]] % entry["name"]
        items.append("%s=%ds;%d;%d;0;" % (label(text), entry["age_seconds"], entry["warning"], entry["critical"]))
    return items


def _iso(epoch):
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_lines(entries, alerts, status):
    """The report's freshness section: one row per check, then its alerts."""
    if not entries:
        return []
    header = ("CHECK", "NAME", "NEWEST", "AGE", "WARN/CRIT", "STATUS")
    rows = [header]
    for entry in entries:
        rows.append(
            (
                entry["kind"],
                entry["name"],
                _iso(entry.get("newest_epoch")),
                format_age(entry["age_seconds"]) if entry.get("age_seconds") is not None else "-",
                "%s/%s" % (_limit(entry["warning"]), _limit(entry["critical"])),
                entry["status"].upper(),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["[freshness] %s" % status.upper()]
    lines.extend(
        "  " + " ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + " " + row[-1] for row in rows
    )
    for item in alerts:
        lines.append("  %-8s %s: %s" % (item["severity"].upper(), item["path"], item["message"]))
    return lines
