# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of one tier that look at the filesystem: its mounts, each path's ``statvfs`` (in a
forked child with a time-out unless a local mount point), its disk counters, and the NAS probe.

``TierChecks`` is a part of ``_health.HealthChecker`` (which gives it ``config``, ``deadline``,
``statvfs``, ``local_statvfs``, ``probe`` and ``stalled``): a stalled mount is remembered, and no
later path on it is probed again.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._health_parse import is_local_mount_point, mount_of
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_verdicts import (
    alert,
    evaluate_mount,
    evaluate_usage,
    usage_from_statvfs,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import worst
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout


class TierChecks:
    """check_tier, check_path and check_nas of ``HealthChecker``."""

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
