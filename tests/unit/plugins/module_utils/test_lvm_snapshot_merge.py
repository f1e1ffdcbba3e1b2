"""Merge helpers (module_utils/_lvm_snapshot_merge.py), no LVM needed."""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _lvm_snapshot_merge as ls


def test_merge_deferred_from_output_or_open_origin():
    assert ls.merge_deferred("  Merging of snapshot x will occur on next activation of y.\n", None) is True
    assert ls.merge_deferred("", {"lv_attr": "owi-aos---"}) is True
    assert ls.merge_deferred("", {"lv_attr": "owi-a-s---"}) is False
    assert ls.merge_deferred("", None) is False
