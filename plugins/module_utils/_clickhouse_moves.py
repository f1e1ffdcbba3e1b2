# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClickHouse tiering by moves: ``ALTER TABLE ... MOVE PARTITION|PART`` for what is past its rule, verified.

Users: ``_clickhouse_tiering`` (``tables[].ttl: false``).

``plan_moves`` is pure (the table's parts in, the statements out); ``apply_moves`` runs them
through the run's session and reads ``system.parts`` back: a part still before its target volume
fails the run. A part already on a later volume than its partition's target is never moved back.

Standard library only, Python 3.8.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_sql as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import short
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import (
    TieringError,
    expected_index,
    part_newest,
    rule_at,
)


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
        rule = rule_at(rules, want)
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


def moves_into_plan(plan, disks, now, warnings):
    """The moves of ``plan``'s table, kept in ``plan['moves']`` and its report; the statements to run.

    Partitions without a date are reported (``undated_partitions``) and warned about in ``warnings``.
    """
    entry, report, name = plan["entry"], plan["report"], plan["name"]
    moves, undated = plan_moves(entry["database"], entry["table"], plan["parts"], plan["rules"], disks, now)
    report["moves"] = [{k: m[k] for k in ("partition_id", "parts", "bytes", "from", "target")} for m in moves]
    if undated:
        report["undated_partitions"] = undated
        warnings.append(
            "%s: %d partition(s) have no date in their partition key, so their age is unknown and they "
            "were not moved: %s" % (name, len(undated), ", ".join(undated[:10]))
        )
    plan["moves"] = moves
    return [s for m in moves for s in m["statements"]]


def apply_moves(session, plan, disks):
    """Run ``plan``'s moves one partition at a time, each verified in ``system.parts`` before the next."""
    entry, name = plan["entry"], plan["name"]
    for move in plan["moves"]:
        for statement in move["statements"]:
            session.execute(statement, "moving partition %s of %s to %s" % (move["partition_id"], name, move["target"]))
        landed = session.parts(entry["database"], entry["table"], move["partition_id"])
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


__all__ = ["apply_moves", "moves_into_plan", "plan_moves"]
