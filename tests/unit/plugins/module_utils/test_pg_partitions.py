"""Pure functions of _pg_partitions: bounds, times, retention, names, journal reading."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql


@pytest.mark.parametrize(
    "text, expected",
    [
        ("FOR VALUES FROM ('2020-01-01') TO ('2020-02-01')", ("2020-01-01", "2020-02-01")),
        ("FOR VALUES FROM (MINVALUE) TO ('2020-02-01 00:00:00+00')", (None, "2020-02-01 00:00:00+00")),
        ("FOR VALUES FROM ('2020-03-01 00:00:00') TO (MAXVALUE)", ("2020-03-01 00:00:00", None)),
        ("FOR VALUES FROM ('a''b') TO ('c')", ("a'b", "c")),
    ],
)
def test_parse_bound(text, expected):
    assert sql.parse_bound(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "DEFAULT",
        "FOR VALUES IN ('x')",
        "FOR VALUES WITH (modulus 4, remainder 0)",
        "FOR VALUES FROM ('2020-01-01', 1) TO ('2020-02-01', 1)",
        "FOR VALUES FROM ('a') TO ('b'); DROP TABLE x",
        None,
    ],
)
def test_parse_bound_refuses_what_it_does_not_handle(text):
    with pytest.raises(sql.BoundError):
        sql.parse_bound(text)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1970-01-02", 86400),
        ("2020-02-01 00:00:00", 1580515200),
        ("2020-02-01 00:00:00+00", 1580515200),
        ("2020-02-01 05:30:00+05:30", 1580515200),
        ("2020-01-31 19:00:00-05", 1580515200),
        ("2020-02-01 00:00:00.25+00", 1580515200.25),
        ("infinity", float("inf")),
        ("-infinity", float("-inf")),
        ("0044-03-15 BC", float("-inf")),
        ("12020-01-01", float("inf")),
    ],
)
def test_parse_pg_time(text, seconds):
    assert sql.parse_pg_time(text) == seconds


def test_parse_pg_time_refuses_other_text():
    with pytest.raises(ValueError, match="not a date"):
        sql.parse_pg_time("next tuesday")


def part(name, bound, kind="r", pending=False):
    return {"schema": "market", "name": name, "kind": kind, "bound": bound, "pending": pending}


def test_expired_partitions_end_at_or_before_the_cutoff():
    day = 86400
    parts = [
        part("p1", "FOR VALUES FROM ('1970-01-01') TO ('1970-01-11')"),  # ends exactly at the cutoff
        part("p2", "FOR VALUES FROM ('1970-01-11') TO ('1970-01-12')"),  # one day too young
        part("p3", "FOR VALUES FROM ('1970-01-12') TO (MAXVALUE)"),  # never
        part("d", "DEFAULT"),
        part("sub", "FOR VALUES FROM (MINVALUE) TO ('1970-01-02')", kind="p"),
        part("odd", "FOR VALUES IN ('1970-01-01')"),
    ]
    expired, skipped = sql.expired_partitions(parts, now=20 * day, retention_seconds=10 * day)
    assert [(p["name"], p["lo"], p["hi"]) for p in expired] == [("p1", "1970-01-01", "1970-01-11")]
    assert {p["name"]: p["reason"].split(";")[0].split(":")[0] for p in skipped} == {
        "sub": "sub-partitioned",
        "odd": "not a single-column range bound",
    }
    assert "lo" not in parts[0]  # the caller's dicts are not changed


@pytest.mark.parametrize(
    "table, message",
    [
        (None, "does not exist"),
        ({"kind": "r", "strategy": None, "natts": None, "key": None, "key_type": None}, "not a partitioned table"),
        (
            {"kind": "p", "strategy": "l", "natts": 1, "key": "LIST (sym)", "key_type": "text"},
            "not partitioned by range",
        ),
        ({"kind": "p", "strategy": "r", "natts": 2, "key": "RANGE (a, b)", "key_type": "date"}, "is not one column"),
        (
            {"kind": "p", "strategy": "r", "natts": 1, "key": "RANGE ((ts::date))", "key_type": None},
            "is not one column",
        ),
        ({"kind": "p", "strategy": "r", "natts": 1, "key": "RANGE (id)", "key_type": "bigint"}, "of type bigint"),
        ({"kind": "p", "strategy": "r", "natts": 1, "key": "RANGE (ts)", "key_type": "date"}, None),
    ],
)
def test_check_table(table, message):
    refusal = sql.check_table({"table": table}, "market.trades")
    if message is None:
        assert refusal is None
    else:
        assert "market.trades" in refusal and message in refusal


@pytest.mark.parametrize(
    "name, expected",
    [
        ("trades_2020_01", "trades_2020_01"),
        ("a/b", "a%2Fb"),
        ("..", "%2E."),
        ("é", "%C3%A9"),
        ("", "%00"),
        ("x y", "x%20y"),
    ],
)
def test_safe_name(name, expected):
    assert sql.safe_name(name) == expected


def test_quoting_like_postgres():
    assert sql.qualified("market", "trades") == "market.trades"
    assert sql.qualified("Market", 'tr"ades') == '"Market"."tr""ades"'


def rec(op, partition="market.p1", **extra):
    return dict({"op": op, "port": 5432, "database": "trading", "partition": partition}, **extra)


def test_in_flight_is_the_last_record_per_partition():
    records = [
        rec("detach"),
        rec("archive"),
        rec("drop"),
        rec("detach", "market.p2"),
        rec("detach", "market.p3"),
        rec("reattach", "market.p3"),
        rec("detach", "market.p4"),
        rec("archive", "market.p4"),
        rec("detach", "market.p5", database="other"),
        {"op": "scratch", "port": 5432, "name": "x"},
    ]
    assert sorted(sql.in_flight(records, 5432, "trading")) == ["market.p2", "market.p4"]


def test_held_and_stale_scratch():
    records = [rec("restore", hold_until=200), rec("restore", "market.p2", hold_until=50), rec("drop", "market.p3")]
    assert sql.held(records, 5432, "trading", now=100) == {"market.p1": 200}
    scratch = [
        {"op": "scratch", "port": 5432, "name": "a"},
        {"op": "scratch", "port": 5432, "name": "b"},
        {"op": "scratch_dropped", "port": 5432, "name": "a"},
        {"op": "scratch", "port": 5433, "name": "c"},
    ]
    assert sql.stale_scratch(scratch, 5432) == ["b"]
