# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's snapshot guard step: the newest snapshot with data, and the sources compared with it.

Standard library only, importable on Python 3.8. ``SnapshotGuardStep`` is a part of ``Archiver``
(``_nas_archive_run``): an empty source is refused before rsync looks; otherwise a ``--delete
--dry-run`` against the newest snapshot that holds data and that snapshot's size feed
``_nas_archive_guard.snapshot_guard``. That snapshot (the reference) is compared with, hard-linked
to, and never removed by retention.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import NasArchiveError
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_fs import _has_entries, _tree_size
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_guard import snapshot_guard
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_rsync import (
    dest_entries_from_stats,
    source_entries_from_stats,
)


class SnapshotGuardStep:
    """``_guard()`` and ``_reference()`` of ``Archiver``'s snapshot mode."""

    def _guard(self, root, complete):
        """Refuse an empty source, or one far smaller than the newest snapshot that held data.

        Returns that snapshot's name (the reference: compared with, hard-linked to, never removed by
        retention), or None when no snapshot holds anything. Raises NasArchiveError when refused.
        """
        p, r = self.p, self.result
        label = ", ".join(s for s, _has in self.present)
        self.guard_probe = None
        if not any(has for _s, has in self.present):
            # Refused before rsync even looks: an empty (unmounted, wiped) source is never snapshotted.
            reference = self._reference(root, complete, warn=False)
            ref_path = os.path.join(root, reference) if reference else ""
            verdict = snapshot_guard(0, 0, 0, 0, 0, p.max_delete_percent, reference=ref_path, label=label)
            r["guard"] = verdict
            raise NasArchiveError(verdict["reason"], **r)
        reference = self._reference(root, complete)
        if reference is None:
            return None
        ref_path = os.path.join(root, reference)
        probe = self.rsync(["--delete"], ref_path, dry_run=True)
        ref_entries, ref_bytes = self._fs(_tree_size, ref_path, timeout=p.rsync_timeout)
        stats = probe["stats"]
        verdict = snapshot_guard(
            len(probe["deleted"]),
            dest_entries_from_stats(stats),
            ref_bytes,
            source_entries_from_stats(stats),
            stats.get("total_bytes", 0),
            p.max_delete_percent,
            p.delete_grace_count,
            force=p.force_delete,
            reference=ref_path,
            label=label,
        )
        verdict["reference_entries"] = ref_entries
        r["guard"] = verdict
        if not verdict["ok"]:
            raise NasArchiveError(verdict["reason"], **r)
        if verdict["forced"]:
            self.warnings.append(
                "snapshot guard overridden by force_delete: the new snapshot is smaller than %s (%d of %d entries "
                "gone, %.1f%% fewer bytes)"
                % (ref_path, verdict["deletions"], verdict["dest_entries"], verdict["bytes_percent"])
            )
        self.guard_probe = probe
        return reference

    def _reference(self, root, complete, warn=True):
        """The newest complete snapshot that holds any entry; warns about newer empty ones."""
        empty = []
        for when in sorted(complete, reverse=True):
            name = complete[when]
            if self._fs(_has_entries, os.path.join(root, name)):
                break
            empty.append(name)
        else:
            name = None
        if empty and warn:
            self.warnings.append(
                "%s: the newest snapshot%s %s %s empty (made while the source was empty?); compared with and "
                "keeping %s instead"
                % (
                    root,
                    "s" if len(empty) > 1 else "",
                    ", ".join(empty),
                    "are" if len(empty) > 1 else "is",
                    name or "nothing (no snapshot holds data)",
                )
            )
        return name
