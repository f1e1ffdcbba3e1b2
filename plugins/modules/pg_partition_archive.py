#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_partition_archive
short_description: Archive old PostgreSQL time partitions to dumps with a proven restore, and bring them back
version_added: 0.1.0
description:
  - "O(state=archived): for each range-partitioned table in O(tables) (partitioned by one C(date),
    C(timestamp) or C(timestamptz) column), every partition whose upper bound is at least the
    retention old is archived: C(DETACH PARTITION ... CONCURRENTLY) (a plain C(DETACH) when the table
    has a default partition or the server is older than 14), C(pg_dump -Fc) of the detached table into
    O(dump_dir) (written under a temporary name, flushed, read back for its SHA-256, renamed),
    C(pg_restore) of that dump into a scratch database this run creates and drops, a row count and
    content checksum of the restored copy, and then, in one transaction, the source table locked
    C(ACCESS EXCLUSIVE), its checksum taken again and compared, and C(DROP TABLE) only when both are
    equal."
  - "The content checksum is C(rows:h0:h1): the row count and the sums of C(hashtextextended) of each
    row's text with seeds 0 and 1. Sums do not depend on the order rows are read in, so a restored copy
    stored in another physical order gives the same value; every session uses the same time zone
    (UTC), date style and float output, so the text of a row is the same in both databases."
  - "Any failure puts the partition back: a pending detach is finished (C(FINALIZE)) and the table is
    attached again with its original bounds; this run's dump of it is removed once the partition is
    confirmed to exist; the module fails with the partition, the step and the reason. Partitions
    archived before the failure stay archived."
  - "A JSON-lines journal (O(journal), in a directory only the module's user may write) records each
    step: C(detach) before the detach, C(archive) (table, partition, bounds, rows, checksum, bytes,
    SHA-256, dump path) before the drop, C(drop) after it, C(reattach) after a failure. A run that
    was killed is finished by the next one: a detach left pending is finished with C(FINALIZE), a
    detached table is archived, a drop that was not recorded is recorded, and scratch databases of
    killed runs are dropped. Partitions with a detach pending that this module did not start are
    finished too when they are past the retention."
  - "Beside each dump, C(<dump>.sha256) (C(sha256sum -c) format) and C(<dump>.json) (the journal's
    C(archive) record) say what it holds after it moved to the NAS with the backup chain."
  - "Before anything changes, every tablespace of the cluster is checked: one whose location lies on
    the warm tier (O(warm_tier_path)) or the NAS (O(nas_path)) - by path, by resolved path or by
    device - is refused unless O(allow_tablespaces_on) names that tier: if the tier is lost or not
    mounted, the cluster may not start."
  - "O(state=restored): restores O(partition) from its dump (the journal's path or O(dump)): the dump's
    SHA-256 must equal the recorded one, C(pg_restore --single-transaction) into the source database,
    the restored table's rows and checksum must equal the recorded ones, then C(ATTACH PARTITION) with
    the recorded bounds. A restored partition is not archived again before O(restore_hold) has passed."
  - "No Python driver is needed on the host: C(psql), C(pg_dump) and C(pg_restore) run with argument
    lists, each killed after O(command_timeout); DDL waits at most O(lock_timeout) for a lock. The
    password reaches them only through the environment (C(PGPASSWORD) or O(passfile)), never on a
    command line or in the output."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - O(state=archived) lists the partitions that would be archived (RV(partitions)) and what the
        journal says would be finished (RV(recovered)); nothing is detached, dumped, created or written.
      - O(state=restored) verifies the dump's SHA-256 and reports whether it would restore and attach.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - PostgreSQL 13 or later (C(DETACH ... CONCURRENTLY) needs 14); tested with PostgreSQL 15.
  - C(psql), C(pg_dump) and C(pg_restore) on the host, of the server's major version or newer.
  - The connecting role may create databases (the scratch database) and owns or may drop the partitions.
