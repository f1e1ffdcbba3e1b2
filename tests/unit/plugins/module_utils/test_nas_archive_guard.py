"""nas_archive's guards (_nas_archive_guard): may a mirror delete, may a smaller snapshot be made."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_guard as guard

# --------------------------------------------------------------------------- delete guard


@pytest.mark.parametrize(
    "args, kw, ok, in_reason",
    [
        ((0, 100, 20), {}, True, ""),
        ((20, 100, 20), {}, True, ""),  # exactly at the limit
        ((21, 100, 20), {}, False, "21 of 100 destination entries (21.0%)"),
        ((21, 100, 20), {"force": True}, True, ""),
        ((3, 4, 20), {"grace_count": 3}, True, ""),  # small tree: within the grace count
        ((4, 4, 20), {"grace_count": 3}, False, "delete_grace_count 3"),
        ((5, 0, 20), {}, False, "above max_delete_percent 20%"),  # nothing known at the destination
        ((0, 0, 20), {"source_entries": 0}, True, ""),  # empty source, empty archive: nothing to lose
        ((10, 10, 100), {"source_entries": 0}, False, "is empty"),  # empty source: refused even at 100 %
        ((10, 10, 100), {"source_entries": 0, "force": True}, False, "is empty"),  # force does not help
        ((0, None, 20), {"source_entries": 0}, False, "would remove everything at the destination;"),
        ((1, 3, 50), {"source_entries": 2}, True, ""),
        ((2, 3, 50.5), {"label": "/data/x"}, False, "max_delete_percent 50.5%"),
    ],
)
def test_delete_guard(args, kw, ok, in_reason):
    verdict = guard.delete_guard(*args, **kw)
    assert verdict["ok"] is ok
    assert in_reason in verdict["reason"]
    if not ok:
        assert "nothing was done" in verdict["reason"]
    assert verdict["forced"] is (bool(kw.get("force")) and ok and args[0] > 0 and kw.get("source_entries") != 0)


@pytest.mark.parametrize(
    "kw, ok, forced, in_reason",
    [
        # same entries and bytes: fine
        (
            {"deletions": 0, "ref_entries": 100, "ref_bytes": 5000, "source_entries": 100, "source_bytes": 5000},
            True,
            False,
            "",
        ),
        # empty source: refused, force_delete does not help
        (
            {
                "deletions": 100,
                "ref_entries": 100,
                "ref_bytes": 5000,
                "source_entries": 0,
                "source_bytes": 0,
                "force": True,
            },
            False,
            False,
            "is empty",
        ),
        # far fewer entries: refused, allowed by force_delete
        (
            {"deletions": 60, "ref_entries": 100, "ref_bytes": 5000, "source_entries": 40, "source_bytes": 4900},
            False,
            False,
            "60 of the 100 entries",
        ),
        (
            {
                "deletions": 60,
                "ref_entries": 100,
                "ref_bytes": 5000,
                "source_entries": 40,
                "source_bytes": 4900,
                "force": True,
            },
            True,
            True,
            "",
        ),
        # within the grace count
        (
            {
                "deletions": 3,
                "ref_entries": 4,
                "ref_bytes": 10,
                "source_entries": 1,
                "source_bytes": 9,
                "grace_count": 3,
            },
            True,
            False,
            "",
        ),
        # as many entries, far fewer bytes (the big file is now empty): refused
        (
            {"deletions": 0, "ref_entries": 10, "ref_bytes": 10_000_000, "source_entries": 10, "source_bytes": 100},
            False,
            False,
            "bytes",
        ),
        (
            {"deletions": 0, "ref_entries": 10, "ref_bytes": 1000, "source_entries": 10, "source_bytes": 800},
            True,
            False,
            "",
        ),
        (
            {"deletions": 0, "ref_entries": 10, "ref_bytes": 1000, "source_entries": 10, "source_bytes": 799},
            False,
            False,
            "20.1%",
        ),
        # renames: as many entries, but most of the newest snapshot's names are gone
        (
            {"deletions": 9, "ref_entries": 10, "ref_bytes": 1000, "source_entries": 10, "source_bytes": 1000},
            False,
            False,
            "9 of the 10",
        ),
        # the newest snapshot with data held no bytes (empty files): nothing to shrink
        ({"deletions": 0, "ref_entries": 3, "ref_bytes": 0, "source_entries": 3, "source_bytes": 0}, True, False, ""),
    ],
)
def test_snapshot_guard(kw, ok, forced, in_reason):
    kw = dict(kw)
    args = {"max_delete_percent": 20, "reference": "/nas/cfg/2026-11-03T030000Z", "label": "/data/x"}
    args.update(kw)
    verdict = guard.snapshot_guard(**args)
    assert verdict["ok"] is ok and verdict["forced"] is forced
    assert in_reason in verdict["reason"]
    if not ok:
        assert "no snapshot made, retention not run" in verdict["reason"]
        assert "2026-11-03T030000Z" in verdict["reason"]
    assert verdict["reference"] == "/nas/cfg/2026-11-03T030000Z"


def test_delete_guard_reports_numbers():
    verdict = guard.delete_guard(3, 12, 20.0, source_entries=9, label="/src")
    assert verdict == {
        "ok": False,
        "reason": verdict["reason"],
        "deletions": 3,
        "dest_entries": 12,
        "source_entries": 9,
        "percent": 25.0,
        "limit_percent": 20.0,
        "grace_count": 0,
        "forced": False,
    }
    assert "source /src is complete" in verdict["reason"]
