"""The one stand-in for the LVM command-line tools in the unit tests (importable from every test
below tests/unit: pytest puts this directory, the one of its conftest.py, on sys.path).

``report`` and ``vg_not_found`` are what ``lvs``/``vgs``/``pvs`` print (LVM 2.03, Debian 12):
JSON reports in the exact shape ``--reportformat json --units b --nosuffix`` gives, every value a
string, and the error of a missing VG. ``FakeLvm`` answers the lvm_snapshot modules from the
fixtures under plugins/modules/fixtures/lvm_snapshot/, records changes and fails on demand.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

FIXTURES = Path(__file__).parent / "plugins" / "modules" / "fixtures" / "lvm_snapshot"
NOW = datetime.datetime(2026, 11, 23, 2, 30, 0, tzinfo=datetime.timezone.utc).timestamp()
STAMP = "20261123T023000Z"


def report(kind, rows):
    """``(0, stdout, "")`` of an LVM JSON report of ``kind`` ("lv", "vg" or "pv") with these rows."""
    return 0, json.dumps({"report": [{kind: list(rows)}]}), ""


def vg_not_found(vg):
    """``(rc, stdout, stderr)`` of vgs or lvs asked for a VG that does not exist."""
    return 5, "", '  Volume group "%s" not found\n  Cannot process volume group %s\n' % (vg, vg)


VG_NOT_FOUND = vg_not_found("vg_nope")
# One snapshot row of ``lvs`` (every value a string), for the pure functions' tests.
SNAPSHOT_ROW = {
    "lv_name": "jts_snap_postgres_20261122T013000Z",
    "vg_name": "vg_jts",
    "lv_attr": "swi-a-s---",
    "lv_size": "5368709120",
    "origin": "postgres",
    "origin_size": "858993459200",
    "data_percent": "0.52",
    "lv_time": "2026-11-22 01:30:00 +0000",
    "lv_snapshot_invalid": "",
}


def fixture(name):
    return (FIXTURES / name).read_text()


class FakeLvm:
    """A stand-in for the LVM tools: answers vgs/lvs from fixtures, records changes, fails on demand."""

    def __init__(self, vgs="vgs_vg_jts.json", lvs="lvs_vg_jts.json", fail=None, hook=None, merge_out="", left=()):
        self.vgs = vgs
        self.lvs = lvs
        self.left = set(left)  # vg/name an lvcreate that failed left behind (lvs of it finds it)
        self.fail = fail or {}  # (tool, target) -> (rc, out, err)
        self.hook = hook or {}  # first hook argv element -> (rc, out, err)
        self.merge_out = merge_out
        self.calls = []

    def __call__(self, cmd, **kw):
        assert kw.get("environ_update", {}).get("LC_ALL") == "C", "LVM must run with LC_ALL=C"
        tool = os.path.basename(cmd[0])
        self.calls.append((tool, cmd))
        if tool == "vgs":
            return self.vgs if isinstance(self.vgs, tuple) else (0, fixture(self.vgs), "")
        if tool == "lvs" and "/" in cmd[-1]:  # one LV by name: does it exist?
            if cmd[-1] in self.left:
                return 0, "  %s\n" % cmd[-1].split("/")[1], ""
            return 5, "", '  Failed to find logical volume "%s"\n' % cmd[-1]
        if tool == "lvs":
            return self.lvs if isinstance(self.lvs, tuple) else (0, fixture(self.lvs), "")
        if tool == "timeout":
            return self.hook.get(cmd[3], (0, "hook ok\n", ""))
        target = cmd[-1]
        if (tool, target) in self.fail:
            return self.fail[(tool, target)]
        if tool == "lvcreate":
            return 0, '  Logical volume "%s" created.\n' % cmd[cmd.index("--name") + 1], ""
        if tool == "lvremove":
            return 0, '  Logical volume "%s" successfully removed.\n' % target.split("/")[1], ""
        if tool == "lvconvert":
            return 0, self.merge_out, ""
        raise AssertionError("unexpected command %s" % cmd)

    def issued(self, tool):
        return [cmd for name, cmd in self.calls if name == tool]
