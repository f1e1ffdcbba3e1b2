# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where PostgreSQL's files and the archival's dumps lie relative to the storage tiers.

Users: ``_pg_archive`` (tablespace refusal), pg_partition_archive (``require_mounted`` of dump_dir).

A cluster cannot start without its tablespaces, so one on the warm tier or the NAS makes the
database depend on that tier being mounted and alive. ``tablespace_refusals`` finds them by the
location's path, by its resolved path (a symlink into the tier) and by device (when the tier is a
mount point); the resolving and the ``stat`` calls run in a forked child with a time-out, because a
location on a dead hard NFS mount would block them in the kernel.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout


def _probe_location(path, roots):
    """Run in a child (may touch a dead NFS mount): the real path and device of ``path``, and for
    each tier root its device and whether it is a mount point."""
    out = {"real": os.path.realpath(path), "dev": None, "roots": {}}
    try:
        out["dev"] = os.stat(path).st_dev
    except OSError:
        pass
    for root in roots:
        info = {"dev": None, "is_mount": False}
        try:
            info["dev"] = os.stat(root).st_dev
            info["is_mount"] = info["dev"] != os.stat(os.path.dirname(root.rstrip("/")) or "/").st_dev
        except OSError:
            pass
        out["roots"][root] = info
    return out


def _inside(path, root):
    path = os.path.normpath(path)
    root = os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def tablespace_refusals(tablespaces, tiers, allowed, probe_timeout, probe=None):
    """Messages for tablespaces whose location lies on a tier in ``tiers`` ({name: (path, option)})
    that ``allowed`` does not acknowledge: by path, by real path (symlinks) and by device. Each
    location is probed once, in a child with a time-out; one that does not answer counts as on the
    NAS (or on the one tier checked)."""
    probe = probe or (lambda path, roots: call_with_timeout(_probe_location, (path, roots), timeout=probe_timeout))
    checked = sorted((tier, root, option) for tier, (root, option) in tiers.items() if root and tier not in allowed)
    refusals = []
    for space in tablespaces:
        location = space.get("location") or ""
        if not location or not checked:
            continue
        hits = [
            (tier, option, "its location %s lies below %s" % (location, root))
            for tier, root, option in checked
            if _inside(location, root)
        ]
        if not hits:
            try:
                found = probe(location, [root for _tier, root, _option in checked])
            except (ProbeTimeout, OSError, RuntimeError) as exc:
                tier, _root, option = next((c for c in checked if c[0] == "nas"), checked[0])
                why = "its location %s did not answer within %ss (%s), as on a dead NAS mount" % (
                    location,
                    probe_timeout,
                    exc,
                )
                hits = [(tier, option, why)]
            else:
                for tier, root, option in checked:
                    info = found["roots"].get(root) or {}
                    if _inside(found["real"], root):
                        hits.append(
                            (tier, option, "its location %s resolves to %s, below %s" % (location, found["real"], root))
                        )
                    elif info.get("is_mount") and found["dev"] is not None and found["dev"] == info.get("dev"):
                        hits.append(
                            (tier, option, "its location %s is on the filesystem mounted at %s" % (location, root))
                        )
        for tier, option, why in hits:
            refusals.append(
                "tablespace %s: %s (%s, option %s): if that tier is lost or not mounted, PostgreSQL may not start. "
                "Move the tablespace, or acknowledge it with allow_tablespaces_on: [%s]"
                % (space["name"], why, tier, option, tier)
            )
    return refusals


def nearest_existing_dev(path):
    while True:
        try:
            return os.stat(path).st_dev
        except FileNotFoundError:
            parent = os.path.dirname(path.rstrip("/")) or "/"
            if parent == path:
                raise
            path = parent


__all__ = ["nearest_existing_dev", "tablespace_refusals"]
