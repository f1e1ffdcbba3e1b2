# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL partition archival: one partition detached, attached, inspected and put back.

Users: ``_pg_archive`` (the archival run, its plan ``_pg_archive_plan`` and its per-partition step
``_pg_archive_step``) and ``_pg_archive_restore`` (``state: restored``) share ``PartitionOps``:
``state``, ``detach`` (``CONCURRENTLY``, plain or ``FINALIZE``), ``attach`` with the original bounds,
the content ``checksum`` (``_pg_partitions.CHECKSUM_EXPR``), the journal ``record`` of a step, and
``put_back`` after a failure (FINALIZE when pending, ATTACH with its original bounds, a ``reattach``
record), which says where the partition is now.

``ArchiveFailed`` is the family's user-facing failure (a ``JtsError`` carrying what was done
before, ``result``); ``Mismatch`` is internal (a step raises it and the run turns it into an
``ArchiveFailed`` after putting the partition back).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import JournalError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError


class ArchiveFailed(JtsError):
    """The run stops; ``str()`` says what, where and why; ``result`` holds what was done before."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.result = result or {}


class Mismatch(Exception):
    """The restored copy and the source partition differ (internal: the step turns it into ArchiveFailed)."""


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

    def append_quietly(self, record):
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
                self.append_quietly(self.record(item, "reattach", note="still attached"))
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
        self.append_quietly(self.record(item, "reattach"))
        return "%s was re-attached to %s %s" % (name, table, bounds_text(item.get("lo"), item.get("hi"))), True


__all__ = [
    "ArchiveFailed",
    "Mismatch",
    "PartitionOps",
    "bounds_text",
    "read_journal",
    "stamp",
]
