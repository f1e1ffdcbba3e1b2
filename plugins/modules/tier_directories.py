#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tier_directories
short_description: Make directories and set their owner and mode without following a planted symlink
version_added: 0.1.0
description:
  - "Makes each listed directory (and its missing parents, root's with mode C(0755)) and sets its owner, group
    and mode, in one task for the whole list: the tier roles' mount points, service directories and NAS tree."
  - "Unlike M(ansible.builtin.file), which follows a symlink at the path, every path is reached from C(/) one
    component at a time with C(openat(O_NOFOLLOW | O_DIRECTORY)) and owner and mode are set through the opened
    descriptor. A service user that owns a directory cannot make the run change another one (C(/etc)) by
    replacing a sub-directory with a symlink."
  - "A symlink on the way is followed only when it belongs to root and sits in a directory that belongs to root and
    that no group or other may write (only root can have placed it). Any other symlink, or a path that exists and
    is not a directory, fails the task before anything is changed, naming the path."
  - "With O(timeout), the whole run happens in a child process that is killed after that many seconds: a NAS that
    stops answering fails the task, it never hangs it."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be made or changed (owners that do not exist yet are reported, not refused).
  diff_mode:
    support: full
    details: One C(path owner:group mode) line per directory that is made or changed, before and after.
  platform:
    platforms: posix
options:
  directories:
    description: The directories, in the order they are made (a parent before its children).
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: User name or uid.
        type: str
        default: root
      group:
        description: Group name or gid.
        type: str
        default: root
      mode:
        description: Octal mode as a string (C("0750")).
        type: raw
        default: "0755"
  timeout:
    description: Seconds the whole run may take (V(0) for no limit). Set it for directories on a NAS.
    type: float
    default: 0
seealso:
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: The service directories of the hot tier
  jts.tiered_storage.tier_directories:
    directories:
      - {path: /data/nvme/postgres, owner: postgres, group: postgres, mode: "0750"}
      - {path: /data/nvme/postgres/logs, owner: postgres, group: postgres, mode: "0750"}

- name: The NAS tree, never hanging on a NAS that stops answering
  jts.tiered_storage.tier_directories:
    directories:
      - {path: /mnt/synology/trading-storage/archives, mode: "0755"}
    timeout: 10
"""

RETURN = r"""
directories:
  description: Each listed directory with what it needed (in check mode, would need).
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The directory.
      type: str
      sample: /data/nvme/postgres/logs
    state:
      description: C(create) (it was missing), C(change) (owner, group or mode differed) or C(ok).
      type: str
      sample: change
    changes:
      description: Which of C(owner), C(group), C(mode) differed (not returned for C(create)).
      type: list
      elements: str
      sample: [mode]
    before:
      description: Owner, group and mode found (null for C(create)).
      type: dict
      sample: {owner: postgres, group: postgres, mode: "0755"}
    after:
      description: Owner, group and mode wanted.
      type: dict
      sample: {owner: postgres, group: postgres, mode: "0750"}
  sample:
    - path: /data/nvme/postgres/logs
      state: change
      changes: [mode]
      before: {owner: postgres, group: postgres, mode: "0755"}
      after: {owner: postgres, group: postgres, mode: "0750"}
msg:
  description: A one-line summary, or why the task failed.
  returned: always
  type: str
  sample: 1 of 12 directories made or changed
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._directories import run
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail

ARGUMENT_SPEC = dict(
    directories=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            path=dict(type="path", required=True),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            mode=dict(type="raw", default="0755"),
        ),
    ),
    timeout=dict(type="float", default=0),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        outcome = run(module.params["directories"], module.check_mode, module.params["timeout"])
    except (JtsError, OSError) as exc:
        fail(module, exc)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
