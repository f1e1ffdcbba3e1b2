# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM snapshot names: what a valid name is, how a set's snapshots are named and which are ours.

Standard library only, Python 3.8. Used by the lvm_snapshot and lvm_snapshot_info modules (input
checks) and by the set planner (``_lvm_snapshot_plan``).

Ownership: a snapshot belongs to a set of this collection only when LVM says it is a snapshot
(``lv_attr[0]`` is ``s`` or ``S``), its ``origin`` is one of the LVs in scope and its name is
exactly ``<prefix><origin>_<YYYYmmddTHHMMSSZ>``. Anything else is someone else's and is never
removed by retention.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    TIMESTAMP_FORMAT,
    SnapshotError,
    is_snapshot,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    parse_age,
    parse_size_or_percent,
)

_TIMESTAMP_RE = r"(\d{8}T\d{6}Z)"
_NAME_RE = re.compile(r"^[a-zA-Z0-9+_.-]+$")
# LVM reserves these name prefixes and infixes for its own sub-LVs (lvm2 lib/misc/lvm-string.c).
_RESERVED_PREFIXES = ("snapshot", "pvmove")
_RESERVED_INFIXES = (
    "_cdata",
    "_cmeta",
    "_corig",
    "_iorig",
    "_imeta",
    "_mimage",
    "_mlog",
    "_pmspare",
    "_rimage",
    "_rmeta",
    "_tdata",
    "_tmeta",
    "_vdata",
    "_vorigin",
    "_wcorig",
)
NAME_MAX = 127


def validate_lv_name(name, what):
    """Raise SnapshotError when ``name`` cannot be an LVM LV name."""
    if not name or not _NAME_RE.match(name):
        raise SnapshotError("%s: %r is not a valid LVM name (letters, digits and + _ . - only)" % (what, name))
    if name.startswith("-"):
        raise SnapshotError("%s: %r must not start with '-'" % (what, name))
    if name in (".", ".."):
        raise SnapshotError("%s: %r is not a valid LVM name" % (what, name))
    if len(name) > NAME_MAX:
        raise SnapshotError("%s: %r is longer than %d characters" % (what, name, NAME_MAX))


def validate_prefix(prefix):
    """The prefix must make valid, non-reserved LVM names."""
    if not prefix:
        raise SnapshotError("prefix must not be empty: it is what tells this collection's snapshots apart")
    validate_lv_name(prefix, "prefix")
    for reserved in _RESERVED_PREFIXES:
        if prefix.startswith(reserved):
            raise SnapshotError("prefix: %r starts with %r, which LVM reserves" % (prefix, reserved))
    for infix in _RESERVED_INFIXES:
        if infix in prefix:
            raise SnapshotError("prefix: %r contains %r, which LVM reserves" % (prefix, infix))


def parse_origins(origins, need_size):
    """Check the ``origins`` option: LV names unique and valid, sizes parsed (``None`` when absent)."""
    parsed = []
    seen = set()
    for entry in origins:
        lv = entry.get("lv")
        validate_lv_name(lv, "origins")
        if lv in seen:
            raise SnapshotError("origins: %s is listed twice" % lv)
        seen.add(lv)
        size = entry.get("size")
        if size in (None, ""):
            if need_size:
                raise SnapshotError("origins[%s].size is required with state=present (e.g. 5G or 10%%)" % lv)
            parsed.append({"lv": lv, "size": None})
            continue
        try:
            kind, value = parse_size_or_percent(size, "origins[%s].size" % lv)
        except UnitError as exc:
            raise SnapshotError(str(exc)) from None
        if value <= 0:
            raise SnapshotError("origins[%s].size: %r must be more than zero" % (lv, size))
        parsed.append({"lv": lv, "size": (kind, value)})
    return parsed


def parse_max_age(value):
    if value in (None, ""):
        return None
    try:
        return parse_age(value, "max_age")
    except UnitError as exc:
        raise SnapshotError(str(exc)) from None


def snapshot_name(prefix, origin, now):
    """``<prefix><origin>_<UTC timestamp>`` for ``now`` (an epoch)."""
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)
    return "%s%s_%s" % (prefix, origin, stamp)


def owned(row, prefix, origins=None):
    """True when the row is a snapshot of this collection's set (prefix, origin and name shape)."""
    if not is_snapshot(row):
        return False
    origin = row.get("origin") or ""
    if not origin or (origins is not None and origin not in origins):
        return False
    pattern = "^" + re.escape(prefix + origin + "_") + _TIMESTAMP_RE + "$"
    return re.match(pattern, row.get("lv_name") or "") is not None
