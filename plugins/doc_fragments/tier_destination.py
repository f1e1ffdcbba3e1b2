# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options tier_migrate and nas_archive share: where the destination must be, and what a missing end does."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  destination_mount:
    description:
      - The mount point the destination must be on, such as C(/data/warm-storage) or C(/mnt/synology).
      - When it is not in the kernel's mount table, or does not answer within O(probe_timeout), the destination is
        missing and O(missing) decides. A destination that exists on another filesystem fails the task.
    type: path
  require_mounted:
    description:
      - "The destination must not be on the root filesystem (the empty mount point of a tier or NAS that is away:
        writing there would fill the root filesystem). When it is, the destination is missing and O(missing)
        decides. V(false) allows a local destination."
    type: bool
    default: true
  missing:
    description:
      - "What the run does when an end is missing: the destination (O(destination_mount) not mounted or not
        answering, or the destination on the root filesystem under O(require_mounted)), the source (it does not
        exist: tier_migrate's, nas_archive's in mode C(mirror)), the source's tier (tier_migrate's
        C(source_mount) not mounted or not answering) or the NAS (nas_archive: C(nas_host) does not answer)."
      - V(fail) fails the task and does nothing. V(skip) does nothing and returns C(skipped=true), the reason in
        C(msg) and the missing end in C(missing) (C(destination_mount), C(source), C(source_mount) or C(nas_host)).
    type: str
    choices: [fail, skip]
  probe_timeout:
    description:
      - Seconds each probe of an end (C(stat), C(statfs), a TCP connection) may take before that end counts as not
        answering; probes run in a child process, so a dead hard NFS mount cannot block the run.
    type: float
    default: 10
  lock_dir:
    description:
      - Directory for the lock files (one run at a time per destination). It is made V(0700) when missing, reached
        without following symlinks, and must belong to the user the module runs as and be writable by it alone; a
        world-writable directory such as C(/run/lock) is refused.
    type: path
    default: /run/jts
"""
