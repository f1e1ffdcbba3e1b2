"""Unit tests for tier_migrate's journal records (_migrate_journal.py)."""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_journal as j


def test_runs_and_pending_undo():
    records = [
        {"op": "move", "run": "r1", "dst": "/a"},
        {"op": "move", "run": "r1", "dst": "/b"},
        {"op": "move", "run": "r1", "dst": "/b"},
        {"op": "copy", "run": "r2", "dst": "/c"},
        {"op": "undo", "run": "r1", "dst": "/a"},
    ]
    assert j.runs(records) == ["r1", "r2"]
    assert [r["dst"] for r in j.pending_undo(records, "r1")] == ["/b"]
    assert [r["dst"] for r in j.pending_undo(records, "r2")] == ["/c"]


def test_a_put_back_is_read_under_its_name_and_under_the_older_undo():
    """Journals written before the op was named rolled_back say undo: both mean the file is back."""
    records = [
        {"op": "move", "run": "r1", "dst": "/a"},
        {"op": "move", "run": "r1", "dst": "/b"},
        {"op": "move", "run": "r1", "dst": "/c"},
        {"op": "rolled_back", "run": "r1", "dst": "/a"},
        {"op": "undo", "run": "r1", "dst": "/b"},
        {"op": "rolled_back", "run": "r2", "dst": "/c"},  # another run's record says nothing of r1
    ]
    assert [r["dst"] for r in j.pending_undo(records, "r1")] == ["/c"]