options:
  state:
    description:
      - V(archived) archives the partitions past their retention.
      - V(restored) restores O(partition) from its dump and attaches it again.
    type: str
    choices: [archived, restored]
    default: archived
  tables:
    description: The range-partitioned tables to archive (required with O(state=archived)).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The table, as SQL names it (C(market.trades), C(public."Orders")); resolved with C(to_regclass).
        type: str
        required: true
      retention:
        description:
          - Partitions whose upper bound is at least this old are archived, e.g. V(90d), V(26w); a bare
            number is days. Defaults to O(retention).
        type: str
  retention:
    description: The retention of the tables in O(tables) that give none.
    type: str
  dump_dir:
    description:
      - Where dumps are written, as C(<dump_dir>/<database>/<schema>.<table>/<partition>_<UTC time>.dump)
        (required with O(state=archived)). Typically below the warm tier's C(daily-backups), so the dumps
        move to the NAS with the backup chain.
      - Every component is reached without following symlinks; missing ones are created with mode 0700,
        and the directories must belong to the module's user and be writable by it alone.
    type: path
  require_mounted:
    description: Refuse to write dumps when O(dump_dir) is on the root filesystem (the warm tier is not mounted).
    type: bool
    default: true
  partition:
    description:
      - With O(state=restored), the partition to restore, as the journal names it (C(public.trades_2024_01))
        or by its bare name when that is unique.
    type: str
  dump:
    description:
      - With O(state=restored), the dump to restore from, when it is no longer where the journal says
        (moved to the NAS). Without a journal record, C(<dump>.json) and C(<dump>.sha256) beside it
        say what it holds.
    type: path
  restore_hold:
    description:
      - With O(state=restored), how long the restored partition is left out of archival runs, e.g. V(30d);
        V(0) lets the next run archive it again.
    type: str
    default: 30d
  journal:
    description:
      - The JSON-lines journal. Its directory is created (0700) when missing, reached without following
        symlinks, and must belong to the module's user and be writable by it alone.
    type: path
    default: /var/lib/jts/pg_partition_archive/journal.jsonl
  dbname:
    description: The database that holds the tables.
    type: str
    required: true
  host:
    description: Server host name, address or Unix socket directory; the libpq default when unset.
    type: str
  port:
    description: Server port (also tells clusters apart in the journal and the lock).
    type: int
    default: 5432
  user:
    description: The role to connect as; the libpq default (the OS user) when unset.
    type: str
  password:
    description: The role's password, passed to the tools as C(PGPASSWORD) only.
    type: str
  passfile:
    description: A libpq password file, passed to the tools as C(PGPASSFILE) (readable by O(os_user) when that is set).
    type: path
  os_user:
    description:
      - Run C(psql), C(pg_dump) and C(pg_restore) as this OS user, e.g. V(postgres) for peer
        authentication over the local socket. Dumps and the journal are still opened by the module
        (owned by its user); the tools only get the open files.
    type: str
  bindir:
    description:
      - The directory holding C(psql), C(pg_dump) and C(pg_restore), e.g. C(/usr/lib/postgresql/15/bin).
        By default they are looked up in the PATH.
    type: path
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
    default: 10
  lock_timeout:
    description: Seconds a DETACH, ATTACH, lock or DROP waits for a lock before it gives up (the partition is put back).
    type: float
    default: 10
  command_timeout:
    description:
      - Seconds each C(psql), C(pg_dump) or C(pg_restore) may run before it is killed; also the server's
        C(statement_timeout) and the time-out for reading a dump on the NAS.
    type: int
    default: 21600
  detach_concurrently:
    description: Detach with C(CONCURRENTLY) where the server and table allow it; V(false) always uses a plain DETACH.
    type: bool
    default: true
  warm_tier_path:
    description: The warm tier's mount point; tablespaces there are refused unless acknowledged.
    type: path
    default: /data/warm-storage
  nas_path:
    description: The NAS mount point; tablespaces there are refused unless acknowledged.
    type: path
    default: /mnt/synology
  allow_tablespaces_on:
    description: Tiers on which tablespaces are acknowledged and not refused.
    type: list
    elements: str
    choices: [warm, nas]
    default: []
  probe_timeout:
    description: Seconds to wait for a tablespace location to answer a C(stat) (a dead NAS mount must not hang the run).
    type: float
    default: 10
  lock_dir:
    description:
      - Directory for the lock file that keeps two runs on one cluster (O(port)) apart; created (0700) when
        missing, reached without following symlinks, and must belong to the module's user.
    type: path
    default: /run/jts
notes:
  - "The scratch database is created from C(template0) with the source's encoding and given a
    schema-only copy of the source (pre-data: schemas, types, sequences, functions, empty tables),
    so a partition whose columns use the database's own types or sequences restores; it needs room
    for the largest partition archived and is dropped at the end of the run."
  - "A dump stays on the warm tier; moving it to the NAS is the backup chain's job. A dump that moved
    is restored with O(dump)."
  - A partition's rows are not visible through its table while its detach is pending (an interrupted
    C(DETACH CONCURRENTLY)); the next run finishes it, or put it back by hand as the message says.
  - Time stamps without time zone in bounds are taken as UTC when compared with the retention.
seealso:
  - name: Databases on the tiers
    description: The archival protocol, its guarantees and the restore playbook.
    link: https://github.com/jts/tiered_storage/blob/main/docs/databases.md
"""

EXAMPLES = r"""
- name: Archive trades and quotes partitions older than 90 days to the warm tier
  jts.tiered_storage.pg_partition_archive:
    dbname: trading
    os_user: postgres
    host: /var/run/postgresql
    tables:
      - name: market.trades
      - name: market.quotes
        retention: 30d
    retention: 90d
    dump_dir: /data/warm-storage/daily-backups/pg-partitions

