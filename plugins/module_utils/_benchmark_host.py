# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark's host side: a target's directory reached without symlinks, its mount, its space.

Users: ``_benchmark_run`` (``preflight``: ``probe_target`` in a time-limited child before a target
is used, then the refusals: not a mount point, another filesystem, too full) and
``_benchmark_target`` (``_tree.open_dir_from_root`` for the directory the test file goes in). The mount
table is ``_mounts``' (``mount_entry`` asks it "mount point? which fstype?").

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import space_refusal
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import (
    MOUNTINFO,
    is_mount_point,
    mount_of,
    read_mounts,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import open_dir_from_root


def mount_entry(path, mountinfo=MOUNTINFO):
    """``(path is a mount point, fstype of the mount that holds it)``; the last of stacked mounts wins."""
    mounts = read_mounts(mountinfo)
    target = os.fsencode(path)
    holder = mount_of(target, mounts)
    return is_mount_point(target, mounts), holder["fstype"] if holder else None


def probe_target(mount, directory):
    """Run in a forked child (time-limited): mount point, fstype, the directory on the mount, statvfs."""
    mount_fd = open_dir_from_root(mount)
    try:
        dir_fd = open_dir_from_root(directory)
        try:
            same = os.fstat(mount_fd).st_dev == os.fstat(dir_fd).st_dev
            vfs = os.fstatvfs(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        os.close(mount_fd)
    is_mount, fstype = mount_entry(mount)
    return {
        "is_mount": is_mount,
        "fstype": fstype,
        "same_device": same,
        "vfs": {k: getattr(vfs, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail")},
    }


def preflight(probe, target, need, probe_timeout):
    """A refusal message, or None; records fstype on the target (``probe``: ``probe_target`` or a stand-in)."""
    where = "%s (%s tier, %s)" % (target["mount"], target["tier"], target["name"])
    try:
        found = call_with_timeout(probe, (target["mount"], target["directory"]), probe_timeout)
    except ProbeTimeout:
        return "%s did not answer within %ss (a dead NFS server?): not benchmarked" % (
            where,
            probe_timeout,
        )
    except OSError as exc:
        return "%s: %s (%s): not benchmarked" % (where, exc.strerror or exc, target["directory"])
    except RuntimeError as exc:  # UnsafePath from the child
        return "%s: %s: not benchmarked" % (where, exc)
    target["fstype"] = found["fstype"]
    if target["require_mount"] and not found["is_mount"]:
        return "%s is not a mount point (the tier is not mounted?): not benchmarked, nothing written" % where
    if not found["same_device"]:
        return "%s: %s is on another filesystem than the mount: not benchmarked" % (where, target["directory"])
    return space_refusal(target, found["vfs"], need, target["warning"])


def preflight_targets(targets, probe, results, need, probe_timeout):
    """``(refused, runnable)``: the refusals and the targets that may be used; refused targets' results say why."""
    refused = []
    runnable = []
    for t in targets:
        reason = preflight(probe, t, need, probe_timeout)
        for test in t["tests"]:
            results[(t["tier"], t["name"], test)]["fstype"] = t.get("fstype")
        if reason:
            refused.append(reason)
            for test in t["tests"]:
                results[(t["tier"], t["name"], test)].update(status="refused", reason=reason)
        else:
            runnable.append(t)
    return refused, runnable


__all__ = ["mount_entry", "preflight", "preflight_targets", "probe_target"]
