"""The policy's volumes, the move rules and where a part of a given age belongs (_clickhouse_rules)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_rules as t

DAY = 86400
NOW = 1_800_000_000
VOLUMES = [
    {"name": "hot", "disks": ["default"]},
    {"name": "cold", "disks": ["warm"]},
    {"name": "nas", "disks": ["nas"]},
]
DISKS = t.disk_index(VOLUMES)
COLD = [{"days": 30, "kind": "volume", "name": "cold", "index": 1}]


def part(name, partition_id, disk, newest=None, ttl=None, size=100):
    """A system.parts row; ``newest`` days before NOW as the partition key's max_date."""
    row = {
        "name": name,
        "partition_id": partition_id,
        "disk_name": disk,
        "part_rows": "10",
        "part_bytes": str(size),
        "newest_time": 0,
        "newest_date": 0 if newest is None else NOW - newest * DAY,
        "no_date": 1 if newest is None else 0,
        "ttl_expressions": [],
        "ttl_max": [],
    }
    if ttl:
        row["ttl_expressions"], row["ttl_max"] = [e for e, _ in ttl], [m for _, m in ttl]
    return row


# --------------------------------------------------------------------------- rules


def test_policy_volumes_in_priority_order():
    rows = [
        {"policy_name": "hot_cold", "volume_name": "cold", "volume_priority": "2", "disks": ["warm"]},
        {"policy_name": "hot_cold", "volume_name": "hot", "volume_priority": "1", "disks": ["default"]},
    ]
    assert t.policy_volumes(rows, "hot_cold") == [
        {"name": "hot", "disks": ["default"]},
        {"name": "cold", "disks": ["warm"]},
    ]
    with pytest.raises(t.TieringError, match="storage policy 'other' is not on the server"):
        t.policy_volumes(rows, "other")


def test_rules_resolve_to_volume_positions_oldest_last():
    rules = t.resolve_rules([{"days": 365, "volume": "nas"}, {"days": 30, "disk": "warm"}], VOLUMES, "hot_cold")
    assert rules == [
        {"days": 30, "kind": "disk", "name": "warm", "index": 1},
        {"days": 365, "kind": "volume", "name": "nas", "index": 2},
    ]


@pytest.mark.parametrize(
    "moves, message",
    [
        ([{"days": 30, "volume": "hot"}], "issue 49098"),
        ([{"days": 30, "disk": "default"}], "issue 49098"),
        ([{"days": 30, "volume": "nas"}, {"days": 365, "volume": "cold"}], "back towards hot"),
        ([{"days": 30, "volume": "cold"}, {"days": 365, "disk": "warm"}], "back towards hot"),
        ([{"days": 30, "volume": "cold"}, {"days": 30, "volume": "nas"}], "two moves after 30 days"),
        ([{"days": 30, "volume": "archive"}], "volume 'archive' is not in storage policy"),
        ([{"days": 30, "disk": "s3"}], "disk 's3' is not in storage policy"),
        ([{"days": 0, "volume": "cold"}], "1 or more"),
        ([{"days": 30, "volume": "cold", "disk": "warm"}], "not both"),
    ],
)
def test_rules_that_would_move_back_or_nowhere_are_refused(moves, message):
    with pytest.raises(t.TieringError, match=re.escape(message)):
        t.resolve_rules(moves, VOLUMES, "hot_cold")


# --------------------------------------------------------------------------- ages


def test_newest_row_from_the_ttl_information_first():
    row = part("p", "1", "default", newest=100, ttl=[("d + toIntervalDay(30)", NOW - 5 * DAY)])
    assert t.part_newest(row, "d") == NOW - 35 * DAY
    assert t.part_newest(row, "other") == NOW - 100 * DAY
    assert t.part_newest(row) == NOW - 100 * DAY
    assert t.part_newest(part("p", "1", "default")) is None
    timed = dict(part("p", "1", "default"), newest_time=NOW - 3)
    assert t.part_newest(timed) == NOW - 3


def test_expected_volume_by_age():
    rules = t.resolve_rules([{"days": 30, "volume": "cold"}, {"days": 365, "volume": "nas"}], VOLUMES, "p")
    assert t.expected_index(NOW - 29 * DAY, rules, NOW) == 0
    assert t.expected_index(NOW - 30 * DAY, rules, NOW) == 1
    assert t.expected_index(NOW - 400 * DAY, rules, NOW) == 2
