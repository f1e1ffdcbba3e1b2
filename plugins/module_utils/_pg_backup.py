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

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import os
import re
import select
import stat
import subprocess
import tempfile
import time
import uuid

from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import (
    PgError,
    _stderr_tail,
    conninfo_string,
    describe_target,
    session_env,
    session_options,
)

APPLICATION_NAME = "jts-lvm-snapshot"
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,100}$")
_WAL_RE = re.compile(r"^[0-9A-F]{24}$")
_COPY_CHUNK = 1 << 20


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


class PgBackupSession:
    """One psql process, one connection, one backup. ``popen`` is replaced in unit tests."""

    def __init__(
        self,
        psql,
        dbname="postgres",
        host=None,
        port=5432,
        user=None,
        password=None,
        passfile=None,
        os_user=None,
        connect_timeout=10,
        statement_timeout=300,
        popen=None,
    ):
        self.psql_bin = psql
        self.dbname = dbname
        self.host = host
        self.port = port
        self.user = user
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.popen = popen or subprocess.Popen
        self.proc = None
        self._stderr = None
        self.version_num = None
        self.data_directory = None
        self.start_lsn = None
        self.start_wal = None
        self.started = False
        self._env, self.preexec_fn = session_env(password, passfile, os_user)

    def describe(self):
        return describe_target(self.dbname, self.host, self.port, self.user)

    def conninfo(self):
        # no statement time-out on the server: the backup must outlive the snapshots; each answer
        # is awaited with a time-out here instead
        return conninfo_string(
            self.dbname, self.host, self.port, self.user, self.connect_timeout, APPLICATION_NAME, session_options(30, 0)
        )

    def argv(self):
        return [self.psql_bin, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo()]

    # -- the pipe protocol ---------------------------------------------------------------------

    def _spawn(self):
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = self.popen(
            self.argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self._env,
            cwd="/",
            close_fds=True,
            preexec_fn=self.preexec_fn,  # a uid/gid switch before the exec; the module has no threads
        )

    def _err_text(self):
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return _stderr_tail(self._stderr.read())
        except (OSError, ValueError):
            return ""

    def _fail(self, what, why):
        rc = self.proc.poll() if self.proc is not None else None
        err = self._err_text()
        raise PgError(
            "%s on %s %s%s" % (what, self.describe(), why, ": " + err if err else ""),
            rc=rc,
            stderr=err,
        )

    def query(self, sql, what, timeout=None):
        """Send one statement and return the lines psql prints for it (before the marker)."""
        if self.proc is None:
            self._fail(what, "failed: psql is not running")
        if self.proc.poll() is not None:
            self._fail(what, "failed (psql exited with rc %s)" % self.proc.returncode)
        timeout = self.statement_timeout if timeout is None else timeout
        marker = "--jts-%s--" % uuid.uuid4().hex
        script = "%s;\n\\echo %s\n" % (sql, marker)
        try:
            self.proc.stdin.write(script.encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._fail(what, "failed: psql exited")
        lines = []
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                if line == marker:
                    return lines
                lines.append(line)
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(what, "did not answer within %ss" % timeout)
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait()
                self._fail(what, "failed (psql exited with rc %s)" % self.proc.returncode)
            buf += chunk

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

    def close(self, grace=5):
        """End psql (``\\q``, then SIGTERM, then SIGKILL). Never raises. Closing aborts a running backup."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                try:
                    proc.stdin.write(b"\\q\n")
                    proc.stdin.flush()
                except (OSError, ValueError):
                    pass
            try:
                proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            try:
                proc.stdout.close()
            except (OSError, ValueError):
                pass
        finally:
            self.proc = None
            if self._stderr is not None:
                try:
                    self._stderr.close()
                except OSError:
                    pass
                self._stderr = None

    def abort(self):
        """Give up the backup: end the session (the server aborts a backup whose session ends)."""
        was = self.started
        self.started = False
        self.close()
        return was


# ----------------------------------------------------------------------------------------------
# WAL copy
# ----------------------------------------------------------------------------------------------


def wal_range(names, start_wal, stop_wal):
    """The WAL segment names from ``start_wal`` to ``stop_wal`` (same timeline), sorted."""
    if not (_WAL_RE.match(start_wal or "") and _WAL_RE.match(stop_wal or "")):
        raise PgError("cannot tell the WAL range of the backup (start %r, stop %r)" % (start_wal, stop_wal))
    if start_wal[:8] != stop_wal[:8]:
        raise PgError("the backup's WAL spans timelines %s to %s: refused" % (start_wal[:8], stop_wal[:8]))
    return sorted(n for n in names if _WAL_RE.match(n) and n[:8] == start_wal[:8] and start_wal <= n <= stop_wal)


def copy_wal(data_directory, start_wal, stop_wal, dest_dir):
    """Copy the WAL segments start..stop from ``<data_directory>/pg_wal`` into ``dest_dir``.

    ``pg_wal`` may be PostgreSQL's own symlink to another volume (followed); the segment files in
    it and the files written are opened with ``O_NOFOLLOW`` relative to their directories; a file
    that exists in ``dest_dir`` is refused (never overwritten). Each copy is fsynced, then the
    directory. Returns the names copied. Raises PgError (files written so far are removed).
    """
    try:
        src_fd = os.open(os.path.join(data_directory, "pg_wal"), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise PgError("cannot open %s/pg_wal: %s" % (data_directory, exc.strerror)) from None
    written = []
    try:
        try:
            dst_fd = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            raise PgError("cannot open the WAL destination %s: %s" % (dest_dir, exc.strerror)) from None
        try:
            names = wal_range(os.listdir(src_fd), start_wal, stop_wal)
            if not names or names[0] != start_wal or names[-1] != stop_wal:
                raise PgError(
                    "the WAL of the backup (%s to %s) is no longer complete in %s/pg_wal (found %s)"
                    % (start_wal, stop_wal, data_directory, ", ".join(names) or "none")
                )
            for name in names:
                _copy_one(src_fd, dst_fd, name)
                written.append(name)
            os.fsync(dst_fd)
        except BaseException:
            for name in written:
                try:
                    os.unlink(name, dir_fd=dst_fd)
                except OSError:
                    pass
            raise
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return written


def _copy_one(src_dir_fd, dst_dir_fd, name):
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_dir_fd)
    except OSError as exc:
        raise PgError("cannot open WAL file %s: %s" % (name, exc.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            raise PgError("WAL file %s is not a regular file: refused" % name)
        try:
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir_fd)
        except OSError as exc:
            raise PgError("cannot create the WAL copy %s: %s" % (name, exc.strerror)) from None
        try:
            while True:
                chunk = os.read(src, _COPY_CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view) :]
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