- name: List what would be archived
  jts.tiered_storage.pg_partition_archive:
    dbname: trading
    host: db01.internal
    user: archiver
    password: "{{ vault_pg_archiver_password }}"
    tables: [{name: market.trades, retention: 90d}]
    dump_dir: /data/warm-storage/daily-backups/pg-partitions
  check_mode: true
  register: pg_archive_plan

- name: Bring one partition back from its dump on the NAS
  jts.tiered_storage.pg_partition_archive:
    state: restored
    dbname: trading
    os_user: postgres
    partition: market.trades_2024_01
    dump: /mnt/synology/jts/archives/database/pg-partitions/trading/market.trades/trades_2024_01_20240502T023000Z.dump
"""

RETURN = r"""
partitions:
  description: The partitions this run archived or tried to archive (in check mode, would archive), finished runs included.
  returned: O(state=archived)
  type: list
  elements: dict
  sample:
    - table: market.trades
      partition: market.trades_2024_01
      state: attached
      lo: "2024-01-01 00:00:00+00"
      hi: "2024-02-01 00:00:00+00"
      bounds: FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')
      estimated_rows: 1200000
      bytes: 183500800
archived:
  description:
    - Partitions dumped, verified and dropped by this run (also when a later one failed).
    - C(detached_with) is V(concurrently), V(plain) (a default partition or a server before 14),
      V(finalize) (a pending detach finished) or V(earlier run) (a run that was killed had detached it).
  returned: O(state=archived)
  type: list
  elements: dict
  sample:
    - table: market.trades
      partition: market.trades_2024_01
      bounds: FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')
      rows: 1200000
      bytes: 52428800
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      checksum: "1200000:-4406839951180722375:912873561029387465"
      dump: /data/warm-storage/daily-backups/pg-partitions/trading/market.trades/trades_2024_01_20240502T023000Z.dump
      detached_with: concurrently
recovered:
  description: What the journal said earlier runs left unfinished, and what was done (in check mode, would be done).
  returned: O(state=archived)
  type: list
  elements: dict
  sample: [{partition: market.trades_2023_12, action: continued from a detach left pending}]
skipped:
  description: Partitions past the retention that were not archived, and why (sub-partitioned, restore hold, odd bound).
  returned: O(state=archived)
  type: list
  elements: dict
  sample: [{table: market.trades, partition: market.trades_2023_11, reason: "restored from its dump; held until 20240601T000000Z (restore_hold)"}]
cleaned:
  description: Temporary dump files and scratch databases that killed runs left, removed (in check mode, to be removed).
  returned: O(state=archived)
  type: list
  elements: str
  sample: ["scratch database jts_pgarchive_scratch_20240502t023000z_3fa9c1"]
scratch_database:
  description: The scratch database this run created and dropped (null when nothing was archived).
  returned: O(state=archived)
  type: str
  sample: jts_pgarchive_scratch_20240502t023000z_3fa9c1
checksum_method:
  description: How the content checksum is computed.
  returned: O(state=archived)
  type: str
  sample: "rows:sum(hashtextextended(row text, 0)):sum(hashtextextended(row text, 1)), order-independent"
run_id:
  description: The id of this run in the journal (null in check mode).
  returned: O(state=archived)
  type: str
  sample: 20240502T023000Z-3fa9c1
partition:
  description: The partition restored.
  returned: O(state=restored)
  type: str
  sample: market.trades_2024_01
table:
  description: The table it belongs to.
  returned: O(state=restored)
  type: str
  sample: market.trades
bounds:
  description: Its bounds.
  returned: O(state=restored)
  type: str
  sample: FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')
dump:
  description: The dump it was (or would be) restored from.
  returned: O(state=restored)
  type: str
  sample: /mnt/synology/jts/archives/database/pg-partitions/trading/market.trades/trades_2024_01_20240502T023000Z.dump
sha256:
  description: The dump's recorded SHA-256, which the file matched.
  returned: O(state=restored)
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
rows:
  description: Rows the partition held when it was archived (the restored table holds the same).
  returned: O(state=restored)
  type: int
  sample: 1200000
checksum:
  description: Its recorded content checksum (the restored table has the same).
  returned: O(state=restored)
  type: str
  sample: "1200000:-4406839951180722375:912873561029387465"
verified_against:
  description: Where the recorded facts came from, V(journal) or V(files beside the dump).
  returned: O(state=restored)
  type: str
  sample: journal
restored_from_dump:
  description: Whether the table was read from the dump (false when a detached table of that name was verified and attached).
  returned: O(state=restored) when the partition was not attached already
  type: bool
  sample: true
