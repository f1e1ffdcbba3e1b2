# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClickHouse tiering rules: the policy's volumes, the move rules, and where a part of a given age belongs.

Users: ``_clickhouse_tiering`` (the run), ``_clickhouse_ttl`` and ``_clickhouse_moves`` (the two
ways a table is tiered), ``_clickhouse_report`` (what is overdue, what is oldest on hot).

Pure functions of rows the server returned. Moves only ever go towards later volumes of the
policy: a rule to the first volume is refused, and rules must reach later volumes as they get
older (ClickHouse issue 49098: a ``TO VOLUME 'hot'`` rule moves parts back and forth).
``TieringError`` is the family's user-facing failure: a refusal or a failure whose message names
the table, the disk or the query.

``normalise_tables`` gives each ``tables[]`` entry of the module its ``moves`` (from the entry's or the
module's ``days`` and ``volume``/``disk``) and checks the cross-field rules the argument_spec
cannot say (a TTL needs a column, the column a plain name).

Standard library only, Python 3.8.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_sql as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_sql import SQLError, check_column
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

DAY = 86400


class TieringError(JtsError):
    """A refusal or a failure; the message names the table, the disk or the query."""


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


def rule_at(rules, index):
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
            rule = rule_at(rules, want)
            late.append(
                {
                    "part": part["name"],
                    "partition_id": part["partition_id"],
                    "disk": part["disk_name"],
                    "target": "%s %s" % (rule["kind"], rule["name"]),
                }
            )
    return late


def normalise_tables(params):
    """Each table with its ``moves`` filled from the module's defaults; raises ValueError for bad entries."""
    tables = []
    for entry in params["tables"]:
        entry = dict(entry)
        name = "%s.%s" % (entry["database"], entry["table"])
        if not entry["database"] or not entry["table"]:
            raise ValueError("tables: %r needs a database and a table name" % (name,))
        if entry["ttl"]:
            if not entry.get("column"):
                raise ValueError("tables: %s needs a column (Date or DateTime) for its TTL, or ttl: false" % name)
            try:
                check_column(entry["column"])
            except SQLError as exc:
                raise ValueError("tables: %s: %s" % (name, exc)) from None
        if not entry.get("moves"):
            entry["moves"] = [
                {
                    "days": params["days"] if entry.get("days") is None else entry["days"],
                    "volume": None if entry.get("disk") else (entry.get("volume") or params["volume"]),
                    "disk": entry.get("disk"),
                }
            ]
        tables.append(entry)
    return tables


__all__ = [
    "DAY",
    "TieringError",
    "disk_index",
    "expected_index",
    "normalise_tables",
    "overdue",
    "part_newest",
    "policy_volumes",
    "resolve_rules",
    "rule_at",
]
