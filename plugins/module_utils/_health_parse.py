# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of what the system reports to the health check (pure): the mount table, ``btrfs device
stats``, /proc/diskstats (the mount table is ``_mounts``'). Used by the checker (``_health``, ``_health_tier_checks``, ``_health_tools``).
"""

from __future__ import annotations

import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import (  # noqa: F401 - the checker's names
    MOUNTS_FILE,
    is_local_mount_point,
    parse_proc_mounts,
    target_of,
)

parse_mounts = parse_proc_mounts
mount_of = target_of

DISKSTATS_FILE = "/proc/diskstats"
_BTRFS_STAT_RE = re.compile(r"^\[(?P<device>[^\]]+)\]\.(?P<counter>\w+)\s+(?P<value>-?\d+)\s*$")


# ----------------------------------------------------------------------------------------------
# Parsers (pure)
# ----------------------------------------------------------------------------------------------


def parse_btrfs_stats(text):
    """``{device: {counter: int}}`` from ``btrfs device stats`` (``[/dev/sda].write_io_errs   0``)."""
    devices = {}
    for line in text.splitlines():
        match = _BTRFS_STAT_RE.match(line.strip())
        if match:
            devices.setdefault(match.group("device"), {})[match.group("counter")] = int(match.group("value"))
    return devices


_DISKSTAT_FIELDS = (
    "reads_completed",
    "reads_merged",
    "sectors_read",
    "read_ms",
    "writes_completed",
    "writes_merged",
    "sectors_written",
    "write_ms",
    "in_flight",
    "io_ms",
    "weighted_io_ms",
)


def parse_diskstats(text):
    """``{device name: {counter: int}}`` from /proc/diskstats (the first 11 counters)."""
    stats = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14:
            continue
        try:
            values = [int(v) for v in fields[3:14]]
        except ValueError:
            continue
        stats[fields[2]] = dict(zip(_DISKSTAT_FIELDS, values))
    return stats
