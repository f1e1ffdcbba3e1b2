# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's guards: may a mirror delete, may a snapshot this much smaller be made?

Standard library only, importable on Python 3.8. Pure: counts in, a verdict dict out; tested with
tables (tests/unit/plugins/module_utils/test_nas_archive_guard.py). Used by the mirror
(``_nas_archive_mirror``) and the snapshot (``_nas_archive_snapshot_guard``) steps of a run:

* ``delete_guard``: counts in, a verdict (may the mirror delete?) out;
* ``snapshot_guard``: counts in, a verdict (may a snapshot this much smaller than the newest one
  with data be made?) out.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import num as _num


def delete_guard(
    deletions, dest_entries, max_delete_percent, grace_count=0, source_entries=None, force=False, label=""
):
    """May a mirror delete ``deletions`` of the ``dest_entries`` entries on the destination?

    Returns a dict: ``ok``, ``reason``, ``deletions``, ``dest_entries``, ``source_entries``, ``percent``,
    ``limit_percent``, ``grace_count``, ``forced``.

    Refused when the source has no entries at all while the destination has some (an empty or
    unmounted source must not wipe the archive; ``force`` does not override this), and when the
    deletions are above ``max_delete_percent`` of the destination's entries and more than
    ``grace_count`` (``force`` overrides this one).
    """
    percent = 100.0 * deletions / dest_entries if dest_entries else (100.0 if deletions else 0.0)
    verdict = {
        "ok": True,
        "reason": "",
        "deletions": deletions,
        "dest_entries": dest_entries,
        "source_entries": source_entries,
        "percent": round(percent, 2),
        "limit_percent": max_delete_percent,
        "grace_count": grace_count,
        "forced": False,
    }
    where = (" " + label) if label else ""
    if source_entries is not None and source_entries <= 0 and (deletions > 0 or dest_entries != 0):
        # dest_entries None: not counted (refused before rsync looked at the destination).
        what = (
            "everything at the destination"
            if dest_entries is None
            else "all %d entries of the destination" % max(deletions, dest_entries)
        )
        verdict["ok"] = False
        verdict["reason"] = (
            "delete guard: the source%s is empty (unmounted or wiped?): mirroring it with delete would remove "
            "%s; refusing, nothing was done" % (where, what)
        )
        return verdict
    if deletions == 0 or deletions <= grace_count or percent <= max_delete_percent:
        return verdict
    return _over_limit(
        verdict,
        force,
        "delete guard: %d of %d destination entries (%.1f%%) would be deleted, above max_delete_percent %s%%%s; "
        "refusing, nothing was done. Check that the source%s is complete, then raise max_delete_percent or set "
        "force_delete for this run"
        % (
            deletions,
            dest_entries,
            percent,
            _num(max_delete_percent),
            (" and delete_grace_count %d" % grace_count) if grace_count else "",
            where,
        ),
    )


def snapshot_guard(
    deletions,
    ref_entries,
    ref_bytes,
    source_entries,
    source_bytes,
    max_delete_percent,
    grace_count=0,
    force=False,
    reference="",
    label="",
):
    """May a snapshot of the sources be made, compared with ``reference``, the newest snapshot that held data?

    The mirror's guard, for snapshots: a snapshot removes nothing itself, but retention later removes
    the older copies, so a new snapshot that lacks what the newest one held is how an unmounted or
    wiped source ends the archive. ``deletions``: entries of the reference that the sources no longer
    hold (rsync ``--delete --dry-run`` against it); ``ref_entries``: its entries among those compared;
    ``ref_bytes``, ``source_bytes``: the sizes of its files and of the sources' (rsync's ``Total file
    size``).

    Refused when the sources hold no entry (``force`` does not override this), and when the
    deletions are above ``max_delete_percent`` of the reference's entries and more than
    ``grace_count``, or the sources hold more than ``max_delete_percent`` fewer bytes than the
    reference (``force`` overrides these two). Returns the verdict dict of ``delete_guard`` plus
    ``reference``, ``reference_bytes``, ``source_bytes`` and ``bytes_percent`` (how much smaller).
    """
    percent = 100.0 * deletions / ref_entries if ref_entries else (100.0 if deletions else 0.0)
    shrink = 100.0 * (ref_bytes - source_bytes) / ref_bytes if ref_bytes and source_bytes < ref_bytes else 0.0
    verdict = {
        "ok": True,
        "reason": "",
        "reference": reference,
        "deletions": deletions,
        "dest_entries": ref_entries,
        "source_entries": source_entries,
        "percent": round(percent, 2),
        "reference_bytes": ref_bytes,
        "source_bytes": source_bytes,
        "bytes_percent": round(shrink, 2),
        "limit_percent": max_delete_percent,
        "grace_count": grace_count,
        "forced": False,
    }
    where = (" " + label) if label else ""
    refused = "refusing: no snapshot made, retention not run"
    if source_entries <= 0:
        verdict["ok"] = False
        verdict["reason"] = (
            "snapshot guard: the source%s is empty (unmounted or wiped?): a snapshot of it would hold nothing, "
            "and retention would then remove the snapshots that hold data (the newest: %s); %s. An empty source "
            "is never snapshotted (force_delete does not change this)" % (where, reference or "none", refused)
        )
        return verdict
    problems = []
    if deletions > grace_count and percent > max_delete_percent:
        problems.append(
            "%d of the %d entries of the newest snapshot with data (%.1f%%) are gone from the source"
            % (deletions, ref_entries, percent)
        )
    if shrink > max_delete_percent:
        problems.append(
            "the source holds %d bytes where it held %d bytes (%.1f%% less)" % (source_bytes, ref_bytes, shrink)
        )
    if not problems:
        return verdict
    return _over_limit(
        verdict,
        force,
        "snapshot guard: compared with %s, %s: above max_delete_percent %s%%%s; %s. Check that the source%s is "
        "complete, then raise max_delete_percent or set force_delete for this run"
        % (
            reference,
            " and ".join(problems),
            _num(max_delete_percent),
            (" (delete_grace_count %d)" % grace_count) if grace_count else "",
            refused,
            where,
        ),
    )


def _over_limit(verdict, force, reason):
    """Above the limit: ``force`` lets it pass (``forced``), else it is refused with ``reason``."""
    if force:
        verdict["forced"] = True
    else:
        verdict["ok"] = False
        verdict["reason"] = reason
    return verdict
