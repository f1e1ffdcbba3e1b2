# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LVM commands of the lvm_snapshot modules: reports, lvcreate, lvremove, hooks.

Standard library only, Python 3.8. ``LvmCommands`` runs every tool through
``module.run_command`` with argument lists in the C locale; the reports are built by ``_lvm``.
The states (``_lvm_snapshot_create``, ``_lvm_snapshot_remove``, ``_lvm_snapshot_merge``) decide
with the planners and act through it; ``_lvm_snapshot.SnapshotManager`` is this class with them.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    LVM_ENVIRON,
    SnapshotError,
    command_error,
    lvs_argv,
    parse_report,
    read_report,
    vgs_argv,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_plan import vg_row


class LvmCommands:
    """Runs LVM through ``module.run_command`` (argument lists, ``LC_ALL=C``)."""

    def __init__(self, module, now, popen=None):
        self.module = module
        self.popen = popen  # subprocess.Popen for psql and the freeze watchdog (unit tests replace it)
        self.now = now
        self.check_mode = module.check_mode
        self._bins = {}

    def _bin(self, name):
        if name not in self._bins:
            self._bins[name] = self.module.get_bin_path(name, required=True)
        return self._bins[name]

    def run(self, cmd):
        return self.module.run_command(cmd, environ_update=dict(LVM_ENVIRON))

    def _checked(self, cmd, what, **details):
        rc, out, err = self.run(cmd)
        if rc != 0:
            raise command_error(what, cmd, rc, out, err, **details)
        return out

    # -- reports -------------------------------------------------------------------------------

    def vg_info(self, vg):
        cmd = vgs_argv(self._bin("vgs"), vg)
        rc, out, err = self.run(cmd)
        if rc != 0:
            if "not found" in (err or "") or "not found" in (out or ""):
                raise SnapshotError("VG %s not found" % vg, vg=vg, rc=rc, stderr=err, cmd=cmd)
            raise SnapshotError(
                "vgs for VG %s failed (rc %d): %s" % (vg, rc, (err or out).strip()), vg=vg, rc=rc, stderr=err, cmd=cmd
            )
        return vg_row(parse_report(out, "vg"), vg)

    def lv_rows(self, vg):
        return read_report(self.run, lvs_argv(self._bin("lvs"), vg), "lv", "lvs for VG %s" % vg, vg=vg)

    # -- hooks ---------------------------------------------------------------------------------

    def run_hook(self, which, argv, timeout):
        """Run a hook with a time-out (coreutils ``timeout``); raise SnapshotError when it fails."""
        cmd = [self._bin("timeout"), "--kill-after=10", str(timeout), *argv]
        rc, out, err = self.run(cmd)
        record = {"cmd": list(argv), "rc": rc, "stdout": out, "stderr": err}
        if rc in (124, 137):
            raise SnapshotError(
                "%s %s did not finish within %ds and was stopped" % (which, argv[0], timeout), hook=record
            )
        if rc != 0:
            raise SnapshotError("%s %s failed (rc %d): %s" % (which, argv[0], rc, (err or out).strip()), hook=record)
        return record

    # -- changes -------------------------------------------------------------------------------

    def create(self, vg, item):
        """lvcreate one snapshot; return a SnapshotError on failure, None on success."""
        cmd = [
            self._bin("lvcreate"),
            "--snapshot",
            "--name",
            item["name"],
            "--extents",
            str(item["extents"]),
            "%s/%s" % (vg, item["origin"]),
        ]
        rc, out, err = self.run(cmd)
        if rc != 0:
            return command_error(
                "lvcreate of %s/%s (snapshot of %s)" % (vg, item["name"], item["origin"]), cmd, rc, out, err
            )
        return None

    def exists(self, vg, name):
        """Whether the LV ``vg/name`` exists (a failed lvcreate can leave its LV behind)."""
        rc, _out, _err = self.run([self._bin("lvs"), "--noheadings", "--options", "lv_name", "%s/%s" % (vg, name)])
        return rc == 0

    def remove_all(self, vg, items):
        """lvremove each item; return (removed, left) and never raise."""
        removed, left = [], []
        for item in items:
            rc, out, err = self.run([self._bin("lvremove"), "--force", "%s/%s" % (vg, item["name"])])
            if rc == 0:
                removed.append(item)
            else:
                failed = dict(item, error=(err or out).strip(), rc=rc)
                left.append(failed)
        return removed, left

    def holder(self, group):
        """The object that brings ``group`` to a consistent state and releases it."""
        if group["method"] == "postgresql":
            psql = group.get("psql") or self._bin("psql")
            return _consistency.PgHolder(group, psql, popen=self.popen)
        return _consistency.FreezeHolder(group, self.run, self._bin("fsfreeze"), popen=self.popen)
