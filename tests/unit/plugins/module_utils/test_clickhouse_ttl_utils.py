"""The move rules as a table's TTL, as the server prints it (_clickhouse_ttl)."""

from __future__ import annotations

import pytest
from test_clickhouse_rules_utils import COLD, VOLUMES

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import resolve_rules
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_ttl import plan_ttl


def engine(ttl=None):
    return (
        "MergeTree PARTITION BY toYYYYMM(d) ORDER BY x %sSETTINGS storage_policy = 'hot_cold', index_granularity = 8192"
        % ("TTL %s " % ttl if ttl else "")
    )


def test_ttl_as_the_server_prints_it_is_no_change():
    plan = plan_ttl("m", "t", engine("d + toIntervalDay(30) TO VOLUME 'cold'"), "d", COLD)
    assert plan["changed"] is False and plan["statement"] is None
    assert plan["after"] == plan["before"] == ["d + toIntervalDay(30) TO VOLUME 'cold'"]


def test_no_ttl_gets_one():
    plan = plan_ttl("m", "t", engine(), "d", COLD)
    assert plan["changed"] is True
    assert plan["statement"] == "ALTER TABLE `m`.`t` MODIFY TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'"


@pytest.mark.parametrize(
    "current",
    [
        "d + toIntervalDay(7) TO VOLUME 'cold'",  # another age
        "d + toIntervalDay(30) TO DISK 'warm'",  # another target
        "other + toIntervalDay(30) TO VOLUME 'cold'",  # another column
        "toStartOfDay(d) + toIntervalDay(30) TO VOLUME 'cold'",  # an expression the module does not own
        "d TO VOLUME 'hot', d + toIntervalDay(30) TO VOLUME 'cold'",  # issue 49098: the back-move rule goes
        "d + toIntervalDay(30) TO VOLUME 'cold', d + toIntervalDay(30) TO VOLUME 'cold'",
    ],
)
def test_other_move_rules_are_replaced(current, engine_text=None):
    plan = plan_ttl("m", "t", engine(current), "d", COLD)
    assert plan["changed"] is True
    assert plan["after"] == ["`d` + INTERVAL 30 DAY TO VOLUME 'cold'"]
    assert plan["statement"].endswith("MODIFY TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'")


def test_the_hot_rule_is_reported_removed():
    plan = plan_ttl("m", "t", engine("d TO VOLUME 'hot', d + toIntervalDay(30) TO VOLUME 'cold'"), "d", COLD)
    assert plan["removed"] == ["d TO VOLUME 'hot'"]


def test_delete_and_recompress_elements_are_kept():
    current = "d + toIntervalDay(400) DELETE WHERE x = 'a, b', d + toIntervalDay(7) RECOMPRESS CODEC(ZSTD(9))"
    plan = plan_ttl("m", "t", engine(current), "d", COLD)
    assert plan["after"] == [
        "d + toIntervalDay(400) DELETE WHERE x = 'a, b'",
        "d + toIntervalDay(7) RECOMPRESS CODEC(ZSTD(9))",
        "`d` + INTERVAL 30 DAY TO VOLUME 'cold'",
    ]
    settled = engine(current + ", d + toIntervalDay(30) TO VOLUME 'cold'")
    assert plan_ttl("m", "t", settled, "d", COLD)["changed"] is False


def test_two_rules_in_any_printed_order_are_no_change():
    rules = resolve_rules([{"days": 30, "volume": "cold"}, {"days": 365, "volume": "nas"}], VOLUMES, "p")
    printed = engine("d + toIntervalDay(365) TO VOLUME 'nas', d + toIntervalDay(30) TO VOLUME 'cold'")
    assert plan_ttl("m", "t", printed, "d", rules)["changed"] is False
