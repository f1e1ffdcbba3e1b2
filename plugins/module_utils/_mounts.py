# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mount table: /proc/self/mountinfo parsed, and which mount holds a path.

Standard library only, Python 3.8. Mount points are bytes (the kernel's octal escapes of space,
tab, newline and backslash undone), so any name works. Used by tier_migrate (preflight), the
backup retention and the NAS archive probes; storage_health and storage_benchmark can read the
same table (``mount_table`` gives storage_health's ``{target: {source, fstype, options}}`` shape;
``mount_of`` plus ``is_mount_point`` answer storage_benchmark's "mount point? which fstype?"). At the end,
the same ideas on /proc/self/mounts text for storage_health (``parse_proc_mounts``, ``target_of``,
``is_local_mount_point``).

An entry is a dict: ``dev`` ("major:minor"), ``root`` (the directory of the filesystem mounted
there, bytes), ``mount_point`` (bytes), ``fstype``, ``source`` (str), ``options`` (a set: the
per-mount and the superblock options) and ``option_list`` (the same, in the kernel's order).
"""

from __future__ import annotations

import os
import re
import stat

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


def mount_point_state(path, device, mounts, names=5):
    """What mounting ``device`` on ``path`` (str) would do: nothing to see, the mount already there, another
    mount in the way, or a directory whose entries the mount would hide (a service's data written before
    the tier existed: hidden, then missed by every backup of the tier).

    ``{"path", "real", "exists", "directory", "mounted", "source", "same_device", "entries", "names"}``
    (``directory`` only when it exists): ``source`` is what is
    mounted there (when ``mounted``), ``same_device`` whether that is ``device`` (by device number, so
    ``/dev/mapper/vg-lv`` is ``/dev/vg/lv``), ``entries`` how many names an unmounted directory holds
    and ``names`` the first few, sorted. Symlinks are followed, as mount(8) follows them: a mount
    point that is a link to a directory is that directory (``real`` says which); a path that is
    not a directory is reported with ``directory`` false.
    """
    real = os.path.realpath(path)
    state = {"path": path, "real": real, "exists": False, "mounted": False, "source": None, "same_device": False}
    state.update(entries=0, names=[])
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return state
    state["exists"] = True
    if not stat.S_ISDIR(st.st_mode):
        state["directory"] = False
        return state
    state["directory"] = True
    entry = next((m for m in reversed(mounts) if m["mount_point"] == os.fsencode(real)), None)
    if entry is not None:
        state.update(mounted=True, source=entry["source"], same_device=_same_block_device(entry["source"], device))
        return state
    with os.scandir(real) as listing:
        found = sorted(item.name for item in listing)
    state.update(entries=len(found), names=found[:names])
    return state


def _same_block_device(source, device):
    try:
        return os.stat(source).st_rdev == os.stat(device).st_rdev != 0
    except OSError:
        return False


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


# --------------------------------------------------------------------------- /proc/self/mounts (text)
# storage_health reads the shorter table (its tests give it that text): targets as str, the options
# the kernel shows for each mount (per-mount and superblock, one list).
MOUNTS_FILE = "/proc/self/mounts"


def _unescape_text(value):
    """/proc/mounts escapes space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), value)


def parse_proc_mounts(text):
    """``{target: {"source", "fstype", "options": [...]}}``; the last mount on a target wins (stacked)."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        target = _unescape_text(fields[1])
        mounts[target] = {
            "source": _unescape_text(fields[0]),
            "fstype": fields[2],
            "options": fields[3].split(","),
        }
    return mounts


def target_of(path, mounts):
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
