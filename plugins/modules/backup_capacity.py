#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_capacity
short_description: Say which backup archives fit on a tier without passing its critical threshold
version_added: 0.1.0
description:
  - "Before the backup step writes its archives, estimates each one's size from the tree it archives (a mounted
    snapshot) and checks that the tier holding O(path) stays below O(critical) percent used with it, counted as
    storage_health counts it (C(df): used / (used + available)). The archives are taken in the order of
    O(names) and the estimates of those that fit add up, so the check holds for all of them written one after
    the other."
  - "The estimate is the size of the tar stream (each regular file's data, the allocated part of a sparse one,
    rounded up to 512 bytes, one 512-byte header per entry, 10 KiB at the end) times O(estimate_ratio), plus
    zstd's worst case on data it cannot compress (1/256 more) and 64 KiB. With O(estimate_ratio) V(1.0) it is
    above what C(tar | zstd) can write. The tree is walked without following symlinks and without leaving its
    filesystem, as C(tar --one-file-system) archives it."
  - "It only reads: a source that does not fit is listed in RV(refused) with a message naming it, the figures and
    O(threshold_name); the caller decides (the lifecycle's backup step writes the others and fails the step)."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; the same answer as a real run.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  path:
    description: Where the archives will be written (a directory on the tier).
    type: path
    required: true
  source_dir:
    description: The directory holding the trees to archive, one sub-directory per name (the snapshots' mount points).
    type: path
    required: true
  names:
    description: The trees to archive (C(<source_dir>/<name>), the LVs), in the order they will be written.
    type: list
    elements: str
    required: true
  critical:
    description: The tier's critical used percentage (the health step's); an archive that would bring it there or above is refused.
    type: float
    required: true
  estimate_ratio:
    description:
      - The archive's expected size as a share of the tar stream. V(1.0) (no compression counted) never
        under-estimates; a lower ratio (what zstd achieved on these trees) lets a fuller tier take archives and is
        only as safe as the data stays as compressible.
    type: float
    default: 1.0
  threshold_name:
    description: What the critical threshold is called where the user sets it (a variable), named in the messages.
    type: str
    default: critical
  probe_timeout:
    description: Seconds for the statvfs of O(path).
    type: float
    default: 10
seealso:
  - module: jts.tiered_storage.backup_retention
  - module: jts.tiered_storage.snapshot_archive
  - module: jts.tiered_storage.storage_health
"""

EXAMPLES = r"""
- name: Check that the warm tier takes tonight's archives
  jts.tiered_storage.backup_capacity:
    path: /data/warm-storage/daily-backups
    source_dir: /run/jts-backup
    names: [postgres, mongodb]
    critical: 90
    threshold_name: lifecycle_backup_warm_critical
  register: room
"""

RETURN = r"""
fits:
  description: The names whose archives fit, in order.
  returned: always
  type: list
  elements: str
  sample: [postgres]
refused:
  description: The names whose archives would pass the threshold, each with the figures and a message.
  returned: always
  type: list
  elements: dict
  sample:
    - name: mongodb
      estimate_bytes: 53687091200
      used_bytes: 1932735283200
      usable_bytes: 2147483648000
      percent_after: 92.5
      fits: false
      msg: "mongodb: archive refused: ..."
checks:
  description: Every name's figures (name, estimate_bytes, tar_bytes, entries, used_bytes, usable_bytes, percent_after, fits).
  returned: always
  type: list
  elements: dict
msg:
  description: A one-line summary.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._backup_capacity import (
    capacity,
    estimate_bytes,
    refusal,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    statvfs_with_timeout,
)

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    source_dir=dict(type="path", required=True),
    names=dict(type="list", elements="str", required=True),
    critical=dict(type="float", required=True),
    estimate_ratio=dict(type="float", default=1.0),
    threshold_name=dict(type="str", default="critical"),
    probe_timeout=dict(type="float", default=10),
)


def run_module(module, statvfs, estimate):
    p = module.params
    if not 0 < p["critical"] <= 100:
        fail(module, JtsError("critical must lie in 0..100 (got %g)" % p["critical"]))
    if not 0 < p["estimate_ratio"] <= 2:
        fail(module, JtsError("estimate_ratio must lie in 0..2 (got %g)" % p["estimate_ratio"]))
    try:
        usage = statvfs(p["path"], p["probe_timeout"])
    except ProbeTimeout:
        fail(module, JtsError("%s did not answer within %gs; no archive checked" % (p["path"], p["probe_timeout"])))
    except OSError as exc:
        fail(module, JtsError("%s: %s; no archive checked" % (p["path"], exc.strerror or exc)))
    sizes = []
    for name in p["names"]:
        if not name or "/" in name or name in (".", ".."):
            fail(module, JtsError("names: %r is not one directory name" % (name,)))
        tree = os.path.join(p["source_dir"], name)
        try:
            sizes.append((name, *estimate(tree, p["estimate_ratio"])))
        except OSError as exc:
            fail(module, JtsError("%s: cannot measure %s: %s" % (name, exc.filename or tree, exc.strerror or exc)))
    checks = capacity(usage, [(name, size) for name, size, _tar, _entries in sizes], p["critical"])
    for check, (_name, _size, tar_bytes, entries) in zip(checks, sizes):
        check["tar_bytes"] = tar_bytes
        check["entries"] = entries
    refused = []
    for check in checks:
        if not check["fits"]:
            refused.append(dict(check, msg=refusal(check, p["path"], p["critical"], p["threshold_name"])))
    fits = [c["name"] for c in checks if c["fits"]]
    msg = "%d archive(s) fit below %g%%" % (len(fits), p["critical"])
    if refused:
        msg += "; refused: " + "; ".join(r["msg"] for r in refused)
    module.exit_json(changed=False, fits=fits, refused=refused, checks=checks, msg=msg)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, statvfs_with_timeout, estimate_bytes)


if __name__ == "__main__":
    main()
