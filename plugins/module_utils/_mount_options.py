# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the mount options an inventory asks for the kernel should be reporting.

One set of rules for the roles' remount decision (the ``mount_opts`` filter, on the controller)
and storage_health's drift check (on the host): options the kernel never reports (fstab-only
ones such as ``_netdev``, ``nofail``, ``x-*``) are left out, NFS ``vers=4`` matches the minor
version the client negotiated, and ``rsize``/``wsize`` may come back lowered by the server.
Standard library only, Python 3.8.
"""

from __future__ import annotations

# Read by mount(8) or systemd, never passed to the kernel, so never in /proc/mounts.
USERSPACE_OPTIONS = frozenset(
    ["_netdev", "nofail", "auto", "noauto", "defaults", "user", "nouser", "users", "owner", "group", "bg", "fg"]
)
USERSPACE_PREFIXES = ("x-", "comment=", "X-", "helper=")
# Defaults the kernel does not echo.
UNREPORTED_DEFAULTS = frozenset(["data=ordered"])
# NFS transfer sizes: the kernel reports what the server agreed to, at most what was asked.
NEGOTIATED_MAXIMA = frozenset(["rsize", "wsize"])


def split_options(value, what="mount options"):
    """``'a,b=1'`` or ``['a', 'b=1']`` -> ``['a', 'b=1']`` (empty items dropped).

    Raises ValueError naming ``what`` for anything else.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = []
        for part in value:
            if not isinstance(part, str):
                raise ValueError("%s: %r is not a mount option" % (what, part))
            items.extend(part.split(","))
    else:
        raise ValueError("%s: %r is neither a comma-separated string nor a list" % (what, value))
    return [item.strip() for item in items if item.strip()]


def is_userspace(option):
    """Whether ``option`` is for mount(8) or systemd only (never in the kernel's list)."""
    return option in USERSPACE_OPTIONS or option.startswith(USERSPACE_PREFIXES)


def option_reported(option, live):
    """Whether the kernel's option list ``live`` (a set or list) satisfies ``option``."""
    if option in live:
        return True
    if option in ("vers=4", "nfsvers=4"):
        return any(o.startswith("vers=4") for o in live)
    if option.startswith("nfsvers="):
        return "vers=" + option.split("=", 1)[1] in live
    name, _, value = option.partition("=")
    if name in NEGOTIATED_MAXIMA and value.isdigit():
        # the server may lower rsize/wsize to its own maximum; more than asked is a change
        for item in live:
            live_name, _, live_value = item.partition("=")
            if live_name == name and live_value.isdigit():
                return int(live_value) <= int(value)
    return False


def options_missing(wanted, live, ignore=()):
    """Options of the list ``wanted`` the kernel should report but the list ``live`` lacks, in order."""
    live_set = set(live)
    ignored = set(ignore)
    return [
        option
        for option in wanted
        if not (is_userspace(option) or option in ignored or option_reported(option, live_set))
    ]
