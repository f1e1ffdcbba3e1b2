"""ClickHouse SQL building and reading the server's own TTL formatting (_clickhouse_sql)."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_sql as sql


@pytest.mark.parametrize(
    "name, quoted",
    [
        ("ticks", "`ticks`"),
        ("a`b", "`a\\`b`"),
        ("a\\`; DROP TABLE x; --", "`a\\\\\\`; DROP TABLE x; --`"),
    ],
)
def test_identifiers_are_backquoted_with_escapes(name, quoted):
    assert sql.quote_identifier(name) == quoted


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("cold", "'cold'"),
        ("it's", "'it\\'s'"),
        ("x\\' OR 1=1 --", "'x\\\\\\' OR 1=1 --'"),
    ],
)
def test_strings_are_quoted_with_escapes(value, quoted):
    assert sql.quote_string(value) == quoted


def test_a_quoted_string_reads_back_as_one_literal():
    # what the scanner sees: one string token, whatever the value holds
    value = "a', b) TO DISK 'hot"
    element = "d + toIntervalDay(1) TO VOLUME " + sql.quote_string(value)
    assert sql.parse_move(element) == ("d + toIntervalDay(1)", "volume", value)


@pytest.mark.parametrize("column", ["trade date", "d; DROP", "`d`", "", None, "1d"])
def test_columns_must_be_plain_names(column):
    with pytest.raises(sql.SQLError, match="plain column name"):
        sql.check_column(column)


ENGINE = (
    "MergeTree PARTITION BY toYYYYMM(d) ORDER BY (x, y) TTL d + toIntervalDay(30) TO VOLUME 'cold', "
    "d + toIntervalDay(365) DELETE WHERE x = 'TTL, SETTINGS' SETTINGS storage_policy = 'hot_cold', index_granularity = 8192"
)


def test_table_ttl_is_the_top_level_clause_between_ttl_and_settings():
    assert sql.table_ttl(ENGINE) == (
        "d + toIntervalDay(30) TO VOLUME 'cold', d + toIntervalDay(365) DELETE WHERE x = 'TTL, SETTINGS'"
    )


@pytest.mark.parametrize(
    "engine",
    [
        "MergeTree ORDER BY x SETTINGS index_granularity = 8192",
        "MergeTree ORDER BY ttl SETTINGS index_granularity = 8192",
        "MergeTree ORDER BY (`TTL`, x) SETTINGS storage_policy = 'TTL'",
        "",
        None,
    ],
)
def test_no_table_ttl(engine):
    assert sql.table_ttl(engine) == ""


def test_ttl_without_settings_runs_to_the_end():
    assert sql.table_ttl("MergeTree ORDER BY x TTL d + toIntervalDay(3)") == "d + toIntervalDay(3)"


def test_elements_split_at_top_level_commas_only():
    clause = sql.table_ttl(ENGINE)
    assert sql.split_elements(clause) == [
        "d + toIntervalDay(30) TO VOLUME 'cold'",
        "d + toIntervalDay(365) DELETE WHERE x = 'TTL, SETTINGS'",
    ]
    assert sql.split_elements("toDate(ts, 'UTC') + toIntervalDay(1), ts + INTERVAL 2 DAY TO DISK 'a,b'") == [
        "toDate(ts, 'UTC') + toIntervalDay(1)",
        "ts + INTERVAL 2 DAY TO DISK 'a,b'",
    ]


@pytest.mark.parametrize("bad", ["d + toIntervalDay(1", "d + toIntervalDay(1))", "x = 'open", "a,,b"])
def test_unreadable_ttl_is_an_error_not_a_guess(bad):
    with pytest.raises(sql.SQLError):
        sql.split_elements(bad)


@pytest.mark.parametrize(
    "element, parsed",
    [
        ("d + toIntervalDay(30) TO VOLUME 'cold'", ("d + toIntervalDay(30)", "volume", "cold")),
        ("d + toIntervalDay(30) TO DISK 'warm'", ("d + toIntervalDay(30)", "disk", "warm")),
        ("d + INTERVAL 30 DAY to volume 'cold'", ("d + INTERVAL 30 DAY", "volume", "cold")),
        ("d + toIntervalDay(30)", None),
        ("d + toIntervalDay(30) DELETE", None),
        ("d + toIntervalDay(30) RECOMPRESS CODEC(ZSTD(3))", None),
        ("if(x, 'TO VOLUME', 'y') + toIntervalDay(1) DELETE WHERE z = 'TO DISK'", None),
    ],
)
def test_move_elements_are_recognised(element, parsed):
    assert sql.parse_move(element) == parsed


@pytest.mark.parametrize(
    "expression, parsed",
    [
        ("d + toIntervalDay(30)", ("d", 30)),
        ("`trade date` + toIntervalDay(7)", ("trade date", 7)),
        ("ts + INTERVAL 365 DAY", ("ts", 365)),
        ("ts + toIntervalMonth(1)", None),
        ("toDate(ts) + toIntervalDay(1)", None),
        ("d + toIntervalDay(30) + toIntervalDay(1)", None),
    ],
)
def test_day_intervals(expression, parsed):
    assert sql.parse_day_interval(expression) == parsed


def test_statements():
    rule = {"days": 30, "kind": "volume", "name": "cold"}
    element = sql.move_element("d", rule)
    assert element == "`d` + INTERVAL 30 DAY TO VOLUME 'cold'"
    assert sql.modify_ttl("market", "ticks", ["x + toIntervalDay(400)", element]) == (
        "ALTER TABLE `market`.`ticks` MODIFY TTL x + toIntervalDay(400), `d` + INTERVAL 30 DAY TO VOLUME 'cold'"
    )
    assert sql.move_partition("market", "ticks", "202608", "volume", "cold") == (
        "ALTER TABLE `market`.`ticks` MOVE PARTITION ID '202608' TO VOLUME 'cold'"
    )
    assert sql.move_part("market", "ticks", "202608_1_1_0", "disk", "warm") == (
        "ALTER TABLE `market`.`ticks` MOVE PART '202608_1_1_0' TO DISK 'warm'"
    )
    assert sql.modify_policy("m", "t", "hot_cold") == "ALTER TABLE `m`.`t` MODIFY SETTING storage_policy = 'hot_cold'"
    assert sql.kill_query("jts-1") == "KILL QUERY WHERE query_id = 'jts-1' ASYNC"


def test_our_element_reads_back_as_our_rule():
    element = sql.move_element("d", {"days": 30, "kind": "volume", "name": "cold"})
    expression, kind, name = sql.parse_move(element)
    assert (sql.parse_day_interval(expression), kind, name) == (("d", 30), "volume", "cold")
