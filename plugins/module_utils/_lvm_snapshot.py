# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM snapshot sets: ``SnapshotManager``, the one object the lvm_snapshot modules drive.

Standard library only, importable on Python 3.8. The family, one idea a file:

* ``_lvm``: LVM's reports (argument lists, JSON parsing, row predicates), shared with storage_health;
* ``_lvm_snapshot_names``: valid names, the set's name shape, ownership, the origins option;
* ``_lvm_snapshot_rows``: one snapshot as the modules return it;
* ``_lvm_snapshot_plan``: pure planners (the set, retention);
* ``_lvm_snapshot_commands``: ``LvmCommands``, the tools run through ``module.run_command``;
* ``_lvm_snapshot_create``, ``_lvm_snapshot_remove``, ``_lvm_snapshot_merge``: the states.

Used by the lvm_snapshot and lvm_snapshot_info modules: ``run_state`` and ``list_snapshots`` are
their main() after the argument_spec (the cross-field rules, then the state).
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _errors
from ansible_collections.jts.tiered_storage.plugins.module_utils._consistency import (
    ConsistencyError,
    parse_consistency,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import SnapshotError, is_snapshot
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_commands import LvmCommands
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_create import create_set
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_merge import merge_set
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_names import (
    parse_max_age,
    parse_origins,
    validate_lv_name,
    validate_prefix,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_remove import (
    origin_scope,
    prune_set,
    remove_named,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_rows import finding, snapshot_info


class SnapshotManager(LvmCommands):
    """The states of lvm_snapshot (and the listing of lvm_snapshot_info) over ``LvmCommands``."""

    def present(self, vg, origins, prefix, pre_hook, post_hook, hook_timeout, consistency=()):
        return create_set(self, vg, origins, prefix, pre_hook, post_hook, hook_timeout, consistency=consistency)

    def pruned(self, vg, origins, prefix, keep, max_age):
        return prune_set(self, vg, origins, prefix, keep, max_age)

    def absent(self, vg, names, prefix):
        return remove_named(self, vg, names, prefix)

    def merged(self, vg, names, prefix):
        return merge_set(self, vg, names, prefix)

    def listed(self, vg, origins, prefix):
        self.vg_info(vg)
        scope = origin_scope(origins)
        snaps = []
        for row in self.lv_rows(vg):
            if not is_snapshot(row) or (scope is not None and row.get("origin") not in scope):
                continue
            snaps.append(snapshot_info(row, prefix=prefix, now=self.now))
        snaps.sort(key=lambda s: (s["origin"] or "", s["created_epoch"] or 0, s["name"]))
        findings = [
            finding(
                "critical",
                vg,
                s["name"],
                s["origin"],
                "snapshot %s/%s of %s is invalid (filled up)" % (vg, s["name"], s["origin"]),
            )
            for s in snaps
            if not s["valid"]
        ]
        return {"vg": vg, "changed": False, "snapshots": snaps, "findings": findings}


def run_state(manager, params):
    """lvm_snapshot: check the cross-field rules, then run the state; the result or SnapshotError."""
    state = params["state"]
    vg = params["vg"]
    validate_lv_name(vg, "vg")
    validate_prefix(params["prefix"])
    origins = parse_origins(params["origins"], need_size=state == "present")
    if params["keep"] is not None and params["keep"] < 0:
        raise SnapshotError("keep: %d must be 0 or more" % params["keep"])
    if params["hook_timeout"] <= 0:
        raise SnapshotError("hook_timeout: %d must be more than zero" % params["hook_timeout"])
    max_age = parse_max_age(params["max_age"])
    if state == "present":
        if not origins:
            raise SnapshotError("origins must list at least one LV with state=present (VG %s)" % vg)
        try:
            groups = parse_consistency(params["consistency"], [entry["lv"] for entry in origins])
        except ConsistencyError as exc:
            raise SnapshotError(str(exc)) from None
        return manager.present(
            vg,
            origins,
            params["prefix"],
            params["pre_hook"],
            params["post_hook"],
            params["hook_timeout"],
            consistency=groups,
        )
    if params["consistency"]:
        raise SnapshotError("consistency is only used with state=present")
    if state == "pruned":
        return manager.pruned(vg, origins, params["prefix"], params["keep"], max_age)
    if state in ("absent", "merged"):
        if not params["names"]:
            raise SnapshotError("names must list at least one snapshot with state=%s (VG %s)" % (state, vg))
        if state == "absent":
            return manager.absent(vg, params["names"], params["prefix"])
        return manager.merged(vg, params["names"], params["prefix"])
    raise SnapshotError("state: unknown value %r" % state)  # pragma: no cover - choices guard it


def list_snapshots(manager, params):
    """lvm_snapshot_info: check the names, then list the snapshots of the VG."""
    validate_lv_name(params["vg"], "vg")
    validate_prefix(params["prefix"])
    for origin in params["origins"]:
        validate_lv_name(origin, "origins")
    origins = [{"lv": origin} for origin in params["origins"]]
    return manager.listed(params["vg"], origins, params["prefix"])


def diff_of(result):
    """The task's diff: snapshots removed (before) and created (after), one name a line."""
    added = [item["name"] for item in result.get("created") or []]
    gone = [item["name"] for item in result.get("removed") or []]
    return {
        "before": "".join(name + "\n" for name in gone),
        "after": "".join(name + "\n" for name in added),
    }


def fail(module, exc):
    """Fail the task for a SnapshotError: its message and details, ``vg`` from the task unless it names one."""
    _errors.fail(module, exc, vg=exc.details.get("vg", module.params["vg"]))


def run_task(module, manager, action):
    """The body of both modules' main(): ``action(manager, params)``, its findings as warnings.

    Returns the result; a SnapshotError fails the task (``fail``).
    """
    try:
        result = action(manager, module.params)
    except SnapshotError as exc:
        fail(module, exc)
    for item in result.get("findings") or []:
        module.warn(item["message"])
    return result
