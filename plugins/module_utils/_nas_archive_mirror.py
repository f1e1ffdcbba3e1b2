# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's mirror mode: one rsync of one source onto the destination, deletions guarded.

Standard library only, importable on Python 3.8. ``MirrorMode`` is a part of ``Archiver``
(``_nas_archive_run``): with ``delete`` a dry run counts the deletions first and the delete guard
(``_nas_archive_guard.delete_guard``) decides; rsync's ``--max-delete`` then holds it to that count.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import NasArchiveError
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_fs import _makedirs
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_guard import delete_guard
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_rsync import (
    dest_entries_from_stats,
    source_entries_from_stats,
)


class MirrorMode:
    """``mirror()``: the mode mirror of ``Archiver``, run under the lock."""

    def mirror(self):
        p, r = self.p, self.result
        src, has_entries = self.present[0]
        if p.delete:
            if not has_entries:
                # Refused before rsync even looks: an empty (unmounted, wiped) source never drives --delete.
                verdict = delete_guard(0, None, p.max_delete_percent, p.delete_grace_count, source_entries=0, label=src)
                r["guard"] = verdict
                raise NasArchiveError(verdict["reason"], **r)
            dry = self.rsync(["--delete"], p.dest, dry_run=True)
            deletions = len(dry["deleted"])
            verdict = delete_guard(
                deletions,
                dest_entries_from_stats(dry["stats"]),
                p.max_delete_percent,
                p.delete_grace_count,
                source_entries=source_entries_from_stats(dry["stats"]),
                force=p.force_delete,
                label=src,
            )
            r["guard"] = verdict
            if not verdict["ok"]:
                self._record(dry)
                raise NasArchiveError(verdict["reason"], **r)
            if verdict["forced"]:
                self.warnings.append("delete guard overridden by force_delete: %d deletion(s)" % deletions)
            if self.check_mode:
                r["changed"] = self._record(dry)
                return
            # --max-delete makes rsync itself stop at the number the guard allowed, should the source
            # shrink meanwhile; with nothing to delete --delete is left out (an old rsync reads
            # --max-delete=0 as "no limit").
            extra = ["--delete", "--delete-delay", "--max-delete=%d" % deletions] if deletions else []
        else:
            if self.check_mode:
                r["changed"] = self._record(self.rsync([], p.dest, dry_run=True))
                return
            extra = []
        if not self.dest_exists:
            self._fs(_makedirs, p.dest)
        done = self.rsync(extra + self._transfer_args(p.delay_updates), p.dest)
        r["changed"] = self._record(done) or not self.dest_exists
        if p.verify:
            self._verify(p.dest, p.delete)

    # ---------------------------------------------------------------- snapshot
