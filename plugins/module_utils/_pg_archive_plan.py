# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL partition archival: which partitions a run archives, and what the journal left in flight.

User: ``_pg_archive.Archiver`` (pg_partition_archive ``state: archived``), before any change.

``ArchivePlan.make()`` reads the server (version 13 or later, its settings and tablespaces:
``_pg_tablespaces.tablespace_refusals`` refuses a tablespace on a tier before anything changes),
then per table the partitions whose upper bound is at least the retention old
(``_pg_partitions.expired_partitions``), less those a restore holds back (``restore_hold``); a
pending detach this module did not start and that is not due is left alone with a warning. Then
the journal's partitions in flight: finished (a drop that was not recorded), closed (missing,
found attached again) or continued (a pending or detached table), and the scratch databases of
killed runs that still exist (``stale_scratch``). The work comes back oldest first per table.

Standard library only, Python 3.8.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_ops import (
    ArchiveFailed,
    bounds_text,
    read_journal,
    stamp,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_tablespaces import tablespace_refusals
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import parse_age

MIN_VERSION = 130000
SCRATCH_PREFIX = "jts_pgarchive_scratch_"


class ArchivePlan:
    """The plan of one run: ``make()`` returns the work; ``server`` and ``stale_scratch`` are read on the way.

    ``ops`` is the run's ``PartitionOps`` (its client, journal, port, database, check mode and
    warnings); ``result`` is the run's result, whose ``partitions``, ``skipped`` and ``recovered``
    this fills.
    """

    def __init__(self, ops, params, result, run_id):
        self.ops = ops
        self.params = params
        self.result = result
        self.run_id = run_id
        self.server = None
        self.stale_scratch = []

    def make(self):
        ops = self.ops
        server = ops.cli.query_json(sql.SERVER_SQL, what="reading the server settings")
        self.server = server
        if server["version"] < MIN_VERSION:
            raise ArchiveFailed("PostgreSQL %s is older than 13, which this module needs" % server["version"])
        tiers = {
            "warm": (self.params.get("warm_tier_path"), "warm_tier_path"),
            "nas": (self.params.get("nas_path"), "nas_path"),
        }
        refusals = tablespace_refusals(
            server["tablespaces"], tiers, self.params.get("allow_tablespaces_on") or [], self.params["probe_timeout"]
        )
        if refusals:
            raise ArchiveFailed("refused before any change: " + "; ".join(refusals))
        records, damaged = read_journal(ops.journal)
        if damaged:
            ops.warnings.append("journal %s: %d damaged line(s) ignored" % (ops.journal.path, damaged))
        held = sql.held(records, ops.port, ops.database, server["now"])
        work = {}
        for entry in self.params["tables"]:
            self._table(entry, server["now"], held, work)
        self._recovery(work, records)
        ordered = sorted(work.values(), key=_oldest_first)
        self.result["partitions"] = [_public(item) for item in ordered]
        return ordered

    def _table(self, entry, now, held, work):
        """The partitions of one ``tables[]`` entry that are due go into ``work``."""
        retention = entry.get("retention") or self.params.get("retention")
        if not retention:
            raise ArchiveFailed("table %s: no retention (set tables[].retention or retention)" % entry["name"])
        seconds = parse_age(retention, "retention of %s" % entry["name"])
        found = self.ops.cli.query_json(sql.TABLE_SQL, {"tbl": entry["name"]}, what="reading table %s" % entry["name"])
        refusal = sql.check_table(found, entry["name"])
        if refusal:
            raise ArchiveFailed("refused before any change: " + refusal)
        table = found["table"]
        expired, skipped = sql.expired_partitions(found["partitions"], now, seconds)
        for part in skipped:
            self.result["skipped"].append(
                {
                    "table": sql.qualified(table["schema"], table["name"]),
                    "partition": sql.qualified(part["schema"], part["name"]),
                    "reason": part["reason"],
                }
            )
        due = {(p["schema"], p["name"]) for p in expired}
        for part in found["partitions"]:
            if not part["pending"] or (part["schema"], part["name"]) in due:
                continue
            self.ops.warnings.append(
                "%s has a detach pending that this module did not start and is not past the retention; "
                "left alone" % sql.qualified(part["schema"], part["name"])
            )
        for part in expired:
            item = _item(table, part, "pending" if part["pending"] else "attached")
            if item["partition"] in held:
                self.result["skipped"].append(
                    {
                        "table": item["table"],
                        "partition": item["partition"],
                        "reason": "restored from its dump; held until %s (restore_hold)"
                        % stamp(held[item["partition"]]),
                    }
                )
                continue
            item["has_default"] = table["has_default"]
            work[item["partition"]] = item

    def _recovery(self, work, records):
        """Partitions the journal left in flight: finished, continued or closed."""
        ops = self.ops
        self.stale_scratch = []
        for name in sql.stale_scratch(records, ops.port):
            if not name.startswith(SCRATCH_PREFIX):
                continue
            if ops.cli.query_json(sql.DATABASE_EXISTS_SQL, {"scratch": name}, what="looking for database %s" % name):
                self.stale_scratch.append(name)
            elif not ops.check_mode:  # never made (CREATE DATABASE failed) or dropped by hand: close it quietly
                ops.journal.append([{"op": "scratch_dropped", "port": ops.port, "name": name, "run": self.run_id}])
        for name, rec in sorted(sql.in_flight(records, ops.port, ops.database).items()):
            item = {
                "ts": rec["table_schema"],
                "tn": rec["table_name"],
                "ps": rec["partition_schema"],
                "pn": rec["partition_name"],
                "lo": rec.get("lo"),
                "hi": rec.get("hi"),
                "table": rec["table"],
                "partition": name,
                "journaled": True,
                "has_default": True,
            }
            found = ops.state(item)
            if not found["exists"]:
                if rec["op"] == "archive":
                    action = "dropped by a run that stopped before recording it; its dump is %s" % rec.get("dump")
                    self._close(item, "drop", action, dump=rec.get("dump"), sha256=rec.get("sha256"), recovered=True)
                else:
                    action = "missing: it was being archived and no longer exists (not dropped by this module)"
                    self._close(item, "missing", action)
                    ops.warnings.append("%s: %s" % (name, action))
                continue
            if found["parent"] and not found["pending"]:
                # Never detached, or attached again by hand: the plan (if it is due) starts afresh.
                if name not in work:
                    self._close(item, "reattach", "found attached; nothing to finish", note="found attached")
                continue
            if found["pending"]:
                item["state"] = "pending"
            else:
                item["state"] = "detached"
            previous = work.get(name)
            if previous:
                item.update(bytes=previous.get("bytes"), estimated_rows=previous.get("estimated_rows"))
            work[name] = item
            self.result["recovered"].append(
                {"partition": name, "action": "continued from a %s left %s" % (rec["op"], item["state"])}
            )

    def _close(self, item, op, action, **extra):
        self.result["recovered"].append({"partition": item["partition"], "action": action})
        if not self.ops.check_mode:
            self.ops.journal.append([self.ops.record(item, op, run=self.run_id, **extra)])


def _item(table, part, state):
    return {
        "ts": table["schema"],
        "tn": table["name"],
        "ps": part["schema"],
        "pn": part["name"],
        "lo": part.get("lo"),
        "hi": part.get("hi"),
        "bound": part.get("bound"),
        "state": state,
        "bytes": part.get("bytes"),
        "estimated_rows": part.get("estimated_rows"),
        "table": sql.qualified(table["schema"], table["name"]),
        "partition": sql.qualified(part["schema"], part["name"]),
        "journaled": False,
        "has_default": True,
    }


def _public(item):
    keys = ("table", "partition", "state", "lo", "hi", "estimated_rows", "bytes")
    out = {key: item.get(key) for key in keys}
    out["bounds"] = bounds_text(item.get("lo"), item.get("hi"))
    return out


def _oldest_first(item):
    try:
        upper = float("inf") if item.get("hi") is None else sql.parse_pg_time(item["hi"])
    except ValueError:
        upper = float("inf")
    return (item["table"], upper, item["partition"])


__all__ = ["MIN_VERSION", "SCRATCH_PREFIX", "ArchivePlan"]
