# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hot/cold tiering of ClickHouse tables: plan from the server's catalogue, apply, verify, report.

Standard library only, Python 3.8. The planners (``resolve_rules``, ``plan_ttl``, ``plan_moves``,
``overdue``, the reports) are pure functions of rows the server returned; ``Tiering`` asks the
server (``_clickhouse_http.ClickHouseHTTP``) and runs the plan.

What touches which disk. ``system.tables``, ``system.storage_policies`` and ``system.parts`` are
answered from the server's memory; ``system.disks`` calls ``statvfs`` on every disk and hangs
with a dead NFS disk (ClickHouse issue 65552); ``ALTER ... MOVE`` writes to the target disk.
So before the first change the cold side is probed: the ``probe_paths`` from this host in a forked
child (``_timeout.statvfs_with_timeout``), or, when none are given, ``system.disks`` on the server,
each within ``probe_timeout``. Every request has a hard deadline of its own; a request that runs
out of it makes the run fail at once, so a run takes at most about one time-out after a disk
stops answering.

Moves only ever go towards later volumes of the policy: a rule to the first volume is refused,
and rules must reach later volumes as they get older (ClickHouse issue 49098: a ``TO VOLUME 'hot'``
rule moves parts back and forth). The module owns the move rules of the tables it is given:
its rules replace any other ``TO VOLUME``/``TO DISK`` element, the other TTL elements (DELETE,
GROUP BY, RECOMPRESS) are kept as the server printed them.
"""

from __future__ import annotations

import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_sql as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import (
    ClickHouseError,
    ClickHouseTimeout,
    short,
)

DAY = 86400
POLL = 1.0
MERGE_TREE = "MergeTree"


class TieringError(Exception):
    """A refusal or a failure; the message names the table, the disk or the query."""


# --------------------------------------------------------------------------- plan: pure


def policy_volumes(rows, policy):
    """The policy's volumes in order (``system.storage_policies`` rows) as ``[{name, disks}]``."""
    mine = sorted((r for r in rows if r["policy_name"] == policy), key=lambda r: int(r["volume_priority"]))
    if not mine:
        raise TieringError(
            "storage policy %r is not on the server: render it with the jts.tiered_storage.clickhouse_storage "
            "role and let the server load it (restart or SYSTEM RELOAD CONFIG)" % (policy,)
        )
    return [{"name": r["volume_name"], "disks": list(r["disks"])} for r in mine]


def disk_index(volumes):
    """``{disk: position of its volume}`` (0 is the first, hot volume)."""
    return {disk: index for index, volume in enumerate(volumes) for disk in volume["disks"]}


def resolve_rules(moves, volumes, policy):
    """Each ``{days, volume|disk}`` as ``{days, kind, name, index}``, sorted by age; refuses back-moves."""
    disks = disk_index(volumes)
    names = [v["name"] for v in volumes]
    rules = []
    for move in moves:
        days = move.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise TieringError("days %r: a whole number of days, 1 or more" % (days,))
        if move.get("volume") and move.get("disk"):
            raise TieringError("a move goes to a volume or to a disk, not both (%r)" % (move,))
        if move.get("disk"):
            kind, name = "disk", move["disk"]
            if name not in disks:
                raise TieringError("disk %r is not in storage policy %r (disks: %s)" % (name, policy, sorted(disks)))
            index = disks[name]
        else:
            kind, name = "volume", move.get("volume")
            if name not in names:
                raise TieringError("volume %r is not in storage policy %r (volumes: %s)" % (name, policy, names))
            index = names.index(name)
        if index == 0:
            raise TieringError(
                "a rule to %s %r moves parts to the policy's first (hot) volume: parts would move back from "
                "the cold disks (ClickHouse issue 49098); new parts go there anyway" % (kind, name)
            )
        rules.append({"days": days, "kind": kind, "name": name, "index": index})
    rules.sort(key=lambda r: r["days"])
    for earlier, later in zip(rules, rules[1:]):
        if later["days"] == earlier["days"]:
            raise TieringError("two moves after %d days" % later["days"])
        if later["index"] <= earlier["index"]:
            raise TieringError(
                "the move after %d days to %s %r does not go past the move after %d days to %s %r: parts would "
                "move back towards hot (ClickHouse issue 49098)"
                % (later["days"], later["kind"], later["name"], earlier["days"], earlier["kind"], earlier["name"])
            )
    return rules


