# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One snapshot as the lvm_snapshot modules return it, from one row of LVM's ``lvs`` report.

Standard library only, Python 3.8. Rows are dicts of strings, exactly as ``lvs --reportformat
json --units b --nosuffix`` prints them (``_lvm.lvs_argv``). Used by the set planner, the
removal and listing states of lvm_snapshot and by lvm_snapshot_info.
"""

from __future__ import annotations

import datetime

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    is_invalid,
    is_merging,
    parse_lv_time,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_names import owned


def iso8601(epoch):
    """``2026-11-23T01:02:03Z`` for an epoch (UTC), None for None."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_int(value, default=0):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def snapshot_info(row, prefix=None, now=None):
    """The public description of one snapshot row (what ``state=list`` returns)."""
    epoch = parse_lv_time(row.get("lv_time"))
    info = {
        "name": row.get("lv_name"),
        "vg": row.get("vg_name"),
        "path": "/dev/%s/%s" % (row.get("vg_name"), row.get("lv_name")),
        "origin": row.get("origin") or None,
        "lv_attr": row.get("lv_attr"),
        "size_bytes": as_int(row.get("lv_size")),
        "origin_size_bytes": as_int(row.get("origin_size")),
        "data_percent": as_float(row.get("data_percent")),
        "valid": not is_invalid(row),
        "merging": is_merging(row),
        "created": iso8601(epoch),
        "created_epoch": int(epoch) if epoch is not None else None,
        "lv_time": row.get("lv_time") or None,
    }
    if now is not None and epoch is not None:
        info["age_seconds"] = int(now - epoch)
    if prefix is not None:
        info["managed"] = owned(row, prefix)
    return info


def finding(severity, vg, lv, origin, message):
    """One entry of a result's ``findings`` (each also becomes a warning of the task)."""
    return {"severity": severity, "vg": vg, "lv": lv, "origin": origin, "message": message}
