# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health verdicts (pure): numbers in, alerts out.

Usage against thresholds, a mount against the layout, a volume group and its snapshots, btrfs
error counters; ``worst``/``summarise`` give a status and ``should_fail`` the module's decision.
Used by the checker (``_health``, ``_health_tier_checks``, ``_health_tools``) and the module.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import is_invalid, is_snapshot
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import UNREPORTED_DEFAULTS
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import (
    options_missing as _options_missing,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import SEVERITY_RANK, worst
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import format_bytes


def options_missing(wanted, live):
    """Options of ``wanted`` the kernel should report but ``live`` lacks (ext4's unechoed defaults too)."""
    return _options_missing(wanted, live, UNREPORTED_DEFAULTS)


# ----------------------------------------------------------------------------------------------
# Evaluation (pure)
# ----------------------------------------------------------------------------------------------


def usage_from_statvfs(st):
    """Sizes as df shows them: used = blocks - bfree, ratio = used / (used + avail) (``None`` when zero-size)."""
    frsize = st.get("f_frsize") or st.get("f_bsize") or 0
    size = st["f_blocks"] * frsize
    free = st["f_bavail"] * frsize
    used = (st["f_blocks"] - st["f_bfree"]) * frsize
    usable = used + free
    files = st.get("f_files") or 0
    inodes_used = files - (st.get("f_ffree") or 0)
    return {
        "size_bytes": size,
        "used_bytes": used,
        "free_bytes": free,
        "used_ratio": (used / float(usable)) if usable > 0 else None,
        "inodes": files,
        "inodes_used": inodes_used if files else 0,
        # btrfs and some NFS servers report no inode limit (0): nothing to judge
        "inode_ratio": (inodes_used / float(files)) if files > 0 else None,
    }


def _level(value, warning, critical):
    if value is None:
        return "ok"
    if critical is not None and value >= critical:
        return "critical"
    if warning is not None and value >= warning:
        return "warning"
    return "ok"


def _free_level(free, total, warning, critical):
    """Level of a free amount against minimum-free thresholds (bytes or percent of ``total``)."""

    def below(threshold):
        if threshold is None:
            return False
        kind, amount = threshold
        if kind == "percent":
            return total > 0 and free * 100.0 / total < amount
        return free < amount

    if below(critical):
        return "critical", critical
    if below(warning):
        return "warning", warning
    return "ok", None


def _threshold_text(threshold):
    kind, amount = threshold
    return "%g%%" % amount if kind == "percent" else format_bytes(amount)


def evaluate_usage(tier, path, usage):
    """Alerts for one path's space and inode usage (at or above a threshold alerts)."""
    alerts = []
    ratio = usage["used_ratio"]
    if ratio is None:
        alerts.append(
            alert(
                "unknown", tier["name"], path, "reports a size of 0 bytes (not the tier's filesystem?): usage unknown"
            )
        )
    else:
        percent = round(ratio * 100.0, 2)
        level = _level(percent, tier["warning"], tier["critical"])
        if level != "ok":
            limit = tier["critical"] if level == "critical" else tier["warning"]
            alerts.append(
                alert(
                    level,
                    tier["name"],
                    path,
                    "%.1f%% used (%s free of %s), %s threshold %g%%"
                    % (percent, format_bytes(usage["free_bytes"]), format_bytes(usage["size_bytes"]), level, limit),
                )
            )
        level, limit = _free_level(
            usage["free_bytes"], usage["size_bytes"], tier["free_warning"], tier["free_critical"]
        )
        if level != "ok":
            alerts.append(
                alert(
                    level,
                    tier["name"],
                    path,
                    "%s free, below the %s minimum of %s"
                    % (format_bytes(usage["free_bytes"]), level, _threshold_text(limit)),
                )
            )
    if usage["inode_ratio"] is not None:
        percent = round(usage["inode_ratio"] * 100.0, 2)
        level = _level(percent, tier["inode_warning"], tier["inode_critical"])
        if level != "ok":
            limit = tier["inode_critical"] if level == "critical" else tier["inode_warning"]
            alerts.append(
                alert(level, tier["name"], path, "%.1f%% of inodes used, %s threshold %g%%" % (percent, level, limit))
            )
    return alerts


def evaluate_mount(tier, expected, live):
    """(result, alerts) for an expected mount against the live mount table entry (or None)."""
    path = expected["path"]
    result = {
        "path": path,
        "mounted": live is not None,
        "fstype": live["fstype"] if live else None,
        "source": live["source"] if live else None,
        "options": live["options"] if live else [],
        "expected_fstype": expected["fstype"],
        "expected_options": expected["options"],
        "missing_options": [],
        "drift": False,
    }
    if live is None:
        return result, [alert("critical", tier["name"], path, "not mounted")]
    alerts = []
    if expected["fstype"] and not live["fstype"].startswith(expected["fstype"]):
        result["drift"] = True
        alerts.append(
            alert(
                "critical",
                tier["name"],
                path,
                "mounted as %s, expected %s (another filesystem on the mount point?)"
                % (live["fstype"], expected["fstype"]),
            )
        )
    if expected["source"] and live["source"] != expected["source"]:
        result["drift"] = True
        alerts.append(
            alert("warning", tier["name"], path, "mounted from %s, expected %s" % (live["source"], expected["source"]))
        )
    missing = options_missing(expected["options"], live["options"])
    result["missing_options"] = missing
    if missing:
        result["drift"] = True
        alerts.append(
            alert(
                "warning",
                tier["name"],
                path,
                "mount options drifted: %s missing (live: %s)" % (",".join(missing), ",".join(live["options"])),
            )
        )
    return result, alerts


def evaluate_vg(tier, vg_row, lv_rows):
    """(result, alerts) for a VG's free space and every snapshot's fill."""
    name = tier["name"]
    vg = tier["vg"]
    size = int(float(vg_row.get("vg_size") or 0))
    free = int(float(vg_row.get("vg_free") or 0))
    result = {
        "vg": vg,
        "size_bytes": size,
        "free_bytes": free,
        "free_ratio": (free / float(size)) if size else None,
        "snapshots": [],
    }
    alerts = []
    level, limit = _free_level(free, size, tier["vg_free_warning"], tier["vg_free_critical"])
    if level != "ok":
        alerts.append(
            alert(
                level,
                name,
                "/dev/%s" % vg,
                "VG %s has %s free of %s, below the %s minimum of %s"
                % (vg, format_bytes(free), format_bytes(size), level, _threshold_text(limit)),
            )
        )
    for row in lv_rows:
        if not is_snapshot(row):
            continue
        try:
            fill = float(row.get("data_percent"))
        except (TypeError, ValueError):
            fill = None
        invalid = is_invalid(row)
        snap = {
            "name": row.get("lv_name"),
            "origin": row.get("origin") or None,
            "size_bytes": int(float(row.get("lv_size") or 0)),
            "fill_percent": fill,
            "valid": not invalid,
            "status": "ok",
        }
        path = "/dev/%s/%s" % (vg, snap["name"])
        if invalid:
            snap["status"] = "critical"
            alerts.append(
                alert(
                    "critical",
                    name,
                    path,
                    "snapshot %s of %s is invalid (it filled up): its data is lost, remove it"
                    % (snap["name"], snap["origin"]),
                )
            )
        else:
            snap["status"] = _level(fill, tier["snapshot_warning"], tier["snapshot_critical"])
            if snap["status"] != "ok":
                limit = tier["snapshot_critical"] if snap["status"] == "critical" else tier["snapshot_warning"]
                alerts.append(
                    alert(
                        snap["status"],
                        name,
                        path,
                        "snapshot %s of %s is %.1f%% full, %s threshold %g%%"
                        % (snap["name"], snap["origin"], fill, snap["status"], limit),
                    )
                )
        result["snapshots"].append(snap)
    return result, alerts


def evaluate_btrfs(tier, mount, devices):
    alerts = []
    for device, counters in sorted(devices.items()):
        errors = {k: v for k, v in counters.items() if v}
        if errors:
            alerts.append(
                alert(
                    tier["btrfs_error_severity"],
                    tier["name"],
                    mount,
                    "btrfs device %s reports errors: %s (reset with btrfs device stats -z after repair)"
                    % (device, ", ".join("%s=%d" % kv for kv in sorted(errors.items()))),
                )
            )
    return alerts


def alert(severity, tier, path, message):
    return {"severity": severity, "tier": tier, "path": path, "message": message}


def summarise(alerts):
    counts = {"critical": 0, "warning": 0, "unknown": 0}
    for item in alerts:
        counts[item["severity"]] += 1
    return worst(a["severity"] for a in alerts), counts


def should_fail(status, fail_on):
    """Whether ``status`` reaches ``fail_on`` (never < warning < unknown < critical)."""
    if fail_on == "never":
        return False
    return SEVERITY_RANK[status] >= SEVERITY_RANK[fail_on]
