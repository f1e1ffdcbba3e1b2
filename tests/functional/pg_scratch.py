"""Scratch PostgreSQL 15 clusters for the functional tests (Debian's packages on this host).

A cluster is made with ``initdb`` in a temporary directory the ``postgres`` user can reach (initdb
refuses root) and started with ``pg_ctl`` on a free port, its Unix socket and log in that directory;
a restored copy of a data directory is started the same way and must recover. Used by
tests/functional/conftest.py (the ``cluster`` and ``writer`` fixtures) and the PostgreSQL tests
(test_pg_partition_archive_functional.py, test_consistent_snapshot_functional.py,
test_consistent_backup_functional.py).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PGBIN = Path("/usr/lib/postgresql/15/bin")

WRITER = """
DO $$
BEGIN
  FOR i IN 1..200000 LOOP
    INSERT INTO ticks (note) VALUES (repeat('x', 200));
    COMMIT;
  END LOOP;
END $$;
"""


def _has_postgres_user():
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


needs_pg = pytest.mark.skipif(
    not (PGBIN / "initdb").exists() or os.geteuid() != 0 or not _has_postgres_user(),
    reason="needs Debian's PostgreSQL 15, root and a postgres user",
)


def as_postgres(argv, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def public_dir(prefix):
    """A temporary directory the postgres user can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


class Cluster:
    def __init__(self, base, port):
        self.base = base
        self.port = port

    def sql(self, query, db="postgres", check=True):
        """Run ``query`` as postgres over the socket; the output (unaligned, tuples only) stripped."""
        proc = as_postgres(
            [
                str(PGBIN / "psql"),
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.base),
                "-p",
                str(self.port),
                "-d",
                db,
            ],
            input=query,
            timeout=60,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def last_tick(self):
        """The highest id in ``ticks`` (the table ``start_writer`` fills)."""
        return int(self.sql("SELECT max(id) FROM ticks"))

    def ticks_up_to(self, last_id):
        """How many rows of ``ticks`` have an id up to ``last_id``: a restored copy must hold as many."""
        return int(self.sql("SELECT count(*) FROM ticks WHERE id <= %d" % last_id))  # noqa: S608


def pg_ctl_start(data, base, port, options):
    """``pg_ctl start`` of ``data`` with its socket and log in ``base``: (started, pg_ctl's output, the log)."""
    start = as_postgres(
        [
            str(PGBIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            "-p %d -k %s %s" % (port, base, options),
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=120,
    )
    log = (base / "log").read_text() if (base / "log").exists() else ""
    return start.returncode == 0, start.stdout + start.stderr, log


def pg_ctl_stop(data, **kw):
    return as_postgres([str(PGBIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], **kw)


@contextlib.contextmanager
def scratch_cluster(prefix, initdb_args, options):
    """A new cluster (``initdb_args``, where ``{base}`` is its directory, added to initdb's and ``options``
    to the server's), stopped and removed on exit."""
    base = public_dir(prefix)
    shutil.chown(base, "postgres", "postgres")
    port = free_port()
    init = as_postgres(
        [str(PGBIN / "initdb"), "-D", str(base / "data"), "-U", "postgres", "--no-sync", "--auth-local=peer"]
        + [arg.format(base=base) for arg in initdb_args],
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    started, output, log = pg_ctl_start(base / "data", base, port, options)
    assert started, output + log
    try:
        yield Cluster(base, port)
    finally:
        pg_ctl_stop(base / "data", timeout=120)
        shutil.rmtree(base, ignore_errors=True)


class Restored(Cluster):
    """A restored copy started by ``restored_cluster``: ``started``, pg_ctl's ``output`` and the ``log``."""

    def __init__(self, base, port, started, output, log):
        super().__init__(base, port)
        self.started = started
        self.output = output
        self.log = log

    def assert_recovered(self):
        """It started, its log says it recovered, and it is out of recovery."""
        assert self.started, self.output
        assert "consistent recovery state reached" in self.log or "redo done" in self.log, self.log
        assert self.sql("SELECT pg_is_in_recovery()") == "f"


@contextlib.contextmanager
def restored_cluster(data, base, port):
    """Start the restored data directory ``data`` (socket and log in ``base``) on ``port``; stopped on exit."""
    started, output, log = pg_ctl_start(data, base, port, "-c listen_addresses=''")
    try:
        yield Restored(base, port, started, output + log, log)
    finally:
        if started:
            pg_ctl_stop(data)


def consistency_group(pg, **extra):
    """An lvm_snapshot ``consistency`` entry for ``pg`` holding the postgres LV (psql run as postgres)."""
    group = {"origins": ["postgres"], "method": "postgresql", "os_user": "postgres", "psql": str(PGBIN / "psql")}
    return dict(group, host=str(pg.base), port=pg.port, mounts=[str(pg.base)], **extra)


def start_writer(pg):
    """A session inserting and committing rows into ``ticks`` in a loop until killed."""
    pg.sql("CREATE TABLE IF NOT EXISTS ticks (id bigserial PRIMARY KEY, note text)")
    argv = [str(PGBIN / "psql"), "-X", "-q", "-h", str(pg.base), "-p", str(pg.port), "-d", "postgres", "-c", WRITER]
    proc = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 30
    while int(pg.sql("SELECT count(*) FROM ticks") or 0) < 200 and time.time() < deadline:
        time.sleep(0.1)
    return proc
