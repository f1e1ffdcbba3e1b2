# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""psql, pg_dump and pg_restore run with argument lists, a time-out and no secret on the command line.

Users: pg_partition_archive (through ``_pg_archive``).

* The connection is one libpq connection string (``-d``) built from host, port, user and database
  name with libpq's quoting, so a name is never read as options or as another connection string.
* A password only reaches the tools through the environment (``PGPASSWORD`` or ``PGPASSFILE``);
  other ``PG*`` variables of the caller are dropped so they cannot redirect a connection.
* Every session gets the same settings (``options=``): UTC, ISO dates, exact floats, hex bytea,
  a lock time-out and a statement time-out, so a row prints the same text in every database of the
  cluster (the content checksum relies on it) and no DDL waits forever for a lock.
* psql runs scripts from its standard input (``-f -``) with ``ON_ERROR_STOP``; values reach SQL as
  psql variables (``-v name=value``, used as ``:'name'`` and ``:"name"``), which psql quotes itself.
* Each tool is killed when it outlives ``command_timeout``; it may run as another OS user
  (``os_user``, e.g. ``postgres`` for peer authentication) while the files it reads and writes
  are opened by the caller.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

TOOLS = ("psql", "pg_dump", "pg_restore")
APPLICATION_NAME = "jts-pg-partition-archive"
STDERR_SHOWN = 2000


class PgError(JtsError):
    """A tool failed or timed out; ``str()`` says which and why (never the password).

    ``cmd``, ``rc`` and ``stderr`` are attributes, not ``details``: a caller picks what it reports.
    """

    def __init__(self, msg, cmd=None, rc=None, stderr=""):
        super().__init__(msg)
        self.cmd = cmd
        self.rc = rc
        self.stderr = stderr


class PgTimeout(PgError):
    """A tool did not finish within its time-out and was killed."""


def conninfo_quote(value):
    """A libpq connection-string value: single-quoted, with backslash and quote escaped."""
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "\\'")


def session_options(lock_timeout, statement_timeout):
    """The ``options`` every session starts with (seconds; 0 means no time-out)."""
    settings = [
        "TimeZone=UTC",
        "DateStyle=ISO",
        "IntervalStyle=postgres",
        "extra_float_digits=3",
        "bytea_output=hex",
        "lock_timeout=%dms" % int(lock_timeout * 1000),
        "statement_timeout=%dms" % int(statement_timeout * 1000),
    ]
    return " ".join("-c " + item for item in settings)


def last_json(text):
    """The JSON value on the last non-empty line of psql's output."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("psql printed nothing")
    return json.loads(lines[-1])


def _stderr_tail(err):
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else (err or "")
    text = text.strip()
    return text[-STDERR_SHOWN:]


def session_env(password=None, passfile=None, os_user=None):
    """The environment of a PostgreSQL client and the uid switch to run it with (None: no switch).

    No ``PG*`` variable of ours is inherited, the C locale and UTF-8 are fixed, the password goes
    only here (never on a command line). Used by ``PgCli`` and ``_pg_backup.PgBackupSession``.
    """
    preexec_fn = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", PGCLIENTENCODING="UTF8")
    if os_user:
        preexec_fn, entry = _drop_privileges(os_user)
        env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    if password:
        env["PGPASSWORD"] = password
    if passfile:
        env["PGPASSFILE"] = passfile
    return env, preexec_fn


def conninfo_string(dbname, host, port, user, connect_timeout, application_name, options):
    """A libpq connection string, each value quoted; host, port and user only when given."""
    parts = [("dbname", dbname)]
    if host:
        parts.append(("host", host))
    if port:
        parts.append(("port", port))
    if user:
        parts.append(("user", user))
    parts.append(("connect_timeout", connect_timeout))
    parts.append(("application_name", application_name))
    parts.append(("options", options))
    return " ".join("%s=%s" % (key, conninfo_quote(value)) for key, value in parts)


def describe_target(dbname, host, port, user):
    """Where a session goes, for messages: ``database dbname on host:port as user`` (no secret)."""
    return "database %s on %s:%s%s" % (dbname, host or "the local socket", port, " as %s" % user if user else "")


def _drop_privileges(user):
    """A preexec function that switches to ``user`` (its groups, gid, uid) before the exec."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PgError("os_user: there is no user %s on this host" % user) from None

    def switch():
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return switch, entry


