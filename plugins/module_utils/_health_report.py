# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a storage health result says to people and to Nagios/Icinga: the report (a table per tier),
the status line and the perfdata. Pure functions of ``HealthChecker.run``'s result, used by the
``storage_health`` module, ``jts-storage-check`` (``_health_cli``) and the webhook payload.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness_check import perf_items, report_lines
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import SEVERITY_RANK
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import format_bytes

# ----------------------------------------------------------------------------------------------
# Human report
# ----------------------------------------------------------------------------------------------


def _pct(ratio):
    # rounded as in the alert messages, so the report and the alert show the same figure
    return "-" if ratio is None else "%.1f%%" % round(ratio * 100.0, 2)


def _mount_verdict(mount):
    """What the report says of a mount against the layout: as expected, or what differs."""
    if mount is None:
        return "-"
    if not mount["mounted"]:
        return "NOT MOUNTED"
    if not mount["drift"]:
        return "as expected"
    parts = []
    if mount["fstype"] and mount["expected_fstype"] and not mount["fstype"].startswith(mount["expected_fstype"]):
        parts.append("%s, expected %s" % (mount["fstype"], mount["expected_fstype"]))
    if mount["missing_options"]:
        parts.append("missing %s" % ",".join(mount["missing_options"]))
    return "; ".join(parts) or "source differs"


