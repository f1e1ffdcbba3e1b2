"""A stand-in for an interactive ``psql`` on pipes, for the consistent-snapshot unit tests.

It is what ``subprocess.Popen`` returns to ``_pg_backup.PgBackupSession``: standard input takes the
statements (each followed by ``\\echo <marker>``), standard output is a real pipe (so ``select``
works) on which it answers like ``psql -A -t`` would, then prints the marker.
"""

from __future__ import annotations

import json
import os
import re

LABEL = (
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
    "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"
    "START TIME: 2026-11-23 02:30:00 UTC\nLABEL: jts_lvm_snapshot\nSTART TIMELINE: 1\n"
)


class FakePsql:
    """``popen`` for PgBackupSession. ``fail``: statement keyword -> stderr text (psql exits rc 3);
    ``hang``: a keyword never answered; ``refuse``: psql cannot connect (exits at once, rc 2)."""

    def __init__(self, version=150004, datadir="/srv/pg/data/15/main", fail=None, hang=None, refuse=None):
        self.version = version
        self.datadir = datadir
        self.fail = fail or {}
        self.hang = hang
        self.refuse = refuse
        self.procs = []
        self.statements = []

    def __call__(self, argv, **kw):
        proc = FakeProc(self, argv, kw)
        self.procs.append(proc)
        return proc

    def answer(self, sql):
        self.statements.append(sql)
        for key, err in self.fail.items():
            if key in sql:
                return None, err
        if self.hang and self.hang in sql:
            return "", None
        if "server_version_num" in sql:
            return "%d %s\n" % (self.version, self.datadir), None
        if "pg_backup_start(" in sql or "pg_start_backup(" in sql:
            return "0/2000028|000000010000000000000002\n", None
        if "pg_backup_stop(" in sql or "pg_stop_backup(" in sql:
            return (
                json.dumps(
                    {
                        "labelfile": LABEL,
                        "spcmapfile": "",
                        "lsn": "0/3000100",
                        "walfile": "000000010000000000000003",
                    }
                )
                + "\n",
                None,
            )
        raise AssertionError("unexpected statement %r" % sql)


class _Stdin:
    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        self.closed = False

    def write(self, data):
        if self.closed or self.proc.returncode is not None:
            raise BrokenPipeError(32, "Broken pipe")
        self.buf += data

    def flush(self):
        text = self.buf.decode()
        self.buf = b""
        for line in text.splitlines():
            self.proc.line(line)

    def close(self):
        self.closed = True
        self.proc.eof()


class FakeProc:
    def __init__(self, fake, argv, kw):
        self.fake = fake
        self.argv = argv
        self.kw = kw
        self.pid = 4242
        self.returncode = None
        self.signals = []
        self.quit = False
        read, self._w = os.pipe()
        self.stdout = os.fdopen(read, "rb")
        self.stdin = _Stdin(self)
        self._pending = None
        if fake.refuse:
            self._exit(2, fake.refuse)

    def _exit(self, rc, err=""):
        if self._w is not None:
            os.close(self._w)
            self._w = None
        if err and self.kw.get("stderr") is not None:
            self.kw["stderr"].write(err.encode())
        self.returncode = rc

    def line(self, line):
        if self.returncode is not None:
            return
        if line == "\\q":
            self.quit = True
            self._exit(0)
            return
        match = re.match(r"^\\echo (.*)$", line)
        if match:
            if self._pending is None:
                os.write(self._w, (match.group(1) + "\n").encode())
            self._pending = None
            return
        out, err = self.fake.answer(line.rstrip(";"))
        if err is not None:
            self._exit(3, err)
            return
        if out == "" and self.fake.hang:
            self._pending = "hang"
            return
        os.write(self._w, out.encode())

    def eof(self):
        if self.returncode is None:
            self._exit(0)

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            self._exit(0)
        return self.returncode

    def send_signal(self, signum):
        self.signals.append(signum)
        self._exit(-signum)

    def terminate(self):
        self.send_signal(15)

    def kill(self):
        self.send_signal(9)
