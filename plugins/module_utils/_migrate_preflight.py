# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's preflight: both ends probed (with a time-out), their overlap refused, the
mounts and the space checked before anything moves. Used by ``_migrate.migrate``.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    MigrateError,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import fstype_matches, mount_of, read_mounts
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import absent
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    stat_with_timeout,
    statvfs_with_timeout,
)


def probe(path, name, timeout, probe_fn):
    """``probe_fn(path, timeout)`` with its failures turned into refusals that name the end."""
    try:
        return probe_fn(path, timeout)
    except ProbeTimeout as exc:
        raise MigrateError(
            "%s %s does not answer within %.0fs (a stalled NFS mount?); nothing was moved"
            % (name, display(path), timeout)
        ) from exc
    except FileNotFoundError as exc:
        raise MigrateError("%s %s does not exist; nothing was moved" % (name, display(path))) from exc
    except OSError as exc:
        raise MigrateError("%s %s: %s; nothing was moved" % (name, display(path), exc.strerror or exc)) from exc


def _probe_dir(path, name, timeout, stat_fn):
    st = probe(path, name, timeout, stat_fn)
    if not stat.S_ISDIR(st["st_mode"]):
        raise MigrateError("%s %s is not a directory; nothing was moved" % (name, display(path)))
    return st


def _ancestors(path):
    """``path`` and each parent up to ``/`` (bytes, real path)."""
    out = [path]
    while path != b"/":
        path = os.path.dirname(path)
        out.append(path)
    return out


def check_overlap(source, dest):
    """Raise MigrateError when one tree contains the other, by path or by device and inode.

    Device/inode comparison catches symlinked parents and bind mounts of the same tree.
    """
    rs, rd = os.path.realpath(source), os.path.realpath(dest)
    if rs == rd:
        raise MigrateError("source and destination are the same directory (%s); refusing" % display(rs))
    if rd.startswith(rs.rstrip(b"/") + b"/"):
        raise MigrateError("destination %s is inside source %s; refusing" % (display(dest), display(source)))
    if rs.startswith(rd.rstrip(b"/") + b"/"):
        raise MigrateError("source %s is inside destination %s; refusing" % (display(source), display(dest)))
    s_st, d_st = os.stat(rs), os.stat(rd)
    s_id, d_id = (s_st.st_dev, s_st.st_ino), (d_st.st_dev, d_st.st_ino)
    for anc in _ancestors(rd):
        st = os.stat(anc)
        if (st.st_dev, st.st_ino) == s_id:
            raise MigrateError(
                "destination %s is inside source %s (same directory seen through a bind mount or link); refusing"
                % (display(dest), display(source))
            )
    for anc in _ancestors(rs):
        st = os.stat(anc)
        if (st.st_dev, st.st_ino) == d_id:
            raise MigrateError(
                "source %s is inside destination %s (same directory seen through a bind mount or link); refusing"
                % (display(source), display(dest))
            )
    return rs, rd


def _fs_path(real, mount):
    """Where ``real`` lies inside its filesystem: the mount's root plus the path below the mount point."""
    mp = mount["mount_point"]
    below = real[len(mp) :] if mp != b"/" else real
    return (mount.get("root", b"/").rstrip(b"/") + b"/" + below.lstrip(b"/")).rstrip(b"/") or b"/"


def check_bind_overlap(policy, rs, rd, s_mount, d_mount):
    """Refuse trees that overlap inside one filesystem reached through two mounts (bind mounts)."""
    if not s_mount or not d_mount or s_mount.get("dev") is None or s_mount.get("dev") != d_mount.get("dev"):
        return
    fs_s, fs_d = _fs_path(rs, s_mount), _fs_path(rd, d_mount)
    for inner, outer, what in (
        (fs_d, fs_s, "destination %s is inside source %s"),
        (fs_s, fs_d, "source %s is inside destination %s"),
    ):
        if inner == outer or inner.startswith(outer.rstrip(b"/") + b"/"):
            names = (policy.dest, policy.source) if inner is fs_d else (policy.source, policy.dest)
            raise MigrateError(
                (what + " (the same filesystem %s seen through a bind mount or link); refusing")
                % (display(names[0]), display(names[1]), d_mount["dev"])
            )


def preflight(policy, mounts=None, stat_fn=stat_with_timeout, root_dev=None, statfs_fn=statvfs_with_timeout):
    """Check both ends; return (info dict, warnings). Raise MigrateError when a run must not start."""
    warnings = []
    _probe_dir(policy.source, "source", policy.probe_timeout, stat_fn)
    d_st = _probe_dir(policy.dest, "destination", policy.probe_timeout, stat_fn)
    # The NFS client answers stat from its attribute cache for up to acdirmax seconds after the
    # last access; statfs always asks the server, so a NAS that just went away is found here,
    # not in the run's first uncached call.
    probe(policy.dest, "destination", policy.probe_timeout, statfs_fn)
    rs, rd = check_overlap(policy.source, policy.dest)
    if mounts is None:
        mounts = read_mounts()
    s_mount, d_mount = mount_of(rs, mounts), mount_of(rd, mounts)
    check_bind_overlap(policy, rs, rd, s_mount, d_mount)
    if root_dev is None:
        root_dev = os.stat(b"/").st_dev
    if policy.require_mounted and d_st["st_dev"] == root_dev:
        raise absent(
            policy,
            "destination %s is on the root filesystem, not on a mounted filesystem (is it mounted?); "
            "nothing was moved (set require_mounted: false to allow this)" % display(policy.dest),
            "destination_mount",
            MigrateError,
        )
    for name, want, have in (
        ("source_mount", policy.source_mount, s_mount),
        ("destination_mount", policy.dest_mount, d_mount),
    ):
        if want is None:
            continue
        real_want = os.path.realpath(want)
        if have is None or have["mount_point"] != real_want:
            raise MigrateError(
                "%s: %s is expected to be a mount point holding the tree, but the tree is on %s; nothing was moved"
                % (name, display(want), display(have["mount_point"]) if have else "no known mount")
            )
    for name, want, have in (
        ("source_fstype", policy.source_fstype, s_mount),
        ("destination_fstype", policy.dest_fstype, d_mount),
    ):
        if want and (have is None or not fstype_matches(have["fstype"], want)):
            raise MigrateError(
                "%s: expected %s but %s is %s; nothing was moved"
                % (name, want, display(have["mount_point"]) if have else "?", have["fstype"] if have else "unknown")
            )
    if policy.age_stamp == "atime" and s_mount and ("noatime" in s_mount["options"]):
        warnings.append(
            "age_stamp atime asked for, but %s is mounted noatime: access times are not kept there, "
            "so ages by atime are really ages since creation or the last write" % display(s_mount["mount_point"])
        )
    return {"source_real": rs, "dest_real": rd, "source_mount": s_mount, "dest_mount": d_mount}, warnings


def free_bytes(path, stat_fn=None):
    st = os.statvfs(path) if stat_fn is None else stat_fn(path)
    if isinstance(st, dict):
        return st["f_bavail"] * st["f_frsize"], st["f_blocks"] * st["f_frsize"]
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def check_space(policy, needed, free, total):
    """Raise MigrateError unless ``free`` covers ``needed`` plus the ``min_free`` margin."""
    kind, value = policy.min_free
    margin = int(total * value / 100.0) if kind == "percent" else int(value)
    if needed + margin > free:
        raise MigrateError(
            "destination %s has %d bytes free; the %d selected bytes plus the min_free margin of %d bytes "
            "do not fit; nothing was moved" % (display(policy.dest), free, needed, margin)
        )
    return margin
