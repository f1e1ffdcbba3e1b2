# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hot/cold tiering of ClickHouse tables: plan from the server's catalogue, apply, verify, report.

User: clickhouse_tiering. ``Tiering`` asks the server (``_clickhouse_http.ClickHouseHTTP``) and
runs the plan; each idea of a run lives in a file of its own:

* ``_clickhouse_rules``: the policy's volumes, the move rules (never back towards hot, ClickHouse
  issue 49098), the volume a part of a given age belongs on, ``TieringError``;
* ``_clickhouse_ttl``: the rules as the table's TTL (``plan_ttl``, ``apply_ttl``);
* ``_clickhouse_moves``: ``MOVE PARTITION|PART`` statements (``plan_moves``, ``apply_moves``);
* ``_clickhouse_probe``: the cold side probed before the first change;
* ``_clickhouse_report``: per-disk totals, overdue parts, the oldest part on hot.

What touches which disk. ``system.tables``, ``system.storage_policies`` and ``system.parts`` are
answered from the server's memory; ``system.disks`` calls ``statvfs`` on every disk and hangs
with a dead NFS disk (ClickHouse issue 65552); ``ALTER ... MOVE`` writes to the target disk.
So before the first change the cold side is probed. Every request has a hard deadline of its
own; a request that runs out of it makes the run fail at once, so a run takes at most about one
time-out after a disk stops answering.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_sql as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import (
    ClickHouseError,
    ClickHouseTimeout,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_moves import apply_moves, moves_into_plan
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_probe import probe_cold_side
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_report import report
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import (
    TieringError,
    disk_index,
    overdue,
    policy_volumes,
    resolve_rules,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_ttl import apply_ttl, ttl_into_plan

POLL = 1.0
MERGE_TREE = "MergeTree"


PARTS = (
    "SELECT name, partition_id, disk_name, toUInt64(rows) AS part_rows, toUInt64(bytes_on_disk) AS part_bytes, "
    "toUnixTimestamp(max_time) AS newest_time, toUnixTimestamp(toDateTime(max_date)) AS newest_date, "
    "max_date = toDate(0) AS no_date, move_ttl_info.expression AS ttl_expressions, "
    "arrayMap(x -> toUnixTimestamp(x), move_ttl_info.max) AS ttl_max "
    "FROM system.parts WHERE active AND database = %s AND table = %s%s ORDER BY partition_id, name"
)


class Tiering:
    """Runs the tiering of ``params['tables']`` through ``client``; ``result`` holds what happened.

    It is also the session the TTL, move and report steps run their queries through: ``select``,
    ``execute``, ``parts``, ``now`` say a failure in terms of what the run was doing.
    """

    def __init__(self, client, params, check_mode=False, probe=None, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.probe = probe
        self.sleep = sleep
        self.clock = clock
        self.result = {"changed": False, "statements": [], "tables": [], "warnings": []}

    # each query, with the failure said in terms of what the run was doing
    def select(self, query, timeout=None, doing=None):
        try:
            return self.client.select(query, timeout or self.params["timeout"])
        except ClickHouseTimeout as exc:
            raise TieringError("%s: %s" % (doing or "reading the catalogue", exc)) from None
        except ClickHouseError as exc:
            raise TieringError("%s: %s" % (doing or "reading the catalogue", exc)) from None

    def execute(self, statement, doing):
        self.result["statements"].append(statement)
        self.result["changed"] = True
        try:
            self.client.execute(statement, self.params["move_timeout"])
        except ClickHouseTimeout as exc:
            raise TieringError(
                "%s: %s; the server was asked to stop it (%s); a cold disk that stopped answering (a NAS) "
                "is the usual cause" % (doing, exc, "it answered" if exc.killed else "no answer either")
            ) from None
        except ClickHouseError as exc:
            raise TieringError("%s: %s" % (doing, exc)) from None

    def parts(self, database, table, partition_id=None):
        extra = " AND partition_id = %s" % sql.quote_string(partition_id) if partition_id is not None else ""
        return self.select(
            PARTS % (sql.quote_string(database), sql.quote_string(table), extra),
            doing="reading the parts of %s.%s" % (database, table),
        )

    def now(self):
        return int(self.select("SELECT toUnixTimestamp(now()) AS now")[0]["now"])

    def run(self):
        params = self.params
        server = self.select(
            "SELECT version() AS version, toUnixTimestamp(now()) AS now", doing="connecting to the server"
        )[0]
        self.result["server_version"] = server["version"]
        rows = self.select(
            "SELECT policy_name, volume_name, volume_priority, disks FROM system.storage_policies "  # noqa: S608 (quoted)
            "WHERE policy_name = %s ORDER BY volume_priority" % sql.quote_string(params["policy"])
        )
        volumes = policy_volumes(rows, params["policy"])
        disks = disk_index(volumes)
        self.result["policy"] = {"name": params["policy"], "volumes": volumes}
        plans = [self._plan(table, volumes, disks, int(server["now"])) for table in params["tables"]]
        self.result["tables"] = [p["report"] for p in plans]
        statements = [s for p in plans for s in p["statements"]]
        if self.check_mode:
            self.result["statements"] = statements
            self.result["changed"] = bool(statements)
        else:
            if statements:
                probe_cold_side(self.client, self.probe, params["probe_paths"], params["probe_timeout"])
            for plan in plans:
                self._apply(plan, disks)
            self._wait(plans, disks)
        report(self, plans, volumes, disks, self.check_mode, params["wait_timeout"])
        return self.result

    def _plan(self, entry, volumes, disks, now):
        database, table = entry["database"], entry["table"]
        name = "%s.%s" % (database, table)
        try:
            rules = resolve_rules(entry["moves"], volumes, self.params["policy"])
        except TieringError as exc:
            raise TieringError("%s: %s" % (name, exc)) from None
        found = self.select(
            sql.table_row_query("engine, engine_full, storage_policy", database, table),
            doing="reading table %s" % name,
        )
        if not found:
            raise TieringError("table %s does not exist on the server" % name)
        row = found[0]
        if not row["engine"].endswith(MERGE_TREE):
            raise TieringError("%s is a %s table: only MergeTree tables have storage policies" % (name, row["engine"]))
        report = {
            "database": database,
            "table": table,
            "mode": "ttl" if entry["ttl"] else "move",
            "rules": [{k: r[k] for k in ("days", "kind", "name")} for r in rules],
            "storage_policy": row["storage_policy"],
        }
        statements = []
        if row["storage_policy"] != self.params["policy"]:
            statement = sql.modify_policy(database, table, self.params["policy"])
            if not self.params["set_policy"]:
                raise TieringError(
                    "%s uses storage policy %r, not %r: set set_policy to switch it (%s); the server allows it only "
                    "when the new policy keeps every disk and volume of the old one"
                    % (name, row["storage_policy"], self.params["policy"], statement)
                )
            statements.append(statement)
            report["policy_statement"] = statement
        parts = self.parts(database, table)
        plan = {"entry": entry, "name": name, "rules": rules, "report": report, "parts": parts}
        if entry["ttl"]:
            statements.extend(ttl_into_plan(plan, row["engine_full"]))
        else:
            statements.extend(moves_into_plan(plan, disks, now, self.result["warnings"]))
        plan["statements"] = statements
        return plan

    def _apply(self, plan, disks):
        if plan["report"].get("policy_statement"):
            self.execute(
                plan["statements"][0], "switching %s to storage policy %r" % (plan["name"], self.params["policy"])
            )
        if plan["entry"]["ttl"]:
            apply_ttl(self, plan)
        else:
            apply_moves(self, plan, disks)

    def _wait(self, plans, disks):
        """Wait (``wait_timeout``) for the server's background TTL moves of parts already due."""
        deadline = self.clock() + self.params["wait_timeout"]
        while True:
            now = self.now()
            late = []
            for plan in plans:
                if plan["entry"]["ttl"]:
                    plan["parts"] = self.parts(plan["entry"]["database"], plan["entry"]["table"])
                    plan["late"] = overdue(plan["parts"], plan["rules"], disks, now, plan["entry"]["column"])
                    late.extend(plan["late"])
            if not late or self.clock() + POLL > deadline:
                return
            self.sleep(POLL)


__all__ = ["PARTS", "Tiering", "TieringError"]
