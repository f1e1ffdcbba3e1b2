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

The pieces, one idea each: ``_health_tiers`` (the input: tier options, settings, defaults),
``_health_parse`` (mount table, btrfs stats, diskstats), ``_health_verdicts`` (numbers to alerts),
``_health_tier_checks`` (mounts, paths, NAS), ``_health_tools`` (LVM, btrfs), ``_health_report``
(the human report, the Nagios status line and perfdata), ``_health_sinks`` (where a result goes).
This file keeps the run (``HealthChecker``) and the names its users import from here.

Severities: ``ok`` < ``warning`` < ``unknown`` < ``critical``. A path that could not be looked at
(stalled mount, time-out, a tool that failed) is ``unknown``; the overall status is the worst one.
"""

from __future__ import annotations

import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import ON_NAS
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness_check import check_freshness
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_parse import (  # noqa: F401 - names the tests import from here
    DISKSTATS_FILE,
    MOUNTS_FILE,
    is_local_mount_point,
    parse_btrfs_stats,
    parse_diskstats,
    parse_mounts,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_report import (
    perfdata,
    render_report,
    status_line,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tier_checks import TierChecks
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import (  # noqa: F401 - names the tests, the module and the command import from here
    EXIT_CODES,
    FAIL_ON,
    SEVERITY_RANK,
    TIER_KEYS,
    HealthError,
    build_config,
    build_tier,
    parse_bool,
    split_options,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tools import ToolChecks
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_verdicts import (  # noqa: F401 - names the tests import from here
    alert,
    evaluate_btrfs,
    evaluate_mount,
    evaluate_usage,
    evaluate_vg,
    options_missing,
    should_fail,
    summarise,
    usage_from_statvfs,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import worst
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    call_with_timeout,
    statvfs_in_process,
    statvfs_with_timeout,
    tcp_probe,
)


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


class HealthChecker(TierChecks, ToolChecks):
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


def _read_text(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def check_and_report(config, runner, which, host, service=None, **checker_args):
    """Run the checks of ``config`` and add what is said of them: ``host``, ``report``,
    ``perfdata`` and ``status_line`` (the module and ``jts-storage-check`` both); ``service``
    names the status line's service (``STORAGE`` when not given)."""
    result = HealthChecker(config, runner, which, **checker_args).run()
    if service:
        result["service"] = service
    result["host"] = host
    result["report"] = render_report(result, host)
    result["perfdata"] = perfdata(result)
    result["status_line"] = status_line(result)
    return result
