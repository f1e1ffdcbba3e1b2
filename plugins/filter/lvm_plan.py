# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan the hot tier's logical volumes before any disk is touched.

Turns each volume's size (absolute such as ``800G`` or a percentage of the VG such as ``20%``)
into a whole number of extents, checks that the plan plus the snapshot reserve fits the VG,
and refuses to shrink an existing LV. Percentages are resolved here, once, into absolute
sizes: community.general.lvol is not idempotent with percentage sizes.
"""

from __future__ import annotations

import math

from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    format_bytes,
    parse_size_or_percent,
)

MIB = 1024**2


def vg_extents_for_device(device_bytes, extent_bytes, data_alignment_bytes):
    """Extents a new VG gets on a whole-disk PV whose data area starts at the alignment."""
    start = max(int(data_alignment_bytes), MIB)
    usable = int(device_bytes) - start
    return max(usable // int(extent_bytes), 0)


def lvm_plan(volumes, vg_extents, extent_bytes, reserve="5%", existing=None, variable="hot_tier_volumes"):
    """Return ``{"volumes": [...], "errors": [...], "summary": {...}}``.

    ``existing`` maps LV name to its current size in bytes. Each planned volume gains
    ``extents``, ``size_bytes``, ``size_lvol`` (MiB string for lvol) and ``action``
    (create, grow, keep). Errors name the variable, the volume and the value.
    """
    existing = existing or {}
    extent_bytes = int(extent_bytes)
    vg_extents = int(vg_extents)
    vg_bytes = vg_extents * extent_bytes
    errors = []
    planned = []
    seen_names = set()
    seen_mounts = set()
    for index, volume in enumerate(volumes):
        where = "%s[%d]" % (variable, index)
        name = volume.get("name")
        if not name:
            errors.append("%s has no name" % where)
            continue
        where = "%s[%d] (%s)" % (variable, index, name)
        if name in seen_names:
            errors.append("%s: the LV name %s appears twice" % (where, name))
        seen_names.add(name)
        mount = volume.get("mount")
        if mount:
            if mount in seen_mounts:
                errors.append("%s: the mount point %s appears twice" % (where, mount))
            seen_mounts.add(mount)
        try:
            kind, amount = parse_size_or_percent(volume.get("size"), "%s.size" % where)
        except UnitError as exc:
            errors.append(str(exc))
            continue
        wanted = vg_bytes * amount / 100.0 if kind == "percent" else amount
        extents = math.ceil(wanted / extent_bytes)
        if extents <= 0:
            errors.append(
                "%s.size: %r is smaller than one extent (%s)" % (where, volume.get("size"), format_bytes(extent_bytes))
            )
            continue
        size_bytes = extents * extent_bytes
        current = existing.get(name)
        if current is None:
            action = "create"
        elif int(current) > size_bytes:
            errors.append(
                "%s.size: %s is smaller than the existing LV (%s); shrinking is refused because it can destroy data"
                % (where, volume.get("size"), format_bytes(int(current)))
            )
            action = "keep"
            size_bytes = int(current)
            extents = size_bytes // extent_bytes
        elif int(current) < size_bytes:
            action = "grow"
        else:
            action = "keep"
        item = dict(volume)
        item.update(extents=extents, size_bytes=size_bytes, size_lvol="%dm" % (size_bytes // MIB), action=action)
        planned.append(item)
    try:
        kind, amount = parse_size_or_percent(reserve, "hot_tier_snapshot_reserve")
        reserve_bytes = vg_bytes * amount / 100.0 if kind == "percent" else amount
    except UnitError as exc:
        errors.append(str(exc))
        reserve_bytes = 0
    reserve_extents = math.ceil(reserve_bytes / extent_bytes) if extent_bytes else 0
    used_extents = sum(v["extents"] for v in planned)
    missing = used_extents + reserve_extents - vg_extents
    if missing > 0 and vg_extents > 0:
        errors.append(
            "%s does not fit the VG: the volumes need %s plus a snapshot reserve of %s, the VG has %s; %s missing"
            % (
                variable,
                format_bytes(used_extents * extent_bytes),
                format_bytes(reserve_extents * extent_bytes),
                format_bytes(vg_bytes),
                format_bytes(missing * extent_bytes),
            )
        )
    summary = {
        "vg_bytes": vg_bytes,
        "planned_bytes": used_extents * extent_bytes,
        "reserve_bytes": reserve_extents * extent_bytes,
        "free_after_bytes": max(vg_extents - used_extents, 0) * extent_bytes,
    }
    return {"volumes": planned, "errors": errors, "summary": summary}


class FilterModule:
    def filters(self):
        return {"lvm_plan": lvm_plan, "vg_extents_for_device": vg_extents_for_device}
