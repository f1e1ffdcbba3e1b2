# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a host's state once, then act only on what differs.

Every module call costs a round trip and a Python start on the host (several seconds on a slow
VM, and on a busy production host it adds up too). The roles read the state of many paths or
devices with one read-only command and loop ``ansible.builtin.file`` or
``community.general.filesystem`` only over the entries that need it; a second run calls no
module for an entry that is already right.

``paths_to_fix`` compares wanted directories with the output of
``stat --format '%F\\t%U\\t%G\\t%a\\t%n' PATH...``; ``signatures_by_device`` reads ``wipefs --json
DEV...`` (one probe of several devices) into a device -> signature types map.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

STAT_FORMAT = "%F\t%U\t%G\t%a\t%n"


def _mode(value, path):
    try:
        return int(str(value), 8)
    except ValueError:
        raise AnsibleFilterError("paths_to_fix: mode %r of %s is not an octal mode" % (value, path)) from None


def parse_stat(output):
    """``{path: {'type', 'owner', 'group', 'mode'}}`` from stat's output in STAT_FORMAT."""
    found = {}
    for line in (output or "").splitlines():
        fields = line.split("\t", 4)
        if len(fields) != 5:
            continue
        kind, owner, group, mode, path = fields
        found[path] = {"type": kind, "owner": owner, "group": group, "mode": int(mode, 8)}
    return found


def paths_to_fix(wanted, stat_output):
    """The entries of ``wanted`` (dicts with path, owner, group, mode) that are missing or differ."""
    if not isinstance(wanted, list):
        raise AnsibleFilterError("paths_to_fix: expected a list of dicts, got %s" % type(wanted).__name__)
    found = parse_stat(stat_output)
    todo = []
    for item in wanted:
        if not isinstance(item, dict) or "path" not in item:
            raise AnsibleFilterError("paths_to_fix: every entry needs a path (got %r)" % (item,))
        path = str(item["path"]).rstrip("/") or "/"
        have = found.get(path)
        if (
            have is None
            or have["type"] != "directory"
            or have["owner"] != str(item.get("owner", "root"))
            or have["group"] != str(item.get("group", "root"))
            or have["mode"] != _mode(item.get("mode", "0755"), path)
        ):
            todo.append(item)
    return todo


def signatures_by_device(output):
    """``{device name: [signature types]}`` from ``wipefs --json DEV...`` (names as wipefs prints them).

    wipefs probes the devices themselves (not udev's cache) and reports each device by the last
    component of the path it was given, so ``/dev/vg_jts/postgres`` is reported as ``postgres``.
    A device that holds nothing is absent from the map.
    """
    if not (output or "").strip():
        return {}
    try:
        report = json.loads(output)
    except ValueError as exc:
        raise AnsibleFilterError("signatures_by_device: wipefs output is not JSON: %s" % exc) from None
    found = {}
    for sig in report.get("signatures", []):
        found.setdefault(sig.get("device", ""), []).append(sig.get("type") or "unknown")
    return found


class FilterModule:
    def filters(self):
        return {"paths_to_fix": paths_to_fix, "signatures_by_device": signatures_by_device}
