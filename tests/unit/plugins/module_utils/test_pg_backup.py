"""Unit tests of _pg_backup (the backup held on one psql session) and _freeze (fsfreeze with a watchdog).

psql is a fake on real pipes (tests/unit/plugins/modules/psql_fake.py); fsfreeze is a recorded
``run``; the watchdog's Popen is recorded, and its code is run for real on a fake fsfreeze script.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "modules"))
from psql_fake import LABEL, FakePsql

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
from ansible_collections.jts.tiered_storage.plugins.module_utils._freeze import (
    WATCHDOG,
    FreezeError,
    Freezer,
    validate_mounts,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup import (
    PgBackupSession,
    PgError,
    start_sql,
    start_wal_from_label,
    stop_sql,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup_wal import wal_range


def session(fake, **kw):
    return PgBackupSession("/usr/bin/psql", host="/run/postgresql", port=5433, user="backup", popen=fake, **kw)


# -- _pg_backup ---------------------------------------------------------------------------------


def test_session_argv_is_a_list_with_a_quoted_connection_string_and_no_password():
    fake = FakePsql()
    s = session(fake, password="s3cr'et")  # noqa: S106 - a test value
    s.start("nightly")
    argv = fake.procs[0].argv
    assert argv[:7] == ["/usr/bin/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
    assert argv[7] == "-d"
    assert "dbname='postgres'" in argv[8] and "port='5433'" in argv[8] and "user='backup'" in argv[8]
    assert "application_name='jts-lvm-snapshot'" in argv[8]
    assert "s3cr" not in " ".join(argv)
    assert fake.procs[0].kw["env"]["PGPASSWORD"] == "s3cr'et"
    assert fake.procs[0].kw["stdin"] == subprocess.PIPE and fake.procs[0].kw["stdout"] == subprocess.PIPE
    s.close()


def test_pg15_start_and_stop_use_pg_backup_functions_on_one_connection():
    fake = FakePsql()
    s = session(fake)
    info = s.start("nightly")
    assert info == {"version_num": 150004, "data_directory": "/srv/pg/data/15/main", "start_lsn": "0/2000028"}
    assert "pg_backup_start('nightly', true)" in fake.statements[1]
    assert fake.procs[0].returncode is None, "the connection stays open while the snapshots are taken"
    stopped = s.stop()
    assert "FROM pg_backup_stop(false)" in fake.statements[2]
    assert len(fake.procs) == 1, "one psql, one connection"
    assert fake.procs[0].quit, "psql ended with \\q after the stop"
    assert stopped == {
        "backup_label": LABEL,
        "tablespace_map": "",
        "start_lsn": "0/2000028",
        "stop_lsn": "0/3000100",
        "start_wal": "000000010000000000000002",
        "stop_wal": "000000010000000000000003",
    }


def test_before_pg15_the_old_function_names_are_used():
    fake = FakePsql(version=140010)
    s = session(fake)
    s.start("nightly")
    assert "pg_start_backup('nightly', true, false)" in fake.statements[1]
    assert s.stop_function == "pg_stop_backup"
    s.stop()
    assert "FROM pg_stop_backup(false, false)" in fake.statements[2]
    assert start_sql(100000, "x").count("pg_start_backup") == 1
    with pytest.raises(PgError, match="too old"):
        start_sql(90600, "x")
    assert "pg_backup_stop(false)" in stop_sql(150000) and "pg_stop_backup(false, false)" in stop_sql(140000)


def test_connection_refused_raises_with_psql_message():
    fake = FakePsql(refuse='psql: error: connection to server on socket "/run/postgresql/.s.PGSQL.5433" failed\n')
    s = session(fake)
    with pytest.raises(PgError) as exc:
        s.start("nightly")
    assert "psql exited with rc 2" in str(exc.value) and "connection to server" in str(exc.value)


def test_start_refused_by_the_server_raises():
    fake = FakePsql(fail={"pg_backup_start": "ERROR:  permission denied for function pg_backup_start\n"})
    s = session(fake)
    with pytest.raises(PgError, match=r"starting the backup.*permission denied"):
        s.start("nightly")
    assert not s.started


def test_an_answer_that_never_comes_times_out():
    fake = FakePsql(hang="pg_backup_stop")
    s = session(fake, statement_timeout=0.3)
    s.start("nightly")
    with pytest.raises(PgError, match=r"did not answer within 0\.3s"):
        s.stop()
    s.abort()
    assert fake.procs[0].returncode is not None


def test_abort_ends_the_session_and_says_whether_a_backup_was_held():
    fake = FakePsql()
    s = session(fake)
    s.start("nightly")
    assert s.abort() is True
    assert fake.procs[0].returncode is not None and s.proc is None
    assert not any("pg_backup_stop" in st for st in fake.statements), "abort never stops: closing aborts"
    assert s.abort() is False


def test_label_is_checked():
    with pytest.raises(PgError, match="backup label"):
        session(FakePsql()).start("x'; DROP TABLE t; --")


def test_start_wal_from_label_and_wal_range():
    assert start_wal_from_label(LABEL) == "000000010000000000000002"
    assert start_wal_from_label("nothing") is None
    names = [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000010000000000000003",
        "000000010000000000000004",
        "000000010000000000000002.00000028.backup",
        "archive_status",
    ]
    assert wal_range(names, "000000010000000000000002", "000000010000000000000003") == names[1:3]
    with pytest.raises(PgError, match="timelines"):
        wal_range(names, "000000010000000000000002", "000000020000000000000003")


def pg_group(**kw):
    return dict(
        {"origins": ["postgres"], "method": "postgresql", "mounts": ["/srv/pg"], "freeze_timeout": 60, "port": 5432},
        **kw,
    )


def test_holder_release_after_a_complete_set_gives_the_label_and_the_relative_data_directory():
    fake = FakePsql()
    holder = _consistency.PgHolder(pg_group(), "/usr/bin/psql", popen=fake)
    holder.acquire()
    state, finding = holder.release(True)
    assert finding is None
    assert state["mode"] == "application" and state["method"] == "postgresql"
    assert state["data_directory"] == "data/15/main"
    assert state["backup_label"] == LABEL and state["tablespace_map"] == ""
    assert state["start_lsn"] == "0/2000028" and state["stop_lsn"] == "0/3000100"
    assert "WAL archive" in state["reason"]


def test_holder_stop_failure_degrades_to_crash_with_a_finding():
    fake = FakePsql(fail={"pg_backup_stop": "ERROR:  backup is not in progress\n"})
    holder = _consistency.PgHolder(pg_group(), "/usr/bin/psql", popen=fake)
    holder.acquire()
    state, finding = holder.release(True)
    assert state["mode"] == "crash" and "pg_backup_stop failed" in state["reason"]
    assert "backup is not in progress" in finding
    assert fake.procs[0].returncode is not None


def test_holder_start_failure_raises_and_leaves_no_psql():
    fake = FakePsql(fail={"pg_backup_start": "ERROR:  nope\n"})
    holder = _consistency.PgHolder(pg_group(), "/usr/bin/psql", popen=fake)
    with pytest.raises(_consistency.ConsistencyError, match="PostgreSQL backup start failed"):
        holder.acquire()
    assert holder.session.proc is None


def test_relative_data_directory():
    rel = _consistency.relative_data_directory
    assert rel("/srv/pg/data", ["/srv", "/srv/pg"]) == "data"
    assert rel("/srv/pg", ["/srv/pg"]) == "."
    assert rel("/srv/pgx/data", ["/srv/pg"]) is None


def test_parse_consistency_errors():
    def parse(entries, origins):  # entries as the argument_spec gives them (freeze_timeout's default)
        return _consistency.parse_consistency([dict({"freeze_timeout": 60}, **e) for e in entries], origins)

    with pytest.raises(_consistency.ConsistencyError, match="not one of the origins"):
        parse([{"origins": ["kafka"], "method": "none"}], ["postgres"])
    with pytest.raises(_consistency.ConsistencyError, match="already in consistency\\[0\\]"):
        parse([{"origins": ["postgres"], "method": "none"}, {"origins": ["postgres"], "method": "none"}], ["postgres"])
    with pytest.raises(_consistency.ConsistencyError, match="fsfreeze needs mounts"):
        parse([{"origins": ["postgres"], "method": "fsfreeze"}], ["postgres"])
    with pytest.raises(_consistency.ConsistencyError, match="absolute, normalised"):
        parse([{"origins": ["postgres"], "method": "fsfreeze", "mounts": ["srv/pg"]}], ["postgres"])
    with pytest.raises(_consistency.ConsistencyError, match="label"):
        parse([{"origins": ["postgres"], "method": "postgresql", "label": "a b"}], ["postgres"])


# -- _freeze ------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail or {}
        self.procs = []

    def run(self, argv):
        self.calls.append(list(argv))
        return self.fail.get(tuple(argv[1:]), (0, "", ""))

    def popen(self, argv, **kw):
        proc = WatchdogProc(argv, kw)
        self.procs.append(proc)
        return proc


class WatchdogProc:
    def __init__(self, argv, kw):
        self.argv = argv
        self.kw = kw
        self.returncode = None
        self.signals = []

    def poll(self):
        return self.returncode

    def send_signal(self, signum):
        self.signals.append(signum)
        self.returncode = -signum

    def wait(self, timeout=None):
        return self.returncode


def test_freeze_spawns_a_detached_watchdog_first_then_freezes_and_thaws_in_reverse():
    rec = Recorder()
    f = Freezer(rec.run, "/usr/sbin/fsfreeze", ["/srv/a", "/srv/b"], 45, popen=rec.popen, python="/usr/bin/python3")
    f.freeze()
    assert rec.procs[0].argv == ["/usr/bin/python3", "-c", WATCHDOG, "45", "/usr/sbin/fsfreeze", "/srv/a", "/srv/b"]
    assert rec.procs[0].kw["start_new_session"] is True and rec.procs[0].kw["cwd"] == "/"
    assert rec.calls == [["/usr/sbin/fsfreeze", "-f", "/srv/a"], ["/usr/sbin/fsfreeze", "-f", "/srv/b"]]
    assert f.thaw() == []
    assert rec.calls[2:] == [["/usr/sbin/fsfreeze", "-u", "/srv/b"], ["/usr/sbin/fsfreeze", "-u", "/srv/a"]]
    assert rec.procs[0].signals == [15], "the watchdog is stopped once thawed"


def test_a_failed_freeze_thaws_what_was_frozen():
    rec = Recorder(fail={("-f", "/srv/b"): (1, "", "fsfreeze: /srv/b: freeze failed: Operation not supported\n")})
    f = Freezer(rec.run, "/usr/sbin/fsfreeze", ["/srv/a", "/srv/b"], 45, popen=rec.popen)
    with pytest.raises(FreezeError, match="fsfreeze -f /srv/b failed \\(rc 1\\)"):
        f.freeze()
    assert rec.calls[-1] == ["/usr/sbin/fsfreeze", "-u", "/srv/a"]
    assert f.frozen == [] and rec.procs[0].signals == [15]


def test_thaw_goes_on_after_a_failure_and_reports_it():
    rec = Recorder(fail={("-u", "/srv/b"): (1, "", "thaw failed\n")})
    f = Freezer(rec.run, "/usr/sbin/fsfreeze", ["/srv/a", "/srv/b"], 45, popen=rec.popen)
    f.freeze()
    assert f.thaw() == ["fsfreeze -u /srv/b failed (rc 1): thaw failed"]
    assert rec.calls[-1] == ["/usr/sbin/fsfreeze", "-u", "/srv/a"]


def test_watchdog_code_thaws_every_mount_after_the_bound(tmp_path):
    log = tmp_path / "log"
    fake = tmp_path / "fsfreeze"
    fake.write_text('#!/bin/sh\necho "$@" >> %s\n' % log)
    fake.chmod(0o755)
    proc = subprocess.run([sys.executable, "-c", WATCHDOG, "0.2", str(fake), "/srv/a", "/srv/b"], timeout=20)
    assert proc.returncode == 0
    assert log.read_text().splitlines() == ["-u /srv/a", "-u /srv/b"]


def test_validate_mounts():
    assert validate_mounts(["/srv/a"], ismount=lambda p: True) == ["/srv/a"]
    for bad, msg in (("/", "root"), ("srv", "absolute"), ("/srv/../etc", "normalised"), ("/srv/x", "not a mount")):
        with pytest.raises(FreezeError, match=msg):
            validate_mounts([bad], ismount=lambda p: p != "/srv/x")
    with pytest.raises(FreezeError, match="twice"):
        validate_mounts(["/srv/a", "/srv/a"], ismount=lambda p: True)


def test_consistency_and_freeze_errors_are_jts_errors():
    from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

    for cls in (_consistency.ConsistencyError, FreezeError, PgError):
        assert issubclass(cls, JtsError)
    interrupted = _consistency.Interrupted(15)
    assert isinstance(interrupted, JtsError) and str(interrupted) == interrupted.msg == "interrupted by signal 15"
