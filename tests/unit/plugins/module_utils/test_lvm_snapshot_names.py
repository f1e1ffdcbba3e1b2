"""Snapshot names and ownership (module_utils/_lvm_snapshot_names.py), no LVM needed."""

from __future__ import annotations

import pytest
from lvm_fake import SNAPSHOT_ROW as ROW

from ansible_collections.jts.tiered_storage.plugins.module_utils import _lvm_snapshot_names as ls


@pytest.mark.parametrize(
    ("changes", "prefix", "origins", "ours"),
    [
        ({}, "jts_snap_", None, True),
        ({}, "jts_snap_", {"postgres"}, True),
        ({}, "jts_snap_", {"mongodb"}, False),
        ({}, "jts_", None, False),  # the name would have to be jts_<origin>_<stamp>
        ({"origin": ""}, "jts_snap_", None, False),
        ({"lv_attr": "owi-aos---"}, "jts_snap_", None, False),
        ({"lv_name": "jts_snap_postgres_20261122T013000Z.old"}, "jts_snap_", None, False),
        ({"lv_name": "jts_snap_postgres_2026112T013000Z"}, "jts_snap_", None, False),
        ({"origin": "postgres.x", "lv_name": "jts_snap_postgresXx_20261122T013000Z"}, "jts_snap_", None, False),
    ],
)
def test_owned(changes, prefix, origins, ours):
    assert ls.owned(dict(ROW, **changes), prefix, origins) is ours


def test_snapshot_name_is_utc():
    assert ls.snapshot_name("p_", "lv", 1795311000) == "p_lv_20261122T013000Z"


def test_parse_max_age():
    assert ls.parse_max_age(None) is None and ls.parse_max_age("") is None
    assert ls.parse_max_age("36h") == 36 * 3600
