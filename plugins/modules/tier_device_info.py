#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tier_device_info
short_description: Read what a tier's device holds (signatures, blank or not, its VG and LVs) before anything changes
version_added: 0.1.0
description:
  - "Reads, in one call, what the hot and warm tier roles need to decide whether a device or a logical volume may
    be formatted: the signatures C(wipefs --json) finds on O(device) and its size; with O(vg), the VG of the PV on
    O(device) (C(pvs)), the VG's extents (C(vgs)), its logical volumes without the snapshots (C(lvs)) and the
    signatures on those listed in O(volumes)."
  - "Where C(wipefs) finds nothing (on O(device) when it is not a PV of O(vg), on a listed LV that exists), the
    content may still be data no probe knows (raw data, a damaged superblock): the first and the last MiB, the MiB
    at 64 MiB and seven MiBs spread over it are compared with zeros, and the offsets that are not blank are
    returned in RV(nonzero)."
  - "Fails when C(wipefs), or C(vgs) or C(lvs) of O(vg), fail for any other reason than a VG that does not exist
    (a lock, a metadata error): a VG whose logical volumes cannot be listed is never reported as one without any, since
    those would then go unchecked. C(pvs) failing is returned (RV(device.pvs_rc)), not an error: a device that is no
    PV makes it fail."
  - Changes nothing; the decisions (refuse, format, wipe) are the roles'.
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  device:
    description: The tier's block device (a stable path such as C(/dev/disk/by-id/...)).
    type: path
    required: true
  vg:
    description: The volume group the hot tier builds on O(device); leave unset for a device without LVM (the warm tier).
    type: str
  volumes:
    description: Names of the LVs of O(vg) whose signatures and content are read (the inventory's LVs); others are only listed.
    type: list
    elements: str
    default: []
  mount_points:
    description:
      - "Where the role will mount which device (an LV path, or O(device)). Each is read before anything is mounted, in
        RV(mount_points): already this device's mount, another mount in the way, or a directory whose entries the mount
        would hide (data a service wrote there before the tier existed, then missed by every backup of the tier)."
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The mount point (absolute).
        type: path
        required: true
      device:
        description: The block device to be mounted there (it need not exist yet).
        type: path
        required: true
requirements:
  - wipefs (util-linux); pvs, vgs and lvs (lvm2) with O(vg)
seealso:
  - module: jts.tiered_storage.lvm_snapshot_info
"""

EXAMPLES = r"""
- name: Read the hot tier device, its VG and LVs
  jts.tiered_storage.tier_device_info:
    device: /dev/disk/by-id/nvme-Samsung_SSD_990_PRO_2TB
    vg: vg_trading
    volumes: [postgres, clickhouse, kafka]
    mount_points:
      - {path: /data/nvme/postgres, device: /dev/vg_trading/postgres}
  register: hot

- name: Read the warm tier device
  jts.tiered_storage.tier_device_info:
    device: /dev/disk/by-id/ata-ST4000DM004
  register: warm
"""

RETURN = r"""
device:
  description: O(device) and what it holds.
  returned: always
  type: dict
  contains:
    path:
      description: O(device).
      type: str
      sample: /dev/nvme0n1
    exists:
      description: False when O(device) does not exist; nothing else is then returned.
      type: bool
      sample: true
    size:
      description: Size in bytes.
      type: int
      sample: 2000398934016
    signatures:
      description: What C(wipefs --json) reports, one dict per signature (C(device), C(offset), C(type), C(uuid), C(label)).
      type: list
      elements: dict
      sample: [{device: nvme0n1, offset: "0x218", type: LVM2_member, uuid: "zQ1x-...", label: null}]
    vg:
      description: With O(vg), the VG of the PV on O(device) (empty when it is no PV, or when C(pvs) cannot read it).
      type: str
      sample: vg_trading
    pvs_rc:
      description: With O(vg), C(pvs)' exit code (non-zero for a device that is no PV, or a PV it cannot read).
      type: int
      sample: 0
    pvs_error:
      description: With O(vg), C(pvs)' message when it failed.
      type: str
      sample: ""
vg:
  description: With O(vg), the VG's extent size in bytes, extent count and free extents; null when it does not exist.
  returned: when O(device) exists
  type: dict
  sample: {vg_extent_size: 4194304, vg_extent_count: 476932, vg_free_count: 23846}
lvs:
  description: With O(vg), each logical volume that is not a snapshot, with its size in bytes.
  returned: when O(device) exists
  type: dict
  sample: {postgres: 858993459200, clickhouse: 536870912000}
lv_signatures:
  description: Signature types on each LV of O(volumes) that exists and holds one (an LV that holds nothing is absent).
  returned: when O(device) exists
  type: dict
  sample: {postgres: [ext4], clickhouse: [xfs]}
nonzero:
  description: The device or LV paths without a signature whose sampled MiBs are not all zeros, with those offsets.
  returned: when O(device) exists
  type: dict
  sample: {/dev/vg_trading/kafka: [0, 67108864]}
mount_points:
  description: Per path of O(mount_points), what is there now.
  returned: always
  type: dict
  sample:
    /data/nvme/postgres:
      {path: /data/nvme/postgres, real: /data/nvme/postgres, exists: true, directory: true, mounted: false, source: null,
       same_device: false, entries: 2, names: ["15", .psql_history]}
  contains:
    real:
      description: The path with its symlinks resolved, as mount(8) resolves them (the directory that would be hidden).
      type: str
    exists:
      description: Whether the path exists (symlinks followed).
      type: bool
    directory:
      description: Whether it is a directory (absent when it does not exist).
      type: bool
    mounted:
      description: Whether something is mounted there.
      type: bool
    source:
      description: What is mounted there (the mount table's source), or null.
      type: str
    same_device:
      description: Whether what is mounted there is the O(mount_points[].device) (by device number).
      type: bool
    entries:
      description: How many names the unmounted directory holds (0 when mounted or absent).
      type: int
    names:
      description: The first five of them, sorted.
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._device_info import DeviceReader
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import LVM_ENVIRON
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import mount_point_state, read_mounts

ARGUMENT_SPEC = dict(
    device=dict(type="path", required=True),
    vg=dict(type="str"),
    volumes=dict(type="list", elements="str", default=[]),
    mount_points=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(path=dict(type="path", required=True), device=dict(type="path", required=True)),
    ),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    tools = {"wipefs": module.get_bin_path("wipefs", required=True)}
    if params["vg"]:
        tools.update((name, module.get_bin_path(name, required=True)) for name in ("pvs", "vgs", "lvs"))

    def run(argv):
        return module.run_command(argv, environ_update=LVM_ENVIRON)

    try:
        info = DeviceReader(run, tools).read(params["device"], params["vg"], params["volumes"])
        mounts = read_mounts() if params["mount_points"] else []
        info["mount_points"] = {
            point["path"]: mount_point_state(point["path"], point["device"], mounts) for point in params["mount_points"]
        }
    except (JtsError, OSError) as exc:
        fail(module, exc)
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
