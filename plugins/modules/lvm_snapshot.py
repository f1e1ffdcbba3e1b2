#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lvm_snapshot
short_description: LVM snapshot sets with all-or-nothing creation and retention by real creation time
version_added: 0.1.0
description:
  - "Creates, prunes, removes and merges classic (copy-on-write) LVM snapshots taken as a
    B(set): several origin LVs of one VG at once, each named C(<prefix><lv>_<UTC timestamp>),
    for example C(jts_snap_postgres_20261123T013000Z)."
  - "O(state=present): before creating any snapshot the module checks that the VG has free extents
    for the whole set (sizes rounded up to the VG's extent size); if not, it creates none and says how
    much is missing. If one C(lvcreate) fails midway, the snapshots made in this call are removed again."
  - "O(state=pruned): retention over this collection's snapshots only, matched by LVM's C(origin) field
    B(and) the exact name shape C(<prefix><origin>_<YYYYmmddTHHMMSSZ>); any other snapshot is
    someone else's and is never touched. Per origin, newest first by the real creation time
    (LVM's C(lv_time), not the name): keep the newest O(keep), remove those older than O(max_age).
    A snapshot that filled up and became invalid is always removed and reported as a finding."
  - O(state=absent) removes the named snapshots of this collection; O(state=merged) reverts origins to
    snapshots with C(lvconvert --merge) and says when the merge completes only at the next activation.
  - M(jts.tiered_storage.lvm_snapshot_info) lists the snapshots (origin, creation time, fill, validity).
  - Optional O(pre_hook) and O(post_hook) commands (for example a database checkpoint, or a freeze and
    thaw) run just before and after the set is created, each bounded by O(hook_timeout). A failing
    pre-hook means no snapshot; the post-hook runs whenever the pre-hook ran, even when creation failed.
  - "O(consistency) brings the services on the set's LVs to a consistent state before the snapshots and
    releases them after, always (also when a snapshot fails or a SIGTERM, SIGINT or SIGHUP arrives):
    V(postgresql) holds a non-exclusive base backup (C(pg_backup_start), C(pg_start_backup) before 15)
    open on one C(psql) connection across the snapshots and stops it after them; V(fsfreeze) freezes the
    group's mounts with a detached watchdog that thaws them after O(consistency[].freeze_timeout) even
    if the module is killed; V(none) says the group is crash-consistent on purpose. Each origin's result
    (RV(consistency)) says V(application) or V(crash) and why; an origin in no group is V(crash) with the
    reason C(no consistency method configured)."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the snapshots that would be created, removed or merged (with the free-space check) and the consistency each origin would get; runs no hook, connects to no database, freezes nothing and changes nothing.
  diff_mode:
    support: full
    details: The before and after are the names of this collection's snapshots that the call adds or removes.
  platform:
    platforms: posix
requirements:
  - lvm2 2.02.158 or later (JSON report output); coreutils C(timeout) for the hooks.
  - For O(consistency[].method=postgresql), C(psql) and PostgreSQL 10 or later, a role allowed to run the backup functions
    (superuser, or C(pg_backup_start)/C(pg_backup_stop) granted); for V(fsfreeze), util-linux C(fsfreeze).
options:
  vg:
    description: The volume group of the origins and their snapshots.
    type: str
    required: true
  state:
    description:
      - V(present) creates a snapshot set of O(origins).
      - V(pruned) applies retention (O(keep), O(max_age), invalid snapshots) to this collection's snapshots.
      - V(absent) removes the snapshots named in O(names).
      - V(merged) merges the snapshots named in O(names) back into their origins.
    type: str
    choices: [present, pruned, absent, merged]
    default: present
  origins:
    description:
      - The origin LVs. Required with O(state=present), where each needs a O(origins[].size).
      - With O(state=pruned), limits the call to the snapshots of these origins (all origins when empty).
    type: list
    elements: dict
    default: []
    suboptions:
      lv:
        description: Name of the origin LV in O(vg).
        type: str
        required: true
      size:
        description:
          - Copy-on-write space of its snapshot, absolute (V(5G), V(512M)) or a percentage of the origin's size (V(10%)).
          - Rounded up to whole extents of the VG. When the origin changes more than this while the
            snapshot exists, the snapshot becomes invalid.
        type: str
  prefix:
    description:
      - Start of the names of this collection's snapshots; it is what tells them apart from anyone else's.
      - Letters, digits and C(+ _ . -); not starting with C(-), C(snapshot) or C(pvmove).
    type: str
    default: jts_snap_
  keep:
    description:
      - With O(state=pruned), keep the newest this many valid snapshots of each origin and remove the older ones.
      - Unset means no count limit; V(0) removes them all.
    type: int
  max_age:
    description:
      - With O(state=pruned), remove snapshots created longer ago than this (V(7d), V(36h), V(90m), V(2w); a bare number is days).
      - Measured from LVM's C(lv_time). Unset means no age limit.
    type: str
  names:
    description:
      - With O(state=absent) and O(state=merged), the snapshot LV names (without the VG).
      - Each must be a snapshot of this collection (O(prefix) and name shape); names that do not exist are reported for V(absent) and refused for V(merged).
    type: list
    elements: str
    default: []
  pre_hook:
    description:
      - A command (argument list, no shell) run just before the set is created, for example a database checkpoint.
      - A non-zero exit or a time-out means no snapshot is created and the task fails.
    type: list
    elements: str
    default: []
  post_hook:
    description:
      - A command (argument list) run just after the set is created, or after a failed creation was rolled back.
      - When it fails the task fails; snapshots already created are kept and returned in RV(created).
    type: list
    elements: str
    default: []
  hook_timeout:
    description: Seconds each hook may run before it is stopped (SIGTERM, then SIGKILL 10 s later) and counted as failed.
    type: int
    default: 300
  consistency:
    description:
      - Groups of origins of the set and how each group is made consistent across the snapshots (only with O(state=present)).
      - The groups are brought to their consistent state in order (after O(pre_hook)), then every snapshot is created,
        then each group is released (before O(post_hook)). When one group cannot be brought to its state, those before
        it are released and no snapshot is created. When a snapshot fails, every group is released
        (a PostgreSQL backup aborted, the mounts thawed) and the set rolled back.
      - A release that goes wrong after a complete set (C(pg_backup_stop) failing, the WAL not copied, the set taking
        longer than the freeze bound) keeps the snapshots, reports the group as V(crash) with the reason and adds a
        warning to RV(findings).
    type: list
    elements: dict
    default: []
    suboptions:
      origins:
        description: LVs of O(origins) in this group; an LV may be in one group only.
        type: list
        elements: str
        required: true
      method:
        description:
          - V(postgresql) holds a non-exclusive PostgreSQL base backup open on one connection across the snapshots
            (fast checkpoint at the start); RV(consistency) then carries the C(backup_label), C(tablespace_map) and WAL
            range a restore needs.
          - V(fsfreeze) runs C(fsfreeze -f) on each of O(consistency[].mounts) before the snapshots and C(fsfreeze -u) after.
            Refused on Linux before 6.8, which cannot snapshot a frozen LV (see the notes).
          - V(none) records the group as crash-consistent on purpose (with O(consistency[].reason)).
        type: str
        choices: [postgresql, fsfreeze, none]
        required: true
      mounts:
        description:
          - Mount points of the group's LVs (absolute). Required for V(fsfreeze) (all are frozen; C(/) is refused).
          - For V(postgresql), used to give PostgreSQL's C(data_directory) relative to the mount point that holds it;
            nothing is frozen.
        type: list
        elements: str
        default: []
      freeze_timeout:
        description:
          - With V(fsfreeze), seconds after which a detached watchdog process (its own session, started before the first
            freeze) thaws every mount of the group, even if the module or the controller died. A set that takes longer is
            reported as V(crash).
        type: int
        default: 60
      reason:
        description: With V(none), the reason recorded in RV(consistency).
        type: str
      database:
        description: With V(postgresql), the database to connect to.
        type: str
        default: postgres
      host:
        description: With V(postgresql), host name or socket directory; the default local socket when unset.
        type: str
      port:
        description: With V(postgresql), the server's port.
        type: int
        default: 5432
      user:
        description: With V(postgresql), the role (superuser or granted the backup functions).
        type: str
      password:
        description: With V(postgresql), the role's password, passed to C(psql) in C(PGPASSWORD) only.
        type: str
      passfile:
        description: With V(postgresql), a libpq password file (C(PGPASSFILE)).
        type: path
      os_user:
        description: With V(postgresql), run C(psql) as this OS user (for example V(postgres), for peer authentication).
        type: str
      connect_timeout:
        description: With V(postgresql), seconds to wait for the connection.
        type: int
        default: 10
      statement_timeout:
        description:
          - With V(postgresql), seconds to wait for the answer to each statement (the start includes a checkpoint).
          - The server itself runs the session without a statement time-out.
        type: int
        default: 300
      psql:
        description: With V(postgresql), the C(psql) to run (default C(psql) from the PATH).
        type: path
      label:
        description: "With V(postgresql), the backup label (letters, digits and C(_ . : + -))."
        type: str
        default: jts_lvm_snapshot
      wal_dest:
        description:
          - With V(postgresql), an existing, empty directory (checked before the backup starts) where the WAL segments
            from the backup's start to its stop are copied right after C(pg_backup_stop) (from the live C(pg_wal),
            before a checkpoint can recycle them). Files are never overwritten.
          - Required unless O(consistency[].wal_from_archive=true). A C(backup_label) without that WAL makes the
            restored cluster refuse to start (C(WAL ends before end of online backup)).
        type: path
      wal_from_archive:
        description:
          - With V(postgresql) and no O(consistency[].wal_dest), say that the server archives its WAL (C(archive_mode))
            and a restore fetches the segments from there (C(restore_command)).
        type: bool
        default: false
notes:
  - Only classic copy-on-write snapshots are handled; thin LVs are refused as origins.
  - The snapshots of a set are created one after the other; use O(consistency) (or O(pre_hook) and
    O(post_hook)) for a consistent point.
  - "C(pg_backup_stop) is called with C(wait_for_archive=false): the WAL of the backup is copied to
    O(consistency[].wal_dest) by the module, and waiting for archiving would hang on a server without
    C(archive_mode)."
  - A non-exclusive PostgreSQL backup belongs to its connection; when the module is killed, C(psql) reads end-of-file on
    its standard input and exits, the connection closes and the server aborts the backup (it logs
    C(aborting backup due to backend exiting before pg_backup_stop was called)).
  - "V(fsfreeze) and LVM: C(lvcreate) suspends the origin's device, which freezes its filesystem, while V(fsfreeze)
    holds a freeze already. Linux before 6.8 refuses the second freeze: on the lab VM (Debian 12, Linux 6.1) the
    suspend failed with C(Device or resource busy), C(lvcreate) stopped with C(Manual intervention required) and left
    a half-made LV. V(fsfreeze) is therefore refused on such a kernel before anything is frozen or created (in
    check mode too), naming the alternatives; each snapshot is filesystem-consistent on its own anyway (the
    suspend's own freeze). From 6.8 on (nested freezes of a block device) it is allowed but not yet proven here: prove it on the
    target kernel before relying on it."
  - A failing C(lvcreate) is handled. The groups are released (thawed, the backup aborted) and the snapshots of the
    call rolled back, including an LV a failed C(lvcreate) left behind under this call's name.
  - Findings (RV(findings)) are meant for the lifecycle's alerting; invalid snapshots are also warnings.
seealso:
  - name: lvm_snapshot guide
    description: Parameters by example, retention semantics, the backup step and the restore procedure.
    link: https://github.com/jts/tiered_storage/blob/main/docs/lvm_snapshot.md
  - module: jts.tiered_storage.lvm_snapshot_info
  - module: community.general.lvol
"""

EXAMPLES = r"""
- name: Take the daily snapshot set, with a checkpoint just before
  jts.tiered_storage.lvm_snapshot:
    vg: vg_jts
    origins:
      - {lv: postgres, size: 5G}
      - {lv: clickhouse, size: 10G}
      - {lv: mongodb, size: 2%}
    pre_hook: [/usr/bin/psql, -U, postgres, -c, CHECKPOINT]
    hook_timeout: 120
  register: snapset

- name: Application-consistent set - PostgreSQL backup held across it, ClickHouse and MongoDB frozen
  jts.tiered_storage.lvm_snapshot:
    vg: vg_jts
    origins:
      - {lv: postgres, size: 5G}
      - {lv: clickhouse, size: 10G}
      - {lv: mongodb, size: 2%}
    consistency:
      - origins: [postgres]
        method: postgresql
        os_user: postgres
        mounts: [/var/lib/postgresql]
        wal_dest: /data/warm-storage/daily-backups/postgres/.wal-20261123T023000Z
      - origins: [clickhouse, mongodb]
        method: fsfreeze
        mounts: [/var/lib/clickhouse, /var/lib/mongodb]
        freeze_timeout: 30
  register: snapset
  # snapset.consistency.postgres.backup_label goes into the archive as <data_directory>/backup_label

- name: Keep the newest 3 per origin and nothing older than 7 days; drop invalid ones
  jts.tiered_storage.lvm_snapshot:
    vg: vg_jts
    state: pruned
    keep: 3
    max_age: 7d
  register: pruned

- name: Remove the set taken above
  jts.tiered_storage.lvm_snapshot:
    vg: vg_jts
    state: absent
    names: "{{ snapset.created | map(attribute='name') | list }}"

- name: Revert postgres to a snapshot (completes at the next activation if it is mounted)
  jts.tiered_storage.lvm_snapshot:
    vg: vg_jts
    state: merged
    names: [jts_snap_postgres_20261123T013000Z]
"""

RETURN = r"""
vg:
  description: The VG.
  returned: always
  type: str
  sample: vg_jts
created:
  description:
    - The snapshots created (in check mode, that would be); after a failed creation, those that could not be rolled back.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{"name": "jts_snap_postgres_20261123T013000Z", "vg": "vg_jts", "origin": "postgres",
            "path": "/dev/vg_jts/jts_snap_postgres_20261123T013000Z", "extents": 1280,
            "size_bytes": 5368709120, "timestamp": "20261123T013000Z"}]
rolled_back:
  description: Snapshots created in this call and removed again because a later C(lvcreate) failed.
  returned: when a creation failed midway
  type: list
  elements: dict
  sample: []
vg_free_bytes:
  description: Free bytes in the VG before the set was created.
  returned: when O(state=present)
  type: int
  sample: 42949672960
needed_bytes:
  description: Bytes the whole set needs (extent-rounded).
  returned: when O(state=present)
  type: int
  sample: 18253611008
missing_bytes:
  description: Bytes the VG lacks for the set (0 when it fits).
  returned: when O(state=present)
  type: int
  sample: 0
hooks:
  description: The hooks run, each with C(cmd), C(rc), C(stdout) and C(stderr).
  returned: when O(state=present) and not in check mode
  type: dict
  sample: {"pre": {"cmd": ["/usr/bin/sync"], "rc": 0, "stdout": "", "stderr": ""}}
removed:
  description: Snapshots removed (in check mode, that would be), each with the fields of M(jts.tiered_storage.lvm_snapshot_info)'s snapshots and a C(reason).
  returned: when O(state=pruned) or O(state=absent)
  type: list
  elements: dict
  sample: [{"name": "jts_snap_postgres_20261115T013000Z", "origin": "postgres", "reason": "older than 604800s (created 2026-11-15T01:30:00Z)"}]
kept:
  description: This collection's snapshots that retention keeps, each with a C(reason).
  returned: when O(state=pruned)
  type: list
  elements: dict
  sample: [{"name": "jts_snap_postgres_20261123T013000Z", "origin": "postgres", "reason": "kept"}]
not_found:
  description: Names given to O(state=absent) that do not exist (nothing to do for them).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: []
foreign_skipped:
  description: Snapshots of the origins in scope that are not this collection's and were left alone.
  returned: when O(state=pruned)
  type: int
  sample: 1
findings:
  description:
    - Problems to alert on, each with C(severity) (V(warning) or V(critical)), C(vg), C(lv), C(origin) and C(message).
    - With O(state=present), a consistency group that ended V(crash) after a complete set (for example C(pg_backup_stop) failed).
  returned: when O(state=pruned), or O(state=present) and not in check mode
  type: list
  elements: dict
  sample: [{"severity": "critical", "vg": "vg_jts", "lv": "jts_snap_mongodb_20261122T013000Z", "origin": "mongodb",
            "message": "snapshot vg_jts/jts_snap_mongodb_20261122T013000Z of mongodb filled up and became invalid; it is removed"}]
merges:
  description: Per snapshot merged, C(name), C(origin), C(started), C(deferred) (completes at the next activation) and C(message).
  returned: when O(state=merged)
  type: list
  elements: dict
  sample: [{"name": "jts_snap_postgres_20261123T013000Z", "origin": "postgres", "started": true, "deferred": true,
            "message": "merging ... completes only at the next activation of vg_jts/postgres ..."}]
merge_deferred:
  description: True when at least one merge completes only at the next activation of its origin.
  returned: when O(state=merged)
  type: bool
  sample: true
consistency:
  description:
    - Per origin of the set, C(mode) (V(application) or V(crash)), C(method) (V(postgresql), V(fsfreeze) or V(none)),
      C(reason), C(origins) (the group), and C(backup_label), C(tablespace_map), C(start_lsn), C(stop_lsn),
      C(data_directory) (PostgreSQL's data directory relative to the mount point in O(consistency[].mounts) that
      holds it; null when none does), all null except for a held PostgreSQL backup.
    - For V(postgresql) also C(start_wal), C(stop_wal), C(wal_files) (copied to C(wal_dest)), C(wal_dest) and
      C(data_directory_absolute); for V(fsfreeze) also C(mounts) and C(frozen_seconds).
    - In check mode, what a run would aim at (no LSN, no label). The same dict is in each item of RV(created).
  returned: when O(state=present)
  type: dict
  sample: {"postgres": {"mode": "application", "method": "postgresql", "origins": ["postgres"],
           "reason": "non-exclusive backup held on one connection across the snapshots (0/2000028 to 0/3000100); restore: ...",
           "backup_label": "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n...",
           "tablespace_map": "", "start_lsn": "0/2000028", "stop_lsn": "0/3000100", "data_directory": "15/main",
           "data_directory_absolute": "/var/lib/postgresql/15/main", "start_wal": "000000010000000000000002",
           "stop_wal": "000000010000000000000003", "wal_dest": "/data/warm-storage/daily-backups/postgres/.wal-x",
           "wal_files": ["000000010000000000000002", "000000010000000000000003"]},
           "clickhouse": {"mode": "crash", "method": "none", "reason": "no consistency method configured",
           "backup_label": null, "tablespace_map": null, "start_lsn": null, "stop_lsn": null, "data_directory": null}}
msg:
  description: A one-line summary.
  returned: when O(state=present), O(state=pruned) or O(state=merged)
  type: str
  sample: created 3 snapshot(s) in VG vg_jts
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot import (
    SnapshotManager,
    diff_of,
    run_state,
    run_task,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import CONNECTION_SPEC

ARGUMENT_SPEC = dict(
    vg=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "pruned", "absent", "merged"], default="present"),
    origins=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(lv=dict(type="str", required=True), size=dict(type="str")),
    ),
    prefix=dict(type="str", default="jts_snap_"),
    keep=dict(type="int"),
    max_age=dict(type="str"),
    names=dict(type="list", elements="str", default=[]),
    pre_hook=dict(type="list", elements="str", default=[]),
    post_hook=dict(type="list", elements="str", default=[]),
    hook_timeout=dict(type="int", default=300),
    consistency=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            origins=dict(type="list", elements="str", required=True),
            method=dict(type="str", choices=["postgresql", "fsfreeze", "none"], required=True),
            mounts=dict(type="list", elements="str", default=[]),
            freeze_timeout=dict(type="int", default=60),
            reason=dict(type="str"),
            database=dict(type="str", default="postgres"),
            **CONNECTION_SPEC,
            statement_timeout=dict(type="int", default=300),
            psql=dict(type="path"),
            label=dict(type="str", default="jts_lvm_snapshot"),
            wal_dest=dict(type="path"),
            wal_from_archive=dict(type="bool", default=False),
        ),
    ),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = run_task(module, SnapshotManager(module, now=time.time()), run_state)
    if module._diff and result.get("changed"):
        result["diff"] = diff_of(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
