# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where storage health results go: Prometheus textfile, journal, webhook, Nagios perfdata.

Standard library only, importable on Python 3.8. Renderers are pure functions; the writers take
what they need (a runner for ``logger``, a URL opener for the webhook) so that tests can see
every call. A webhook URL may hold a token: it never appears in a message or a result.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile

from ansible_collections.jts.tiered_storage.plugins.module_utils._health import SEVERITY_RANK, HealthError, parse_bool

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
)


class SinkError(RuntimeError):
    """A sink could not deliver; the message never holds the webhook URL."""


# ----------------------------------------------------------------------------------------------
# Prometheus textfile
# ----------------------------------------------------------------------------------------------


def escape_label(value):
    """Label value escaping of the exposition format: backslash, double quote, newline."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _sample(name, labels, value):
    if labels:
        inner = ",".join('%s="%s"' % (k, escape_label(v)) for k, v in labels)
        return "%s%s{%s} %s" % (METRIC_PREFIX, name, inner, _format_value(value))
    return "%s%s %s" % (METRIC_PREFIX, name, _format_value(value))


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
    samples["status"].append(((), STATUS_VALUES[result["status"]]))
    for severity in ("critical", "warning", "unknown"):
        samples["alerts"].append(((("severity", severity),), result["alert_counts"][severity]))
    samples["check_duration_seconds"].append(((), float(result["duration_seconds"])))
    samples["last_run_timestamp_seconds"].append(((), int(result["checked_at"])))
    return samples


def render_textfile(result):
    """The node_exporter textfile: HELP and TYPE once per metric family, then its samples."""
    samples = metric_samples(result)
    lines = []
    for name, kind, text in METRICS:
        if not samples[name]:
            continue
        full = METRIC_PREFIX + name
        lines.append("# HELP %s %s" % (full, text.replace("\\", "\\\\").replace("\n", "\\n")))
        lines.append("# TYPE %s %s" % (full, kind))
        for labels, value in samples[name]:
            lines.append(_sample(name, labels, value))
    return "\n".join(lines) + "\n"


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` atomically: temporary file in the same directory, fsync, rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
    if not logger_bin:
        raise SinkError("logger (util-linux) not found")
    sent = 0
    for priority, message in journal_messages(result):
        rc, _out, err = runner([logger_bin, "-t", identifier, "-p", "user." + priority, "--", message], 5.0)
        if rc != 0:
            raise SinkError("logger failed (rc %d): %s" % (rc, (err or "").strip()))
        sent += 1
    return sent


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


def _scrub(text, url):
    text = str(text)
    if url:
        text = text.replace(url, "<webhook url>")
    return text


def send_webhook(url, payload, timeout, opener=None):
    """POST ``payload`` as JSON; returns the HTTP status. Errors never show the URL."""
    if not url.startswith(("https://", "http://")):
        raise SinkError("webhook URL must start with https:// or http://")
    # Imported here, not at the top: urllib.request costs ~0.35 s to import on the emulated lab
    # VM, and jts-storage-check (no webhook in most configs) must answer in well under a second.
    import urllib.error
    import urllib.request

    data = json.dumps(payload, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "jts-storage-health"}
    )
    opener = opener or urllib.request.urlopen
    try:
        with opener(request, timeout=timeout) as response:
            return int(getattr(response, "status", None) or response.getcode())
    except urllib.error.HTTPError as exc:
        raise SinkError("webhook answered HTTP %d" % exc.code) from None
    except urllib.error.URLError as exc:
        raise SinkError("webhook not delivered: %s" % _scrub(exc.reason, url)) from None
    except (socket.timeout, OSError) as exc:
        raise SinkError("webhook not delivered: %s" % _scrub(exc, url)) from None


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
    items.append("'duration'=%ss;;;0;" % _perf_number(float(result["duration_seconds"])))
    return " ".join(items)


def status_line(result):
    """``STORAGE <STATUS> - <first alerts> | <perfdata>``."""
    alerts = sorted(result["alerts"], key=lambda a: -SEVERITY_RANK[a["severity"]])
    if alerts:
        shown = "; ".join("%s %s: %s" % (a["tier"], a["path"], a["message"]) for a in alerts[:3])
        if len(alerts) > 3:
            shown += "; and %d more" % (len(alerts) - 3)
        summary = "%d alert(s): %s" % (len(alerts), shown)
    else:
        summary = "all %d tier(s) ok" % len(result["tier_order"])
    # '|' separates perfdata: it must not appear in the text part
    summary = summary.replace("|", "/").replace("\n", " ")
    return "STORAGE %s - %s | %s" % (result["status"].upper(), summary, perfdata(result))


# ----------------------------------------------------------------------------------------------
# Settings and delivery
# ----------------------------------------------------------------------------------------------

DEFAULT_IDENTIFIER = "jts-storage-health"


def build_sinks(settings):
    """Validate the sink settings (module parameters or the command's JSON config)."""
    textfile = settings.get("textfile") or None
    if textfile is not None and (not isinstance(textfile, str) or not textfile.startswith("/")):
        raise SinkError("textfile: %r is not an absolute path" % (textfile,))
    if textfile is not None and not textfile.endswith(".prom"):
        raise SinkError("textfile: %s must end in .prom (node_exporter reads only those)" % textfile)
    identifier = settings.get("journal_identifier") or DEFAULT_IDENTIFIER
    if not isinstance(identifier, str) or any(c.isspace() for c in identifier):
        raise SinkError("journal_identifier: %r must be one word" % (identifier,))
    url = settings.get("webhook_url") or None
    if url is not None and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        # never echo the value: it may hold a token
        raise SinkError("webhook_url must start with https:// or http://")
    try:
        timeout = float(settings.get("webhook_timeout") or 5)
    except (TypeError, ValueError):
        raise SinkError("webhook_timeout: %r is not a number of seconds" % (settings.get("webhook_timeout"),)) from None
    min_severity = settings.get("webhook_min_severity") or "warning"
    if min_severity not in SEVERITY_RANK:
        raise SinkError("webhook_min_severity: %r is not one of ok, warning, unknown, critical" % (min_severity,))
    try:
        journal = parse_bool(settings.get("journal") or False, "journal")
    except HealthError as exc:
        raise SinkError(str(exc)) from None
    return {
        "textfile": textfile,
        "journal": journal,
        "journal_identifier": identifier,
        "webhook_url": url,
        "webhook_timeout": timeout,
        "webhook_min_severity": min_severity,
    }


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
        entry = {"sent": False}
        if not webhook_wanted(result["status"], sinks["webhook_min_severity"]):
            entry["skipped"] = "status %s is below webhook_min_severity %s" % (
                result["status"],
                sinks["webhook_min_severity"],
            )
        elif check_mode:
            entry["skipped"] = "check mode"
        else:
            try:
                entry["http_status"] = send_webhook(
                    sinks["webhook_url"], webhook_payload(result, host), sinks["webhook_timeout"], opener
                )
                entry["sent"] = True
            except SinkError as exc:
                entry["error"] = _scrub(exc, sinks["webhook_url"])
        report["webhook"] = entry
    return report
