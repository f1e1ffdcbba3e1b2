# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage health checks of the tiers: one truthful picture, alerts, and never a hang.

Standard library only, importable on Python 3.8. Shared by the ``storage_health`` module and
the ``jts-storage-check`` command (``_health_cli.main``).

* ``build_config`` validates the tier data (the module's and the command's JSON config) and
  turns thresholds into numbers, refusing bad input with a message naming the tier and key.
* ``HealthChecker`` collects: mounts from /proc/self/mounts (never blocks), NAS TCP probes,
  ``statvfs`` of every path in a forked child with a time-out (``_timeout``), LVM reports through
  a runner, ``btrfs device stats``, /proc/diskstats. Every call gets the smaller of the probe
  time-out and what is left of the run's time-out, so a run ends within its time-out even when
  a NAS vanished under a hard mount.
* ``evaluate_*`` are pure functions from numbers to alerts; ``summarise`` gives the overall status
  and ``render_report`` the human report.

Severities: ``ok`` < ``warning`` < ``unknown`` < ``critical``. A path that could not be looked at
(stalled mount, time-out, a tool that failed) is ``unknown``; the overall status is the worst one.
"""

from __future__ import annotations

import errno
import os
import re
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import (
    ON_NAS,
    FreshnessError,
    build_freshness,
    check_freshness,
    report_lines,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot import (
    LV_FIELDS,
    LVM_TIME_CONFIG,
    VG_FIELDS,
    SnapshotError,
    is_invalid,
    is_snapshot,
    parse_report,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import (
    UNREPORTED_DEFAULTS,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import (
    options_missing as _options_missing,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import (
    split_options as _split_options,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    call_with_timeout,
    statvfs_in_process,
    statvfs_with_timeout,
    tcp_probe,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    format_bytes,
    parse_percent,
    parse_size_or_percent,
)

SEVERITY_RANK = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}
EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
FAIL_ON = ("never", "warning", "unknown", "critical")
DEFAULT_WARNING = 80.0
DEFAULT_CRITICAL = 90.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_PROBE_TIMEOUT = 3.0
NFS_PORT = 2049
MOUNTS_FILE = "/proc/self/mounts"
DISKSTATS_FILE = "/proc/diskstats"

TIER_KEYS = frozenset(
    [
        "name",
        "paths",
        "mounts",
        "warning",
        "critical",
        "free_warning",
        "free_critical",
        "inode_warning",
        "inode_critical",
        "vg",
        "vg_free_warning",
        "vg_free_critical",
        "snapshot_warning",
        "snapshot_critical",
        "nas_server",
        "nas_port",
        "btrfs_stats",
        "btrfs_error_severity",
    ]
)
MOUNT_KEYS = frozenset(["path", "fstype", "options", "source"])
_TIER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_BTRFS_STAT_RE = re.compile(r"^\[(?P<device>[^\]]+)\]\.(?P<counter>\w+)\s+(?P<value>-?\d+)\s*$")


class HealthError(ValueError):
    """Bad tier data or settings; the message names the tier and the key."""


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


def _given(value):
    return value is not None and value != ""


def _percent(tier, key, value, default):
    if not _given(value):
        return default
    try:
        return parse_percent(value, "tier %s: %s" % (tier, key))
    except UnitError as exc:
        raise HealthError(str(exc)) from None


def _free(tier, key, value):
    """``None`` or ``("bytes", n)`` / ``("percent", p)`` for a minimum free space."""
    if not _given(value):
        return None
    try:
        return parse_size_or_percent(value, "tier %s: %s" % (tier, key))
    except UnitError as exc:
        raise HealthError(str(exc)) from None


def _pair(tier, what, warning, critical):
    if warning is not None and critical is not None and warning > critical:
        raise HealthError(
            "tier %s: %s_warning (%s) must not be above %s_critical (%s)" % (tier, what, warning, what, critical)
            if what
            else "tier %s: warning (%s%%) must not be above critical (%s%%)" % (tier, warning, critical)
        )


def _free_pair(tier, prefix, warning, critical):
    """A minimum free: the warning level must be at least the critical one (when comparable)."""
    if warning is None or critical is None or warning[0] != critical[0]:
        return
    if warning[1] < critical[1]:
        raise HealthError(
            "tier %s: %sfree_warning (%s) must not be below %sfree_critical (%s): warning comes first"
            % (tier, prefix, warning[1], prefix, critical[1])
        )


def split_options(value, what="options"):
    """``'a,b=1'`` or ``['a', 'b=1']`` -> ``['a', 'b=1']``."""
    try:
        return _split_options(value, what)
    except ValueError as exc:
        raise HealthError(str(exc)) from exc


def _abs_path(tier, key, value):
    if not isinstance(value, str) or not value.startswith("/"):
        raise HealthError("tier %s: %s: %r is not an absolute path" % (tier, key, value))
    return os.path.normpath(value)


def build_tier(raw):
    """Validate one tier's data and return it with numeric thresholds."""
    if not isinstance(raw, dict):
        raise HealthError("each tier must be a dict, got %r" % (raw,))
    name = raw.get("name")
    if not isinstance(name, str) or not _TIER_NAME_RE.match(name):
        raise HealthError("tier name %r must be letters, digits, '.', '_' or '-'" % (name,))
    unknown = sorted(k for k, v in raw.items() if k not in TIER_KEYS and v is not None)
    if unknown:
        raise HealthError("tier %s: unknown key(s) %s" % (name, ", ".join(unknown)))
    tier = {"name": name}
    tier["warning"] = _percent(name, "warning", raw.get("warning"), DEFAULT_WARNING)
    tier["critical"] = _percent(name, "critical", raw.get("critical"), DEFAULT_CRITICAL)
    _pair(name, "", tier["warning"], tier["critical"])
    tier["inode_warning"] = _percent(name, "inode_warning", raw.get("inode_warning"), DEFAULT_WARNING)
    tier["inode_critical"] = _percent(name, "inode_critical", raw.get("inode_critical"), DEFAULT_CRITICAL)
    _pair(name, "inode", tier["inode_warning"], tier["inode_critical"])
    tier["free_warning"] = _free(name, "free_warning", raw.get("free_warning"))
    tier["free_critical"] = _free(name, "free_critical", raw.get("free_critical"))
    _free_pair(name, "", tier["free_warning"], tier["free_critical"])
    tier["snapshot_warning"] = _percent(name, "snapshot_warning", raw.get("snapshot_warning"), DEFAULT_WARNING)
    tier["snapshot_critical"] = _percent(name, "snapshot_critical", raw.get("snapshot_critical"), DEFAULT_CRITICAL)
    _pair(name, "snapshot", tier["snapshot_warning"], tier["snapshot_critical"])
    vg = raw.get("vg")
    if _given(vg) and (not isinstance(vg, str) or not re.match(r"^[a-zA-Z0-9+_.-]+$", vg)):
        raise HealthError("tier %s: vg: %r is not a volume group name" % (name, vg))
    tier["vg"] = vg if _given(vg) else None
    tier["vg_free_warning"] = _free(name, "vg_free_warning", raw.get("vg_free_warning"))
    tier["vg_free_critical"] = _free(name, "vg_free_critical", raw.get("vg_free_critical"))
    _free_pair(name, "vg_", tier["vg_free_warning"], tier["vg_free_critical"])
    server = raw.get("nas_server")
    if _given(server) and (not isinstance(server, str) or any(c.isspace() for c in server)):
        raise HealthError("tier %s: nas_server: %r is not a host name or address" % (name, server))
    tier["nas_server"] = server if _given(server) else None
    port = raw.get("nas_port")
    if not _given(port):
        port = NFS_PORT
    if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
        raise HealthError("tier %s: nas_port: %r is not a TCP port" % (name, port))
    tier["nas_port"] = int(port)
    btrfs = raw.get("btrfs_stats")
    tier["btrfs_stats"] = True if btrfs is None else parse_bool(btrfs, "tier %s: btrfs_stats" % name)
    severity = raw.get("btrfs_error_severity") or "warning"
    if severity not in ("warning", "critical"):
        raise HealthError("tier %s: btrfs_error_severity: %r is not warning or critical" % (name, severity))
    tier["btrfs_error_severity"] = severity
    mounts = []
    for index, entry in enumerate(raw.get("mounts") or []):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise HealthError("tier %s: mounts[%d] must be a path or a dict with path" % (name, index))
        extra = sorted(k for k, v in entry.items() if k not in MOUNT_KEYS and v is not None)
        if extra:
            raise HealthError("tier %s: mounts[%d]: unknown key(s) %s" % (name, index, ", ".join(extra)))
        mounts.append(
            {
                "path": _abs_path(name, "mounts[%d].path" % index, entry.get("path")),
                "fstype": entry.get("fstype") or None,
                "options": split_options(entry.get("options"), "tier %s: mounts[%d].options" % (name, index)),
                "source": entry.get("source") or None,
            }
        )
    tier["mounts"] = mounts
    paths = raw.get("paths") or []
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
        raise HealthError("tier %s: paths must be a list of absolute paths" % name)
    tier["paths"] = [_abs_path(name, "paths[%d]" % i, p) for i, p in enumerate(paths)]
    if not tier["mounts"] and not tier["paths"] and not tier["vg"] and not tier["nas_server"]:
        raise HealthError("tier %s: nothing to check (give mounts, paths, vg or nas_server)" % name)
    return tier


