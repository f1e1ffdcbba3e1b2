# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a storage health result says to its sinks, and ``deliver``: the Prometheus textfile's
metrics (``METRICS``, ``metric_samples``, ``render_textfile``), the journal lines, the webhook payload
and when it is sent.

Used by the ``storage_health`` module and ``jts-storage-check`` (``_health_cli``). The transports are
shared with the nightly run report: ``_textfile`` (exposition format, atomic write) and ``_sinks``
(``logger``, the webhook POST, the sink settings). A webhook URL may hold a token: it never appears
in a message or a result. The Nagios status line and perfdata are ``_health_report``'s.
"""

from __future__ import annotations

import os  # noqa: F401 - the tests patch os.rename through this module

from ansible_collections.jts.tiered_storage.plugins.module_utils._health_report import perfdata, status_line  # noqa: F401 - names the tests import here
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import SEVERITY_RANK
from ansible_collections.jts.tiered_storage.plugins.module_utils._sinks import (  # noqa: F401 - names the tests import here
    DEFAULT_IDENTIFIER,
    SinkError,
    WebhookTarget,
    build_sinks,
    parse_webhook_url,
    scrub_secrets,
    send_journal_lines,
    send_webhook,
    webhook_entry,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._textfile import (  # noqa: F401 - write_atomic: re-export for _benchmark_run.py; the lead redirects it
    escape_label,
    render,
    write_atomic,
)

METRIC_PREFIX = "jts_storage_"
STATUS_VALUES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
# syslog priorities by severity (logger -p user.<priority>)
JOURNAL_PRIORITIES = {"critical": "crit", "unknown": "err", "warning": "warning", "ok": "info"}

# name -> (type, help)
METRICS = (
    ("used_ratio", "gauge", "Used share of a tier path's filesystem (0..1), as df computes it."),
    ("free_bytes", "gauge", "Bytes available to unprivileged users on a tier path's filesystem."),
    ("size_bytes", "gauge", "Size of a tier path's filesystem in bytes."),
    (
        "inode_used_ratio",
        "gauge",
        "Used share of a tier path's inodes (0..1); absent where the filesystem has no inode limit.",
    ),
    ("path_up", "gauge", "1 when the tier path answered its statvfs within the time-out, else 0."),
    ("mount_ok", "gauge", "1 when an expected mount is mounted with the expected filesystem and options, else 0."),
    ("vg_free_bytes", "gauge", "Free bytes in a tier's LVM volume group."),
    ("vg_free_ratio", "gauge", "Free share of a tier's LVM volume group (0..1)."),
    ("snapshot_fill_ratio", "gauge", "Fill of an LVM snapshot (0..1); an invalid snapshot reports 1."),
    ("snapshot_valid", "gauge", "1 when an LVM snapshot is valid, 0 when it filled up and is invalid."),
    ("nas_up", "gauge", "1 when the tier's NAS accepted a TCP connection to its NFS port within the time-out."),
    ("btrfs_device_errors", "gauge", "btrfs device error counter (btrfs device stats)."),
    ("tier_status", "gauge", "Status of a tier: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("status", "gauge", "Overall storage health: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("alerts", "gauge", "Alerts of the last run by severity."),
    ("check_duration_seconds", "gauge", "Seconds the last health check took."),
    ("last_run_timestamp_seconds", "gauge", "Unix time of the last health check."),
    # freshness (_freshness): ages at the time of the check, and the times they are counted from
    ("backup_age_seconds", "gauge", "Age of the newest verified backup archive of an LV on the warm tier."),
    ("backup_newest_timestamp_seconds", "gauge", "Unix time (from its name) of the newest backup of an LV on warm."),
    ("nas_backup_age_seconds", "gauge", "Age of the newest backup archive of an LV on the NAS."),
    (
        "nas_backup_newest_timestamp_seconds",
        "gauge",
        "Unix time (from its name) of the newest backup of an LV on the NAS.",
    ),
    ("nas_snapshot_age_seconds", "gauge", "Age of the newest complete dated snapshot of a NAS archive."),
    ("nas_snapshot_newest_timestamp_seconds", "gauge", "Unix time (from its name) of a NAS archive's newest snapshot."),
    ("lifecycle_last_success_age_seconds", "gauge", "Age of the last successful nightly run (its end)."),
    (
        "database_step_last_success_age_seconds",
        "gauge",
        "Age of the last success of a database step of the nightly run.",
    ),
    (
        "database_step_last_success_timestamp_seconds",
        "gauge",
        "Unix time a database step of the nightly run (pg_archive, clickhouse_tiering) last succeeded.",
    ),
    (
        "database_step_pending",
        "gauge",
        "Partitions (pg_archive) or parts (clickhouse_tiering) past their age still in place after the step's last run.",
    ),
    (
        "freshness_status",
        "gauge",
        "Freshness check by kind and name: 0 ok, 1 warning, 2 critical, 3 unknown (none found: its missing severity).",
    ),
)
# freshness kind -> (age metric, newest timestamp metric, label name)
FRESHNESS_METRICS = {
    "backup": ("backup_age_seconds", "backup_newest_timestamp_seconds", "lv"),
    "nas_backup": ("nas_backup_age_seconds", "nas_backup_newest_timestamp_seconds", "lv"),
    "nas_snapshot": ("nas_snapshot_age_seconds", "nas_snapshot_newest_timestamp_seconds", "archive"),
    "last_run": ("lifecycle_last_success_age_seconds", None, None),
    "database": ("database_step_last_success_age_seconds", "database_step_last_success_timestamp_seconds", "step"),
}


def metric_samples(result):
    """``{metric name: [(labels, value)]}`` for the result of ``HealthChecker.run``."""
    samples = {name: [] for name, _t, _h in METRICS}
    for tier_name in result["tier_order"]:
        tier = result["tiers"][tier_name]
        samples["tier_status"].append(((("tier", tier_name),), STATUS_VALUES[tier["status"]]))
        for entry in tier["paths"]:
            labels = (("tier", tier_name), ("mount", entry.get("mount") or ""), ("path", entry["path"]))
            measured = entry.get("size_bytes") is not None
            samples["path_up"].append((labels, measured))
            if not measured:
                continue
            if entry.get("used_ratio") is not None:
                samples["used_ratio"].append((labels, round(entry["used_ratio"], 6)))
            samples["free_bytes"].append((labels, entry["free_bytes"]))
            samples["size_bytes"].append((labels, entry["size_bytes"]))
            if entry.get("inode_ratio") is not None:
                samples["inode_used_ratio"].append((labels, round(entry["inode_ratio"], 6)))
        for mount in tier["mounts"]:
            ok = mount["mounted"] and not mount["drift"]
            samples["mount_ok"].append(((("tier", tier_name), ("mount", mount["path"])), ok))
        lvm = tier.get("lvm")
        if lvm and "size_bytes" in lvm:
            vg_labels = (("tier", tier_name), ("vg", lvm["vg"]))
            samples["vg_free_bytes"].append((vg_labels, lvm["free_bytes"]))
            if lvm["free_ratio"] is not None:
                samples["vg_free_ratio"].append((vg_labels, round(lvm["free_ratio"], 6)))
            for snap in lvm["snapshots"]:
                labels = (*vg_labels, ("lv", snap["name"]), ("origin", snap["origin"] or ""))
                fill = 1.0 if not snap["valid"] else (snap["fill_percent"] or 0.0) / 100.0
                samples["snapshot_fill_ratio"].append((labels, round(fill, 6)))
                samples["snapshot_valid"].append((labels, snap["valid"]))
        nas = tier.get("nas")
        if nas:
            samples["nas_up"].append(((("tier", tier_name), ("server", nas["server"])), nas["up"]))
        for stats in tier.get("btrfs") or []:
            for device, counters in sorted((stats.get("devices") or {}).items()):
                for counter, value in sorted(counters.items()):
                    labels = (("tier", tier_name), ("mount", stats["mount"]), ("device", device), ("counter", counter))
                    samples["btrfs_device_errors"].append((labels, value))
    for entry in (result.get("freshness") or {}).get("checks") or []:
        samples["freshness_status"].append(
            ((("kind", entry["kind"]), ("name", entry["name"])), STATUS_VALUES[entry["status"]])
        )
        age_name, stamp_name, label = FRESHNESS_METRICS[entry["kind"]]
        labels = ((label, entry["name"]),) if label else ()
        if entry.get("age_seconds") is not None:
            samples[age_name].append((labels, int(entry["age_seconds"])))
        if stamp_name and entry.get("newest_epoch") is not None:
            samples[stamp_name].append((labels, int(entry["newest_epoch"])))
        if entry["kind"] == "database" and entry.get("pending") is not None:
            samples["database_step_pending"].append((labels, int(entry["pending"])))
    samples["status"].append(((), STATUS_VALUES[result["status"]]))
    for severity in ("critical", "warning", "unknown"):
        samples["alerts"].append(((("severity", severity),), result["alert_counts"][severity]))
    samples["check_duration_seconds"].append(((), float(result["duration_seconds"])))
    samples["last_run_timestamp_seconds"].append(((), int(result["checked_at"])))
    return samples


def render_textfile(result):
    """The node_exporter textfile: HELP and TYPE once per metric family, then its samples."""
    return render(METRIC_PREFIX, METRICS, metric_samples(result))


# ----------------------------------------------------------------------------------------------
# Journal
# ----------------------------------------------------------------------------------------------


def journal_messages(result):
    """``[(priority, message)]``: one summary line, then one line per alert."""
    counts = result["alert_counts"]
    messages = [
        (
            JOURNAL_PRIORITIES[result["status"]],
            "storage health %s: %d critical, %d warning, %d unknown"
            % (result["status"].upper(), counts["critical"], counts["warning"], counts["unknown"]),
        )
    ]
    for item in result["alerts"]:
        messages.append(
            (
                JOURNAL_PRIORITIES[item["severity"]],
                "%s tier=%s path=%s: %s" % (item["severity"].upper(), item["tier"], item["path"], item["message"]),
            )
        )
    return messages


def send_journal(result, runner, logger_bin, identifier):
    """Send each message with ``logger -t <identifier> -p user.<priority> -- <message>``."""
    return send_journal_lines(journal_messages(result), runner, logger_bin, identifier)


# ----------------------------------------------------------------------------------------------
# Webhook
# ----------------------------------------------------------------------------------------------


def webhook_payload(result, host):
    return {
        "host": host,
        "status": result["status"],
        "alert_counts": result["alert_counts"],
        "alerts": result["alerts"],
        "report": result.get("report", ""),
        "checked_at": result["checked_at"],
    }


def webhook_wanted(status, min_severity):
    """Whether a run with ``status`` is sent (``min_severity``: ok sends every run)."""
    return SEVERITY_RANK[status] >= SEVERITY_RANK[min_severity]


def deliver(result, sinks, runner, which, host, check_mode=False, opener=None):
    """Run each configured sink; returns ``{sink: {...}}`` (errors inside, never raised)."""
    report = {}
    if sinks["textfile"]:
        entry = {"path": sinks["textfile"], "written": False}
        if check_mode:
            entry["skipped"] = "check mode"
        else:
            try:
                write_atomic(sinks["textfile"], render_textfile(result))
                entry["written"] = True
            except OSError as exc:
                entry["error"] = "cannot write %s: %s" % (sinks["textfile"], exc.strerror or exc)
            except Exception as exc:  # a sink never costs the report
                entry["error"] = "cannot write %s: %s: %s" % (sinks["textfile"], type(exc).__name__, exc)
        report["textfile"] = entry
    if sinks["journal"]:
        entry = {"identifier": sinks["journal_identifier"], "sent": 0}
        if check_mode:
            entry["skipped"] = "check mode"
        else:
            try:
                entry["sent"] = send_journal(result, runner, which("logger"), sinks["journal_identifier"])
            except SinkError as exc:
                entry["error"] = str(exc)
            except Exception as exc:  # a time-out of logger, for one
                entry["error"] = "logger: %s" % exc
        report["journal"] = entry
    if sinks["webhook_url"]:
        report["webhook"] = _deliver_webhook(result, sinks, host, check_mode, opener)
    return report


def _deliver_webhook(result, sinks, host, check_mode, opener):
    target = sinks.get("webhook") or parse_webhook_url(sinks["webhook_url"])
    skip = None
    if not webhook_wanted(result["status"], sinks["webhook_min_severity"]):
        skip = "status %s is below webhook_min_severity %s" % (result["status"], sinks["webhook_min_severity"])
    return webhook_entry(
        target, skip, lambda: webhook_payload(result, host), sinks["webhook_timeout"], check_mode, opener
    )
