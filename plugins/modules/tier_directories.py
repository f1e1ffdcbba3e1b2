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
  - "Makes each listed directory and sets its owner, group and mode, in one task for the whole list: the tier
    roles' mount points, service directories and NAS tree. A missing parent of a listed directory is made too,
    owned by the user and group the module runs as (C(root:root) under become) with mode C(0755) whatever the
    umask, and is returned in RV(parents) and the diff."
  - "Unlike M(ansible.builtin.file), which follows a symlink at the path, every path is reached from C(/) one
    component at a time with C(openat(O_NOFOLLOW | O_DIRECTORY)) and owner and mode are set through the opened
    descriptor. A service user that owns a directory cannot make the run change another one (C(/etc)) by
    replacing a sub-directory with a symlink."
  - "A symlink on the way is followed only when only root can have placed it: it belongs to root, sits in a
    directory that belongs to root and that no group or other may write, and every directory the walk passed
    before it belongs to root and is writable by root alone (or has the sticky bit, as C(/tmp)). Past a directory
    that a user owns or may write, that user can move root's directories and links into the path, so no symlink
    is followed there. Any other symlink, or a path that exists and is not a directory, fails the task before
    anything is changed, naming the path."
  - "A symlink that appears after the task has read the list and before it is done fails the task at that
    directory; the message and RV(made_or_changed) say which directories were already made or changed."
  - "A path with a NUL byte or a C(..) component, an owner or group with a NUL byte or a number that is no id
    (above 4294967294), and an O(directories[].mode) that is no mode fail the task before anything is changed."
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
    details:
      - One C(path owner:group mode) line per directory that is made or changed, before and after; the missing
        parents made on the way come last.
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
        description:
          - Absolute path of the directory, without C(..) components (C(//data/x) and C(/data/./x/) are C(/data/x)).
        type: path
        required: true
      owner:
        description: User name or uid (0 to 4294967294).
        type: str
        default: root
      group:
        description: Group name or gid (0 to 4294967294).
        type: str
        default: root
      mode:
        description:
          - Octal mode as a string (C("0750") or C("750")); quote it.
          - "A number is taken as YAML gives it, as M(ansible.builtin.file) does: an unquoted C(0750) is octal. A
            number that can only be a mode written without its leading zero fails the task: an unquoted C(750) is
            the decimal 750 (mode C(01356)), so three octal digits from C(512) to C(777), or a number that would set
            the setuid bit, are refused."
        type: raw
        default: "0755"
  timeout:
    description:
      - Seconds the whole run may take (V(0) for no limit). Set it for directories on a NAS.
      - A negative, infinite or NaN value fails the task.
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
parents:
  description:
    - The missing parents of the listed directories that were made (in check mode, would be made), in the order
      they were made; each is owned by the module's user and group (C(root:root)) with mode C(0755).
    - A listed directory is never in this list.
  returned: success
  type: list
  elements: str
  sample: [/data/nvme]
made_or_changed:
  description:
    - The directories (missing parents included) made or changed before the task failed, in order.
    - When returned, C(changed) is true.
  returned: when the task fails after it made or changed a directory
  type: list
  elements: str
  sample: [/data/nvme/postgres]
msg:
  description:
    - A one-line summary (C(N of M directories made or changed), then C(and K missing parents made) when some
      were), or why the task failed; a failure ends with what was made or changed before it, or C(Nothing was
      changed.).
  returned: always
  type: str
  sample: 1 of 12 directories made or changed
directory:
  description: The listed directory the failure is about (not C(path), which Ansible would stat).
  returned: failure, when it is about one directory
  type: str
  sample: /data/nvme/postgres/logs
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
