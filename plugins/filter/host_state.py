# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a host's state once, then act only on what differs.

Every module call costs a round trip and a Python start on the host (several seconds on a slow
VM, and on a busy production host it adds up too). The hot tier reads what its LVs hold with one
``wipefs --json DEV...`` and loops ``community.general.filesystem`` only over the LVs that need
it; ``signatures_by_device`` reads that output into a device -> signature types map. (Directories
are one ``jts.tiered_storage.tier_directories`` task, which reads and sets them itself.)
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError


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
        return {"signatures_by_device": signatures_by_device}
