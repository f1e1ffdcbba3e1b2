#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_retention
short_description: Prune backup archives by count and age, never the newest good one, never on an absent mount
version_added: 0.1.0
description:
  - "Prunes the backup archives the lifecycle's backup step writes (C(<path>/<volume>/<volume>_<YYYYmmddTHHMMSSZ>.tar.zst)
    with its C(.sha256) file), on the warm tier or on the NAS where the migrate step moves them. Each volume
    is judged on its own."
  - "Which archives stay is nas_archive's snapshot retention: the newest O(keep_last), then the newest archive of
    each of the newest O(keep_daily) days, O(keep_weekly) ISO weeks and O(keep_monthly) months that hold one
    (a host that was off for a week does not lose its daily copies to the calendar). O(max_age) removes what is
    older, whatever the counts keep. With every count at 0 and no O(max_age) nothing is removed."
  - "Never removed: the newest archive with a valid checksum file (a C(.sha256) file of one C(sha256sum) line naming
    it); a volume without such an archive loses nothing (a warning says so). Archives named more than 60 seconds
    after the clock are kept and not counted; with O(max_age), a newest archive older than
    O(max_clock_jump_days) days (a clock that jumped ahead?) stops the age limit, with a warning."
  - "Nothing is pruned, and the result is C(skipped), when O(nas_host) does not answer on O(nas_port), when
    O(mount) is not in the kernel's mount table (read without touching the NAS), or when a statvfs of it does not
    return within O(probe_timeout). O(path) on another filesystem than the one mounted at O(mount) (not mounted,
    or something else mounted below it) is refused."
  - "O(path) and each volume's directory are opened from C(/) one component at a time without following a symlink
    (C(O_NOFOLLOW)); only regular files are removed, relative to their directory's descriptor (C(unlinkat)), so a
    symlink another user planted is never followed (it is reported and left alone). Each listing and each removal
    runs in a child process under a time-out: a NAS that stops answering fails the run, it never hangs it."
  - "Names that are not archives of a listed volume (temporary files, notes, other volumes) are never touched.
    An archive's C(.sha256) file goes with it."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Lists what would be removed (RV(removed), with the sizes counted); nothing is removed.
  diff_mode:
    support: full
    details: The archives before and after, one relative name a line.
  platform:
    platforms: posix
