# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL partition archival: detach, dump, restore elsewhere, compare, and only then drop.

Users: pg_partition_archive (``state: archived``); ``_pg_archive_restore`` shares ``PartitionOps``.

Per partition whose upper bound is older than the retention:

1. a ``detach`` record goes to the journal, then ``DETACH PARTITION ... CONCURRENTLY`` (plain
   DETACH when the table has a default partition or the server is older than 14); a detach left
   pending by an interrupted run is finished with ``FINALIZE``;
2. ``pg_dump -Fc`` of the detached table into the private dump directory (``_pg_dumpfile``), its
   SHA-256 read back from the disk;
3. ``pg_restore`` of the dump into this run's scratch database (made from template0 with the
   source's encoding, given the source's types, sequences and functions by a schema-only copy) and
   the restored table's row count and content checksum (``_pg_partitions.CHECKSUM_EXPR``);
4. an ``archive`` record (rows, checksum, bytes, sha256, dump path) to the journal and the same
   facts beside the dump (``<dump>.json``, ``<dump>.sha256``);
5. in one transaction: the source table locked ``ACCESS EXCLUSIVE``, its checksum taken again and
   compared with the restored copy's, and DROP only when they are equal; then a ``drop`` record.

A failure at any step puts the partition back (FINALIZE when pending, ATTACH with its original
bounds), removes this run's dump of it when the partition is confirmed to exist, and fails with
the step and the reason. A run that dies leaves the journal saying which partitions were in
flight; the next run finishes them (FINALIZE, then the same steps) and drops the scratch
databases that runs before it created. One run per cluster (port) at a time (a lock file).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_journal import JournalError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError, table_pattern
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_dumpfile import DumpDir
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_tablespaces import tablespace_refusals
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import parse_age

MIN_VERSION = 130000
CONCURRENT_DETACH_VERSION = 140000
SCRATCH_PREFIX = "jts_pgarchive_scratch_"


