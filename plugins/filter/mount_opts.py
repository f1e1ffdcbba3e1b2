# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare the mount options an inventory asks for with the ones the kernel reports.

ansible.posix.mount rewrites fstab but leaves a live mount alone when fstab already matches
(an earlier run was interrupted, or somebody edited fstab by hand): the roles read the kernel's
view (/proc/self/mountinfo through findmnt) and remount when a wanted option is missing from it.
Options the kernel never reports (fstab-only ones such as ``_netdev``, ``nofail``, ``x-*``, and
defaults it does not echo such as ext4's ``data=ordered``) are left out of the comparison, or
the roles would remount on every run.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import (
    is_userspace,
    options_missing,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import (
    split_options as _split,
)


def split_options(value, what="mount options"):
    """``'a,b=1'`` or ``['a', 'b=1']`` -> ``['a', 'b=1']`` (empty items dropped)."""
    try:
        return _split(value, what)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def mount_options_missing(wanted, live, ignore=None):
    """Options of ``wanted`` the kernel should report but ``live`` lacks, in ``wanted``'s order."""
    return options_missing(
        split_options(wanted, "wanted"), split_options(live, "live"), split_options(ignore, "ignore")
    )


def mounts_to_remount(volumes, filesystems, ignore=None, target_key="mount", opts_key="mount_opts"):
    """Return ``[{"target", "opts", "missing"}]`` (``opts``: the kernel options to remount with) for each mounted volume whose live options lack a wanted one.

    ``volumes`` are dicts holding ``target_key`` and ``opts_key``; ``filesystems`` is findmnt's
    ``--json`` list (``target`` and ``options``). A volume that is not mounted is not listed: the
    mount task mounts it with the fstab options.
    """
    live = {}
    for entry in filesystems or []:
        live[entry.get("target")] = entry.get("options", "")
    result = []
    for volume in volumes or []:
        target = volume.get(target_key)
        if target not in live:
            continue
        missing = mount_options_missing(volume.get(opts_key), live[target], ignore)
        if missing:
            opts = ",".join(o for o in split_options(volume.get(opts_key)) if not is_userspace(o))
            result.append({"target": target, "opts": opts, "missing": missing})
    return result


class FilterModule:
    def filters(self):
        return {"mount_options_missing": mount_options_missing, "mounts_to_remount": mounts_to_remount}
