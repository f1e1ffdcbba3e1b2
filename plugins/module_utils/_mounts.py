# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mount table: /proc/self/mountinfo parsed, and which mount holds a path.

Standard library only, Python 3.8. Mount points are bytes (the kernel's octal escapes of space,
tab, newline and backslash undone), so any name works. Used by tier_migrate (preflight), the
backup retention and the NAS archive probes; storage_health and storage_benchmark can read the
same table (``mount_table`` gives storage_health's ``{target: {source, fstype, options}}`` shape;
``mount_of`` plus ``is_mount_point`` answer storage_benchmark's "mount point? which fstype?").

An entry is a dict: ``dev`` ("major:minor"), ``root`` (the directory of the filesystem mounted
there, bytes), ``mount_point`` (bytes), ``fstype``, ``source`` (str), ``options`` (a set: the
per-mount and the superblock options) and ``option_list`` (the same, in the kernel's order).
"""

from __future__ import annotations

import re

MOUNTINFO = "/proc/self/mountinfo"

_OCTAL = re.compile(rb"\\([0-7]{3})")


def unescape(field):
    """A mountinfo field (bytes) with the kernel's ``\\ooo`` escapes undone."""
    return _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), field)


def parse_mountinfo(data):
    """Parse /proc/self/mountinfo (bytes) into entries (dicts, see the module docstring), in order."""
    mounts = []
    for line in data.splitlines():
        if b" - " not in line:
            continue
        left, right = line.split(b" - ", 1)
        lf = left.split()
        rf = right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        option_list = lf[5].decode("ascii", "replace").split(",")
        if len(rf) > 2:
            option_list += [opt for opt in rf[2].decode("ascii", "replace").split(",") if opt not in option_list]
        mounts.append(
            {
                "dev": lf[2].decode("ascii", "replace"),
                "root": unescape(lf[3]),
                "mount_point": unescape(lf[4]),
                "fstype": rf[0].decode("ascii", "replace"),
                "source": unescape(rf[1]).decode("utf-8", "replace"),
                "options": set(option_list),
                "option_list": option_list,
            }
        )
    return mounts


def read_mounts(path=MOUNTINFO):
    """The live mount table (entries, in the kernel's order)."""
    with open(path, "rb") as handle:
        return parse_mountinfo(handle.read())


def mount_of(path, mounts):
    """The mount (entry) holding the real path ``path`` (bytes): the longest, latest match."""
    best = None
    for entry in mounts:
        mp = entry["mount_point"]
        inside = path == mp or mp == b"/" or path.startswith(mp.rstrip(b"/") + b"/")
        if inside and (best is None or len(mp) >= len(best["mount_point"])):
            best = entry
    return best


def is_mount_point(path, mounts):
    """True when ``path`` (bytes, real) is itself a mount point in ``mounts``."""
    return any(entry["mount_point"] == path for entry in mounts)


def fstype_matches(actual, expected):
    """``actual`` is ``expected`` or a variant of it (``nfs4`` for ``nfs``)."""
    return actual == expected or actual.startswith(expected)


def mount_table(mounts):
    """``{target (str): {"source", "fstype", "options": [...]}}``; the last mount on a target wins."""
    table = {}
    for entry in mounts:
        table[entry["mount_point"].decode("utf-8", "surrogateescape")] = {
            "source": entry["source"],
            "fstype": entry["fstype"],
            "options": list(entry["option_list"]),
        }
    return table