def plan_ttl(database, table, engine_full, column, rules):
    """What the table's TTL is and should be: ``{before, after, changed, statement, removed}``.

    ``before``/``after`` are lists of TTL elements; ``removed`` the move elements that go (another
    column, other ages or targets, a rule to the hot volume). Other elements stay as they are.
    """
    clause = sql.table_ttl(engine_full)
    try:
        elements = sql.split_elements(clause) if clause else []
    except sql.SQLError as exc:
        raise TieringError("%s.%s: cannot read its TTL: %s" % (database, table, exc)) from None
    kept, current, removed = [], [], []
    wanted = [(column, r["days"], r["kind"], r["name"]) for r in rules]
    for element in elements:
        move = sql.parse_move(element)
        if move is None:
            kept.append(element)
            continue
        interval = sql.parse_day_interval(move[0])
        key = (interval[0], interval[1], move[1], move[2]) if interval else None
        current.append(key)
        if key not in wanted:
            removed.append(element)
    same = None not in current and sorted(current, key=lambda k: k[1]) == wanted
    after = kept + [sql.move_element(column, r) for r in rules]
    return {
        "before": elements,
        "after": elements if same else after,
        "changed": not same,
        "statement": None if same else sql.modify_ttl(database, table, after),
        "removed": [] if same else removed,
    }


def part_newest(part, column=None):
    """Epoch seconds of the part's newest row, or None when the server does not say.

    From the part's move TTL information for ``<column> + toIntervalDay(N)`` (its latest TTL time
    less N days) when there is one, else from the partition key's min/max index (``max_time``,
    ``max_date`` at the start of its day in the server's time zone).
    """
    if column:
        for expression, latest in zip(part.get("ttl_expressions") or [], part.get("ttl_max") or []):
            interval = sql.parse_day_interval(expression)
            if interval and interval[0] == column and int(latest) > 0:
                return int(latest) - interval[1] * DAY
    if int(part.get("newest_time") or 0) > 0:
        return int(part["newest_time"])
    if not int(part.get("no_date") or 0):
        return int(part["newest_date"])
    return None


def expected_index(newest, rules, now):
    """The volume position a part whose newest row is ``newest`` belongs on (0 while no rule applies)."""
    index = 0
    for rule in rules:
        if newest + rule["days"] * DAY <= now:
            index = max(index, rule["index"])
    return index


def _rule_at(rules, index):
    return next(r for r in rules if r["index"] == index)


def overdue(parts, rules, disks, now, column=None):
    """Parts on an earlier volume than their age asks, as ``{part, partition_id, disk, target}``."""
    late = []
    for part in parts:
        newest = part_newest(part, column)
        here = disks.get(part["disk_name"])
        if newest is None or here is None:
            continue
        want = expected_index(newest, rules, now)
        if here < want:
            rule = _rule_at(rules, want)
            late.append(
                {
                    "part": part["name"],
                    "partition_id": part["partition_id"],
                    "disk": part["disk_name"],
                    "target": "%s %s" % (rule["kind"], rule["name"]),
                }
            )
    return late


def plan_moves(database, table, parts, rules, disks, now):
    """``MOVE PARTITION`` (or ``MOVE PART`` where a partition is split across volumes) for every
    partition whose newest row is older than a rule, by the partition key's date range.

    Returns ``(moves, undated)``: ``undated`` lists partitions the server gives no date for.
    A part already on a later volume than its partition's target is never moved back.
    """
    partitions = {}
    for part in parts:
        partitions.setdefault(part["partition_id"], []).append(part)
    moves, undated = [], []
    for partition_id, members in partitions.items():
        newest = [part_newest(p) for p in members]
        if None in newest:
            undated.append(partition_id)
            continue
        want = expected_index(max(newest), rules, now)
        if not want:
            continue
        lagging = [p for p in members if disks.get(p["disk_name"]) is not None and disks[p["disk_name"]] < want]
        if not lagging:
            continue
        rule = _rule_at(rules, want)
        if any(disks.get(p["disk_name"], 0) > want for p in members):
            statements = [sql.move_part(database, table, p["name"], rule["kind"], rule["name"]) for p in lagging]
        else:
            statements = [sql.move_partition(database, table, partition_id, rule["kind"], rule["name"])]
        moves.append(
            {
                "partition_id": partition_id,
                "parts": [p["name"] for p in lagging],
                "bytes": sum(int(p["part_bytes"]) for p in lagging),
                "from": sorted({p["disk_name"] for p in lagging}),
                "target": "%s %s" % (rule["kind"], rule["name"]),
                "index": want,
                "statements": statements,
            }
        )
    return moves, undated


def disks_report(rows, volumes):
    """``{disk: {volume, parts, bytes, rows}}`` from per-disk totals of ``system.parts``."""
    names = {disk: volume["name"] for volume in volumes for disk in volume["disks"]}
    report = {}
    for row in rows:
        report[row["disk"]] = {
            "volume": names.get(row["disk"]),
            "parts": int(row["parts"]),
            "bytes": int(row["total_bytes"]),
            "rows": int(row["total_rows"]),
        }
    return report


