# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The storage benchmark's targets, derived from the host's layout (``storage_layout``).

The specification's performance test: sequential writes and random 4k reads on every hot mount,
a sequential write on the warm tier, write and read throughput on the NAS.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

TIERS = ("hot", "warm", "cold")


def layout_benchmark_targets(layout, tiers=TIERS):
    """``storage_layout`` -> the ``targets`` of jts.tiered_storage.storage_benchmark.

    Hot tier: one target per LV mount (LVM mode, each must be mounted) or the directory root
    (directory mode, on the root filesystem), with ``seq_write`` and ``rand_read``; warm tier: its
    mount with ``seq_write``; cold tier: the NAS mount with ``seq_write`` and ``seq_read``, the test
    file in the collection's tree on it (``cold.root``, where root may write on a squashing NAS).
    ``tiers`` keeps only the tiers named.
    """
    if not isinstance(layout, dict) or not all(k in layout for k in TIERS):
        raise AnsibleFilterError("layout_benchmark_targets expects the storage_layout of a host (got %r)" % (layout,))
    if isinstance(tiers, str):
        tiers = [tiers]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise AnsibleFilterError("layout_benchmark_targets: unknown tier(s) %s; choose from hot, warm, cold" % unknown)
    targets = []
    hot, warm, cold = layout["hot"], layout["warm"], layout["cold"]
    if "hot" in tiers:
        if hot["mode"] == "lvm":
            for mount in hot["mounts"]:
                targets.append(_target("hot", mount["name"], mount["path"], ["seq_write", "rand_read"]))
        else:
            targets.append(_target("hot", "directory", hot["root"], ["seq_write", "rand_read"], require_mount=False))
    if "warm" in tiers:
        targets.append(_target("warm", "warm", warm["mount"], ["seq_write"]))
    if "cold" in tiers:
        targets.append(_target("cold", "nas", cold["mount"], ["seq_write", "seq_read"], directory=cold["root"]))
    return targets


def _target(tier, name, mount, tests, require_mount=True, directory=None):
    return {
        "tier": tier,
        "name": name,
        "mount": mount,
        "directory": directory or mount,
        "tests": tests,
        "require_mount": require_mount,
    }


class FilterModule:
    def filters(self):
        return {"layout_benchmark_targets": layout_benchmark_targets}
