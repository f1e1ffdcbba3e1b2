# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL partition archival: detach, dump, restore elsewhere, compare, and only then drop.

User: pg_partition_archive (``state: archived``). ``Archiver.run()`` is one run; its parts live
in files of their own:

* ``_pg_archive_ops``: one partition detached, attached, inspected, put back (``PartitionOps``,
  shared with ``_pg_archive_restore``), the journal records, ``ArchiveFailed``;
* ``_pg_archive_plan``: which partitions are past their retention and what the journal left in
  flight (``ArchivePlan``);
* ``_pg_archive_scratch``: the run's scratch database (``ScratchDatabase``);
* ``_pg_archive_step``: per partition, detach, ``pg_dump -Fc``, ``pg_restore`` into the scratch
  database and checksum, ``archive`` record and sidecars, checksum again and DROP in one
  transaction (``PartitionArchival``).

A failure at any step puts the partition back (FINALIZE when pending, ATTACH with its original
bounds), removes this run's dump of it when the partition is confirmed to exist, and fails with
the step and the reason. A run that dies leaves the journal saying which partitions were in
flight; the next run finishes them (FINALIZE, then the same steps) and drops the scratch
databases that runs before it created. One run per cluster (port) at a time (a lock file, taken
by the module).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import secrets

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_ops import (
    ArchiveFailed,
    PartitionOps,
    stamp,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_plan import ArchivePlan
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_scratch import ScratchDatabase
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_step import PartitionArchival


class Archiver(PartitionOps):
    """One archival run over the tables in ``params['tables']``; ``run()`` returns the result."""

    def __init__(self, cli, journal, params, check_mode=False):
        super().__init__(cli, journal, params["port"], check_mode)
        self.params = params
        self.run_id = "%s-%s" % (stamp(), secrets.token_hex(3))
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
        self.planned = ArchivePlan(self, params, self.result, self.run_id)
        self.scratch = ScratchDatabase(self, self.result, self.run_id)

    def plan(self):
        return self.planned.make()

    def run(self):
        work = self.plan()
        stale = self.planned.stale_scratch
        if self.check_mode:
            self.result["changed"] = bool(work or self.result["recovered"] or stale)
            self.result["cleaned"] = ["scratch database %s" % name for name in stale]
            self.result["msg"] = "would archive %d partition(s)" % len(work)
            return self.result
        self.scratch.drop_stale(stale)
        if work:
            name = self.scratch.create(self.planned.server)
            try:
                step = PartitionArchival(self, self.params, self.planned.server, name, self.run_id, self.result)
                for item in work:
                    step.archive(item)
            finally:
                self.scratch.drop()
        self.result["changed"] = bool(self.result["archived"] or self.result["recovered"] or self.result["cleaned"])
        self.result["msg"] = "archived %d partition(s) (%d rows)" % (
            len(self.result["archived"]),
            sum(a["rows"] for a in self.result["archived"]),
        )
        return self.result


__all__ = ["ArchiveFailed", "Archiver"]
