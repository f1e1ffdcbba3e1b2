# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's snapshot mode: a new dated snapshot beside the others, ``latest`` pointed at it.

Standard library only, importable on Python 3.8. ``SnapshotMode`` is a part of ``Archiver``
(``_nas_archive_run``). Snapshot protocol (docs/nas_archive.md): the new snapshot's name must be
after the newest one's and not far ahead of it (``next_stamp``: a wrong clock is refused, not
obeyed); the sources must not be empty nor far smaller than the newest snapshot that held data
(``_nas_archive_snapshot_guard``). ``<dest>/<name>/<stamp>.partial`` is written by rsync with
``--link-dest`` to that snapshot, verified when asked, renamed to ``<stamp>``; only then is
``latest`` replaced (a symlink made under a temporary name and renamed over it). What a killed run
leaves (``*.partial``, ``*.deleting``, ``.latest.tmp*``) is no snapshot, is never linked from nor
pointed to, and is removed by the next run under the same lock. Retention:
``_nas_archive_retention``.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import (
    LATEST,
    PARTIAL_SUFFIX,
    ClockError,
    is_leftover,
    next_stamp,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_fs import (
    _list_root,
    _makedirs,
    _point_latest,
    _readlink,
    _remove,
    _rename,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_rsync import is_change
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import format_stamp, parse_stamp


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class SnapshotMode:
    """``snapshot()``: the mode snapshot of ``Archiver``, run under the lock."""

    def _scan(self, root):
        """(complete {datetime: name}, leftovers [name], unknown [name]) in the snapshot root."""
        complete, leftovers, unknown = {}, [], []
        for name, is_dir in self._fs(_list_root, root) or []:
            if is_leftover(name):
                leftovers.append(name)
            elif name == LATEST:
                continue
            elif is_dir and parse_stamp(name) is not None:
                complete[parse_stamp(name)] = name
            else:
                unknown.append(name)
        return complete, leftovers, unknown

    def snapshot(self):
        p, r = self.p, self.result
        root = os.path.join(p.dest, p.name)
        complete, leftovers, unknown = self._scan(root)
        if unknown:
            r["unknown_entries"] = unknown
            self.warnings.append(
                "%s holds entries that are not snapshots (left alone): %s" % (root, ", ".join(unknown))
            )
        r["cleaned_incomplete"] = leftovers
        if leftovers and not self.check_mode:
            for name in leftovers:
                self._fs(_remove, os.path.join(root, name), timeout=p.rsync_timeout)
            r["changed"] = True
        previous = complete[max(complete)] if complete else None
        r["previous"] = os.path.join(root, previous) if previous else None
        r["latest"] = self._latest(root)
        self.clock = _utc_now() if self.now is None else self.now
        try:
            stamp = next_stamp(self.clock, complete, p.max_clock_jump_days)
        except ClockError as exc:
            raise ClockError(str(exc), **dict(r, **exc.details)) from None
        name = format_stamp(stamp)
        final = os.path.join(root, name)
        work = final + PARTIAL_SUFFIX
        reference = self._guard(root, complete)
        link_args = ["--link-dest=" + os.path.join(root, reference)] if reference else []

        if p.skip_unchanged and previous and reference == previous:
            probe = self.guard_probe
            if not any(is_change(i) for i, _s, _n in probe["items"]) and not probe["deleted"]:
                r["unchanged"] = True
                if r["latest"] != os.path.join(root, previous) and not self.check_mode:
                    self._fs(_point_latest, root, previous)
                    r["changed"] = True
                r["latest"] = os.path.join(root, previous)
                self._retention(root, complete, None, reference)
                return
        r["unchanged"] = False
        if self.check_mode:
            self._record(self.rsync(link_args, work, dry_run=True))
            r["snapshot"] = final
            r["changed"] = True
            self._retention(root, complete, stamp, reference)
            return
        self._fs(_makedirs, root)
        r["changed"] = True
        self._record(self.rsync(link_args + self._transfer_args(False), work))
        if p.verify:
            self._verify(work, True)
        self._fs(_rename, work, final)
        r["snapshot"] = final
        self._fs(_point_latest, root, name)
        r["latest"] = final
        complete[stamp] = name
        self._retention(root, complete, stamp, reference)

    def _latest(self, root):
        target = self._fs(_readlink, os.path.join(root, LATEST))
        if not target:
            return None
        return os.path.join(root, os.path.basename(target.rstrip("/")))
