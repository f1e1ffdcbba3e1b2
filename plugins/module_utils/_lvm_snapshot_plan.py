# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning a snapshot set and its retention: pure decisions over LVM's report rows.

Standard library only, Python 3.8. ``plan_set`` decides the names and extents of a new set (all
or nothing: the VG must have room for every snapshot); ``plan_prune`` decides which of this
collection's snapshots retention removes. Nothing here runs a command: the executors
(``_lvm_snapshot_create``, ``_lvm_snapshot_remove``) call these with the rows they read.
"""

from __future__ import annotations

import math

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    SnapshotError,
    is_invalid,
    is_merging,
    is_snapshot,
    parse_lv_time,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_names import (
    owned,
    snapshot_name,
    validate_lv_name,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_rows import (
    as_int,
    finding,
    snapshot_info,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import format_bytes

# Volume types (lv_attr[0]) that can be the origin of a classic (COW) snapshot.
_ORIGIN_TYPES = "-oOrRmMC"


def vg_row(rows, vg):
    for row in rows:
        if row.get("vg_name") == vg:
            return row
    raise SnapshotError("VG %s not found" % vg, vg=vg)


def _plan_one(vg, entry, by_name, extent, prefix, now):
    """The plan entry of one origin (name, extents, size), or SnapshotError naming the VG/LV."""
    lv = entry["lv"]
    row = by_name.get(lv)
    if row is None:
        raise SnapshotError("LV %s/%s not found: no such origin" % (vg, lv), vg=vg, lv=lv)
    lv_type = (row.get("lv_attr") or " ")[0]
    if lv_type not in _ORIGIN_TYPES:
        raise SnapshotError(
            "LV %s/%s cannot be a snapshot origin (lv_attr %s: snapshots, thin and internal LVs are refused)"
            % (vg, lv, row.get("lv_attr")),
            vg=vg,
            lv=lv,
        )
    origin_bytes = as_int(row.get("lv_size"))
    kind, value = entry["size"]
    wanted = math.ceil(origin_bytes * value / 100.0) if kind == "percent" else int(value)
    extents = max(1, math.ceil(wanted / float(extent)))
    name = snapshot_name(prefix, lv, now)
    validate_lv_name(name, "snapshot name for %s/%s" % (vg, lv))
    if name in by_name:
        raise SnapshotError(
            "LV %s/%s already exists: a set with this prefix was taken in this second" % (vg, name), vg=vg, lv=name
        )
    return {
        "name": name,
        "vg": vg,
        "origin": lv,
        "path": "/dev/%s/%s" % (vg, name),
        "extents": extents,
        "size_bytes": extents * extent,
        "timestamp": name[-len("YYYYmmddTHHMMSSZ") :],
    }


def plan_set(vg, origins, lv_rows, vg_info, prefix, now):
    """Plan a snapshot set: one entry per origin with its name and extents; all or nothing.

    Raises SnapshotError naming the VG/LV for an unknown origin, an origin that cannot have a
    snapshot, a name that exists already, or when the VG has too little free space for the
    whole set (with the bytes missing).
    """
    by_name = dict((row.get("lv_name"), row) for row in lv_rows)
    extent = as_int(vg_info.get("vg_extent_size"))
    free_extents = as_int(vg_info.get("vg_free_count"))
    if extent <= 0:
        raise SnapshotError("VG %s: LVM reported no extent size" % vg, vg=vg)
    plan = [_plan_one(vg, entry, by_name, extent, prefix, now) for entry in origins]
    needed = sum(item["extents"] for item in plan)
    room = {
        "vg_free_bytes": free_extents * extent,
        "needed_bytes": needed * extent,
        "missing_bytes": max(0, (needed - free_extents) * extent),
    }
    if needed > free_extents:
        raise SnapshotError(
            "VG %s has %s free (%d extents of %s); the snapshot set (%s) needs %s: %s missing; no snapshot created"
            % (
                vg,
                format_bytes(room["vg_free_bytes"]),
                free_extents,
                format_bytes(extent),
                ", ".join("%s %s" % (item["origin"], format_bytes(item["size_bytes"])) for item in plan),
                format_bytes(room["needed_bytes"]),
                format_bytes(room["missing_bytes"]),
            ),
            vg=vg,
            **room,
        )
    return plan, room


def _owned_groups(lv_rows, prefix, origins):
    """This collection's snapshots by origin, and how many snapshots in scope are someone else's."""
    groups = {}
    foreign = 0
    for row in lv_rows:
        if not is_snapshot(row):
            continue
        if not owned(row, prefix, origins):
            if origins is None or row.get("origin") in origins:
                foreign += 1
            continue
        groups.setdefault(row.get("origin"), []).append(row)
    return groups, foreign


def plan_prune(vg, lv_rows, prefix, origins, keep, max_age, now):
    """Decide which of this collection's snapshots to remove.

    Per origin, newest first by ``lv_time``: invalid snapshots are always removed (and each is a
    finding); a merging snapshot is never touched; of the valid ones, those beyond the newest
    ``keep`` and those older than ``max_age`` seconds are removed. A snapshot whose ``lv_time``
    cannot be read is kept and reported. Returns (remove, kept, findings, foreign) where
    ``foreign`` counts snapshots in scope of the origins that are not ours (left alone).
    """
    remove, kept, findings = [], [], []
    groups, foreign = _owned_groups(lv_rows, prefix, origins)
    for origin in sorted(groups):
        rows = sorted(
            groups[origin],
            key=lambda r: (parse_lv_time(r.get("lv_time")) or 0, r.get("lv_name")),
            reverse=True,
        )
        valid_seen = 0
        for row in rows:
            info = snapshot_info(row, now=now)
            epoch = parse_lv_time(row.get("lv_time"))
            name = row.get("lv_name")
            if is_merging(row):
                info["reason"] = "merging into its origin: left alone"
                kept.append(info)
                continue
            if is_invalid(row):
                info["reason"] = "invalid (filled up: its copy-on-write space ran out)"
                remove.append(info)
                findings.append(
                    finding(
                        "critical",
                        vg,
                        name,
                        origin,
                        "snapshot %s/%s of %s filled up and became invalid; it is removed" % (vg, name, origin),
                    )
                )
                continue
            if epoch is None:
                info["reason"] = "creation time %r unreadable: kept" % row.get("lv_time")
                kept.append(info)
                findings.append(
                    finding(
                        "warning",
                        vg,
                        name,
                        origin,
                        "snapshot %s/%s has no readable lv_time (%r); retention skips it"
                        % (vg, name, row.get("lv_time")),
                    )
                )
                continue
            valid_seen += 1
            if keep is not None and valid_seen > keep:
                info["reason"] = "beyond the newest %d of %s" % (keep, origin)
                remove.append(info)
            elif max_age is not None and now - epoch > max_age:
                info["reason"] = "older than %ds (created %s)" % (int(max_age), info["created"])
                remove.append(info)
            else:
                info["reason"] = "kept"
                kept.append(info)
    return remove, kept, findings, foreign