journal:
  description: The journal file.
  returned: always
  type: str
  sample: /var/lib/jts/pg_partition_archive/journal.jsonl
msg:
  description: A one-line summary, or on failure what failed, where, why, and where the partition is now.
  returned: always
  type: str
  sample: archived 3 partition(s) (3600000 rows)
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import Journal, JournalError
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import FileLock, LockBusy, lock_path_for
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive import ArchiveFailed, Archiver
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_restore import Restorer
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import CONNECTION_SPEC, TOOLS, PgCli, PgError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_tablespaces import nearest_existing_dev
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["archived", "restored"], default="archived"),
    tables=dict(
        type="list",
        elements="dict",
        options=dict(name=dict(type="str", required=True), retention=dict(type="str")),
    ),
    retention=dict(type="str"),
    dump_dir=dict(type="path"),
    require_mounted=dict(type="bool", default=True),
    partition=dict(type="str"),
    dump=dict(type="path"),
    restore_hold=dict(type="str", default="30d"),
    journal=dict(type="path", default="/var/lib/jts/pg_partition_archive/journal.jsonl"),
    dbname=dict(type="str", required=True),
    **CONNECTION_SPEC,
    bindir=dict(type="path"),
    lock_timeout=dict(type="float", default=10),
    command_timeout=dict(type="int", default=21600),
    detach_concurrently=dict(type="bool", default=True),
    warm_tier_path=dict(type="path", default="/data/warm-storage"),
    nas_path=dict(type="path", default="/mnt/synology"),
    allow_tablespaces_on=dict(type="list", elements="str", choices=["warm", "nas"], default=[]),
    probe_timeout=dict(type="float", default=10),
    lock_dir=dict(type="path", default="/run/jts"),
)


def tool_paths(module):
    bindir = module.params["bindir"]
    if not bindir:
        return {tool: module.get_bin_path(tool, required=True) for tool in TOOLS}
    paths = {tool: os.path.join(bindir, tool) for tool in TOOLS}
    for tool, path in paths.items():
        if not os.access(path, os.X_OK):
            module.fail_json(msg="bindir: %s has no executable %s" % (bindir, tool))
    return paths


def check_dump_dir(module):
    dump_dir = module.params["dump_dir"]
    if not os.path.isabs(dump_dir):
        module.fail_json(msg="dump_dir: %s is not an absolute path" % dump_dir)
    if module.params["require_mounted"] and nearest_existing_dev(dump_dir) == os.stat("/").st_dev:
        module.fail_json(
            msg="dump_dir: %s is on the root filesystem; is the warm tier mounted? (require_mounted: false allows it)"
            % dump_dir
        )


def make_cli(module):
    params = module.params
    return PgCli(
        tool_paths(module),
        params["dbname"],
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"],
        passfile=params["passfile"],
        os_user=params["os_user"],
        connect_timeout=params["connect_timeout"],
        lock_timeout=params["lock_timeout"],
        statement_timeout=params["command_timeout"],
        command_timeout=params["command_timeout"],
    )


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "archived", ["tables", "dump_dir"]), ("state", "restored", ["partition"])],
        supports_check_mode=True,
    )
    params = module.params
    for name in ("connect_timeout", "command_timeout"):
        if params[name] < 0:
            module.fail_json(msg="%s: %d must be 0 or more" % (name, params[name]))
    if params["state"] == "archived":
        check_dump_dir(module)
    try:
        cli = make_cli(module)
    except PgError as exc:
        fail(module, exc)
    journal = Journal(params["journal"])
    runner_class = Archiver if params["state"] == "archived" else Restorer
    runner = runner_class(cli, journal, params, check_mode=module.check_mode)
    lock = FileLock(
        lock_path_for("pg_partition_archive", params["port"], lock_dir=params["lock_dir"]),
        "pg_partition_archive on port %d" % params["port"],
    )
    failure = None
    try:
        if not module.check_mode:
            lock.acquire()
        try:
            result = runner.run()
        finally:
            lock.release()
    except ArchiveFailed as exc:
        failure = exc, dict(exc.result)
        failure[1]["changed"] = bool(
            exc.result.get("changed")
            or exc.result.get("archived")
            or exc.result.get("recovered")
            or exc.result.get("cleaned")
        )
    except PgError as exc:
        failure = exc, dict(rc=exc.rc, stderr=exc.stderr)
    except (LockBusy, UnsafePath, JournalError, ValueError) as exc:
        failure = exc, {}
    except OSError as exc:
        failure = JtsError("%s: %s" % (exc.filename or params.get("dump_dir") or "", exc.strerror or exc)), {}
    for warning in runner.warnings:
        module.warn(warning)
    if failure is not None:
        exc, extra = failure
        extra.pop("msg", None)
        extra["journal"] = params["journal"]
        fail(module, exc, **extra)
    result["journal"] = params["journal"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
