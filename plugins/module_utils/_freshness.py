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
* ``last_run``: ``run.last_success`` of ``<state_dir>/last-run.json`` (the lifecycle report's state);
* ``database``: a database step of the nightly run (``pg_archive``, ``clickhouse_tiering``) in the
  same state: the age of its last success, its last run's status, what it left pending (partitions
  past their retention still attached, parts past their rule still on hot: the ``pending``
  severity) and, for ClickHouse, the bytes per disk and the oldest part on hot it measured.

Ages come from the names (and the state), not from mtimes: a copy or a ``touch`` does not change them.
Every filesystem call runs in a forked child with a time-out (``_timeout.call_with_timeout``, the
health check's own); paths are opened from ``/`` one component at a time without following
symlinks. What cannot be looked at (NAS away, stalled mount, not mounted, a symlink, no permission,
a state that is not ours) is ``unknown`` with the reason, never a hang and never a guess.

This file holds the settings (``build_freshness``: the checks and their ages); the scans are in
``_freshness_scan`` (run in the child), the verdicts and the report lines in ``_freshness_check``.
"""

from __future__ import annotations

import os
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_age

KINDS = ("backup", "nas_backup", "nas_snapshot", "last_run", "database")
DATABASE_STEPS = ("pg_archive", "clickhouse_tiering")
PENDING_SEVERITIES = ("ok", "warning", "critical")  # of what a database step left pending
ON_NAS = frozenset(("nas_backup", "nas_snapshot"))
MISSING = ("ok", "warning", "unknown", "critical")
# the blocks of the settings, their defaults (the module's option defaults are these)
DEFAULTS = {
    "backups": {"warning": "26h", "critical": "50h", "missing": "critical"},
    "nas_backups": {"warning": "770h", "critical": "794h", "missing": "warning"},
    "nas_snapshots": {"warning": "26h", "critical": "50h", "missing": "critical"},
    "last_run": {"warning": "26h", "critical": "50h", "missing": "critical"},
    "databases": {"warning": "26h", "critical": "50h", "missing": "warning", "pending": "warning"},
}
BLOCK_KEYS = {
    "backups": frozenset(("directory", "mount", "volumes", "warning", "critical", "missing")),
    "nas_backups": frozenset(("directory", "mount", "volumes", "warning", "critical", "missing")),
    "nas_snapshots": frozenset(("archives", "mount", "warning", "critical", "missing")),
    "last_run": frozenset(("state_dir", "warning", "critical", "missing")),
    "databases": frozenset(("state_dir", "steps", "warning", "critical", "missing", "pending")),
}
TOP_KEYS = frozenset(("nas_server", "nas_port", *BLOCK_KEYS))
STATE_NAME = "last-run.json"
FUTURE_SLACK = 300  # seconds a stamp may be after the clock before it is called future-dated
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


class FreshnessError(JtsError, ValueError):
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
        raise FreshnessError("freshness must be a dict of backups, nas_backups, nas_snapshots, last_run, databases")
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
    for block in ("backups", "nas_backups", "nas_snapshots", "last_run", "databases"):
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
    if block == "databases":
        return _database_checks(value, levels)
    state_dir = _abs("last_run.state_dir", value.get("state_dir"))
    return [_check("last_run", "nightly", os.path.join(state_dir, STATE_NAME), None, levels)]


def _database_checks(value, levels):
    steps = value.get("steps") or []
    if isinstance(steps, str) or not isinstance(steps, (list, tuple)):
        raise FreshnessError("freshness.databases.steps must be a list of %s" % ", ".join(DATABASE_STEPS))
    for step in steps:
        if step not in DATABASE_STEPS:
            raise FreshnessError(
                "freshness.databases.steps: %r is not a database step (%s)" % (step, ", ".join(DATABASE_STEPS))
            )
    if not steps:
        return []
    pending = value.get("pending") or DEFAULTS["databases"]["pending"]
    if pending not in PENDING_SEVERITIES:
        raise FreshnessError(
            "freshness.databases.pending: %r is not one of %s" % (pending, ", ".join(PENDING_SEVERITIES))
        )
    path = os.path.join(_abs("databases.state_dir", value.get("state_dir")), STATE_NAME)
    return [
        dict(_check("database", step, path, None, levels), pending_severity=pending) for step in dict.fromkeys(steps)
    ]


def check_freshness(*args, **kwargs):
    """``_freshness_check.check_freshness``, for tests/functional/test_storage_health_freshness_functional.py
    (it calls ``_freshness.check_freshness``); the lead redirects it. Imported here, not at the top:
    ``_freshness_check`` imports this file."""
    from ansible_collections.jts.tiered_storage.plugins.module_utils import _freshness_check

    return _freshness_check.check_freshness(*args, **kwargs)