def table_disks(parts):
    report = {}
    for part in parts:
        entry = report.setdefault(part["disk_name"], {"parts": 0, "bytes": 0, "rows": 0})
        entry["parts"] += 1
        entry["bytes"] += int(part["part_bytes"])
        entry["rows"] += int(part["part_rows"])
    return report


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def oldest_hot(tables, disks, now):
    """The part on the first volume whose newest row is oldest, over ``[(database, table, column, parts)]``."""
    best = None
    for database, table, column, parts in tables:
        for part in parts:
            if disks.get(part["disk_name"]) != 0:
                continue
            newest = part_newest(part, column)
            if newest is not None and (best is None or newest < best["newest"]):
                best = {"database": database, "table": table, "part": part["name"], "newest": newest}
    if best is None:
        return None
    age = max(0, now - best["newest"])
    return {
        "database": best["database"],
        "table": best["table"],
        "part": best["part"],
        "newest_row": iso(best["newest"]),
        "age_seconds": age,
        "age_days": round(age / float(DAY), 2),
    }


# --------------------------------------------------------------------------- the server


def table_row_query(columns, database, table):
    """``system.tables`` row of one table; the names go in as quoted string literals."""
    return "SELECT %s FROM system.tables WHERE database = %s AND name = %s" % (  # noqa: S608 (quoted)
        columns,
        sql.quote_string(database),
        sql.quote_string(table),
    )


PARTS = (
    "SELECT name, partition_id, disk_name, toUInt64(rows) AS part_rows, toUInt64(bytes_on_disk) AS part_bytes, "
    "toUnixTimestamp(max_time) AS newest_time, toUnixTimestamp(toDateTime(max_date)) AS newest_date, "
    "max_date = toDate(0) AS no_date, move_ttl_info.expression AS ttl_expressions, "
    "arrayMap(x -> toUnixTimestamp(x), move_ttl_info.max) AS ttl_max "
    "FROM system.parts WHERE active AND database = %s AND table = %s%s ORDER BY partition_id, name"
)