options:
  path:
    description: The directory holding one sub-directory per volume (the backup step's C(daily-backups)).
    type: path
    required: true
  volumes:
    description: The volumes (LV names) whose archives are pruned; each is a sub-directory of O(path). A missing one is skipped.
    type: list
    elements: str
    required: true
  mount:
    description: The mount O(path) must be on (the warm tier's mount, the NAS mount).
    type: path
    required: true
  keep_last:
    description: Keep the newest this many archives of each volume.
    type: int
    default: 0
  keep_daily:
    description: Keep the newest archive of each of the newest this many days that hold one.
    type: int
    default: 0
  keep_weekly:
    description: Keep the newest archive of each of the newest this many ISO weeks that hold one.
    type: int
    default: 0
  keep_monthly:
    description: Keep the newest archive of each of the newest this many months that hold one.
    type: int
    default: 0
  max_age:
    description:
      - Remove archives older than this (C(40d), C(6w), C(12h); a bare number is days) whatever the counts keep;
        the newest good archive stays. Empty for no age limit.
    type: str
    default: ""
  max_clock_jump_days:
    description: With O(max_age), a newest archive older than this many days stops the age limit (V(0) turns the check off).
    type: int
    default: 366
  nas_host:
    description: When set, a TCP connection to it on O(nas_port) must open first, else nothing is pruned (RV(skipped)).
    type: str
  nas_port:
    description: The port of O(nas_host) to probe.
    type: int
    default: 2049
  probe_timeout:
    description: Seconds for the probe of O(mount) and for each volume's listing.
    type: float
    default: 10
  remove_timeout:
    description: Seconds for each file's removal (a large file on a slow NAS takes a while).
    type: float
    default: 300
notes:
  - Pair it with a run lock (the lifecycle role runs it under its own) so that no archive is written while it prunes.
seealso:
  - module: jts.tiered_storage.backup_capacity
  - module: jts.tiered_storage.snapshot_archive
  - module: jts.tiered_storage.nas_archive
"""

EXAMPLES = r"""
- name: Keep 35 nightly archives per LV on the warm tier, none older than 40 days
  jts.tiered_storage.backup_retention:
    path: /data/warm-storage/daily-backups
    mount: /data/warm-storage
    volumes: [postgres, clickhouse, mongodb]
    keep_last: 35
    max_age: 40d

- name: Daily, weekly and monthly archives on the NAS
  jts.tiered_storage.backup_retention:
    path: /mnt/synology/trading-storage/archives/database
    mount: /mnt/synology
    volumes: [postgres, clickhouse, mongodb]
    keep_last: 7
    keep_daily: 14
    keep_weekly: 8
    keep_monthly: 12
    nas_host: nas01.example.com
"""

RETURN = r"""
backup_dir:
  description:
    - "O(path). Not returned as C(path), which Ansible would C(stat) in the module's own process
      after the run, outside every time-out; on a NAS that stopped answering, that blocked the run."
  returned: always
  type: str
  sample: /data/warm-storage/daily-backups
skipped:
  description: True when the NAS or the mount was away or did not answer; nothing was pruned.
  returned: always
  type: bool
  sample: false
kept:
  description: The archives kept, relative to O(path).
  returned: success
  type: list
  elements: str
  sample: [postgres/postgres_20261123T023000Z.tar.zst]
removed:
  description: The archives removed (in check mode, that would be), relative to O(path), oldest first per volume.
  returned: success
  type: list
  elements: str
  sample: [postgres/postgres_20261001T023000Z.tar.zst]
removed_files:
  description: Files removed (archives and their checksum files; in check mode, that would be).
  returned: always
  type: int
  sample: 2
removed_bytes:
  description: Bytes of the files removed (in check mode, that would be).
  returned: always
  type: int
  sample: 1073741824
ignored:
  description: Archive names that are not regular files (symlinks, directories), relative to O(path); never followed, never removed.
  returned: success
  type: list
  elements: str
  sample: []
msg:
  description: A one-line summary, or why nothing was pruned.
  returned: always
  type: str
  sample: removed 1 archive(s) (2 file(s), 1073741824 bytes) below /data/warm-storage/daily-backups; kept 35
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._backup_retention import (
    Pruner,
    RetentionError,
    build_policy,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import DEFAULT_MAX_CLOCK_JUMP_DAYS
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    volumes=dict(type="list", elements="str", required=True),
    mount=dict(type="path", required=True),
    keep_last=dict(type="int", default=0),
    keep_daily=dict(type="int", default=0),
    keep_weekly=dict(type="int", default=0),
    keep_monthly=dict(type="int", default=0),
    max_age=dict(type="str", default=""),
    max_clock_jump_days=dict(type="int", default=DEFAULT_MAX_CLOCK_JUMP_DAYS),
    nas_host=dict(type="str"),
    nas_port=dict(type="int", default=2049),
    probe_timeout=dict(type="float", default=10),
    remove_timeout=dict(type="float", default=300),
)


def run_module(module, pruner_factory):
    try:
        policy = build_policy(module.params)
    except RetentionError as exc:
        fail(module, exc, backup_dir=module.params["path"], skipped=False, removed_files=0, removed_bytes=0)
    pruner = pruner_factory(policy, check_mode=module.check_mode)
    try:
        result = pruner.run()
    except Skipped as exc:
        module.exit_json(
            changed=False,
            skipped=True,
            msg=str(exc),
            backup_dir=policy.path,
            removed_files=0,
            removed_bytes=0,
            removed=[],
        )
    except RetentionError as exc:
        partial = pruner.result
        fail(
            module,
            exc,
            backup_dir=policy.path,
            skipped=False,
            removed=partial["removed"],
            removed_files=partial["removed_files"],
            removed_bytes=partial["removed_bytes"],
        )
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if module._diff and result["changed"]:
        result["diff"] = pruner.diff()
    module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, Pruner)


if __name__ == "__main__":
    main()