class ArchiveFailed(Exception):
    """The run stops; ``str()`` says what, where and why; ``result`` holds what was done before."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.result = result or {}


class Mismatch(Exception):
    """The restored copy and the source partition differ."""


STEP_ERRORS = (PgError, OSError, UnsafePath, Mismatch, ValueError, JournalError)


def stamp(now=None):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def bounds_text(lo, hi):
    return "FROM (%s) TO (%s)" % (
        "MINVALUE" if lo is None else "'%s'" % lo,
        "MAXVALUE" if hi is None else "'%s'" % hi,
    )


def read_journal(journal):
    """The journal's records and damaged-line count; nothing is created when its directory is missing
    (a first run in check mode)."""
    if not os.path.lexists(os.path.dirname(os.path.abspath(journal.path))):
        return [], 0
    return journal.read()


# -- steps shared by archive and restore ------------------------------------------------------------


class PartitionOps:
    """Detach, attach and inspect one partition; ``item`` holds ts/tn (table), ps/pn (partition), lo/hi."""

    def __init__(self, cli, journal, port, check_mode=False):
        self.cli = cli
        self.journal = journal
        self.port = port
        self.database = cli.dbname
        self.check_mode = check_mode
        self.warnings = []

    @staticmethod
    def variables(item, **extra):
        out = {"ts": item["ts"], "tn": item["tn"], "ps": item["ps"], "pn": item["pn"]}
        if item.get("lo") is not None:
            out["lo"] = item["lo"]
        if item.get("hi") is not None:
            out["hi"] = item["hi"]
        out.update(extra)
        return out

    def record(self, item, op, **extra):
        rec = {
            "op": op,
            "port": self.port,
            "database": self.database,
            "table": sql.qualified(item["ts"], item["tn"]),
            "partition": sql.qualified(item["ps"], item["pn"]),
            "table_schema": item["ts"],
            "table_name": item["tn"],
            "partition_schema": item["ps"],
            "partition_name": item["pn"],
            "lo": item.get("lo"),
            "hi": item.get("hi"),
            "bounds": bounds_text(item.get("lo"), item.get("hi")),
        }
        rec.update(extra)
        return rec

    def state(self, item, dbname=None):
        return self.cli.query_json(
            sql.STATE_SQL,
            {"part": sql.qualified(item["ps"], item["pn"])},
            dbname=dbname,
            what="reading the state of %s" % sql.qualified(item["ps"], item["pn"]),
        )

    def detach(self, item, how):
        self.cli.psql(
            sql.DETACH_SQL[how],
            self.variables(item),
            what="DETACH PARTITION %s%s"
            % (sql.qualified(item["ps"], item["pn"]), "" if how == "plain" else " " + how.upper()),
        )

    def attach(self, item):
        self.cli.psql(
            sql.attach_sql(item.get("lo"), item.get("hi")),
            self.variables(item),
            what="ATTACH PARTITION %s %s"
            % (sql.qualified(item["ps"], item["pn"]), bounds_text(item.get("lo"), item.get("hi"))),
        )

    def checksum(self, item, dbname=None):
        return self.cli.query_json(
            sql.CHECKSUM_SQL,
            self.variables(item),
            dbname=dbname,
            what="checksum of %s%s" % (sql.qualified(item["ps"], item["pn"]), " in %s" % dbname if dbname else ""),
        )

    def _append_quietly(self, record):
        try:
            self.journal.append([record])
        except JournalError as exc:
            self.warnings.append(str(exc))

    def put_back(self, item):
        """Attach the partition again wherever it is; a sentence saying where it is now, and
        whether it exists (None when that could not be read)."""
        name = sql.qualified(item["ps"], item["pn"])
        table = sql.qualified(item["ts"], item["tn"])
        try:
            found = self.state(item)
        except PgError as exc:
            return "its state could not be read (%s); see the journal" % exc, None
        if not found["exists"]:
            return "%s no longer exists" % name, False
        try:
            if found["parent"] and not found["pending"]:
                self._append_quietly(self.record(item, "reattach", note="still attached"))
                return "it is still attached to %s" % sql.qualified(
                    found["parent"]["schema"], found["parent"]["name"]
                ), True
            if found["pending"]:
                self.detach(item, "finalize")
            self.attach(item)
        except PgError as exc:
            where = (
                "still attached to %s with its detach pending (its rows are not visible through %s until "
                "ALTER TABLE %s DETACH PARTITION %s FINALIZE and an ATTACH, or the next run, finish it)"
                % (table, table, table, name)
                if found["pending"]
                else "a table of its own, detached from %s (attach it with ALTER TABLE %s ATTACH PARTITION %s "
                "FOR VALUES %s, or let the next run archive it)"
                % (table, table, name, bounds_text(item.get("lo"), item.get("hi")))
            )
            return "putting it back failed too (%s); %s is %s" % (exc, name, where), True
        self._append_quietly(self.record(item, "reattach"))
        return "%s was re-attached to %s %s" % (name, table, bounds_text(item.get("lo"), item.get("hi"))), True


# -- archival ---------------------------------------------------------------------------------------


class Archiver(PartitionOps):
    """One archival run over the tables in ``params['tables']``; ``run()`` returns the result."""

    def __init__(self, cli, journal, params, check_mode=False):
        super().__init__(cli, journal, params["port"], check_mode)
        self.params = params
        self.run_id = "%s-%s" % (stamp(), secrets.token_hex(3))
        self.scratch = None
        self.result = {
            "partitions": [],
            "archived": [],
            "recovered": [],
            "skipped": [],
            "cleaned": [],
            "scratch_database": None,
            "checksum_method": sql.CHECKSUM_METHOD,
            "run_id": None if check_mode else self.run_id,
        }

    # plan
    def plan(self):
        server = self.cli.query_json(sql.SERVER_SQL, what="reading the server settings")
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
        records, damaged = read_journal(self.journal)
        if damaged:
            self.warnings.append("journal %s: %d damaged line(s) ignored" % (self.journal.path, damaged))
        held = sql.held(records, self.port, self.database, server["now"])
        work = {}
        for entry in self.params["tables"]:
            retention = entry.get("retention") or self.params.get("retention")
            if not retention:
                raise ArchiveFailed("table %s: no retention (set tables[].retention or retention)" % entry["name"])
            seconds = parse_age(retention, "retention of %s" % entry["name"])
            found = self.cli.query_json(sql.TABLE_SQL, {"tbl": entry["name"]}, what="reading table %s" % entry["name"])
            refusal = sql.check_table(found, entry["name"])
            if refusal:
                raise ArchiveFailed("refused before any change: " + refusal)
            table = found["table"]
            expired, skipped = sql.expired_partitions(found["partitions"], server["now"], seconds)
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
                self.warnings.append(
                    "%s has a detach pending that this module did not start and is not past the retention; "
                    "left alone" % sql.qualified(part["schema"], part["name"])
                )
            for part in expired:
                item = self._item(table, part, "pending" if part["pending"] else "attached")
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
        self._plan_recovery(work, records)
        ordered = sorted(work.values(), key=_oldest_first)
        self.result["partitions"] = [self._public(item) for item in ordered]
        return ordered

    @staticmethod
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

    @staticmethod
    def _public(item):
        keys = ("table", "partition", "state", "lo", "hi", "estimated_rows", "bytes")
        out = {key: item.get(key) for key in keys}
        out["bounds"] = bounds_text(item.get("lo"), item.get("hi"))
        return out

    def _plan_recovery(self, work, records):
        """Partitions the journal left in flight: finished, continued or closed."""
        self._stale_scratch = []
        for name in sql.stale_scratch(records, self.port):
            if not name.startswith(SCRATCH_PREFIX):
                continue
            if self.cli.query_json(sql.DATABASE_EXISTS_SQL, {"scratch": name}, what="looking for database %s" % name):
                self._stale_scratch.append(name)
            elif not self.check_mode:  # never made (CREATE DATABASE failed) or dropped by hand: close it quietly
                self.journal.append([{"op": "scratch_dropped", "port": self.port, "name": name, "run": self.run_id}])
        for name, rec in sorted(sql.in_flight(records, self.port, self.database).items()):
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
            found = self.state(item)
            if not found["exists"]:
                if rec["op"] == "archive":
                    action = "dropped by a run that stopped before recording it; its dump is %s" % rec.get("dump")
                    self._close(item, "drop", action, dump=rec.get("dump"), sha256=rec.get("sha256"), recovered=True)
                else:
                    action = "missing: it was being archived and no longer exists (not dropped by this module)"
                    self._close(item, "missing", action)
                    self.warnings.append("%s: %s" % (name, action))
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
        if not self.check_mode:
            self.journal.append([self.record(item, op, run=self.run_id, **extra)])

    # run
    def run(self):
        work = self.plan()
        if self.check_mode:
            self.result["changed"] = bool(work or self.result["recovered"] or self._stale_scratch)
            self.result["cleaned"] = ["scratch database %s" % name for name in self._stale_scratch]
            self.result["msg"] = "would archive %d partition(s)" % len(work)
            return self.result
        self._drop_stale_scratch()
        if work:
            self._create_scratch()
            try:
                for item in work:
                    self.archive_one(item)
            finally:
                self._drop_scratch()
        self.result["changed"] = bool(self.result["archived"] or self.result["recovered"] or self.result["cleaned"])
        self.result["msg"] = "archived %d partition(s) (%d rows)" % (
            len(self.result["archived"]),
            sum(a["rows"] for a in self.result["archived"]),
        )
        return self.result

    def _drop_stale_scratch(self):
        for name in self._stale_scratch:
            self.cli.psql(sql.DROP_SCRATCH_SQL, {"scratch": name}, what="dropping the stale scratch database %s" % name)
            self.journal.append([{"op": "scratch_dropped", "port": self.port, "name": name, "run": self.run_id}])
            self.result["cleaned"].append("scratch database %s" % name)

    def _create_scratch(self):
        name = SCRATCH_PREFIX + self.run_id.replace("-", "_").lower()
        self.journal.append([{"op": "scratch", "port": self.port, "name": name, "run": self.run_id}])
        try:
            self.cli.psql(
                sql.CREATE_SCRATCH_SQL,
                {
                    "scratch": name,
                    "enc": self.server["encoding"],
                    "collate": self.server["collate"],
                    "ctype": self.server["ctype"],
                },
                what="creating the scratch database %s" % name,
            )
            self.scratch = name
            self.result["scratch_database"] = name
            with tempfile.TemporaryFile() as handle:
                self.cli.dump_schema(
                    handle.fileno(), what="copying the schema of %s for the scratch database" % self.database
                )
                handle.seek(0)
                self.cli.restore(
                    handle.fileno(), name, what="restoring the schema copy into the scratch database %s" % name
                )
        except (PgError, OSError) as exc:
            self._drop_scratch()
            raise ArchiveFailed("nothing was detached: %s" % exc, self.result) from None

    def _drop_scratch(self):
        name = self.scratch or self.result.get("scratch_database")
        if not name:
            return
        try:
            self.cli.psql(sql.DROP_SCRATCH_SQL, {"scratch": name}, what="dropping the scratch database %s" % name)
            self._append_quietly({"op": "scratch_dropped", "port": self.port, "name": name, "run": self.run_id})
        except PgError as exc:
            self.warnings.append("scratch database %s was not dropped (%s); the next run drops it" % (name, exc))
        self.scratch = None

    def _dump_dir(self, item):
        path = os.path.join(
            self.params["dump_dir"], sql.safe_name(self.database), sql.safe_name("%s.%s" % (item["ts"], item["tn"]))
        )
        return DumpDir(path)

    def archive_one(self, item):
        name = item["partition"]
        step = "detach"
        dump_name = None
        dumps = None
        try:
            if item["state"] == "attached":
                self.journal.append([self.record(item, "detach", run=self.run_id)])
                concurrently = (
                    self.params.get("detach_concurrently", True)
                    and not item.get("has_default")
                    and self.server["version"] >= CONCURRENT_DETACH_VERSION
                )
                detached_with = "concurrently" if concurrently else "plain"
                self.detach(item, detached_with)
            elif item["state"] == "pending":
                if not item["journaled"]:
                    self.journal.append([self.record(item, "detach", run=self.run_id, note="pending before this run")])
                step = "finishing a pending detach"
                detached_with = "finalize"
                self.detach(item, "finalize")
            else:
                detached_with = "earlier run"
            step = "dump"
            dumps = self._dump_dir(item)
            for path in dumps.clean_partials():
                self.result["cleaned"].append(path)
            dump_name = "%s_%s.dump" % (sql.safe_name(item["pn"]), stamp())
            sha256, size = dumps.write(
                dump_name, lambda fd: self.cli.dump_table(table_pattern(item["ps"], item["pn"]), fd)
            )
            step = "restore into the scratch database"
            self.cli.psql(
                sql.SCRATCH_PREPARE_SQL,
                self.variables(item),
                dbname=self.scratch,
                what="preparing the scratch database",
            )
            fd = dumps.open_read(dump_name)
            try:
                self.cli.restore(
                    fd,
                    self.scratch,
                    ["--no-owner", "--no-privileges", "--no-tablespaces", "--section=pre-data", "--section=data"],
                    what="pg_restore of %s into the scratch database %s" % (dump_name, self.scratch),
                )
            finally:
                os.close(fd)
            step = "checksum of the restored copy"
            restored = self.checksum(item, dbname=self.scratch)
            self.cli.psql(
                sql.SCRATCH_DROP_TABLE_SQL,
                self.variables(item),
                dbname=self.scratch,
                what="emptying the scratch database",
            )
            rows = int(restored.split(":", 1)[0])
            facts = self.record(
                item,
                "archive",
                run=self.run_id,
                rows=rows,
                checksum=restored,
                checksum_method=sql.CHECKSUM_METHOD,
                bytes=size,
                sha256=sha256,
                dump=dumps.join(dump_name),
                server_version=self.server["version"],
            )
            dumps.write_dump_sidecars(dump_name, sha256, facts)
            self.journal.append([facts])
            step = "comparison with the source and DROP"
            answer = self.cli.query_json(
                sql.DROP_VERIFIED_SQL,
                self.variables(item, expected=restored),
                what="checksum and DROP of %s" % name,
            )
            if not answer["dropped"]:
                raise Mismatch(
                    "the source has rows:h0:h1 %s and its copy restored from the dump %s"
                    % (answer["checksum"], restored)
                )
            self.journal.append([self.record(item, "drop", run=self.run_id, dump=facts["dump"], sha256=sha256)])
        except STEP_ERRORS as exc:
            where, exists = self.put_back(item)
            kept = ""
            if dump_name and dumps is not None:
                if exists:
                    try:
                        dumps.remove_dump(dump_name)
                        kept = "; its dump was removed"
                    except OSError as rm_exc:
                        kept = "; its dump %s could not be removed (%s)" % (dumps.join(dump_name), rm_exc)
                else:
                    kept = "; its dump is kept at %s" % dumps.join(dump_name)
            raise ArchiveFailed(
                "%s of %s failed: %s; %s%s" % (step, name, _reason(exc), where, kept), self.result
            ) from None
        finally:
            if dumps is not None:
                dumps.close()
        self.result["archived"].append(
            {
                "table": item["table"],
                "partition": name,
                "bounds": facts["bounds"],
                "rows": rows,
                "bytes": size,
                "sha256": sha256,
                "checksum": restored,
                "dump": facts["dump"],
                "detached_with": detached_with,
            }
        )


def _oldest_first(item):
    try:
        upper = float("inf") if item.get("hi") is None else sql.parse_pg_time(item["hi"])
    except ValueError:
        upper = float("inf")
    return (item["table"], upper, item["partition"])


def _reason(exc):
    if isinstance(exc, OSError) and exc.strerror:
        return "%s%s" % (exc.strerror, ": %s" % exc.filename if exc.filename else "")
    return str(exc)


__all__ = [
    "ArchiveFailed",
    "Archiver",
    "Mismatch",
    "PartitionOps",
    "bounds_text",
    "read_journal",
]