class Tiering:
    """Runs the tiering of ``params['tables']`` through ``client``; ``result`` holds what happened."""

    def __init__(self, client, params, check_mode=False, probe=None, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.probe = probe
        self.sleep = sleep
        self.clock = clock
        self.result = {"changed": False, "statements": [], "tables": [], "warnings": []}

    # each query, with the failure said in terms of what the run was doing
    def _select(self, query, timeout=None, doing=None):
        try:
            return self.client.select(query, timeout or self.params["timeout"])
        except ClickHouseTimeout as exc:
            raise TieringError("%s: %s" % (doing or "reading the catalogue", exc)) from None
        except ClickHouseError as exc:
            raise TieringError("%s: %s" % (doing or "reading the catalogue", exc)) from None

    def _execute(self, statement, doing):
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
        return self._select(
            PARTS % (sql.quote_string(database), sql.quote_string(table), extra),
            doing="reading the parts of %s.%s" % (database, table),
        )

    def run(self):
        params = self.params
        server = self._select(
            "SELECT version() AS version, toUnixTimestamp(now()) AS now", doing="connecting to the server"
        )[0]
        self.result["server_version"] = server["version"]
        rows = self._select(
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
                self._probe(plans)
            for plan in plans:
                self._apply(plan, volumes, disks)
            self._wait(plans, disks)
        self._report(plans, volumes, disks)
        return self.result

    def _plan(self, entry, volumes, disks, now):
        database, table = entry["database"], entry["table"]
        name = "%s.%s" % (database, table)
        try:
            rules = resolve_rules(entry["moves"], volumes, self.params["policy"])
        except TieringError as exc:
            raise TieringError("%s: %s" % (name, exc)) from None
        found = self._select(
            table_row_query("engine, engine_full, storage_policy", database, table),
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
            ttl = plan_ttl(database, table, row["engine_full"], entry["column"], rules)
            report.update(ttl_before=ttl["before"], ttl_after=ttl["after"], ttl_changed=ttl["changed"])
            if ttl["removed"]:
                report["ttl_removed"] = ttl["removed"]
            if ttl["changed"]:
                statements.append(ttl["statement"])
            plan["ttl"] = ttl
            report["moves"] = []
        else:
            moves, undated = plan_moves(database, table, parts, rules, disks, now)
            report["moves"] = [{k: m[k] for k in ("partition_id", "parts", "bytes", "from", "target")} for m in moves]
            if undated:
                report["undated_partitions"] = undated
                self.result["warnings"].append(
                    "%s: %d partition(s) have no date in their partition key, so their age is unknown and they "
                    "were not moved: %s" % (name, len(undated), ", ".join(undated[:10]))
                )
            statements.extend(s for m in moves for s in m["statements"])
            plan["moves"] = moves
        plan["statements"] = statements
        return plan

    def _probe(self, plans):
        """Fail before any change when a target disk does not answer."""
        timeout = self.params["probe_timeout"]
        if self.params["probe_paths"]:
            for path in self.params["probe_paths"]:
                try:
                    self.probe(path, timeout)
                except OSError as exc:
                    raise TieringError(
                        "cold disk path %s: %s; nothing was changed" % (path, exc.strerror or exc)
                    ) from None
                except Exception as exc:  # ProbeTimeout and the probe child's failures
                    raise TieringError(
                        "cold disk path %s did not answer within %gs (%s): its mount (the NAS?) is probably down; "
                        "nothing was changed" % (path, timeout, exc)
                    ) from None
            return
        try:
            self.client.select("SELECT name, free_space FROM system.disks", timeout)
        except ClickHouseTimeout:
            raise TieringError(
                "the server's disks did not answer within %gs (system.disks): a disk is probably on a dead "
                "mount (the NAS?); nothing was changed. The server may keep that query until the mount comes "
                "back (ClickHouse issue 65552): give probe_paths to probe from this host instead" % timeout
            ) from None
        except ClickHouseError as exc:
            raise TieringError("probing the server's disks: %s; nothing was changed" % exc) from None

    def _apply(self, plan, volumes, disks):
        entry, name = plan["entry"], plan["name"]
        database, table = entry["database"], entry["table"]
        statements = list(plan["statements"])
        if plan["report"].get("policy_statement"):
            self._execute(statements.pop(0), "switching %s to storage policy %r" % (name, self.params["policy"]))
        if entry["ttl"]:
            if plan["ttl"]["changed"]:
                self._execute(plan["ttl"]["statement"], "changing the TTL of %s" % name)
                again = self._select(
                    table_row_query("engine_full", database, table),
                    doing="reading the TTL of %s back" % name,
                )
                check = plan_ttl(database, table, again[0]["engine_full"], entry["column"], plan["rules"])
                if check["changed"]:
                    raise TieringError(
                        "%s: the server took the TTL change but shows %r, not the rules asked for"
                        % (name, sql.table_ttl(again[0]["engine_full"]))
                    )
            return
        for move in plan["moves"]:
            for statement in move["statements"]:
                self._execute(
                    statement, "moving partition %s of %s to %s" % (move["partition_id"], name, move["target"])
                )
            landed = self.parts(database, table, move["partition_id"])
            behind = [p["name"] for p in landed if disks.get(p["disk_name"], 0) < move["index"]]
            if behind:
                raise TieringError(
                    "%s: after %s the parts %s of partition %s are still before %s (system.parts)"
                    % (name, short(move["statements"][-1]), ", ".join(behind), move["partition_id"], move["target"])
                )
            move["verified"] = True
            for reported in plan["report"]["moves"]:
                if reported["partition_id"] == move["partition_id"]:
                    reported["verified"] = True

    def _wait(self, plans, disks):
        """Wait (``wait_timeout``) for the server's background TTL moves of parts already due."""
        deadline = self.clock() + self.params["wait_timeout"]
        while True:
            now = int(self._select("SELECT toUnixTimestamp(now()) AS now")[0]["now"])
            late = []
            for plan in plans:
                if plan["entry"]["ttl"]:
                    plan["parts"] = self.parts(plan["entry"]["database"], plan["entry"]["table"])
                    plan["late"] = overdue(plan["parts"], plan["rules"], disks, now, plan["entry"]["column"])
                    late.extend(plan["late"])
            if not late or self.clock() + POLL > deadline:
                return
            self.sleep(POLL)

    def _report(self, plans, volumes, disks):
        now = int(self._select("SELECT toUnixTimestamp(now()) AS now")[0]["now"])
        tables = []
        pending = 0
        for plan in plans:
            entry = plan["entry"]
            parts = self.parts(entry["database"], entry["table"]) if not self.check_mode else plan["parts"]
            column = entry["column"] if entry["ttl"] else None
            late = overdue(parts, plan["rules"], disks, now, column)
            report = plan["report"]
            report["disks"] = table_disks(parts)
            report["pending"] = late
            pending += len(late)
            tables.append((entry["database"], entry["table"], column, parts))
        if pending and not self.check_mode:
            self.result["warnings"].append(
                "%d part(s) older than their rule are still before their target volume after waiting %gs; the "
                "server moves them in the background (see tables[].pending)" % (pending, self.params["wait_timeout"])
            )
        totals = self._select(
            "SELECT disk_name AS disk, count() AS parts, toUInt64(sum(bytes_on_disk)) AS total_bytes, "
            "toUInt64(sum(rows)) AS total_rows FROM system.parts WHERE active GROUP BY disk_name ORDER BY disk_name"
        )
        self.result["disks"] = disks_report(totals, volumes)
        self.result["oldest_hot_part"] = oldest_hot(tables, disks, now)
