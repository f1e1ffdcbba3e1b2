# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of what the system reports to the health check (pure): the mount table, ``btrfs device
stats``, /proc/diskstats. Used by the checker (``_health``, ``_health_tier_checks``, ``_health_tools``).
"""

from __future__ import annotations

import os
import re

MOUNTS_FILE = "/proc/self/mounts"
DISKSTATS_FILE = "/proc/diskstats"
_BTRFS_STAT_RE = re.compile(r"^\[(?P<device>[^\]]+)\]\.(?P<counter>\w+)\s+(?P<value>-?\d+)\s*$")


# ----------------------------------------------------------------------------------------------
# Parsers (pure)
# ----------------------------------------------------------------------------------------------


# lead: redirect to _mounts (the mount table parsing below: _unescape_mount_field, parse_mounts,
# mount_of, is_local_mount_point)
def _unescape_mount_field(value):
    """/proc/mounts escapes space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), value)


def parse_mounts(text):
    """``{target: {"source", "fstype", "options": [...]}}``; the last mount on a target wins (stacked)."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        target = _unescape_mount_field(fields[1])
        mounts[target] = {
            "source": _unescape_mount_field(fields[0]),
            "fstype": fields[2],
            "options": fields[3].split(","),
        }
    return mounts


def mount_of(path, mounts):
    """The mount point ``path`` lies on, by the longest prefix among ``mounts`` (no syscall)."""
    path = os.path.normpath(path)
    best = None
    for target in mounts:
        inside = path == target or target == "/" or path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > len(best)):
            best = target
    return best


# Filesystems on local block devices: statvfs on them cannot block on a vanished server.
LOCAL_FSTYPES = frozenset(("ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "tmpfs"))


def is_local_mount_point(path, mounts):
    """True when ``path`` is itself a mount point of a local filesystem and no mount above it is
    anything else: its statvfs then needs no child process with a time-out (the path walk only
    crosses local filesystems). Anything else, network or unknown, goes through the time-out."""
    path = os.path.normpath(path)
    if not mounts or path not in mounts:
        return False
    for target, live in mounts.items():
        above = target == "/" or path == target or path.startswith(target.rstrip("/") + "/")
        if above and live["fstype"] not in LOCAL_FSTYPES:
            return False
    return True


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
