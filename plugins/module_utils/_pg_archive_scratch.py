# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL partition archival: the run's scratch database, where each dump is restored to be verified.

User: ``_pg_archive.Archiver`` (pg_partition_archive ``state: archived``); the per-partition step
(``_pg_archive_step``) restores into ``ScratchDatabase.name``.

``create`` records a ``scratch`` line in the journal first, then makes the database from template0
with the source's encoding, collation and ctype and gives it a schema-only copy of the source
(pre-data: schemas, types, sequences, functions, empty tables); a failure there drops it again and
fails with "nothing was detached". ``drop`` drops it at the end of the run (a failure is a warning:
the next run drops it), ``drop_stale`` drops those of killed runs that the plan found; each drop
is recorded (``scratch_dropped``).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import tempfile

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_ops import ArchiveFailed
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_plan import SCRATCH_PREFIX
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError


class ScratchDatabase:
    """The scratch database of run ``run_id``; ``ops`` is the run's ``PartitionOps``, ``result`` its result."""

    def __init__(self, ops, result, run_id):
        self.ops = ops
        self.result = result
        self.run_id = run_id
        self.name = None

    def _dropped(self, name):
        return {"op": "scratch_dropped", "port": self.ops.port, "name": name, "run": self.run_id}

    def drop_stale(self, names):
        for name in names:
            self.ops.cli.psql(
                sql.DROP_SCRATCH_SQL, {"scratch": name}, what="dropping the stale scratch database %s" % name
            )
            self.ops.journal.append([self._dropped(name)])
            self.result["cleaned"].append("scratch database %s" % name)

    def create(self, server):
        ops = self.ops
        name = SCRATCH_PREFIX + self.run_id.replace("-", "_").lower()
        ops.journal.append([{"op": "scratch", "port": ops.port, "name": name, "run": self.run_id}])
        try:
            ops.cli.psql(
                sql.CREATE_SCRATCH_SQL,
                {
                    "scratch": name,
                    "enc": server["encoding"],
                    "collate": server["collate"],
                    "ctype": server["ctype"],
                },
                what="creating the scratch database %s" % name,
            )
            self.name = name
            self.result["scratch_database"] = name
            with tempfile.TemporaryFile() as handle:
                ops.cli.dump_schema(
                    handle.fileno(), what="copying the schema of %s for the scratch database" % ops.database
                )
                handle.seek(0)
                ops.cli.restore(
                    handle.fileno(), name, what="restoring the schema copy into the scratch database %s" % name
                )
        except (PgError, OSError) as exc:
            self.drop()
            raise ArchiveFailed("nothing was detached: %s" % exc, self.result) from None
        return name

    def drop(self):
        name = self.name or self.result.get("scratch_database")
        if not name:
            return
        try:
            self.ops.cli.psql(sql.DROP_SCRATCH_SQL, {"scratch": name}, what="dropping the scratch database %s" % name)
            self.ops.append_quietly(self._dropped(name))
        except PgError as exc:
            self.ops.warnings.append("scratch database %s was not dropped (%s); the next run drops it" % (name, exc))
        self.name = None


__all__ = ["ScratchDatabase"]
