"""Overdue parts, the oldest part on hot, per-disk totals (_clickhouse_report)."""

from __future__ import annotations

from test_clickhouse_rules_utils import COLD, DAY, DISKS, NOW, VOLUMES, part

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_report import (
    disks_report,
    oldest_hot,
    table_disks,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import overdue


def test_overdue_parts_and_oldest_on_hot():
    parts = [
        part("a", "a", "default", newest=40),
        part("b", "b", "default", newest=2),
        part("c", "c", "warm", newest=90),
    ]
    assert overdue(parts, COLD, DISKS, NOW) == [
        {"part": "a", "partition_id": "a", "disk": "default", "target": "volume cold"}
    ]
    oldest = oldest_hot([("m", "t", None, parts)], DISKS, NOW)
    assert oldest["part"] == "a" and oldest["age_seconds"] == 40 * DAY and oldest["age_days"] == 40.0
    assert oldest_hot([("m", "t", None, [parts[2]])], DISKS, NOW) is None


def test_disk_reports():
    rows = [{"disk": "default", "parts": "3", "total_bytes": "300", "total_rows": "30"}]
    assert disks_report(rows, VOLUMES) == {"default": {"volume": "hot", "parts": 3, "bytes": 300, "rows": 30}}
    assert table_disks([part("a", "a", "warm"), part("b", "b", "warm")]) == {
        "warm": {"parts": 2, "bytes": 200, "rows": 20}
    }
