"""The clickhouse_tiering module's wiring: options, defaults, check mode and diff, failures, no secret out.

The server is the scripted one of tests/unit/plugins/module_utils/test_clickhouse_tiering.py, put
in place of the HTTP client.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "module_utils"))
from test_clickhouse_tiering_utils import engine, server

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import ClickHouseTimeout
from ansible_collections.jts.tiered_storage.plugins.modules import clickhouse_tiering

PASSWORD = "pw-0123456789"  # noqa: S105 (a test value)
TABLES = [
    {"database": "m", "table": "ticks", "column": "d"},
    {"database": "m", "table": "orders", "ttl": False},
]


@pytest.fixture
def fake(monkeypatch):
    made = {}

    def factory(url, user, password, validate_certs=True):
        made.update(url=url, user=user, password=password, validate_certs=validate_certs)
        return made["server"]

    made["server"] = server()
    monkeypatch.setattr(clickhouse_tiering, "ClickHouseHTTP", factory)
    return made


def args(**extra):
    base = {"password": PASSWORD, "tables": TABLES, "wait_timeout": 0}
    base.update(extra)
    return base


def test_defaults_fill_each_table(run_module, fake):
    result = run_module(clickhouse_tiering, args())
    assert fake["url"] == "http://127.0.0.1:8123" and fake["user"] == "default" and fake["password"] == PASSWORD
    assert result["changed"] is True
    assert [t["rules"] for t in result["tables"]] == [[{"days": 30, "kind": "volume", "name": "cold"}]] * 2
    assert result["msg"] == "2 table(s): changed the TTL of 1, ran 1 partition move(s); 0 part(s) pending"
    assert PASSWORD not in json.dumps(result)


def test_table_options_override_the_defaults(run_module, fake):
    result = run_module(
        clickhouse_tiering,
        args(
            days=60,
            tables=[
                {"database": "m", "table": "ticks", "column": "d", "days": 10, "disk": "warm"},
                {"database": "m", "table": "orders", "ttl": False, "moves": [{"days": 5, "volume": "nas"}]},
            ],
        ),
        check_mode=True,
    )
    assert [t["rules"] for t in result["tables"]] == [
        [{"days": 10, "kind": "disk", "name": "warm"}],
        [{"days": 5, "kind": "volume", "name": "nas"}],
    ]


def test_check_mode_and_diff(run_module, fake):
    result = run_module(clickhouse_tiering, args(), check_mode=True, diff=True)
    assert fake["server"].alters() == []
    assert result["changed"] is True and result["msg"].startswith("2 table(s): would change the TTL of 1")
    assert result["diff"] == {
        "before": "m.ticks TTL (none)\nm.orders partition o1 on default\n",
        "after": "m.ticks TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'\nm.orders partition o1 on volume cold\n",
    }


def test_nothing_to_do(run_module, fake):
    fake["server"] = server(ttl="d + toIntervalDay(30) TO VOLUME 'cold'", orders_disk="warm")
    result = run_module(clickhouse_tiering, args(), diff=True)
    assert result["changed"] is False and result["statements"] == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_a_failure_keeps_what_was_done(run_module, fake):
    fake["server"].fail[r"MOVE PARTITION"] = ClickHouseTimeout("no answer within 1800s", killed=False)
    result = run_module(clickhouse_tiering, args())
    assert result["failed"] is True
    assert "moving partition o1 of m.orders" in result["msg"] and "no answer either" in result["msg"]
    assert result["changed"] is True
    assert result["statements"][0].startswith("ALTER TABLE `m`.`ticks` MODIFY TTL")
    assert PASSWORD not in json.dumps(result)


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"tables": [{"table": "ticks"}]}, "default.ticks needs a column"),
        ({"tables": [{"table": "ticks", "column": "d; DROP TABLE x"}]}, "plain column name"),
        ({"tables": [{"table": ""}]}, "needs a database and a table name"),
        ({"timeout": 0}, "timeout: 0 must be more than 0"),
        ({"move_timeout": -1}, "move_timeout"),
        ({"wait_timeout": -1}, "wait_timeout"),
        ({"url": "http://u:%s@127.0.0.1:8123" % PASSWORD}, "never in the URL"),
    ],
)
def test_bad_options_fail_before_the_server_is_asked(run_module, fake, extra, message):
    result = run_module(clickhouse_tiering, args(**extra))
    assert result["failed"] is True and message in result["msg"]
    assert fake["server"].statements == []
    assert PASSWORD not in json.dumps(result)


def test_volume_and_disk_together_are_refused_by_the_spec(run_module, fake):
    result = run_module(
        clickhouse_tiering, args(tables=[{"table": "t", "column": "d", "volume": "cold", "disk": "warm"}])
    )
    assert result["failed"] is True and "mutually exclusive" in result["msg"]


def test_the_ttl_table_engine_helper_matches_the_server_format():
    # the scripted server prints TTL as ClickHouse 26 does (checked against chdb in the functional tests)
    assert "TTL d + toIntervalDay(30) TO VOLUME 'cold' SETTINGS" in engine("d + toIntervalDay(30) TO VOLUME 'cold'")