def _path_table(tier):
    """One row per path of a tier: mount, fstype, size, used, free, inodes, options verdict."""
    mounts = {m["path"]: m for m in tier.get("mounts", [])}
    rows = []
    measured = set()
    for entry in tier["paths"]:
        measured.add(entry["path"])
        has_size = entry.get("size_bytes") is not None
        rows.append(
            (
                entry["path"],
                entry.get("fstype") or "?",
                format_bytes(entry["size_bytes"]) if has_size else "-",
                _pct(entry.get("used_ratio")),
                format_bytes(entry["free_bytes"]) if has_size else "-",
                _pct(entry.get("inode_ratio")),
                _mount_verdict(mounts.get(entry["path"])),
            )
        )
    for path, mount in mounts.items():  # not measured: not mounted
        if path not in measured:
            rows.append((path, mount["expected_fstype"] or "?", "-", "-", "-", "-", _mount_verdict(mount)))
    if not rows:
        return []
    header = ("MOUNT", "FSTYPE", "SIZE", "USED", "FREE", "INODES", "OPTIONS")
    table = [header, *rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    return [
        "  " + " ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row[:-1])) + " " + row[-1] for row in table
    ]


def render_report(result, host=None):
    """A short report: one header line, then per tier a table of its paths (mount, filesystem,
    size, used, free, inodes, and whether the mount options are as expected), VG, NAS and alerts."""
    counts = result["alert_counts"]
    lines = [
        "Storage health%s: %s (%d critical, %d warning, %d unknown) in %.2fs"
        % (
            " of %s" % host if host else "",
            result["status"].upper(),
            counts["critical"],
            counts["warning"],
            counts["unknown"],
            result["duration_seconds"],
        )
    ]
    by_tier = {}
    for item in result["alerts"]:
        by_tier.setdefault(item["tier"], []).append(item)
    for item in by_tier.get("-", []):
        lines.append("  %-8s %s: %s" % (item["severity"].upper(), item["path"], item["message"]))
    for name in result["tier_order"]:
        tier = result["tiers"][name]
        lines.append("[%s] %s" % (name, tier["status"].upper()))
        lines.extend(_path_table(tier))
        lvm = tier.get("lvm")
        if lvm and "size_bytes" in lvm:
            snaps = lvm["snapshots"]
            lines.append(
                "  VG %s: %s free of %s (%s); %d snapshot(s)%s"
                % (
                    lvm["vg"],
                    format_bytes(lvm["free_bytes"]),
                    format_bytes(lvm["size_bytes"]),
                    _pct(lvm["free_ratio"]),
                    len(snaps),
                    (", fullest %.1f%%" % max(s["fill_percent"] or 0 for s in snaps)) if snaps else "",
                )
            )
        nas = tier.get("nas")
        if nas:
            lines.append(
                "  NAS %s:%d %s" % (nas["server"], nas["port"], "up" if nas["up"] else "DOWN (%s)" % nas["message"])
            )
        for item in by_tier.get(name, []):
            lines.append("  %-8s %s: %s" % (item["severity"].upper(), item["path"], item["message"]))
    freshness = result.get("freshness") or {}
    lines.extend(
        report_lines(
            freshness.get("checks") or [],
            by_tier.get("freshness", []),
            freshness.get("status", "ok"),
            result.get("checked_at") or 0,
        )
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Nagios / Icinga
# ----------------------------------------------------------------------------------------------


def _perf_label(text):
    # single quotes are doubled inside a quoted label; '=' cannot appear at all
    return "'%s'" % text.replace("'", "''").replace("=", "_")


def _perf_number(value):
    if isinstance(value, int):
        return str(value)
    text = "%.2f" % value
    return text.rstrip("0").rstrip(".") if "." in text else text


def perfdata(result):
    """Performance data: ``'label'=value[UOM];warn;crit;min;max`` items joined by spaces."""
    items = []
    thresholds = result.get("thresholds") or {}
    for tier_name in result["tier_order"]:
        tier = result["tiers"][tier_name]
        limits = thresholds.get(tier_name) or {}
        for entry in tier["paths"]:
            if entry.get("used_ratio") is not None:
                items.append(
                    "%s=%s%%;%s;%s;0;100"
                    % (
                        _perf_label("%s %s used" % (tier_name, entry["path"])),
                        _perf_number(entry["used_ratio"] * 100.0),
                        _perf_number(limits.get("warning", "")) if "warning" in limits else "",
                        _perf_number(limits.get("critical", "")) if "critical" in limits else "",
                    )
                )
                items.append(
                    "%s=%dB;;;0;%d"
                    % (_perf_label("%s %s free" % (tier_name, entry["path"])), entry["free_bytes"], entry["size_bytes"])
                )
            if entry.get("inode_ratio") is not None:
                items.append(
                    "%s=%s%%;%s;%s;0;100"
                    % (
                        _perf_label("%s %s inodes" % (tier_name, entry["path"])),
                        _perf_number(entry["inode_ratio"] * 100.0),
                        _perf_number(limits["inode_warning"]) if "inode_warning" in limits else "",
                        _perf_number(limits["inode_critical"]) if "inode_critical" in limits else "",
                    )
                )
        lvm = tier.get("lvm")
        if lvm and "size_bytes" in lvm:
            items.append(
                "%s=%dB;;;0;%d"
                % (_perf_label("%s vg %s free" % (tier_name, lvm["vg"])), lvm["free_bytes"], lvm["size_bytes"])
            )
            for snap in lvm["snapshots"]:
                fill = 100.0 if not snap["valid"] else (snap["fill_percent"] or 0.0)
                items.append(
                    "%s=%s%%;%s;%s;0;100"
                    % (
                        _perf_label("%s snapshot %s" % (tier_name, snap["name"])),
                        _perf_number(fill),
                        _perf_number(limits["snapshot_warning"]) if "snapshot_warning" in limits else "",
                        _perf_number(limits["snapshot_critical"]) if "snapshot_critical" in limits else "",
                    )
                )
        nas = tier.get("nas")
        if nas:
            items.append("%s=%d;;1;0;1" % (_perf_label("%s nas up" % tier_name), 1 if nas["up"] else 0))
    items.extend(perf_items((result.get("freshness") or {}).get("checks") or [], _perf_label))
    items.append("'duration'=%ss;;;0;" % _perf_number(float(result["duration_seconds"])))
    return " ".join(items)


def status_line(result):
    """``STORAGE <STATUS> - <first alerts> | <perfdata>`` (``FRESHNESS`` for jts-storage-check --freshness)."""
    alerts = sorted(result["alerts"], key=lambda a: -SEVERITY_RANK[a["severity"]])
    if alerts:
        shown = "; ".join("%s %s: %s" % (a["tier"], a["path"], a["message"]) for a in alerts[:3])
        if len(alerts) > 3:
            shown += "; and %d more" % (len(alerts) - 3)
        summary = "%d alert(s): %s" % (len(alerts), shown)
    else:
        checks = len((result.get("freshness") or {}).get("checks") or [])
        parts = ["%d tier(s)" % len(result["tier_order"])] if result["tier_order"] or not checks else []
        if checks:
            parts.append("%d freshness check(s)" % checks)
        summary = "all %s ok" % " and ".join(parts)
    # '|' separates perfdata: it must not appear in the text part
    summary = summary.replace("|", "/").replace("\n", " ")
    return "%s %s - %s | %s" % (result.get("service") or "STORAGE", result["status"].upper(), summary, perfdata(result))


# ----------------------------------------------------------------------------------------------
# Settings and delivery
# ----------------------------------------------------------------------------------------------


def failure_message(result, fail_on):
    """The module's message when the status reaches ``fail_on``: the status, then every alert."""
    return "storage health is %s (fail_on=%s): %s" % (
        result["status"].upper(),
        fail_on,
        "; ".join("%s %s: %s" % (a["tier"], a["path"], a["message"]) for a in result["alerts"]),
    )
