# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merging snapshots back into their origins (lvm_snapshot state=merged).

Standard library only, Python 3.8. Only this collection's valid snapshots, one per origin, are
merged with ``lvconvert --merge``; when the origin is open the merge waits for its next
activation and the result says so (``merge_deferred``). Used by ``_lvm_snapshot.SnapshotManager``.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    SnapshotError,
    is_invalid,
    is_merging,
    is_open,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_remove import named

# The tail of what lvconvert --merge prints when the origin is open and the merge must wait.
_DEFERRED_MARKERS = ("next activation", "Delaying merge", "origin is open")


def merge_deferred(output, origin_row):
    """True when lvconvert said the merge waits for the next activation (the origin is open)."""
    if any(marker in output for marker in _DEFERRED_MARKERS):
        return True
    return origin_row is not None and is_open(origin_row)


def merge_message(vg, row, deferred, check_mode):
    origin = "%s/%s" % (vg, row.get("origin"))
    snap = "%s/%s" % (vg, row["lv_name"])
    verb = "would merge" if check_mode else "merging"
    if deferred:
        return (
            "%s %s into %s: %s is open (mounted or in use), so the merge completes only at the next activation "
            "of %s (unmount it and run lvchange -an then -ay %s, or reboot)"
            % (verb, snap, origin, origin, origin, origin)
        )
    if check_mode:
        return "would merge %s into %s now (the origin is not open)" % (snap, origin)
    return "merged %s into %s: done, the snapshot is gone" % (snap, origin)


def _check_mergeable(vg, found):
    """Refuse an invalid snapshot, or two snapshots of one origin."""
    origins = {}
    for row in found:
        if is_invalid(row):
            raise SnapshotError(
                "snapshot %s/%s is invalid (it filled up): it cannot be merged" % (vg, row["lv_name"]),
                vg=vg,
                lv=row["lv_name"],
            )
        if row.get("origin") in origins:
            raise SnapshotError(
                "snapshots %s and %s both belong to %s/%s: only one can be merged"
                % (origins[row["origin"]], row["lv_name"], vg, row["origin"]),
                vg=vg,
                lv=row["origin"],
            )
        origins[row.get("origin")] = row["lv_name"]


def _merge_one(cmds, vg, row, origin_row):
    entry = {
        "name": row["lv_name"],
        "origin": row.get("origin"),
        "deferred": is_open(origin_row or {}),
        "started": False,
    }
    if is_merging(row):
        entry["deferred"] = True
        entry["message"] = "%s/%s is already merging into %s; it completes at the next activation of %s/%s" % (
            vg,
            row["lv_name"],
            row.get("origin"),
            vg,
            row.get("origin"),
        )
        return entry
    entry["started"] = True
    if not cmds.check_mode:
        cmd = [cmds._bin("lvconvert"), "--merge", "%s/%s" % (vg, row["lv_name"])]
        out = cmds._checked(cmd, "lvconvert --merge of %s/%s" % (vg, row["lv_name"]), vg=vg, lv=row["lv_name"])
        entry["deferred"] = merge_deferred(out, origin_row)
    entry["message"] = merge_message(vg, row, entry["deferred"], cmds.check_mode)
    return entry


def merge_set(cmds, vg, names, prefix):
    """state=merged through ``cmds`` (``LvmCommands``)."""
    cmds.vg_info(vg)
    found, missing, by_name = named(vg, names, prefix, cmds.lv_rows(vg))
    if missing:
        raise SnapshotError("snapshot %s not found in VG %s" % (", ".join(missing), vg), vg=vg, lv=missing[0])
    _check_mergeable(vg, found)
    merges = [_merge_one(cmds, vg, row, by_name.get(row.get("origin"))) for row in found]
    return {
        "vg": vg,
        "changed": any(entry["started"] for entry in merges),
        "merges": merges,
        "merge_deferred": any(entry["deferred"] for entry in merges),
        "msg": "; ".join(entry["message"] for entry in merges),
    }
