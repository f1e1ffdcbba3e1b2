"""Tiering runs (_clickhouse_tiering): the runner on a scripted server."""

from __future__ import annotations

import re

import pytest
from test_clickhouse_rules_utils import NOW, VOLUMES, part
from test_clickhouse_ttl_utils import engine

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_tiering as t
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import (
    ClickHouseError,
    ClickHouseTimeout,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout

# --------------------------------------------------------------------------- the runner


class Server:
    """A scripted ClickHouse: answers by the statement's shape; records every statement."""

    def __init__(self, tables, parts, after_move=None):
        self.tables = tables  # {"m.t": row}
        self.parts = parts  # {"m.t": [rows]}
        self.after_move = after_move
        self.statements = []
        self.fail = {}  # regex -> exception

    def _check(self, query, timeout):
        self.statements.append((query, timeout))
        for pattern, exc in self.fail.items():
            if re.search(pattern, query):
                raise exc

    def select(self, query, timeout):
        self._check(query, timeout)
        if query.startswith("SELECT version()"):
            return [{"version": "24.8.1.1", "now": NOW}]
        if query.startswith("SELECT toUnixTimestamp(now())"):
            return [{"now": NOW}]
        if "system.storage_policies" in query:
            return [
                {"policy_name": "hot_cold", "volume_name": v["name"], "volume_priority": i + 1, "disks": v["disks"]}
                for i, v in enumerate(VOLUMES)
            ]
        if "FROM system.tables" in query:
            name = "%s.%s" % re.search(r"database = '(\w+)' AND name = '(\w+)'", query).groups()
            return [self.tables[name]] if name in self.tables else []
        if "FROM system.parts WHERE active AND database" in query:
            name = "%s.%s" % re.search(r"database = '(\w+)' AND table = '(\w+)'", query).groups()
            pid = re.search(r"partition_id = '(\w+)'", query)
            return [p for p in self.parts.get(name, []) if not pid or p["partition_id"] == pid.group(1)]
        if "GROUP BY disk_name" in query:
            return []
        if "system.disks" in query:
            return [{"name": "warm", "free_space": "1"}]
        raise AssertionError("unexpected query %r" % query)

    def execute(self, statement, timeout):
        self._check(statement, timeout)
        match = re.search(r"`(\w+)`\.`(\w+)` MODIFY TTL (.*)$", statement)
        if match:
            name = "%s.%s" % match.groups()[:2]
            self.tables[name]["engine_full"] = engine(
                match.group(3).replace("`d` + INTERVAL 30 DAY", "d + toIntervalDay(30)")
            )
            return
        match = re.search(r"`(\w+)`\.`(\w+)` MOVE PARTITION ID '(\w+)' TO VOLUME '(\w+)'", statement)
        if match and self.after_move != "stays":
            name = "%s.%s" % match.groups()[:2]
            disk = next(v["disks"][0] for v in VOLUMES if v["name"] == match.group(4))
            for row in self.parts[name]:
                if row["partition_id"] == match.group(3):
                    row["disk_name"] = disk

    def alters(self):
        return [s for s, _ in self.statements if s.startswith("ALTER")]


def params(**overrides):
    base = {
        "policy": "hot_cold",
        "set_policy": False,
        "timeout": 10.0,
        "probe_timeout": 5.0,
        "move_timeout": 1800.0,
        "wait_timeout": 0.0,
        "probe_paths": [],
        "tables": [
            {"database": "m", "table": "ticks", "ttl": True, "column": "d", "moves": [{"days": 30, "volume": "cold"}]},
            {
                "database": "m",
                "table": "orders",
                "ttl": False,
                "column": None,
                "moves": [{"days": 30, "volume": "cold"}],
            },
        ],
    }
    base.update(overrides)
    return base


def server(ttl=None, orders_disk="default", **kwargs):
    tables = {
        "m.ticks": {"engine": "MergeTree", "engine_full": engine(ttl), "storage_policy": "hot_cold"},
        "m.orders": {"engine": "MergeTree", "engine_full": engine(), "storage_policy": "hot_cold"},
    }
    parts = {
        "m.ticks": [part("t1", "t1", "default", newest=5)],
        "m.orders": [part("o1", "o1", orders_disk, newest=60), part("o2", "o2", "default", newest=1)],
    }
    return Server(tables, parts, **kwargs)


def test_run_sets_the_ttl_moves_old_partitions_and_verifies():
    srv = server()
    result = t.Tiering(srv, params()).run()
    assert srv.alters() == [
        "ALTER TABLE `m`.`ticks` MODIFY TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'",
        "ALTER TABLE `m`.`orders` MOVE PARTITION ID 'o1' TO VOLUME 'cold'",
    ]
    assert result["changed"] is True and result["statements"] == srv.alters()
    assert result["tables"][1]["moves"][0]["verified"] is True
    assert result["tables"][1]["disks"] == {
        "warm": {"parts": 1, "bytes": 100, "rows": 10},
        "default": {"parts": 1, "bytes": 100, "rows": 10},
    }
    # every ALTER with the move time-out, every read with the catalogue time-out
    assert {timeout for s, timeout in srv.statements if s.startswith("ALTER")} == {1800.0}
    assert {timeout for s, timeout in srv.statements if s.startswith("SELECT") and "system.disks" not in s} == {10.0}


def test_second_run_changes_nothing():
    srv = server(ttl="d + toIntervalDay(30) TO VOLUME 'cold'", orders_disk="warm")
    result = t.Tiering(srv, params()).run()
    assert srv.alters() == [] and result["changed"] is False and result["statements"] == []
    assert not any("system.disks" in s for s, _ in srv.statements), "no probe when nothing changes"


def test_check_mode_lists_and_runs_nothing():
    srv = server()
    result = t.Tiering(srv, params(), check_mode=True).run()
    assert srv.alters() == []
    assert result["changed"] is True
    assert result["statements"] == [
        "ALTER TABLE `m`.`ticks` MODIFY TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'",
        "ALTER TABLE `m`.`orders` MOVE PARTITION ID 'o1' TO VOLUME 'cold'",
    ]
    assert result["tables"][1]["moves"][0]["from"] == ["default"] and "verified" not in result["tables"][1]["moves"][0]
    assert not any("system.disks" in s for s, _ in srv.statements)


def test_server_probe_that_times_out_changes_nothing():
    srv = server()
    srv.fail[r"system\.disks"] = ClickHouseTimeout("no answer within 5s", killed=False)
    with pytest.raises(t.TieringError, match=r"did not answer within 5s \(system.disks\).*nothing was changed"):
        t.Tiering(srv, params()).run()
    assert srv.alters() == []
    assert [timeout for s, timeout in srv.statements if "system.disks" in s] == [5.0]


def test_local_probe_is_used_instead_of_the_server_and_stops_the_run():
    srv = server()
    asked = []

    def probe(path, timeout):
        asked.append((path, timeout))
        raise ProbeTimeout("no answer within 5.0s")

    with pytest.raises(
        t.TieringError, match=r"cold disk path /mnt/nas/ch did not answer within 5s.*nothing was changed"
    ):
        t.Tiering(srv, params(probe_paths=["/mnt/nas/ch"]), probe=probe).run()
    assert asked == [("/mnt/nas/ch", 5.0)]
    assert srv.alters() == [] and not any("system.disks" in s for s, _ in srv.statements)


def test_a_move_that_times_out_fails_the_run_with_what_it_was_doing():
    srv = server(ttl="d + toIntervalDay(30) TO VOLUME 'cold'")
    srv.fail[r"MOVE PARTITION"] = ClickHouseTimeout("no answer within 1800s", killed=True)
    with pytest.raises(t.TieringError, match=r"moving partition o1 of m.orders to volume cold: no answer.*it answered"):
        t.Tiering(srv, params()).run()


def test_a_move_that_did_not_land_fails_the_run():
    srv = server(ttl="d + toIntervalDay(30) TO VOLUME 'cold'", after_move="stays")
    with pytest.raises(t.TieringError, match=r"parts o1 of partition o1 are still before volume cold \(system.parts\)"):
        t.Tiering(srv, params()).run()


def test_a_ttl_the_server_shows_otherwise_after_the_change_fails_the_run():
    srv = server()
    original = srv.execute

    def execute(statement, timeout):
        original(statement, timeout)
        srv.tables["m.ticks"]["engine_full"] = engine("d + toIntervalDay(31) TO VOLUME 'cold'")

    srv.execute = execute
    with pytest.raises(t.TieringError, match='shows "d \\+ toIntervalDay\\(31\\)'):
        t.Tiering(srv, params()).run()


@pytest.mark.parametrize(
    "table, message",
    [
        ({"engine": "Log", "engine_full": "Log", "storage_policy": ""}, "m.ticks is a Log table"),
        (None, "table m.ticks does not exist"),
        (
            {"engine": "MergeTree", "engine_full": engine(), "storage_policy": "default"},
            "m.ticks uses storage policy 'default', not 'hot_cold': set set_policy",
        ),
    ],
)
def test_tables_that_cannot_be_tiered_fail_before_any_change(table, message):
    srv = server()
    if table is None:
        del srv.tables["m.ticks"]
    else:
        srv.tables["m.ticks"] = table
    with pytest.raises(t.TieringError, match=re.escape(message)):
        t.Tiering(srv, params()).run()
    assert srv.alters() == []


def test_set_policy_switches_first():
    srv = server()
    srv.tables["m.ticks"]["storage_policy"] = "default"
    t.Tiering(srv, params(set_policy=True)).run()
    assert srv.alters()[0] == "ALTER TABLE `m`.`ticks` MODIFY SETTING storage_policy = 'hot_cold'"


def test_server_errors_name_what_the_run_was_doing():
    srv = server()
    srv.fail[r"system\.parts WHERE active AND database = 'm' AND table = 'orders'"] = ClickHouseError("Code: 497")
    with pytest.raises(t.TieringError, match=re.escape("reading the parts of m.orders: Code: 497")):
        t.Tiering(srv, params()).run()


def test_waits_for_background_moves_then_reports_pending():
    srv = server(ttl="d + toIntervalDay(30) TO VOLUME 'cold'", orders_disk="warm")
    srv.parts["m.ticks"] = [part("t1", "t1", "default", newest=45)]
    slept, clock = [], [0.0]

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds
        if len(slept) == 3:  # the server moves it meanwhile
            srv.parts["m.ticks"][0]["disk_name"] = "warm"

    result = t.Tiering(srv, params(wait_timeout=10.0), sleep=sleep, clock=lambda: clock[0]).run()
    assert len(slept) == 3 and result["tables"][0]["pending"] == [] and result["changed"] is False

    srv.parts["m.ticks"][0]["disk_name"] = "default"
    slept.clear()
    clock[0] = 0.0
    late = t.Tiering(
        srv, params(wait_timeout=2.0), sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0]
    ).run()
    assert late["tables"][0]["pending"] == [
        {"part": "t1", "partition_id": "t1", "disk": "default", "target": "volume cold"}
    ]
    assert "still before their target volume" in late["warnings"][0]
