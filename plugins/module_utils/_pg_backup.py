# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PostgreSQL low-level (non-exclusive) base backup held open on one psql session.

Users: lvm_snapshot (``consistency`` with ``method: postgresql``).

``PgBackupSession`` starts ``psql -X -A -t -q -v ON_ERROR_STOP=1 -d <conninfo>`` (argument list,
connection string built with ``_pg_cli``'s quoting, password only in the environment, optionally
as another OS user) with its standard input and output as pipes, and talks to it one statement at a
time: each statement is followed by ``\\echo <marker>`` and the answer is what psql prints before
the marker (read with a time-out). So the one connection stays open while the snapshots are taken:

1. ``SELECT current_setting('server_version_num')`` and ``data_directory``;
2. ``SELECT pg_backup_start(label, true)`` (``pg_start_backup(label, true, false)`` before 15:
   fast checkpoint, non-exclusive);
3. (the caller takes the snapshots)
4. ``SELECT ... FROM pg_backup_stop(false)`` (``pg_stop_backup(false, false)`` before 15): the
   backup label, the tablespace map and the stop LSN. ``wait_for_archive`` is false: the caller
   copies the WAL from the start to the stop segment itself (``copy_wal``) and the wait would hang
   forever on a server without WAL archiving.

A non-exclusive backup belongs to its session: when the connection closes before
``pg_backup_stop`` the server aborts it ("aborting backup due to backend exiting before
pg_backup_stop was called"). ``abort()`` therefore only has to end psql; and when the module is
killed (even SIGKILL) psql reads end-of-file on its standard input, exits and the connection closes.

The pipe protocol (psql on pipes, a statement and its answer with a time-out) is
``_pg_psql_pipe.PsqlPipe``; the WAL copy is ``_pg_backup_wal.copy_wal``.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_psql_pipe import PsqlPipe

_LABEL_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,100}$")


def validate_label(label):
    if not _LABEL_RE.match(label or ""):
        raise PgError("backup label %r: use 1 to 100 letters, digits and _ . : + -" % (label,))
    return label


def sql_literal(text):
    """A standard SQL string literal (quotes doubled; the label is checked against _LABEL_RE first)."""
    return "'%s'" % text.replace("'", "''")


def start_sql(version_num, label):
    """The statement that starts a non-exclusive backup with a fast checkpoint, by server version."""
    lit = sql_literal(validate_label(label))
    if version_num >= 150000:
        return "SELECT l::text, pg_walfile_name(l) FROM pg_backup_start(%s, true) AS l" % lit  # noqa: S608 - lit is a checked, quoted label
    if version_num >= 100000:
        return "SELECT l::text, pg_walfile_name(l) FROM pg_start_backup(%s, true, false) AS l" % lit  # noqa: S608 - lit is a checked, quoted label
    raise PgError(
        "PostgreSQL %d is too old: non-exclusive backups with WAL function names need 10 or later" % version_num
    )


def stop_sql(version_num):
    """The statement that ends the backup (no wait for WAL archiving) and returns one JSON line."""
    func = "pg_backup_stop(false)" if version_num >= 150000 else "pg_stop_backup(false, false)"
    columns = "json_build_object('labelfile', s.labelfile, 'spcmapfile', s.spcmapfile, 'lsn', s.lsn::text, 'walfile', pg_walfile_name(s.lsn))"
    return "SELECT %s FROM %s AS s" % (columns, func)  # noqa: S608 - constants only


def start_wal_from_label(labelfile):
    """The WAL file named in the backup label's ``START WAL LOCATION: 0/2000028 (file 00000...)``."""
    match = re.search(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$", labelfile or "", re.M)
    return match.group(1) if match else None


class PgBackupSession(PsqlPipe):
    """One psql process, one connection, one backup (``PsqlPipe``). ``popen`` is replaced in unit tests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.version_num = None
        self.data_directory = None
        self.start_lsn = None
        self.start_wal = None
        self.started = False

    # -- the backup ----------------------------------------------------------------------------

    def start(self, label):
        """Connect, read the version and data directory, start the backup. Raises PgError."""
        validate_label(label)
        self._spawn()
        lines = self.query(
            "SELECT current_setting('server_version_num') || ' ' || current_setting('data_directory')",
            "reading server_version_num and data_directory",
            timeout=self.connect_timeout + 30,
        )
        try:
            version, datadir = [line for line in lines if line.strip()][-1].split(" ", 1)
            self.version_num = int(version)
        except (IndexError, ValueError):
            self._fail("reading server_version_num", "gave an unexpected answer %r" % lines[-3:])
        self.data_directory = datadir
        lines = self.query(start_sql(self.version_num, label), "starting the backup (%s)" % self.start_function)
        try:
            self.start_lsn, self.start_wal = [line for line in lines if line.strip()][-1].split("|")
        except (IndexError, ValueError):
            self._fail("starting the backup", "gave an unexpected answer %r" % lines[-3:])
        self.started = True
        return {"version_num": self.version_num, "data_directory": datadir, "start_lsn": self.start_lsn}

    @property
    def start_function(self):
        return "pg_backup_start" if (self.version_num or 0) >= 150000 else "pg_start_backup"

    @property
    def stop_function(self):
        return "pg_backup_stop" if (self.version_num or 0) >= 150000 else "pg_stop_backup"

    def stop(self):
        """End the backup on the same connection; return labelfile, spcmapfile, lsn and WAL range."""
        lines = self.query(stop_sql(self.version_num), "stopping the backup (%s)" % self.stop_function)
        try:
            answer = json.loads([line for line in lines if line.strip()][-1])
        except (IndexError, ValueError):
            self._fail("stopping the backup", "gave an unexpected answer %r" % lines[-3:])
        self.started = False
        start_wal = start_wal_from_label(answer.get("labelfile")) or self.start_wal
        self.close()
        return {
            "backup_label": answer.get("labelfile") or "",
            "tablespace_map": answer.get("spcmapfile") or "",
            "start_lsn": self.start_lsn,
            "stop_lsn": answer.get("lsn"),
            "start_wal": start_wal,
            "stop_wal": answer.get("walfile"),
        }

    def abort(self):
        """Give up the backup: end the session (the server aborts a backup whose session ends)."""
        was = self.started
        self.started = False
        self.close()
        return was
