# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The freshness scans: what is on disk, read without following a symlink and without a hang.

Each scanner runs in the forked child of ``_timeout.call_with_timeout`` (the health check's own) and
returns JSON-serialisable values: the newest backup archive of an LV (``scan_archives``), the newest
complete NAS snapshot (``scan_snapshots``), the last successful run (``read_last_run``), what the
last run of a database step did (``read_step``). Ages come
from the names and the state, never from mtimes. Used by ``_freshness_check``.
"""

from __future__ import annotations

import datetime
import json
import os
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import TIMESTAMP_FORMAT
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import parse_stamp
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    STATUSES,
    ReportError,
    exportable_gauges,
    normalise_figures,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import open_dir_from_root

_ARCHIVE_SUFFIX = ".tar.zst"
_STAMP_LEN = len("YYYYmmddTHHMMSSZ")


# ----------------------------------------------------------------------------------------------
# Scanners: run in the time-limited child (they return JSON-serialisable values)
# ----------------------------------------------------------------------------------------------


class NotOurs(Exception):
    """A state file that is not root's (or ours) or that others may write: not to be believed."""


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
    fd = open_dir_from_root(path)
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
    fd = open_dir_from_root(path)
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


def _read_state(path):
    """The lifecycle report's state file ``path`` as a dict.

    The file is opened without following a symlink, must be a regular file of root (or of this
    user) that no one else may write; anything else raises.
    """
    directory, name = os.path.split(path)
    dir_fd = open_dir_from_root(directory)
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
    if not isinstance(state, dict) or not isinstance(state.get("run"), dict):
        raise NotOurs("%s is not a lifecycle run state (no run)" % path)
    return state


_LAST_EPOCH = 1e11  # year 5138: a larger "Unix time" is not one


def _epoch_or_none(path, what, value):
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < _LAST_EPOCH
    ):
        raise NotOurs("%s: %s %r is not a Unix time" % (path, what, value))
    return value


def read_last_run(path):
    """``{"last_success": epoch or None}`` from the lifecycle report's state file ``path``."""
    run = _read_state(path)["run"]
    if "last_success" not in run:
        raise NotOurs("%s is not a lifecycle run state (no run.last_success)" % path)
    return {"last_success": _epoch_or_none(path, "run.last_success", run["last_success"])}


def read_step(path, step):
    """What the state file ``path`` says of the nightly step ``step`` (a database step).

    ``{"ran": False, "last_success": None}`` when no run recorded the step; else ``ran``, its
    ``last_success``, the ``status``, ``message``, ``ended``, ``figures`` and ``gauges`` of its last run.
    """
    entry = (_read_state(path).get("steps") or {}).get(step)
    if entry is None:
        return {"ran": False, "last_success": None}
    if not isinstance(entry, dict):
        raise NotOurs("%s: steps.%s is not a step entry" % (path, step))
    status = entry.get("status")
    if status not in STATUSES:
        raise NotOurs("%s: steps.%s.status %r is not one of %s" % (path, step, status, ", ".join(STATUSES)))
    figures = entry.get("figures") or {}
    if not isinstance(figures, dict):
        raise NotOurs("%s: steps.%s.figures is not a dict" % (path, step))
    try:
        figures = normalise_figures(figures, step)
    except ReportError as exc:
        raise NotOurs("%s: %s" % (path, exc)) from None
    return {
        "ran": True,
        "last_success": _epoch_or_none(path, "steps.%s.last_success" % step, entry.get("last_success")),
        "status": status,
        "message": str(entry.get("message") or ""),
        "ended": _epoch_or_none(path, "steps.%s.ended" % step, entry.get("ended")),
        "figures": figures,
        # measured figures that do not check out are left out of the report, not believed
        "gauges": exportable_gauges(entry.get("gauges") or [], step),
    }


SCANNERS = {
    "backup": lambda check: (scan_archives, (check["path"], check["name"])),
    "nas_backup": lambda check: (scan_archives, (check["path"], check["name"])),
    "nas_snapshot": lambda check: (scan_snapshots, (check["path"],)),
    "last_run": lambda check: (read_last_run, (check["path"],)),
    "database": lambda check: (read_step, (check["path"], check["name"])),
}
