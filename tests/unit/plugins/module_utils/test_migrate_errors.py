"""Unit tests for tier_migrate's errors and messages (_migrate_errors.py)."""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m


def test_display_non_utf8():
    assert m.display(b"a\xffb") == "a\\xffb"
    assert m.display("plain") == "plain"
