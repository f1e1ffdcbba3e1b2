# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of one tier that run a tool: the LVM report of its volume group (``lvs``, ``vgs``) and
``btrfs device stats``, each through the checker's runner within the run's time-out.

``ToolChecks`` is a part of ``_health.HealthChecker`` (which gives it ``which`` and ``_run``).
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._health_parse import parse_btrfs_stats
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import _given
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_verdicts import (
    alert,
    evaluate_btrfs,
    evaluate_vg,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    LV_FIELDS,
    LvmError,
    lvs_argv,
    read_report,
    vgs_argv,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout


class ToolChecks:
    """check_vg and check_btrfs of ``HealthChecker``."""

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
            lv_rows = read_report(self._run, lvs_argv(lvs, vg, (*LV_FIELDS, "vg_size", "vg_free")), "lv", "lvs")
            if lv_rows and _given(lv_rows[0].get("vg_size")):
                rows = [{"vg_name": vg, "vg_size": lv_rows[0]["vg_size"], "vg_free": lv_rows[0].get("vg_free")}]
            else:
                rows = [r for r in read_report(self._run, vgs_argv(vgs, vg), "vg", "vgs") if r.get("vg_name") == vg]
                if not rows:
                    raise LvmError("VG %s not found" % vg)
        except ProbeTimeout as exc:
            return {"vg": vg, "error": str(exc)}, [
                alert("unknown", name, "/dev/%s" % vg, "LVM report of VG %s did not finish: %s" % (vg, exc))
            ]
        except LvmError as exc:
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
