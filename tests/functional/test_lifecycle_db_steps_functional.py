"""The lifecycle role's database steps, pg_archive and clickhouse_tiering, run for real through
ansible-playbook on localhost (the role, its run lock and its report), their tiers being
temporary directories.

pg_archive: a throw-away PostgreSQL 15 cluster (the ``cluster`` fixture of conftest.py, pg_scratch.py)
with a range-partitioned table owned by a role that logs in with a password over TCP, so the
password's path through the role (no_log, the module's censoring, the report) is exercised.

clickhouse_tiering: ClickHouse's own engine (chdb) behind the test HTTP front that stands in for the
server's HTTP interface (clickhouse_http_front.py, see test_clickhouse_tiering_functional.py), on
the storage configuration the clickhouse_storage role rendered; the password comes from a root-only
password file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from as_ansible import BIN, ROOT, ansible_env
from pg_scratch import PGBIN, needs_pg

PG_PASSWORD = "archiver-Pw-7c1d"  # noqa: S105 (a test value)
OLD = ["market.trades_2020_01", "market.trades_2020_02", "market.trades_2020_03"]
SCHEMA = """
CREATE SCHEMA market;
CREATE TABLE market.trades (id bigint, ts timestamptz NOT NULL, px numeric(18, 6), note text) PARTITION BY RANGE (ts);
CREATE TABLE market.trades_2020_01 PARTITION OF market.trades FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');
CREATE TABLE market.trades_2020_02 PARTITION OF market.trades FOR VALUES FROM ('2020-02-01') TO ('2020-03-01');
CREATE TABLE market.trades_2020_03 PARTITION OF market.trades FOR VALUES FROM ('2020-03-01') TO ('2020-04-01');
CREATE TABLE market.trades_recent PARTITION OF market.trades FOR VALUES FROM ('2020-04-01') TO (MAXVALUE);
INSERT INTO market.trades
SELECT i, '2020-01-01'::timestamptz + i * interval '53 minutes', 100 + (i % 97) / 7.0,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 'fill ''' || i END
FROM generate_series(0, 3000) AS i;
"""


def run_role(tmp_path, steps, variables, check=False):
    """The lifecycle role with ``steps`` on localhost; its lock, state and textfile under ``tmp_path``.
    The variables go in a file (as the timer passes /etc/jts/lifecycle.yml), never on a command line."""
    play = tmp_path / "play.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: jts.tiered_storage.lifecycle\n")
    values = {
        "ansible_python_interpreter": str(BIN / "python"),
        "lifecycle_steps": steps,
        "lifecycle_pause_file": str(tmp_path / "paused"),
        "lifecycle_lock_dir": str(tmp_path / "jts" / "lifecycle.lock.d"),
        "lifecycle_report_state_dir": str(tmp_path / "state"),
        "lifecycle_report_textfile": str(tmp_path / "jts_lifecycle.prom"),
        "lifecycle_report_journal": False,
        "lifecycle_report_webhook_url": "",
    }
    values.update(variables)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(values))
    extra.chmod(0o600)
    cmd = [str(BIN / "ansible-playbook"), "-v", "-i", "localhost,", "-c", "local", "-e", "@%s" % extra, str(play)]
    if check:
        cmd.append("--check")
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ansible_env(), timeout=300)


def step_state(tmp_path, step):
    return json.loads((tmp_path / "state" / "last-run.json").read_text())["steps"][step]


def storage_check(tmp_path, steps):
    """The storage health check's own code (what jts-storage-check runs) on the state the role wrote:
    its freshness checks of the database ``steps`` only. Returns (exit code, output)."""
    config = tmp_path / "health.json"
    databases = {"state_dir": str(tmp_path / "state"), "steps": steps}
    config.write_text(
        json.dumps({"tiers": [{"name": "state", "paths": [str(tmp_path)]}], "freshness": {"databases": databases}})
    )
    code = (
        "import sys; from ansible_collections.jts.tiered_storage.plugins.module_utils._health_cli import main; "
        "sys.exit(main(['--config', sys.argv[1], '--freshness']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT / ".collections")),
    )
    return done.returncode, done.stdout + done.stderr


def recap_changed(stdout):
    line = next(line for line in stdout.splitlines() if line.startswith("localhost") and "ok=" in line)
    return int(line.split("changed=")[1].split()[0])


# --------------------------------------------------------------------------- pg_archive


@pytest.fixture
def pg_db(cluster):
    """A database owned by a password role (CREATEDB for the scratch database), with market.trades."""
    name = "l_%s" % os.urandom(4).hex()
    cluster.sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'archiver') THEN "
        "CREATE ROLE archiver LOGIN CREATEDB PASSWORD '%s'; END IF; END $$;" % PG_PASSWORD
    )
    cluster.sql("CREATE DATABASE %s OWNER archiver;" % name)
    cluster.sql("SET ROLE archiver;\n" + SCHEMA, db=name)
    try:
        yield name
    finally:
        cluster.sql("DROP DATABASE IF EXISTS %s WITH (FORCE);" % name)


def pg_vars(cluster, db, tmp_path, password=PG_PASSWORD, **extra):
    values = {
        "lifecycle_pg_archive": [
            {
                "dbname": db,
                "host": "127.0.0.1",
                "port": cluster.port,
                "user": "archiver",
                "password": password,
                "bindir": str(PGBIN),
                "tables": [{"name": "market.trades"}],
                "retention": "365d",
                "lock_timeout": 5,
            }
        ],
        # the layout's warm tier: daily-backups in a temporary directory on this machine's root filesystem
        "lifecycle_backup_dir": str(tmp_path / "warm" / "daily-backups"),
        "lifecycle_backup_warm_mount": "/",
        "lifecycle_pg_archive_require_mounted": False,
        "lifecycle_pg_archive_journal": str(tmp_path / "pgjournal" / "journal.jsonl"),
        "lifecycle_pg_archive_warm_tier_path": str(tmp_path / "warm-not-a-tablespace"),
        "lifecycle_pg_archive_nas_path": str(tmp_path / "nas-not-a-tablespace"),
    }
    values.update(extra)
    return values


def attached(cluster, db):
    return cluster.sql(
        "SELECT string_agg(c.oid::regclass::text, ' ' ORDER BY 1) FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhrelid WHERE i.inhparent = 'market.trades'::regclass;",
        db=db,
    ).split()


def fingerprint(cluster, db, table):
    query = "SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM %s t;" % table  # noqa: S608
    return cluster.sql(query, db=db)


def assert_no_password(result, tmp_path, password=PG_PASSWORD):
    assert password not in result.stdout + result.stderr
    for path in (tmp_path / "state" / "last-run.json", tmp_path / "jts_lifecycle.prom"):
        if path.exists():
            assert password not in path.read_text()


@needs_pg
def test_pg_archive_step_archives_through_the_role_and_a_rerun_changes_nothing(cluster, pg_db, tmp_path):
    before = {name: fingerprint(cluster, pg_db, name) for name in OLD}
    variables = pg_vars(cluster, pg_db, tmp_path)
    dumps = tmp_path / "warm" / "daily-backups" / "pg-partitions" / pg_db / "market.trades"

    checked = run_role(tmp_path, ["pg_archive"], variables, check=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "would archive 3 partition(s)" in checked.stdout
    assert attached(cluster, pg_db) == [*OLD, "market.trades_recent"]
    assert not (tmp_path / "warm").exists() and not (tmp_path / "pgjournal").exists()
    assert_no_password(checked, tmp_path)

    done = run_role(tmp_path, ["pg_archive"], variables)
    assert done.returncode == 0, done.stdout + done.stderr
    assert attached(cluster, pg_db) == ["market.trades_recent"]
    files = sorted(p.name for p in dumps.iterdir())
    assert len(files) == 9 and len([f for f in files if f.endswith(".dump")]) == 3, files
    for dump in sorted(dumps.glob("*.dump")):
        check = subprocess.run(["sha256sum", "-c", dump.name + ".sha256"], cwd=dumps, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    # the rows come back from a dump: restored into a database of their own
    restore_db = pg_db + "_restore"
    cluster.sql("CREATE DATABASE %s;" % restore_db)
    try:
        cluster.sql("CREATE SCHEMA market;", db=restore_db)
        dump = next(dumps.glob("trades_2020_02_*.dump"))
        with dump.open("rb") as handle:  # root's file: read by the test, restored as postgres over the socket
            restore = subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(PGBIN / "pg_restore"),
                    "-h",
                    str(cluster.base),
                    "-p",
                    str(cluster.port),
                    "-d",
                    restore_db,
                    "--no-owner",
                ],
                stdin=handle,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert restore.returncode == 0, restore.stderr
        assert fingerprint(cluster, restore_db, "market.trades_2020_02") == before["market.trades_2020_02"]
    finally:
        cluster.sql("DROP DATABASE IF EXISTS %s WITH (FORCE);" % restore_db)
    state = step_state(tmp_path, "pg_archive")
    assert state["status"] == "success", state
    assert state["figures"]["files_archived"] == 3 and state["figures"]["files_pending"] == 0, state
    assert state["figures"]["bytes_archived"] == sum(p.stat().st_size for p in dumps.glob("*.dump"))
    prom = (tmp_path / "jts_lifecycle.prom").read_text()
    assert 'jts_lifecycle_step_files{step="pg_archive",action="archived"} 3' in prom, prom
    assert 'jts_lifecycle_step_success{step="pg_archive"} 1' in prom
    assert "the migrate step is not in lifecycle_steps" in " ".join(done.stdout.split())
    assert_no_password(done, tmp_path)
    code, report = storage_check(tmp_path, ["pg_archive"])
    assert code == 0, report
    assert "pg_archive: last run SUCCESS; 0 pending; archived 3 (" in report, report

    again = run_role(tmp_path, ["pg_archive"], variables)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap_changed(again.stdout) == 0, again.stdout
    assert len(list(dumps.iterdir())) == 9
    assert step_state(tmp_path, "pg_archive")["figures"]["files_archived"] == 0

    rechecked = run_role(tmp_path, ["pg_archive"], variables, check=True)
    assert rechecked.returncode == 0 and recap_changed(rechecked.stdout) == 0, rechecked.stdout


@needs_pg
def test_pg_archive_step_failure_is_recorded_without_the_password(cluster, pg_db, tmp_path):
    wrong = "not-the-Pw-93ab"
    result = run_role(tmp_path, ["pg_archive"], pg_vars(cluster, pg_db, tmp_path, password=wrong))
    assert result.returncode != 0
    assert "PostgreSQL archival failed for %s" % pg_db in " ".join(result.stdout.split())
    state = step_state(tmp_path, "pg_archive")
    assert state["status"] == "failed" and "password authentication failed" in state["message"], state
    assert state["figures"]["files_failed"] == 1
    assert attached(cluster, pg_db) == [*OLD, "market.trades_recent"]
    assert_no_password(result, tmp_path, wrong)


def test_pg_archive_step_skips_when_the_warm_tier_is_not_mounted(tmp_path):
    variables = {
        "lifecycle_pg_archive": [{"dbname": "trading", "tables": [{"name": "market.trades"}], "retention": "90d"}],
        "lifecycle_backup_dir": str(tmp_path / "warm" / "daily-backups"),
        "lifecycle_backup_warm_mount": str(tmp_path / "warm"),
    }
    (tmp_path / "warm").mkdir()
    result = run_role(tmp_path, ["pg_archive"], variables)
    assert result.returncode != 0
    assert "PostgreSQL archival skipped: %s is not mounted" % (tmp_path / "warm") in " ".join(result.stdout.split())
    state = step_state(tmp_path, "pg_archive")
    assert state["status"] == "skipped" and state["message"] == "%s is not mounted" % (tmp_path / "warm"), state
    assert not (tmp_path / "warm" / "daily-backups").exists()


def test_db_steps_with_empty_lists_succeed_and_do_nothing(tmp_path):
    result = run_role(tmp_path, ["pg_archive", "clickhouse_tiering"], {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lifecycle_pg_archive is empty" in result.stdout and "lifecycle_clickhouse_tiering is empty" in result.stdout
    assert step_state(tmp_path, "pg_archive")["status"] == "success"
    assert step_state(tmp_path, "clickhouse_tiering")["status"] == "success"


# --------------------------------------------------------------------------- clickhouse_tiering


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    """The clickhouse_storage role's configuration (warm disk only), chdb behind the front, two tables."""
    pytest.importorskip("chdb")
    import test_clickhouse_tiering_functional as ch

    base = tmp_path_factory.mktemp("ch-lifecycle")
    (base / "server").mkdir()
    rendered = ch.run_role(base)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    front = ch.Front(base, base / "config.d" / "jts-storage.xml")
    try:
        ch.create_tables(front)
        yield base, front, ch
    finally:
        front.stop()


