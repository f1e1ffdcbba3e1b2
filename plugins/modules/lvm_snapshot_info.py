#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lvm_snapshot_info
short_description: List the LVM snapshots of a VG with creation time, fill and validity
version_added: 0.1.0
description:
  - Returns every classic snapshot of O(vg) (optionally only those of O(origins)) with its origin,
    creation time (ISO 8601 in UTC and epoch seconds, from LVM's C(lv_time)), size, fill percentage,
    validity and whether it is one of this collection's (O(prefix), origin and name shape), read from
    LVM's JSON report.
  - Invalid snapshots (filled up) are also returned as RV(findings) and warnings.
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: This module does not change anything.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - lvm2 2.02.158 or later (JSON report output).
options:
  vg:
    description: The volume group.
    type: str
    required: true
  origins:
    description: Only the snapshots of these origin LVs (all when empty).
    type: list
    elements: str
    default: []
  prefix:
    description: The prefix of this collection's snapshots, for RV(snapshots[].managed).
    type: str
    default: jts_snap_
seealso:
  - module: jts.tiered_storage.lvm_snapshot
  - name: lvm_snapshot guide
    description: Parameters by example, retention semantics, the backup step and the restore procedure.
    link: https://github.com/jts/tiered_storage/blob/main/docs/lvm_snapshot.md
"""

EXAMPLES = r"""
- name: List the snapshots of vg_jts
  jts.tiered_storage.lvm_snapshot_info:
    vg: vg_jts
  register: snaps

- name: Show the ones that filled up
  ansible.builtin.debug:
    msg: "{{ snaps.snapshots | rejectattr('valid') | map(attribute='name') | list }}"

- name: Snapshots of postgres only
  jts.tiered_storage.lvm_snapshot_info:
    vg: vg_jts
    origins: [postgres]
"""

RETURN = r"""
vg:
  description: The VG.
  returned: always
  type: str
  sample: vg_jts
snapshots:
  description: Every snapshot of the VG (of O(origins) when given; someone else's too), sorted by origin and creation time.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: LV name of the snapshot.
      type: str
    vg:
      description: Its VG.
      type: str
    path:
      description: Its device path.
      type: str
    origin:
      description: The origin LV.
      type: str
    lv_attr:
      description: LVM's attribute string.
      type: str
    size_bytes:
      description: Copy-on-write space allocated.
      type: int
    origin_size_bytes:
      description: Size of the origin.
      type: int
    data_percent:
      description: How full the copy-on-write space is (100 when invalid); null when LVM does not say.
      type: float
    valid:
      description: False when the snapshot filled up and became invalid.
      type: bool
    merging:
      description: True while it is being merged into its origin.
      type: bool
    created:
      description: Creation time, ISO 8601 in UTC.
      type: str
    created_epoch:
      description: Creation time, seconds since the epoch.
      type: int
    age_seconds:
      description: Seconds since creation.
      type: int
    lv_time:
      description: Creation time as LVM printed it.
      type: str
    managed:
      description: True when it is a snapshot of this collection (O(prefix), origin and name shape).
      type: bool
  sample: [{"name": "jts_snap_postgres_20261123T013000Z", "vg": "vg_jts", "origin": "postgres",
            "path": "/dev/vg_jts/jts_snap_postgres_20261123T013000Z", "lv_attr": "swi-a-s---",
            "size_bytes": 5368709120, "origin_size_bytes": 858993459200, "data_percent": 0.52,
            "valid": true, "merging": false, "created": "2026-11-23T01:30:00Z", "created_epoch": 1795397400,
            "age_seconds": 3600, "lv_time": "2026-11-23 01:30:00 +0000", "managed": true}]
findings:
  description: One per invalid snapshot, with C(severity) (V(critical)), C(vg), C(lv), C(origin) and C(message).
  returned: success
  type: list
  elements: dict
  sample: [{"severity": "critical", "vg": "vg_jts", "lv": "jts_snap_mongodb_20261122T013000Z", "origin": "mongodb",
            "message": "snapshot vg_jts/jts_snap_mongodb_20261122T013000Z of mongodb is invalid (filled up)"}]
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot import (
    SnapshotManager,
    list_snapshots,
    run_task,
)

ARGUMENT_SPEC = dict(
    vg=dict(type="str", required=True),
    origins=dict(type="list", elements="str", default=[]),
    prefix=dict(type="str", default="jts_snap_"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run_task(module, SnapshotManager(module, now=time.time()), list_snapshots))


if __name__ == "__main__":
    main()
