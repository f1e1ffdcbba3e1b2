"""_pg_cli: connection strings, the environment the tools get, time-outs."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_cli

BINS = {"psql": "/usr/bin/psql", "pg_dump": "/usr/bin/pg_dump", "pg_restore": "/usr/bin/pg_restore"}


def test_conninfo_quotes_every_value():
    assert _pg_cli.conninfo_quote("a b") == "'a b'"
    assert _pg_cli.conninfo_quote("it's\\") == "'it\\'s\\\\'"
    cli = _pg_cli.PgCli(BINS, "db x' host=evil", host="/run/pg", port=5433, user="u")
    info = cli.conninfo()
    assert info.startswith("dbname='db x\\' host=evil' host='/run/pg' port='5433' user='u'")
    assert "options='-c TimeZone=UTC -c DateStyle=ISO" in info and "-c lock_timeout=10000ms" in info


def test_session_options_fix_how_rows_print():
    options = _pg_cli.session_options(2.5, 0)
    for setting in (
        "TimeZone=UTC",
        "DateStyle=ISO",
        "extra_float_digits=3",
        "bytea_output=hex",
        "IntervalStyle=postgres",
    ):
        assert "-c " + setting in options
    assert "-c lock_timeout=2500ms" in options and "-c statement_timeout=0ms" in options


def test_password_only_in_the_environment_and_pg_variables_dropped(monkeypatch):
    monkeypatch.setenv("PGHOST", "evil")
    monkeypatch.setenv("PGPASSWORD", "inherited")
    seen = []

    def runner(argv, env, **kw):
        seen.append((argv, env, kw))
        return 0, b'{"a": 1}\n', b""

    secret = "s3cret-" + os.urandom(3).hex()
    cli = _pg_cli.PgCli(BINS, "trading", password=secret, passfile="/root/.pgpass", runner=runner)
    assert cli.query_json("SELECT 1;", {"x": "y"}) == {"a": 1}
    argv, env, kw = seen[0]
    assert secret not in " ".join(argv)
    assert env["PGPASSWORD"] == secret and env["PGPASSFILE"] == "/root/.pgpass" and "PGHOST" not in env
    assert argv[:7] == ["/usr/bin/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
    assert argv[7:9] == ["-v", "x=y"] and argv[-2:] == ["-f", "-"] and kw["input_bytes"] == b"SELECT 1;"


def test_failure_message_names_the_step_and_the_error():
    cli = _pg_cli.PgCli(BINS, "trading", runner=lambda argv, env, **kw: (3, b"", b"psql:<stdin>:1: ERROR:  boom\n"))
    with pytest.raises(_pg_cli.PgError) as exc:
        cli.psql("SELECT 1;", what="reading things")
    assert str(exc.value) == "reading things failed (psql, rc=3): psql:<stdin>:1: ERROR:  boom"
    assert exc.value.rc == 3


def test_a_tool_that_outlives_its_time_out_is_killed():
    started = time.monotonic()
    with pytest.raises(_pg_cli.PgTimeout, match=r"sleep did not finish within 0\.5s"):
        _pg_cli.spawn(["sleep", "30"], {"PATH": "/usr/bin:/bin"}, timeout=0.5)
    assert time.monotonic() - started < 5


def test_table_pattern_is_literal():
    assert _pg_cli.table_pattern("market", 'we*ird"') == '"market"."we*ird"""'


def test_pg_errors_are_jts_errors_with_their_message():
    from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, describe

    exc = _pg_cli.PgTimeout("pg_dump did not finish", cmd=["pg_dump"], rc=-9, stderr="")
    assert isinstance(exc, _pg_cli.PgError) and isinstance(exc, JtsError)
    assert (describe(exc), str(exc), exc.rc, exc.details) == (
        "pg_dump did not finish",
        "pg_dump did not finish",
        -9,
        {},
    )


def test_the_backup_session_and_the_cli_build_the_same_connection_string():
    from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup import PgBackupSession

    kw = dict(host="/run/postgresql", port=5433, user="backup", password="s3cret", connect_timeout=7)  # noqa: S106
    cli = _pg_cli.PgCli(BINS, "postgres", **kw)
    backup = PgBackupSession("/usr/bin/psql", dbname="postgres", **kw)
    assert backup.describe() == cli.describe() == "database postgres on /run/postgresql:5433 as backup"
    assert backup._env == cli._env and backup._env["PGPASSWORD"] == "s3cret"
    assert "s3cret" not in backup.conninfo()
    assert (
        backup.conninfo().replace("jts-lvm-snapshot", "X").split(" options=")[0]
        == (cli.conninfo().replace("jts-pg-partition-archive", "X").split(" options=")[0])
    )