def spawn(argv, env, stdin=None, stdout=None, input_bytes=None, timeout=None, preexec_fn=None):
    """Run ``argv``; return (rc, stdout bytes, stderr bytes). Kill it after ``timeout`` seconds.

    ``stdin``/``stdout`` may be open file descriptors (a dump being written or read); otherwise
    they are pipes. Raises PgTimeout on the time-out.
    """
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input_bytes is not None else (stdin if stdin is not None else subprocess.DEVNULL),
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
        close_fds=True,
        preexec_fn=preexec_fn,  # a uid/gid switch before the exec; the module has no threads
    )
    try:
        out, err = proc.communicate(input_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise PgTimeout(
            "%s did not finish within %ss and was killed" % (os.path.basename(argv[0]), timeout),
            cmd=argv,
            rc=None,
            stderr=_stderr_tail(err),
        ) from None
    return proc.returncode, out or b"", err or b""


# The libpq connection options a module takes to reach a server (pg_partition_archive at its top
# level, lvm_snapshot in each ``postgresql`` consistency group): one spec, one meaning; the module
# passes them to PgCli or PsqlPipe by name.
CONNECTION_SPEC = dict(
    host=dict(type="str"),
    port=dict(type="int", default=5432),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    passfile=dict(type="path"),
    os_user=dict(type="str"),
    connect_timeout=dict(type="int", default=10),
)


class PgCli:
    """The three tools against one server, with one set of connection settings.

    ``bins`` maps each of TOOLS to its path. ``runner`` replaces ``spawn`` in unit tests; it gets
    the same arguments and returns (rc, out, err).
    """

    def __init__(
        self,
        bins,
        dbname,
        host=None,
        port=5432,
        user=None,
        password=None,
        passfile=None,
        os_user=None,
        connect_timeout=10,
        lock_timeout=10,
        statement_timeout=0,
        command_timeout=21600,
        runner=None,
    ):
        self.bins = dict(bins)
        self.dbname = dbname
        self.host = host
        self.port = port
        self.user = user
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.options = session_options(lock_timeout, statement_timeout)
        self.runner = runner or spawn
        self._env, self.preexec_fn = session_env(password, passfile, os_user)

    def conninfo(self, dbname=None):
        return conninfo_string(
            dbname or self.dbname, self.host, self.port, self.user, self.connect_timeout, APPLICATION_NAME, self.options
        )

    def describe(self, dbname=None):
        """Where a session goes, for messages: ``dbname on host:port as user`` (no secret)."""
        return describe_target(dbname or self.dbname, self.host, self.port, self.user)

    def _run(self, tool, args, stdin=None, stdout=None, input_bytes=None, what=None):
        argv = [self.bins[tool], *args]
        rc, out, err = self.runner(
            argv,
            self._env,
            stdin=stdin,
            stdout=stdout,
            input_bytes=input_bytes,
            timeout=self.command_timeout or None,
            preexec_fn=self.preexec_fn,
        )
        if rc != 0:
            tail = _stderr_tail(err)
            raise PgError(
                "%s failed (%s, rc=%s): %s" % (what or tool, tool, rc, tail or "no message"),
                cmd=argv,
                rc=rc,
                stderr=tail,
            )
        return out

    def psql(self, script, variables=None, dbname=None, what=None):
        """Run ``script`` (psql variables from ``variables``); return its output as text."""
        args = ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
        for name, value in sorted((variables or {}).items()):
            args += ["-v", "%s=%s" % (name, value)]
        args += ["-d", self.conninfo(dbname), "-f", "-"]
        out = self._run("psql", args, input_bytes=script.encode("utf-8"), what=what)
        return out.decode("utf-8", "replace")

    def query_json(self, script, variables=None, dbname=None, what=None):
        """Run ``script`` whose last output line is one JSON value; return it decoded."""
        text = self.psql(script, variables, dbname, what)
        try:
            return last_json(text)
        except ValueError as exc:
            raise PgError("%s: unexpected psql output %r (%s)" % (what or "query", text[-200:], exc)) from None

    def dump_table(self, qualified, out_fd, what=None):
        """``pg_dump -Fc`` of one table (``schema.name`` quoted as a pattern) into ``out_fd``."""
        args = ["-Fc", "--no-sync", "-t", qualified, "-d", self.conninfo()]
        self._run("pg_dump", args, stdout=out_fd, what=what or "pg_dump of %s" % qualified)

    def dump_schema(self, out_fd, what=None):
        """The objects a table may need (schemas, types, sequences, functions, empty tables) as ``-Fc``."""
        args = [
            "-Fc",
            "--no-sync",
            "--schema-only",
            "--section=pre-data",
            "--no-owner",
            "--no-privileges",
            "--no-publications",
            "--no-subscriptions",
            "--no-security-labels",
            "--no-comments",
            "--no-tablespaces",
            "-d",
            self.conninfo(),
        ]
        self._run("pg_dump", args, stdout=out_fd, what=what or "pg_dump --schema-only")

    def restore(self, in_fd, dbname, extra_args=(), what=None):
        """``pg_restore`` from ``in_fd`` into ``dbname`` in one transaction, stopping at the first error."""
        args = ["--single-transaction", "--exit-on-error", *extra_args, "-d", self.conninfo(dbname)]
        self._run("pg_restore", args, stdin=in_fd, what=what or "pg_restore into %s" % dbname)


def table_pattern(schema, name):
    """A pg_dump ``-t`` pattern that matches exactly ``schema.name`` (quoted, so ``*``/``?`` are literal)."""
    return "%s.%s" % (_pattern_quote(schema), _pattern_quote(name))


def _pattern_quote(name):
    return '"%s"' % name.replace('"', '""')


__all__ = [
    "TOOLS",
    "PgCli",
    "PgError",
    "PgTimeout",
    "conninfo_quote",
    "last_json",
    "session_options",
    "spawn",
    "table_pattern",
]
