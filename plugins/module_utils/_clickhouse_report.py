# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClickHouse tiering reports: parts and bytes per disk, what is overdue, the oldest part still on hot.

Users: ``_clickhouse_tiering`` (the result's ``tables[].disks``, ``tables[].pending``, ``disks``,
``oldest_hot_part``) and clickhouse_tiering (``summary``: the one-line ``msg``; ``diff_of``: the
diff); the pure reports are tested with tables.

``report`` reads the parts of each table again after the run (in check mode it uses what the plan
read) and the server's per-disk totals.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import DAY, overdue, part_newest

DISK_TOTALS = (
    "SELECT disk_name AS disk, count() AS parts, toUInt64(sum(bytes_on_disk)) AS total_bytes, "
    "toUInt64(sum(rows)) AS total_rows FROM system.parts WHERE active GROUP BY disk_name ORDER BY disk_name"
)


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
        "newest_row_timestamp": int(best["newest"]),
        "age_seconds": age,
        "age_days": round(age / float(DAY), 2),
    }


def report(session, plans, volumes, disks, check_mode, wait_timeout):
    """Fill ``session.result`` with each table's disks and pending parts, the disks and the oldest hot part."""
    now = session.now()
    tables = []
    pending = 0
    for plan in plans:
        entry = plan["entry"]
        parts = session.parts(entry["database"], entry["table"]) if not check_mode else plan["parts"]
        column = entry["column"] if entry["ttl"] else None
        late = overdue(parts, plan["rules"], disks, now, column)
        table = plan["report"]
        table["disks"] = table_disks(parts)
        table["pending"] = late
        pending += len(late)
        tables.append((entry["database"], entry["table"], column, parts))
    if pending and not check_mode:
        session.result["warnings"].append(
            "%d part(s) older than their rule are still before their target volume after waiting %gs; the "
            "server moves them in the background (see tables[].pending)" % (pending, wait_timeout)
        )
    session.result["disks"] = disks_report(session.select(DISK_TOTALS), volumes)
    session.result["oldest_hot_part"] = oldest_hot(tables, disks, now)


def summary(result, check_mode):
    tables = result.get("tables", [])
    ttl = sum(1 for t in tables if t.get("ttl_changed"))
    moved = sum(len(t.get("moves") or []) for t in tables)
    pending = sum(len(t.get("pending") or []) for t in tables)
    verb = "would change" if check_mode else "changed"
    return "%d table(s): %s the TTL of %d, %s %d partition move(s); %d part(s) pending" % (
        len(tables),
        verb,
        ttl,
        "would run" if check_mode else "ran",
        moved,
        pending,
    )


def diff_of(result):
    before, after = [], []
    for table in result.get("tables", []):
        name = "%s.%s" % (table["database"], table["table"])
        if "ttl_before" in table:
            before.append("%s TTL %s" % (name, ", ".join(table["ttl_before"]) or "(none)"))
            after.append("%s TTL %s" % (name, ", ".join(table["ttl_after"]) or "(none)"))
        for move in table.get("moves") or []:
            before.append("%s partition %s on %s" % (name, move["partition_id"], ", ".join(move["from"])))
            after.append("%s partition %s on %s" % (name, move["partition_id"], move["target"]))
    return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}


__all__ = ["diff_of", "disks_report", "iso", "oldest_hot", "report", "summary", "table_disks"]
