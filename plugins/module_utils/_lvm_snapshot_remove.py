# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing snapshots (lvm_snapshot state=pruned and state=absent) and finding named ones.

Standard library only, Python 3.8. Retention removes what ``_lvm_snapshot_plan.plan_prune``
decides; ``absent`` removes snapshots named by the user, but only this collection's
(``named``, also used by the merge). Used by ``_lvm_snapshot.SnapshotManager``.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import SnapshotError, is_snapshot
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_names import owned, validate_lv_name
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_plan import plan_prune
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_rows import snapshot_info


def origin_scope(origins):
    """The set of origin LV names of the ``origins`` option; None (every origin) when empty."""
    return None if not origins else set(entry["lv"] for entry in origins)


def named(vg, names, prefix, rows):
    """The rows of ``names`` (each must be a snapshot of this collection), the missing names, rows by name."""
    by_name = dict((row.get("lv_name"), row) for row in rows)
    found, missing = [], []
    for name in names:
        validate_lv_name(name, "names")
        row = by_name.get(name)
        if row is None:
            missing.append(name)
            continue
        if not is_snapshot(row):
            raise SnapshotError("LV %s/%s is not a snapshot: refused" % (vg, name), vg=vg, lv=name)
        if not owned(row, prefix):
            raise SnapshotError(
                "LV %s/%s is not a snapshot of this collection (prefix %r, origin %s): refused"
                % (vg, name, prefix, row.get("origin")),
                vg=vg,
                lv=name,
            )
        found.append(row)
    return found, missing, by_name


def _remove(cmds, vg, items, result):
    """lvremove ``items`` into ``result``; SnapshotError naming each one left behind."""
    removed, left = cmds.remove_all(vg, items)
    result["removed"] = removed
    result["changed"] = bool(removed)
    if left:
        raise SnapshotError(
            "could not remove %s" % "; ".join("%s/%s (rc %d): %s" % (vg, x["name"], x["rc"], x["error"]) for x in left),
            not_removed=left,
            **result,
        )
    return result


def prune_set(cmds, vg, origins, prefix, keep, max_age):
    """state=pruned: retention over this collection's snapshots of ``origins`` (every origin when empty)."""
    cmds.vg_info(vg)
    rows = cmds.lv_rows(vg)
    remove, kept, findings, foreign = plan_prune(vg, rows, prefix, origin_scope(origins), keep, max_age, cmds.now)
    result = {"vg": vg, "kept": kept, "findings": findings, "foreign_skipped": foreign, "changed": bool(remove)}
    if cmds.check_mode:
        result["removed"] = remove
        result["msg"] = "would remove %d snapshot(s) in VG %s" % (len(remove), vg)
        return result
    _remove(cmds, vg, remove, result)
    result["msg"] = "removed %d snapshot(s) in VG %s" % (len(result["removed"]), vg)
    return result


def remove_named(cmds, vg, names, prefix):
    """state=absent: remove the named snapshots of this collection; names not found are reported."""
    cmds.vg_info(vg)
    found, missing, _ = named(vg, names, prefix, cmds.lv_rows(vg))
    items = [snapshot_info(row, now=cmds.now) for row in found]
    result = {"vg": vg, "changed": bool(items), "not_found": missing}
    if cmds.check_mode:
        result["removed"] = items
        return result
    return _remove(cmds, vg, items, result)
