# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The freshness verdicts: each check's scan run with a time-out, its age against its levels, and
what is said of it (alerts, perfdata items, report lines).

``check_freshness`` is called by ``_health.HealthChecker``; a NAS that does not answer, a stalled
or missing mount, a symlink or a state that is not ours makes a check ``unknown`` with the reason.
"""

from __future__ import annotations

import datetime
import errno

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import FUTURE_SLACK, ON_NAS
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness_scan import SCANNERS, NotOurs
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import worst
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import format_bytes

# ----------------------------------------------------------------------------------------------
# Evaluation (pure)
# ----------------------------------------------------------------------------------------------

WHAT = {
    "backup": "backup of %s",
    "nas_backup": "backup of %s on the NAS",
    "nas_snapshot": "NAS snapshot %s",
    "last_run": "successful %s run",
    "database": "successful %s run",
}
NEVER_REPORTED = "no %s: the nightly run never reported (never ran, or its state is gone)"
# what a database step leaves pending, per step
PENDING = {
    "pg_archive": "%d partition(s) past their retention still attached after the last pg_archive run",
    "clickhouse_tiering": "%d part(s) past their rule still before their target volume after the last"
    " clickhouse_tiering run (the server moves them in the background)",
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


def _fresh_entry(check):
    return dict(check, status="ok", age_seconds=None, newest=None, newest_epoch=None, count=None)


def evaluate(check, found, now):
    """``(entry, alerts)`` for a check and what its scanner found (``None``: the path does not exist)."""
    if check["kind"] == "database":
        return _evaluate_database(check, found, now)
    entry = _fresh_entry(check)
    reason = None
    if check["kind"] == "last_run":
        epoch = (found or {}).get("last_success")
        if found is None:
            reason = NEVER_REPORTED % check["path"]
        elif epoch is None:
            reason = "%s records no successful run yet" % check["path"]
    else:
        entry["count"] = (found or {}).get("count", 0)
        entry["newest"] = (found or {}).get("newest")
        epoch = (found or {}).get("newest_epoch")
        if found is None:
            reason = "%s does not exist" % check["path"]
        elif epoch is None:
            reason = "%s holds none" % check["path"]
            if found.get("unverified"):
                reason += " (%d archive(s) without their .sha256 not counted)" % found["unverified"]
    return _aged(check, entry, epoch, reason, now)


def _aged(check, entry, epoch, reason, now):
    """The verdict on the age of ``epoch`` (``None``: there is none, for ``reason``)."""
    what = WHAT[check["kind"]] % check["name"]
    entry["newest_epoch"] = epoch
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


def _evaluate_database(check, found, now):
    """A database step: its last success's age (as any check), then its last run's own verdict."""
    ran = bool(found and found.get("ran"))
    if found is None:
        reason = NEVER_REPORTED % check["path"]
    elif not ran:
        reason = "%s records no run of %s yet" % (check["path"], check["name"])
    else:
        reason = "%s records no successful run of %s yet" % (check["path"], check["name"])
    entry, alerts = _aged(check, _fresh_entry(check), (found or {}).get("last_success"), reason, now)
    entry.update(last_status=None, pending=None, figures={}, gauges=[], message="")
    if not ran:
        return entry, alerts
    figures = found.get("figures") or {}
    entry.update(
        last_status=found.get("status"),
        message=found.get("message") or "",
        figures=figures,
        gauges=found.get("gauges") or [],
        pending=int(figures.get("files_pending") or 0),
    )
    if found.get("status") in ("failed", "skipped"):
        # the age rule escalates when it goes on (or the missing severity says there was never a
        # success); the bad night itself is a warning with its reason
        alerts.append(
            _alert(
                "warning",
                check["path"],
                "the last %s run %s: %s"
                % (check["name"], found["status"], _printable(found.get("message") or "no reason given")),
            )
        )
    if entry["pending"] and check["pending_severity"] != "ok":
        alerts.append(_alert(check["pending_severity"], check["path"], PENDING[check["name"]] % entry["pending"]))
    entry["status"] = worst([entry["status"]] + [a["severity"] for a in alerts])
    return entry, alerts


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
    except RuntimeError as exc:  # the scanner's own refusal (NotOurs, UnsafePath, bad JSON), from the child
        reason = str(exc)
        for name in (NotOurs.__name__, UnsafePath.__name__):
            reason = reason.replace(name + ": ", "", 1)
        return unknown_entry(check, reason)
    return evaluate(check, found, now)


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------

PERF_LABELS = {
    "backup": "backup %s age",
    "nas_backup": "nas backup %s age",
    "nas_snapshot": "nas snapshot %s age",
    "last_run": "last success%.0s age",  # %.0s: the name ("nightly") is not shown
    "database": "%s last success age",
}


def perf_items(entries, label):
    """``'backup postgres age'=3600s;93600;180000;0;`` per entry with a known age."""
    items = []
    for entry in entries:
        if entry.get("age_seconds") is None:
            continue
        text = PERF_LABELS[entry["kind"]] % entry["name"]
        items.append("%s=%ds;%d;%d;0;" % (label(text), entry["age_seconds"], entry["warning"], entry["critical"]))
    for entry in entries:
        if entry["kind"] == "database" and entry.get("pending") is not None:
            items.append("%s=%d;;;0;" % (label("%s pending" % entry["name"]), entry["pending"]))
    return items


def _iso(epoch):
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_lines(entries, alerts, status, now):
    """The report's freshness section: one row per check, a line per database step, then the alerts."""
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
    lines.extend("  " + database_line(entry, now) for entry in entries if entry["kind"] == "database")
    for item in alerts:
        lines.append("  %-8s %s: %s" % (item["severity"].upper(), item["path"], item["message"]))
    return lines


