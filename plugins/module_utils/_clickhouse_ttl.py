# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClickHouse tiering by TTL: the table's move rules as its TTL, planned, applied and read back.

Users: ``_clickhouse_tiering`` (``tables[].ttl: true``, the default).

The module owns the move rules of the tables it is given: its rules replace any other
``TO VOLUME``/``TO DISK`` element, the other TTL elements (DELETE, GROUP BY, RECOMPRESS) are kept
as the server printed them. ``plan_ttl`` is pure (the server's ``engine_full`` in, the statement
out); ``apply_ttl`` runs it through the run's session and reads the TTL back: a server that shows
other rules than those asked for fails the run.

Standard library only, Python 3.8.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_sql as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import TieringError


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


def ttl_into_plan(plan, engine_full):
    """The TTL plan of ``plan``'s table, kept in ``plan['ttl']`` and its report; the statements to run."""
    entry, report = plan["entry"], plan["report"]
    ttl = plan_ttl(entry["database"], entry["table"], engine_full, entry["column"], plan["rules"])
    report.update(ttl_before=ttl["before"], ttl_after=ttl["after"], ttl_changed=ttl["changed"])
    if ttl["removed"]:
        report["ttl_removed"] = ttl["removed"]
    plan["ttl"] = ttl
    report["moves"] = []
    return [ttl["statement"]] if ttl["changed"] else []


def apply_ttl(session, plan):
    """Change the TTL of ``plan``'s table when it differs, then check the server shows the rules asked for."""
    entry, name = plan["entry"], plan["name"]
    if not plan["ttl"]["changed"]:
        return
    session.execute(plan["ttl"]["statement"], "changing the TTL of %s" % name)
    again = session.select(
        sql.table_row_query("engine_full", entry["database"], entry["table"]),
        doing="reading the TTL of %s back" % name,
    )
    check = plan_ttl(entry["database"], entry["table"], again[0]["engine_full"], entry["column"], plan["rules"])
    if check["changed"]:
        raise TieringError(
            "%s: the server took the TTL change but shows %r, not the rules asked for"
            % (name, sql.table_ttl(again[0]["engine_full"]))
        )


__all__ = ["apply_ttl", "plan_ttl", "ttl_into_plan"]
