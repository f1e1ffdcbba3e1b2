# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate before its preflight: a missing end skipped, a missing destination made.

The lifecycle's migrate step used to probe every move itself (a ``stat`` of the source, a
time-limited ``mountpoint``/``statfs`` of the destination tier, an ``ansible.builtin.file`` of
the destination) and then call tier_migrate, which probed the same again. With
``missing: skip`` the module says itself that a move had nothing to do, as nas_archive does: the
source does not exist (a service without logs), or ``source_mount`` or ``destination_mount`` is
not in the kernel's mount table or its ``statfs`` does not return within ``probe_timeout`` (the
tier is away).
With ``create_destination`` a destination directory that does not exist yet is made (root's,
``0755``, parents too) through ``_directories`` (never through a symlink another user placed);
in check mode the run stops there and says what it would make.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._directories import DirectoryError
from ansible_collections.jts.tiered_storage.plugins.module_utils._directories import run as make_directories
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import MigrateError, display
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import is_mount_point, read_mounts
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import absent
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    realpath_with_timeout,
    stat_with_timeout,
    statvfs_with_timeout,
)


def _absent(policy, reason, missing):
    return absent(policy, reason, missing, lambda why: MigrateError("%s; nothing was moved" % why))


def _exists(path, timeout, stat_fn):
    try:
        stat_fn(path, timeout)
    except FileNotFoundError:
        return False
    return True


def _tier_there(policy, mount_point, end, mounts, statfs_fn, realpath_fn):
    """Raise the end's absence unless ``mount_point`` is in the mount table and its statfs answers.

    The kernel lists real paths: a mount point named through a symlink an administrator placed
    (``/data -> /srv/data``) is resolved first, in a child with the time-out, as the mount point
    itself is looked at.
    """
    not_there = "%s is not mounted (or did not answer in %g s)" % (display(mount_point), policy.probe_timeout)
    try:
        real = realpath_fn(mount_point, policy.probe_timeout)
    except (ProbeTimeout, OSError, RuntimeError):
        raise _absent(policy, not_there, end) from None
    if not is_mount_point(real, read_mounts() if mounts is None else mounts):
        raise _absent(policy, not_there, end)
    try:
        statfs_fn(mount_point, policy.probe_timeout)
    except (ProbeTimeout, OSError):
        raise _absent(policy, not_there, end) from None


def gate(
    policy,
    check_mode,
    mounts=None,
    stat_fn=stat_with_timeout,
    statfs_fn=statvfs_with_timeout,
    make_fn=None,
    realpath_fn=realpath_with_timeout,
):
    """None to go on with the preflight, or check mode's result for a destination it would make.

    Raises ``Skipped`` (``missing: skip``; its ``missing`` says which end) or MigrateError for a missing end; MigrateError when
    the destination cannot be made.
    """
    timeout = policy.probe_timeout
    if policy.missing == "skip":
        try:
            source_there = _exists(policy.source, timeout, stat_fn)
        except ProbeTimeout:
            source_there = True  # the preflight refuses a source that does not answer
        if not source_there:
            raise _absent(policy, "%s does not exist" % display(policy.source), "source")
        # a source that exists below a mount point that is not mounted is the empty mount
        # point's directory on the root filesystem: its tier is away
        if policy.source_mount is not None:
            _tier_there(policy, policy.source_mount, "source_mount", mounts, statfs_fn, realpath_fn)
    if policy.dest_mount is not None and (policy.missing == "skip" or policy.create_destination):
        _tier_there(policy, policy.dest_mount, "destination_mount", mounts, statfs_fn, realpath_fn)
    if not policy.create_destination:
        return None
    try:
        if _exists(policy.dest, timeout, stat_fn):
            return None
    except ProbeTimeout:
        return None  # the preflight refuses it, naming the destination
    if check_mode:
        return {
            "changed": True,
            "destination_created": True,
            "moved": 0,
            "moved_bytes": 0,
            "skipped_count": 0,
            "failed_count": 0,
            "msg": "would create %s and move the files older than the age into it" % display(policy.dest),
        }
    wanted = [{"path": os.fsdecode(policy.dest), "owner": "root", "group": "root", "mode": "0755"}]
    try:
        (make_fn or make_directories)(wanted, False, timeout)
    except DirectoryError as exc:
        raise MigrateError("cannot make the destination: %s; nothing was moved" % exc.msg) from None
    return {"destination_created": True}
