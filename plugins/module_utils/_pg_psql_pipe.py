# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One psql session held open on pipes: a statement in, its answer out, with a time-out.

``PsqlPipe`` starts ``psql -X -A -t -q -v ON_ERROR_STOP=1 -d <conninfo>`` (argument list, the
connection string and environment from ``_pg_cli``: password only in the environment, optionally
as another OS user) with its standard input and output as pipes. Each statement is followed by
``\\echo <marker>`` and the answer is what psql prints before the marker (read with a time-out),
so the one connection stays open between statements. ``close`` ends psql (``\\q``, SIGTERM,
SIGKILL). Used by ``_pg_backup.PgBackupSession`` (a backup that belongs to its session).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import select
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


class PsqlPipe:
    """One psql process on one connection, spoken to one statement at a time. ``popen`` is replaced in unit tests."""

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
