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
import tempfile

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import perf_items
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
}


class SinkError(RuntimeError):
    """A sink could not deliver; the message never holds the webhook URL or any part of it."""


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


# characters a URL may not hold as they are: space, controls, DEL and anything not ASCII
_URL_UNSAFE = frozenset(chr(c) for c in range(0x21)) | {"\x7f"}
_BAD_PORT = "webhook_url: the port is not a number from 1 to 65535"


class WebhookTarget:
    """A parsed webhook URL: what to request, with which headers, and what to scrub from messages.

    Userinfo (``https://user:password@host/...``) leaves the URL and becomes an
    ``Authorization: Basic`` header, as curl does: http.client would otherwise read
    ``password@host`` as a port. ``error`` holds why the URL cannot be used (never any part of it).
    Its repr shows neither the URL nor the header.
    """

    def __init__(self, url=None, headers=None, secrets=(), error=None):
        self.url = url
        self.headers = headers or {}
        self.error = error
        # longest first, so that a whole URL is replaced before its parts
        self._secrets = sorted({pair for pair in secrets if pair[0]}, key=lambda pair: -len(pair[0]))

    def __repr__(self):
        return "<WebhookTarget%s>" % (" error" if self.error else "")

    __str__ = __repr__

    def scrub(self, text):
        """``text`` without the URL (``<webhook url>``) or its userinfo, path and query (``<secret>``)."""
        text = str(text)
        for secret, placeholder in self._secrets:
            text = text.replace(secret, placeholder)
        return text


def parse_webhook_url(url):
    """Validate ``url`` up front; returns a WebhookTarget (with ``error`` set when unusable).

    Never raises, and no message holds any part of the URL: it may hold a token.
    """
    if not isinstance(url, str):
        return WebhookTarget(error="webhook_url must be a string")
    from urllib.parse import unquote, urlsplit, urlunsplit

    raw = url
    url = url.strip()  # a vaulted value often ends in a newline
    secrets = [(raw, "<webhook url>"), (url, "<webhook url>")]
    try:
        parts = urlsplit(url)
    except ValueError:  # such as an unclosed [IPv6 address
        return WebhookTarget(secrets=secrets, error="webhook_url is not a valid URL")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = parts.username or ""
    password = parts.password or ""
    # what an error text could quote: userinfo, user, password, path and query, raw and decoded
    secrets += [(userinfo + at, "<secret>@"), (userinfo, "<secret>")]
    secrets += [(text, "<secret>") for text in (user, unquote(user), password, unquote(password))]
    if parts.query:
        path_query = parts.path + "?" + parts.query
        secrets += [(text, "<secret>") for text in (path_query, parts.query, unquote(parts.query))]
    if len(parts.path) > 1:
        secrets += [(text, "<secret>") for text in (parts.path, unquote(parts.path))]
    if any(c in _URL_UNSAFE or c > "\x7f" for c in url):
        error = "webhook_url holds a space, a control or a non-ASCII character (percent-encode it)"
        return WebhookTarget(secrets=secrets, error=error)
    if parts.scheme not in ("https", "http") or not url.lower().startswith(parts.scheme + "://"):
        return WebhookTarget(secrets=secrets, error="webhook_url must start with https:// or http://")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range; its text would show the value
        return WebhookTarget(secrets=secrets, error=_BAD_PORT)
    if port == 0:
        return WebhookTarget(secrets=secrets, error=_BAD_PORT)
    if not parts.hostname:
        return WebhookTarget(secrets=secrets, error="webhook_url has no host")
    headers = {}
    if at and (user or password):
        import base64

        credentials = ("%s:%s" % (unquote(user), unquote(password))).encode("utf-8")
        encoded = base64.b64encode(credentials).decode("ascii")
        headers["Authorization"] = "Basic " + encoded
        secrets.append((encoded, "<secret>"))
    # the URL requested: no userinfo (now in the header), no fragment (never sent)
    request_url = urlunsplit((parts.scheme, hostport, parts.path, parts.query, ""))
    secrets.append((request_url, "<webhook url>"))
    return WebhookTarget(request_url, headers, secrets)


def scrub_secrets(text, url):
    """``text`` without the webhook URL or its parts (``url``: a string or a WebhookTarget)."""
    if not url:
        return str(text)
    target = url if isinstance(url, WebhookTarget) else parse_webhook_url(url)
    return target.scrub(text)


def _urlopen(request, timeout):
    """urlopen that follows no redirect: a 3xx is an HTTPError.

    Following one would turn the POST into a GET (the alert lost, yet "sent") and carry the
    Authorization header to whatever host the answer names.
    """
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    return urllib.request.build_opener(NoRedirect).open(request, timeout=timeout)


def send_webhook(url, payload, timeout, opener=None):
    """POST ``payload`` as JSON; returns the HTTP status.

    ``url`` is a string or a WebhookTarget. Whatever goes wrong is a SinkError whose message holds
    no part of the URL, and which chains no other exception (a traceback cannot show one).
    """
    target = url if isinstance(url, WebhookTarget) else parse_webhook_url(url)
    if target.error:
        raise SinkError(target.error)
    # Imported here, not at the top: urllib.request costs ~0.35 s to import on the emulated lab
    # VM, and jts-storage-check (no webhook in most configs) must answer in well under a second.
    import urllib.error
    import urllib.request

    message = None
    try:
        data = json.dumps(payload, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "jts-storage-health"}
        headers.update(target.headers)
        request = urllib.request.Request(target.url, data=data, method="POST", headers=headers)  # noqa: S310
        with (opener or _urlopen)(request, timeout=timeout) as response:
            return int(getattr(response, "status", None) or response.getcode())
    except urllib.error.HTTPError as exc:
        message = "webhook answered HTTP %d" % exc.code
        if 300 <= exc.code < 400:
            message += " (redirects are not followed)"
        exc.close()
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, Exception) and not isinstance(reason, OSError):
            reason = "%s: %s" % (type(reason).__name__, reason)
        message = "webhook not delivered: %s" % target.scrub(reason)
    except OSError as exc:  # time-outs, refused connections, TLS errors
        message = "webhook not delivered: %s" % target.scrub(exc)
    except Exception as exc:  # InvalidURL, ValueError, HTTPException, anything: never a crash
        message = "webhook not delivered: %s: %s" % (type(exc).__name__, target.scrub(exc))
    # raised here, outside the except clauses, so that it has no __context__ holding the original
    raise SinkError(message)


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
    # validated here, up front; an unusable URL is an error of the webhook sink alone (reported on
    # every run, check mode included), never of the run: the report and the other sinks are kept
    webhook = parse_webhook_url(url) if url is not None else None
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
        "webhook": webhook,
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
    entry = {"sent": False}
    if target.error:
        entry["error"] = target.error
    elif not webhook_wanted(result["status"], sinks["webhook_min_severity"]):
        entry["skipped"] = "status %s is below webhook_min_severity %s" % (
            result["status"],
            sinks["webhook_min_severity"],
        )
    elif check_mode:
        entry["skipped"] = "check mode"
    else:
        try:
            entry["http_status"] = send_webhook(target, webhook_payload(result, host), sinks["webhook_timeout"], opener)
            entry["sent"] = True
        except SinkError as exc:
            entry["error"] = target.scrub(exc)
        except Exception as exc:  # send_webhook raises SinkError only; belt and braces
            entry["error"] = "webhook not delivered: %s: %s" % (type(exc).__name__, target.scrub(exc))
    return entry