def test_clickhouse_tiering_step_moves_old_parts_cold_and_a_rerun_is_a_no_op(clickhouse, tmp_path):
    base, front, ch = clickhouse
    secret = tmp_path / "ch.pw"
    secret.write_text(ch.PASSWORD + "\n")
    secret.chmod(0o600)
    variables = {
        "lifecycle_clickhouse_tiering": [
            {
                "name": "chdb",
                "url": front.url,
                "password_file": str(secret),
                "wait_timeout": 30,
                "tables": [
                    {"database": "market", "table": "ticks", "column": "d"},
                    {"database": "market", "table": "orders", "ttl": False},
                ],
            }
        ],
        # the layout: the warm tier is a directory on this machine's root filesystem
        "lifecycle_clickhouse_tiering_tiers": [{"mount": "/", "path": str(base / "warm" / "clickhouse")}],
    }
    before = ch.placement(front, "ticks", "Date") + ch.placement(front, "orders", "DateTime")

    checked = run_role(tmp_path, ["clickhouse_tiering"], variables, check=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ch.placement(front, "ticks", "Date") + ch.placement(front, "orders", "DateTime") == before
    assert not any(s.startswith("ALTER") for s in front.logged())

    done = run_role(tmp_path, ["clickhouse_tiering"], variables)
    assert done.returncode == 0, done.stdout + done.stderr
    ch.assert_placed(front)
    alters = [s for s in front.logged() if s.startswith("ALTER")]
    assert alters, "the step changed the tables' TTL and moved partitions"
    state = step_state(tmp_path, "clickhouse_tiering")
    assert state["status"] == "success" and state["figures"]["files_moved"] > 0, state
    assert state["figures"]["files_pending"] == 0
    assert ch.PASSWORD not in done.stdout + done.stderr + checked.stdout + checked.stderr
    # what it measured: bytes and parts per disk, the oldest part left on hot (this month's rows)
    gauges = {(g["metric"], g["labels"].get("disk")): g["value"] for g in state["gauges"]}
    assert gauges[("clickhouse_disk_bytes", "warm")] > 0 and gauges[("clickhouse_disk_parts", "warm")] > 0, gauges
    oldest = gauges[("clickhouse_hot_oldest_part_timestamp_seconds", None)]
    prom = (tmp_path / "jts_lifecycle.prom").read_text()
    assert re.search(r'^jts_lifecycle_clickhouse_disk_bytes\{server="chdb",disk="warm"\} [1-9][0-9]*$', prom, re.M), (
        prom
    )
    assert 'jts_lifecycle_clickhouse_hot_oldest_part_timestamp_seconds{server="chdb"} %d' % oldest in prom
    code, report = storage_check(tmp_path, ["clickhouse_tiering"])
    assert code == 0, report
    assert re.search(
        r"clickhouse_tiering: last run SUCCESS; 0 pending; moved \d+ .*chdb: .*warm [0-9.]+ [KMG]?i?B in \d+ parts",
        report,
    ), report
    assert "oldest part on hot" in report, report

    again = run_role(tmp_path, ["clickhouse_tiering"], variables)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap_changed(again.stdout) == 0, again.stdout
    assert step_state(tmp_path, "clickhouse_tiering")["figures"]["files_moved"] == 0
    assert [s for s in front.logged() if s.startswith("ALTER")] == alters, "the rerun ran no ALTER"


def test_clickhouse_tiering_step_refuses_a_password_file_others_can_read(clickhouse, tmp_path):
    _base, front, ch = clickhouse
    secret = tmp_path / "ch.pw"
    secret.write_text(ch.PASSWORD)
    secret.chmod(0o644)
    variables = {
        "lifecycle_clickhouse_tiering": [
            {
                "url": front.url,
                "password_file": str(secret),
                "tables": [{"database": "market", "table": "ticks", "column": "d"}],
            }
        ],
        "lifecycle_clickhouse_tiering_tiers": [{"mount": "/", "path": str(tmp_path)}],
    }
    logged = len(front.logged())
    result = run_role(tmp_path, ["clickhouse_tiering"], variables)
    assert result.returncode != 0
    state = step_state(tmp_path, "clickhouse_tiering")
    assert state["status"] == "failed" and "mode 0644" in state["message"], state
    assert len(front.logged()) == logged, "the server is asked nothing"
    assert ch.PASSWORD not in result.stdout + result.stderr
    assert Path(secret).read_text() == ch.PASSWORD