def parse_bool(value, what):
    """A bool from JSON or YAML-ish text (``true``, ``no``, ``1``); refuses anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise HealthError("%s: %r is not a boolean" % (what, value))


def _number(settings, key, default, minimum=0.1):
    value = settings.get(key)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HealthError("%s: %r is not a number of seconds" % (key, value)) from None
    if isinstance(value, bool) or number < minimum:
        raise HealthError("%s: %r must be at least %s seconds" % (key, value, minimum))
    return number


def build_config(settings):
    """Validate the settings (module parameters or the command's JSON config)."""
    if not isinstance(settings, dict):
        raise HealthError("the configuration must be a JSON object with a 'tiers' list")
    raw_tiers = settings.get("tiers")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise HealthError("tiers: give a non-empty list of tiers")
    tiers = [build_tier(raw) for raw in raw_tiers]
    names = [t["name"] for t in tiers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HealthError("tiers: duplicate tier name(s) %s" % ", ".join(duplicates))
    timeout = _number(settings, "timeout", DEFAULT_TIMEOUT)
    probe = _number(settings, "probe_timeout", DEFAULT_PROBE_TIMEOUT)
    fail_on = settings.get("fail_on") or "never"
    if fail_on not in FAIL_ON:
        raise HealthError("fail_on: %r is not one of %s" % (fail_on, ", ".join(FAIL_ON)))
    try:
        freshness = build_freshness(settings.get("freshness"))
    except FreshnessError as exc:
        raise HealthError(str(exc)) from None
    if freshness["checks"] and "freshness" in names:
        raise HealthError("tiers: 'freshness' names the freshness checks in alerts and reports; rename that tier")
    return {
        "tiers": tiers,
        "timeout": timeout,
        "probe_timeout": min(probe, timeout),
        "fail_on": fail_on,
        "freshness": freshness,
    }


# ----------------------------------------------------------------------------------------------
# Parsers (pure)
# ----------------------------------------------------------------------------------------------


def _unescape_mount_field(value):
    """/proc/mounts escapes space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), value)


def parse_mounts(text):
    """``{target: {"source", "fstype", "options": [...]}}``; the last mount on a target wins (stacked)."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        target = _unescape_mount_field(fields[1])
        mounts[target] = {
            "source": _unescape_mount_field(fields[0]),
            "fstype": fields[2],
            "options": fields[3].split(","),
        }
    return mounts


def mount_of(path, mounts):
    """The mount point ``path`` lies on, by the longest prefix among ``mounts`` (no syscall)."""
    path = os.path.normpath(path)
    best = None
    for target in mounts:
        inside = path == target or target == "/" or path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > len(best)):
            best = target
    return best


# Filesystems on local block devices: statvfs on them cannot block on a vanished server.
LOCAL_FSTYPES = frozenset(("ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "tmpfs"))


def is_local_mount_point(path, mounts):
    """True when ``path`` is itself a mount point of a local filesystem and no mount above it is
    anything else: its statvfs then needs no child process with a time-out (the path walk only
    crosses local filesystems). Anything else, network or unknown, goes through the time-out."""
    path = os.path.normpath(path)
    if not mounts or path not in mounts:
        return False
    for target, live in mounts.items():
        above = target == "/" or path == target or path.startswith(target.rstrip("/") + "/")
        if above and live["fstype"] not in LOCAL_FSTYPES:
            return False
    return True


def options_missing(wanted, live):
    """Options of ``wanted`` the kernel should report but ``live`` lacks (ext4's unechoed defaults too)."""
    return _options_missing(wanted, live, UNREPORTED_DEFAULTS)


def parse_btrfs_stats(text):
    """``{device: {counter: int}}`` from ``btrfs device stats`` (``[/dev/sda].write_io_errs   0``)."""
    devices = {}
    for line in text.splitlines():
        match = _BTRFS_STAT_RE.match(line.strip())
        if match:
            devices.setdefault(match.group("device"), {})[match.group("counter")] = int(match.group("value"))
    return devices


_DISKSTAT_FIELDS = (
    "reads_completed",
    "reads_merged",
    "sectors_read",
    "read_ms",
    "writes_completed",
    "writes_merged",
    "sectors_written",
    "write_ms",
    "in_flight",
    "io_ms",
    "weighted_io_ms",
)


def parse_diskstats(text):
    """``{device name: {counter: int}}`` from /proc/diskstats (the first 11 counters)."""
    stats = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14:
            continue
        try:
            values = [int(v) for v in fields[3:14]]
        except ValueError:
            continue
        stats[fields[2]] = dict(zip(_DISKSTAT_FIELDS, values))
    return stats


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


def worst(statuses):
    best = "ok"
    for status in statuses:
        if SEVERITY_RANK[status] > SEVERITY_RANK[best]:
            best = status
    return best


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


# ----------------------------------------------------------------------------------------------
# Collection (system calls, time-limited)
# ----------------------------------------------------------------------------------------------


class Deadline:
    """What is left of the run's time-out; each probe gets ``min(probe, left)``."""

    def __init__(self, timeout, probe_timeout, clock=time.monotonic):
        self.clock = clock
        self.end = clock() + timeout
        self.probe_timeout = probe_timeout

    def left(self):
        return self.end - self.clock()

    def budget(self):
        return min(self.probe_timeout, self.left())


class HealthChecker:
    """Runs the checks of ``config`` (from ``build_config``) and returns the full result.

    ``runner(argv, timeout)`` returns ``(rc, stdout, stderr)`` or raises ProbeTimeout;
    ``which(name)`` returns a tool's path or None. Both are injected: the module uses
    ``module.run_command``, the command ``subprocess``.
    """

    def __init__(
        self,
        config,
        runner,
        which,
        read_file=None,
        statvfs=None,
        probe=None,
        clock=time.monotonic,
        call=None,
        now=time.time,
    ):
        self.config = config
        self.runner = runner
        self.which = which
        self.read_file = read_file or _read_text
        self.statvfs = statvfs or statvfs_with_timeout
        # Injected statvfs (tests) replaces both; by default local mount points are read directly.
        self.local_statvfs = None if statvfs else statvfs_in_process
        self.probe = probe or tcp_probe
        self.clock = clock
        self.deadline = Deadline(config["timeout"], config["probe_timeout"], clock)
        self.stalled = {}  # mount point -> reason: later paths on it are not probed again
        self.call = call or call_with_timeout  # the freshness scans: a forked child with a time-out
        self.now = now

    def _run(self, argv):
        budget = self.deadline.budget()
        if budget <= 0:
            raise ProbeTimeout("the run's time-out of %gs was used up" % self.config["timeout"])
        return self.runner(argv, budget)

    def run(self):
        started = self.clock()
        wall = self.now()
        try:
            mounts = parse_mounts(self.read_file(MOUNTS_FILE))
        except OSError as exc:
            mounts = None
            mount_error = "cannot read %s: %s" % (MOUNTS_FILE, exc.strerror or exc)
        else:
            mount_error = None
        try:
            diskstats = parse_diskstats(self.read_file(DISKSTATS_FILE))
        except OSError:
            diskstats = {}
        alerts = []
        if mount_error:
            alerts.append(alert("unknown", "-", MOUNTS_FILE, mount_error))
        tiers = {}
        # NAS probes first: a NAS that does not answer means its mounts are not touched at all.
        nas = {}
        for tier in self.config["tiers"]:
            if tier["nas_server"]:
                nas[tier["name"]] = self.check_nas(tier)
        for tier in self.config["tiers"]:
            result, tier_alerts = self.check_tier(tier, mounts, diskstats, nas.get(tier["name"]))
            if tier["nas_server"] and not nas[tier["name"]]["up"]:
                tier_alerts.insert(
                    0,
                    alert(
                        "critical",
                        tier["name"],
                        "%s:%d" % (tier["nas_server"], tier["nas_port"]),
                        "NAS unreachable: %s" % nas[tier["name"]]["message"],
                    ),
                )
            result["status"] = worst(a["severity"] for a in tier_alerts)
            result["alerts"] = len(tier_alerts)
            tiers[tier["name"]] = result
            alerts.extend(tier_alerts)
        freshness = self.check_freshness(mounts, nas)
        alerts.extend(freshness.pop("alerts"))
        status, counts = summarise(alerts)
        return {
            "status": status,
            "exit_code": EXIT_CODES[status],
            "alerts": alerts,
            "alert_counts": counts,
            "tiers": tiers,
            "tier_order": [t["name"] for t in self.config["tiers"]],
            "thresholds": {
                t["name"]: {
                    "warning": t["warning"],
                    "critical": t["critical"],
                    "inode_warning": t["inode_warning"],
                    "inode_critical": t["inode_critical"],
                    "snapshot_warning": t["snapshot_warning"],
                    "snapshot_critical": t["snapshot_critical"],
                }
                for t in self.config["tiers"]
            },
            "freshness": freshness,
            "checked_at": int(wall),
            "duration_seconds": round(self.clock() - started, 3),
        }

    # -- freshness ---------------------------------------------------------------------------

    def check_freshness(self, mounts, nas):
        """Ages of the newest backups, NAS snapshots and successful run (``_freshness``).

        The NAS is probed once: a tier with the same server and port already did it, otherwise
        here; when it does not answer, no check on the NAS touches its mount.
        """
        config = self.config["freshness"]
        result = {"status": "ok", "checks": [], "nas": None, "alerts": []}
        if not config["checks"]:
            return result
        nas_up = None
        if config["nas_server"] and any(c["kind"] in ON_NAS for c in config["checks"]):
            probed = None
            for tier in self.config["tiers"]:
                same = (tier["nas_server"], tier["nas_port"]) == (config["nas_server"], config["nas_port"])
                if same and tier["name"] in nas:
                    probed = nas[tier["name"]]
                    break
            if probed is None:
                probed = self.check_nas({"nas_server": config["nas_server"], "nas_port": config["nas_port"]})
            result["nas"] = probed
            nas_up = (probed["up"], probed["message"])
        entries, alerts = check_freshness(
            config, self.call, self.deadline.budget, self.now(), mounts, nas_up, self.stalled
        )
        result.update(status=worst(a["severity"] for a in alerts), checks=entries, alerts=alerts)
        return result

    # -- NAS ---------------------------------------------------------------------------------

    def check_nas(self, tier):
        budget = self.deadline.budget()
        if budget <= 0:
            return {
                "server": tier["nas_server"],
                "port": tier["nas_port"],
                "up": False,
                "message": "not probed: time-out used up",
            }
        up, message = self.probe(tier["nas_server"], tier["nas_port"], budget)
        return {"server": tier["nas_server"], "port": tier["nas_port"], "up": bool(up), "message": message or ""}

    # -- one tier ----------------------------------------------------------------------------

    def check_tier(self, tier, mounts, diskstats, nas):
        name = tier["name"]
        alerts = []
        result = {"name": name, "mounts": [], "paths": [], "lvm": None, "nas": nas, "btrfs": [], "io": {}}
        nas_down = nas is not None and not nas["up"]
        for expected in tier["mounts"]:
            if mounts is None:  # the mount table could not be read: that is already an alert
                continue
            mount_result, mount_alerts = evaluate_mount(tier, expected, mounts.get(expected["path"]))
            result["mounts"].append(mount_result)
            alerts.extend(mount_alerts)
        unmounted = {m["path"] for m in result["mounts"] if not m["mounted"]}
        for path in [m["path"] for m in tier["mounts"]] + tier["paths"]:
            if path in unmounted:
                continue  # already critical; its statvfs would measure the filesystem below
            entry, path_alerts = self.check_path(tier, path, mounts, nas_down)
            if entry is not None:
                if entry.get("source") and diskstats:
                    io = _io_for(entry["source"], diskstats)
                    if io is not None:
                        result["io"][entry["mount"]] = io
                result["paths"].append(entry)
            alerts.extend(path_alerts)
        if tier["vg"]:
            lvm, lvm_alerts = self.check_vg(tier)
            result["lvm"] = lvm
            alerts.extend(lvm_alerts)
        if tier["btrfs_stats"]:
            seen = set()
            for entry in result["paths"]:
                if entry.get("fstype") == "btrfs" and entry["mount"] not in seen and entry["status"] != "unknown":
                    seen.add(entry["mount"])
                    stats, btrfs_alerts = self.check_btrfs(tier, entry["mount"])
                    result["btrfs"].append(stats)
                    alerts.extend(btrfs_alerts)
        return result, alerts

    def check_path(self, tier, path, mounts, nas_down):
        name = tier["name"]
        mount = mount_of(path, mounts) if mounts else None
        live = mounts.get(mount) if mount else None
        entry = {
            "path": path,
            "mount": mount,
            "fstype": live["fstype"] if live else None,
            "source": live["source"] if live else None,
            "status": "ok",
        }
        if mount in self.stalled:
            entry["status"] = "unknown"
            entry["error"] = self.stalled[mount]
            return entry, [alert("unknown", name, path, "not checked: %s" % self.stalled[mount])]
        if nas_down and live and live["fstype"].startswith("nfs"):
            reason = "not checked: the NAS does not answer and %s is an NFS mount (it would hang)" % mount
            entry["status"] = "unknown"
            entry["error"] = reason
            return entry, [alert("unknown", name, path, reason)]
        budget = self.deadline.budget()
        if budget <= 0:
            entry["status"] = "unknown"
            entry["error"] = "not checked: the run's time-out of %gs was used up" % self.config["timeout"]
            return entry, [alert("unknown", name, path, entry["error"])]
        try:
            if self.local_statvfs is not None and is_local_mount_point(path, mounts):
                st = self.local_statvfs(path)  # local mount point: cannot hang, no fork needed
            else:
                st = self.statvfs(path, budget)
        except ProbeTimeout:
            reason = "%s did not answer within %.1fs (stalled mount?)" % (mount or path, budget)
            if mount:
                self.stalled[mount] = reason
            entry["status"] = "unknown"
            entry["error"] = reason
            return entry, [alert("unknown", name, path, reason)]
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                entry["status"] = "critical"
                entry["error"] = "does not exist"
                return entry, [alert("critical", name, path, "does not exist")]
            entry["status"] = "unknown"
            entry["error"] = "cannot be read: %s" % (exc.strerror or exc)
            return entry, [alert("unknown", name, path, entry["error"])]
        except RuntimeError as exc:
            entry["status"] = "unknown"
            entry["error"] = "probe failed: %s" % exc
            return entry, [alert("unknown", name, path, entry["error"])]
        entry.update(usage_from_statvfs(st))
        path_alerts = evaluate_usage(tier, path, entry)
        entry["status"] = worst(a["severity"] for a in path_alerts)
        return entry, path_alerts

    def check_vg(self, tier):
        vg = tier["vg"]
        name = tier["name"]
        lvs = self.which("lvs")
        vgs = self.which("vgs")
        if not lvs or not vgs:
            return {"vg": vg, "error": "lvm2 tools not found"}, [
                alert("unknown", name, "/dev/%s" % vg, "cannot check VG %s: lvs/vgs not found (lvm2)" % vg)
            ]
        # One lvs call gives the LVs and, on each row, the VG's size and free space: one LVM
        # start-up less (a few hundred ms on a slow host). vgs only when the VG has no LV.
        try:
            rc, out, err = self._run(
                [
                    lvs,
                    "--reportformat",
                    "json",
                    "--units",
                    "b",
                    "--nosuffix",
                    "--config",
                    LVM_TIME_CONFIG,
                    "-o",
                    ",".join((*LV_FIELDS, "vg_size", "vg_free")),
                    vg,
                ]
            )
            if rc != 0:
                raise SnapshotError("lvs failed (rc %d): %s" % (rc, (err or out).strip()))
            lv_rows = parse_report(out, "lv")
            if lv_rows and _given(lv_rows[0].get("vg_size")):
                rows = [{"vg_name": vg, "vg_size": lv_rows[0]["vg_size"], "vg_free": lv_rows[0].get("vg_free")}]
            else:
                rc, out, err = self._run(
                    [vgs, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", ",".join(VG_FIELDS), vg]
                )
                if rc != 0:
                    raise SnapshotError("vgs failed (rc %d): %s" % (rc, (err or out).strip()))
                rows = [r for r in parse_report(out, "vg") if r.get("vg_name") == vg]
                if not rows:
                    raise SnapshotError("VG %s not found" % vg)
        except ProbeTimeout as exc:
            return {"vg": vg, "error": str(exc)}, [
                alert("unknown", name, "/dev/%s" % vg, "LVM report of VG %s did not finish: %s" % (vg, exc))
            ]
        except SnapshotError as exc:
            severity = "critical" if "not found" in exc.msg else "unknown"
            return {"vg": vg, "error": exc.msg}, [
                alert(severity, name, "/dev/%s" % vg, "cannot check VG %s: %s" % (vg, exc.msg))
            ]
        return evaluate_vg(tier, rows[0], lv_rows)

    def check_btrfs(self, tier, mount):
        btrfs = self.which("btrfs")
        if not btrfs:
            return {"mount": mount, "error": "btrfs not found"}, [
                alert("unknown", tier["name"], mount, "cannot read btrfs error counters: btrfs (btrfs-progs) not found")
            ]
        try:
            rc, out, err = self._run([btrfs, "device", "stats", mount])
        except ProbeTimeout as exc:
            return {"mount": mount, "error": str(exc)}, [
                alert("unknown", tier["name"], mount, "btrfs device stats did not finish: %s" % exc)
            ]
        devices = parse_btrfs_stats(out)
        # rc 64 with -c when errors are found; without -c rc is 0 and the counters tell
        if rc != 0 and not devices:
            message = "btrfs device stats failed (rc %d): %s" % (rc, (err or out).strip())
            return {"mount": mount, "error": message}, [alert("unknown", tier["name"], mount, message)]
        return {"mount": mount, "devices": devices}, evaluate_btrfs(tier, mount, devices)


def _read_text(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _io_for(source, diskstats):
    """Disk counters of a mount's source device (``/dev/mapper/x`` resolved to ``dm-N``)."""
    if not source.startswith("/dev/"):
        return None
    try:
        real = os.path.realpath(source)  # /dev is local: no NFS stall here
    except OSError:
        return None
    name = os.path.basename(real)
    stats = diskstats.get(name)
    if stats is None:
        return None
    io = dict(stats)
    io["device"] = name
    io["read_bytes"] = stats["sectors_read"] * 512
    io["written_bytes"] = stats["sectors_written"] * 512
    return io


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
        report_lines(freshness.get("checks") or [], by_tier.get("freshness", []), freshness.get("status", "ok"))
    )
    return "\n".join(lines)
