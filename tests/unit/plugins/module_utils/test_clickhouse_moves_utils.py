"""MOVE PARTITION|PART statements for what is past its rule (_clickhouse_moves)."""

from __future__ import annotations

from test_clickhouse_rules_utils import COLD, DISKS, NOW, VOLUMES, part

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_moves import plan_moves
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import resolve_rules


def test_old_partitions_move_whole_young_ones_stay():
    parts = [
        part("a_1", "a", "default", newest=40),
        part("a_2", "a", "default", newest=35),
        part("b_1", "b", "default", newest=10),
        part("c_1", "c", "warm", newest=50),
    ]
    moves, undated = plan_moves("m", "t", parts, COLD, DISKS, NOW)
    assert undated == []
    assert [(m["partition_id"], m["parts"], m["statements"]) for m in moves] == [
        ("a", ["a_1", "a_2"], ["ALTER TABLE `m`.`t` MOVE PARTITION ID 'a' TO VOLUME 'cold'"])
    ]


def test_a_partition_is_as_old_as_its_newest_row():
    parts = [part("a_1", "a", "default", newest=40), part("a_2", "a", "default", newest=3)]
    assert plan_moves("m", "t", parts, COLD, DISKS, NOW)[0] == []


def test_a_partition_partly_further_moves_only_its_lagging_parts():
    rules = resolve_rules([{"days": 30, "volume": "cold"}, {"days": 365, "volume": "nas"}], VOLUMES, "p")
    parts = [part("a_1", "a", "nas", newest=40), part("a_2", "a", "default", newest=40)]
    moves, _ = plan_moves("m", "t", parts, rules, DISKS, NOW)
    assert moves[0]["statements"] == ["ALTER TABLE `m`.`t` MOVE PART 'a_2' TO VOLUME 'cold'"]


def test_undated_partitions_are_not_moved():
    moves, undated = plan_moves("m", "t", [part("all_1", "all", "default")], COLD, DISKS, NOW)
    assert moves == [] and undated == ["all"]
