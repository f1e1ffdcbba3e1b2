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

# Read by mount(8) or systemd, never passed to the kernel, so never in /proc/mounts.
USERSPACE_OPTIONS = frozenset(
    ["_netdev", "nofail", "auto", "noauto", "defaults", "user", "nouser", "users", "owner", "group", "bg", "fg"]
)
USERSPACE_PREFIXES = ("x-", "comment=", "X-", "helper=")
# NFS transfer sizes: the kernel reports what the server agreed to, at most what was asked.
NEGOTIATED_MAXIMA = frozenset(["rsize", "wsize"])


def _userspace(option):
    return option in USERSPACE_OPTIONS or option.startswith(USERSPACE_PREFIXES)


def _reported(option, live_set):
    """Whether the kernel reports ``option``; NFS ``vers=4`` is reported as the minor version it negotiated."""
    if option in live_set:
        return True
    if option in ("vers=4", "nfsvers=4"):
        return any(o.startswith("vers=4") for o in live_set)
    if option.startswith("nfsvers="):
        return "vers=" + option.split("=", 1)[1] in live_set
    name, _, value = option.partition("=")
    if name in NEGOTIATED_MAXIMA and value.isdigit():
        # the server may lower rsize/wsize to its own maximum; more than asked is a change
        for live in live_set:
            live_name, _, live_value = live.partition("=")
            if live_name == name and live_value.isdigit():
                return int(live_value) <= int(value)
    return False


def split_options(value, what="mount options"):
    """``'a,b=1'`` or ``['a', 'b=1']`` -> ``['a', 'b=1']`` (empty items dropped)."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = []
        for part in value:
            if not isinstance(part, str):
                raise AnsibleFilterError("%s: %r is not a mount option" % (what, part))
            items.extend(part.split(","))
    else:
        raise AnsibleFilterError("%s: %r is neither a comma-separated string nor a list" % (what, value))
    return [item.strip() for item in items if item.strip()]


def mount_options_missing(wanted, live, ignore=None):
    """Options of ``wanted`` the kernel should report but ``live`` lacks, in ``wanted``'s order."""
    ignored = set(split_options(ignore, "ignore"))
    live_set = set(split_options(live, "live"))
    missing = []
    for option in split_options(wanted, "wanted"):
        if _userspace(option) or option in ignored or _reported(option, live_set):
            continue
        missing.append(option)
    return missing


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
            opts = ",".join(o for o in split_options(volume.get(opts_key)) if not _userspace(o))
            result.append({"target": target, "opts": opts, "missing": missing})
    return result


class FilterModule:
    def filters(self):
        return {"mount_options_missing": mount_options_missing, "mounts_to_remount": mounts_to_remount}
