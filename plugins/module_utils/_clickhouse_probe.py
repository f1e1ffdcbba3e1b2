# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClickHouse tiering: the cold side probed before the first change, each probe within a time-out.

User: ``_clickhouse_tiering`` (only when the plan has statements to run, never in check mode).

``system.disks`` calls ``statvfs`` on every disk and hangs with a dead NFS disk (ClickHouse issue
65552). So the ``probe_paths`` are probed from this host in a forked child
(``_timeout.statvfs_with_timeout``, passed in as ``probe``), or, when none are given,
``system.disks`` is asked on the server; either within ``probe_timeout``. A cold side that does
not answer fails the run before anything changed.

Standard library only, Python 3.8.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import (
    ClickHouseError,
    ClickHouseTimeout,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import TieringError


def probe_cold_side(client, probe, paths, timeout):
    """Fail (TieringError) before any change when a target disk does not answer."""
    if paths:
        for path in paths:
            try:
                probe(path, timeout)
            except OSError as exc:
                raise TieringError("cold disk path %s: %s; nothing was changed" % (path, exc.strerror or exc)) from None
            except Exception as exc:  # ProbeTimeout and the probe child's failures
                raise TieringError(
                    "cold disk path %s did not answer within %gs (%s): its mount (the NAS?) is probably down; "
                    "nothing was changed" % (path, timeout, exc)
                ) from None
        return
    try:
        client.select("SELECT name, free_space FROM system.disks", timeout)
    except ClickHouseTimeout:
        raise TieringError(
            "the server's disks did not answer within %gs (system.disks): a disk is probably on a dead "
            "mount (the NAS?); nothing was changed. The server may keep that query until the mount comes "
            "back (ClickHouse issue 65552): give probe_paths to probe from this host instead" % timeout
        ) from None
    except ClickHouseError as exc:
        raise TieringError("probing the server's disks: %s; nothing was changed" % exc) from None


__all__ = ["probe_cold_side"]
