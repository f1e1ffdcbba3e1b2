# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's retention step: which snapshots go, removed so that none is left half-removed.

Standard library only, importable on Python 3.8. ``RetentionStep`` is a part of ``Archiver``
(``_nas_archive_run``): the counts are ``_retention.select_retention``'s; what ``latest`` points
to, the new snapshot and the newest snapshot that held data are protected. A snapshot is renamed to
``<stamp>.deleting`` first, then removed (a removal cut short leaves a leftover, never a half
snapshot).
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import DELETING_SUFFIX
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_fs import _remove, _rename
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import (
    format_stamp,
    parse_stamp,
    select_retention,
)


class RetentionStep:
    """``_retention()`` of ``Archiver``'s snapshot mode."""

    def _retention(self, root, complete, new_stamp, reference=None):
        p, r = self.p, self.result
        stamps = set(complete)
        if new_stamp is not None:
            stamps.add(new_stamp)
        protect = set()
        if r["latest"]:
            latest = parse_stamp(os.path.basename(r["latest"]))
            if latest is not None:
                protect.add(latest)
        if new_stamp is not None:
            protect.add(new_stamp)
        if reference is not None:
            # The newest snapshot that held data is never removed, whatever the counts say.
            protect.add(parse_stamp(reference))
        keep = select_retention(
            stamps, p.keep_last, p.keep_daily, p.keep_weekly, p.keep_monthly, protect, now=self.clock
        )
        remove = sorted(stamps - keep)
        r["retention_kept"] = [format_stamp(s) for s in sorted(keep)]
        r["retention_removed"] = [format_stamp(s) for s in remove]
        if not remove:
            return
        r["changed"] = True
        if self.check_mode:
            return
        for when in remove:
            name = complete[when]
            doomed = os.path.join(root, name + DELETING_SUFFIX)
            # Renamed first: a removal cut short leaves a .deleting leftover, never a half snapshot.
            self._fs(_rename, os.path.join(root, name), doomed)
            self._fs(_remove, doomed, timeout=p.rsync_timeout)
