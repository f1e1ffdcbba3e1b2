# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL partition archival: one partition detached, dumped, verified by a scratch restore, dropped.

User: ``_pg_archive.Archiver`` (pg_partition_archive ``state: archived``), once per planned partition.

1. a ``detach`` record goes to the journal, then ``DETACH PARTITION ... CONCURRENTLY`` (plain
   DETACH when the table has a default partition, the server is older than 14 or
   ``detach_concurrently`` is false); a detach left pending is finished with ``FINALIZE``;
2. ``pg_dump -Fc`` of the detached table into the private dump directory (``_pg_dumpfile``), its
   SHA-256 read back from the disk;
3. ``pg_restore`` of the dump into the run's scratch database and the restored table's row count
   and content checksum;
4. an ``archive`` record (rows, checksum, bytes, sha256, dump path) to the journal and the same
   facts beside the dump (``<dump>.json``, ``<dump>.sha256``);
5. in one transaction: the source locked, its checksum taken again and compared with the restored
   copy's, and DROP only when they are equal; then a ``drop`` record.

A failure at any step puts the partition back (``PartitionOps.put_back``), removes this run's dump
of it when the partition is confirmed to exist, and raises ``ArchiveFailed`` with the step and the
reason.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import JournalError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_ops import ArchiveFailed, Mismatch, stamp
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError, table_pattern
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_dumpfile import DumpDir
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath

CONCURRENT_DETACH_VERSION = 140000
STEP_ERRORS = (PgError, OSError, UnsafePath, Mismatch, ValueError, JournalError)
RESTORE_INTO_SCRATCH = ["--no-owner", "--no-privileges", "--no-tablespaces", "--section=pre-data", "--section=data"]


class PartitionArchival:
    """Archives planned partitions one at a time (``archive(item)``); each lands in ``result['archived']``.

    ``ops`` is the run's ``PartitionOps``; ``server`` the plan's server facts; ``scratch`` the name
    of the run's scratch database.
    """

    def __init__(self, ops, params, server, scratch, run_id, result):
        self.ops = ops
        self.params = params
        self.server = server
        self.scratch = scratch
        self.run_id = run_id
        self.result = result

    def _detach(self, item):
        """Detach ``item`` (or finish its pending detach); returns how, for ``archived[].detached_with``."""
        ops = self.ops
        if item["state"] == "attached":
            ops.journal.append([ops.record(item, "detach", run=self.run_id)])
            concurrently = (
                self.params["detach_concurrently"]
                and not item.get("has_default")
                and self.server["version"] >= CONCURRENT_DETACH_VERSION
            )
            detached_with = "concurrently" if concurrently else "plain"
            ops.detach(item, detached_with)
            return detached_with
        if item["state"] == "pending":
            ops.detach(item, "finalize")
            return "finalize"
        return "earlier run"

    def _restore_into_scratch(self, item, dumps, dump_name):
        """The dump restored into the scratch database (pre-data and data, no owner or privileges)."""
        cli = self.ops.cli
        cli.psql(
            sql.SCRATCH_PREPARE_SQL,
            self.ops.variables(item),
            dbname=self.scratch,
            what="preparing the scratch database",
        )
        fd = dumps.open_read(dump_name)
        try:
            cli.restore(
                fd,
                self.scratch,
                RESTORE_INTO_SCRATCH,
                what="pg_restore of %s into the scratch database %s" % (dump_name, self.scratch),
            )
        finally:
            os.close(fd)

    def _checksum_restored(self, item):
        """The restored copy's ``rows:h0:h1``; the scratch database emptied again."""
        restored = self.ops.checksum(item, dbname=self.scratch)
        self.ops.cli.psql(
            sql.SCRATCH_DROP_TABLE_SQL,
            self.ops.variables(item),
            dbname=self.scratch,
            what="emptying the scratch database",
        )
        return restored

    def archive(self, item):
        ops = self.ops
        name = item["partition"]
        step = "detach"
        dump_name = None
        dumps = None
        try:
            if item["state"] == "pending":
                if not item["journaled"]:
                    ops.journal.append([ops.record(item, "detach", run=self.run_id, note="pending before this run")])
                step = "finishing a pending detach"
            detached_with = self._detach(item)
            step = "dump"
            dumps = dump_dir_for(self.params["dump_dir"], self.ops.database, item)
            for path in dumps.clean_partials():
                self.result["cleaned"].append(path)
            dump_name = "%s_%s.dump" % (sql.safe_name(item["pn"]), stamp())
            sha256, size = dumps.write(
                dump_name, lambda fd: ops.cli.dump_table(table_pattern(item["ps"], item["pn"]), fd)
            )
            step = "restore into the scratch database"
            self._restore_into_scratch(item, dumps, dump_name)
            step = "checksum of the restored copy"
            restored = self._checksum_restored(item)
            rows = int(restored.split(":", 1)[0])
            facts = ops.record(
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
            ops.journal.append([facts])
            step = "comparison with the source and DROP"
            self._drop_verified(item, restored)
            ops.journal.append([ops.record(item, "drop", run=self.run_id, dump=facts["dump"], sha256=sha256)])
        except STEP_ERRORS as exc:
            raise self._failed(item, step, exc, dumps, dump_name) from None
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

    def _drop_verified(self, item, restored):
        answer = self.ops.cli.query_json(
            sql.DROP_VERIFIED_SQL,
            self.ops.variables(item, expected=restored),
            what="checksum and DROP of %s" % item["partition"],
        )
        if not answer["dropped"]:
            raise Mismatch(
                "the source has rows:h0:h1 %s and its copy restored from the dump %s" % (answer["checksum"], restored)
            )

    def _failed(self, item, step, exc, dumps, dump_name):
        """Put ``item`` back, remove this run's dump of it when it still exists; the ArchiveFailed to raise."""
        where, exists = self.ops.put_back(item)
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
        return ArchiveFailed(
            "%s of %s failed: %s; %s%s" % (step, item["partition"], _reason(exc), where, kept), self.result
        )


def dump_dir_for(dump_dir, database, item):
    """``<dump_dir>/<database>/<schema>.<table>``, each name made safe, as a ``DumpDir``."""
    return DumpDir(os.path.join(dump_dir, sql.safe_name(database), sql.safe_name("%s.%s" % (item["ts"], item["tn"]))))


def _reason(exc):
    if isinstance(exc, OSError) and exc.strerror:
        return "%s%s" % (exc.strerror, ": %s" % exc.filename if exc.filename else "")
    return str(exc)


__all__ = ["STEP_ERRORS", "PartitionArchival"]