def _figures_text(figures):
    """``archived 2 (1.2 MiB), failed 1`` from ``files_<action>``/``bytes_<action>`` (pending apart,
    failed only when not zero)."""
    actions = sorted({k.partition("_")[2] for k in figures if k.partition("_")[2] not in ("pending", "")})
    words = []
    for action in actions:
        count = figures.get("files_" + action)
        size = figures.get("bytes_" + action)
        if action == "failed" and not count and not size:
            continue  # said only when something failed
        text = "%s %s" % (action, count if count is not None else "-")
        if size:
            text += " (%s)" % format_bytes(size)
        words.append(text)
    return ", ".join(words)


def _printable(text):
    """``text`` on one line: control characters (a newline in a server's name) as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def _gauges_text(gauges, now):
    """Per server: each disk's bytes and parts, the oldest part on hot (ClickHouse's gauges)."""
    servers = {}
    for gauge in gauges:
        labels = gauge.get("labels") or {}
        server = servers.setdefault(labels.get("server", "-"), {"disks": {}, "oldest": None})
        metric = gauge.get("metric")
        if metric in ("clickhouse_disk_bytes", "clickhouse_disk_parts"):
            server["disks"].setdefault(labels.get("disk", "-"), {})[metric.rpartition("_")[2]] = gauge.get("value")
        elif metric == "clickhouse_hot_oldest_part_timestamp_seconds":
            server["oldest"] = gauge.get("value")
    texts = []
    for name, server in sorted(servers.items()):
        parts = [
            "%s %s in %s parts" % (_printable(disk), format_bytes(f.get("bytes") or 0), f.get("parts", "-"))
            for disk, f in sorted(server["disks"].items())
        ]
        if server["oldest"] is not None:
            parts.append("oldest part on hot %s old" % format_age(now - server["oldest"]))
        texts.append("%s: %s" % (_printable(name), ", ".join(parts) or "no figures"))
    return "; ".join(texts)


def database_line(entry, now):
    """``pg_archive: last run SUCCESS; 0 pending; archived 2 (1.2 MiB)``, or why there is no such line."""
    if entry.get("error"):
        return "%s: not read: %s" % (entry["name"], _printable(entry["error"]))
    if entry.get("last_status") is None:
        return "%s: no run recorded" % entry["name"]
    words = ["%s: last run %s" % (entry["name"], entry["last_status"].upper())]
    words.append("%d pending" % (entry.get("pending") or 0))
    for text in (_figures_text(entry.get("figures") or {}), _gauges_text(entry.get("gauges") or [], now)):
        if text:
            words.append(text)
    return "; ".join(words)
