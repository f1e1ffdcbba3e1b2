"""Functional tests for pg_partition_archive on a real PostgreSQL 15 (Debian's packages on this host).

A throw-away cluster is made once per module (the ``cluster`` fixture of conftest.py: ``initdb`` in
a temporary directory as the ``postgres`` user, since initdb refuses root, started with ``pg_ctl``
on a free port, Unix socket in that directory, TCP on 127.0.0.1 with scram passwords); each test
gets its own database with a range-partitioned table (an enum column, a bigserial, an index, NULLs
and quotes in text). The module runs as Ansible runs it (``python pg_partition_archive.py
args.json``), as root, with the PostgreSQL tools run as ``postgres`` (``os_user``) unless a test
says otherwise. Failures are injected with wrapper scripts in a ``bindir`` that stand in for psql,
pg_dump or pg_restore.

"Same rows" is checked with the tests' own fingerprint (count and md5 of the rows' text in id
order), not with the module's checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from as_ansible import BIN, ROOT, module_result, playbook
from as_ansible import module_cmd as _module_cmd
from pg_scratch import PGBIN, needs_pg, public_dir

OLD = ["market.trades_2020_01", "market.trades_2020_02", "market.trades_2020_03"]

pytestmark = needs_pg

SCHEMA = """
CREATE SCHEMA market;
CREATE TYPE market.side AS ENUM ('buy', 'sell');
CREATE TABLE market.trades (
  id bigserial, ts timestamptz NOT NULL, sym text NOT NULL, side market.side NOT NULL,
  px numeric(18, 6), qty integer, note text
) PARTITION BY RANGE (ts);
CREATE TABLE market.trades_2020_01 PARTITION OF market.trades FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');
CREATE TABLE market.trades_2020_02 PARTITION OF market.trades FOR VALUES FROM ('2020-02-01') TO ('2020-03-01');
CREATE TABLE market.trades_2020_03 PARTITION OF market.trades FOR VALUES FROM ('2020-03-01') TO ('2020-04-01');
CREATE TABLE market.trades_recent PARTITION OF market.trades FOR VALUES FROM ('2020-04-01') TO (MAXVALUE);
CREATE INDEX trades_sym_ts ON market.trades (sym, ts);
INSERT INTO market.trades (ts, sym, side, px, qty, note)
SELECT '2020-01-01'::timestamptz + i * interval '37 minutes',
       (ARRAY['ESZ0', 'NQZ0', 'CL''F1'])[1 + i % 3],
       (ARRAY['buy', 'sell'])[1 + i % 2]::market.side,
       100 + (i % 97) / 7.0, i % 50 + 1,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 'fill ' || i END
FROM generate_series(0, 4200) AS i;
"""


@pytest.fixture
def db(cluster, tmp_path):
    """A database of its own with market.trades; three partitions of 2020 are past a 365-day retention."""
    name = "t_%s" % os.urandom(4).hex()
    cluster.sql("CREATE DATABASE %s;" % name)
    cluster.sql(SCHEMA, db=name)
    try:
        yield name
    finally:
        cluster.sql("DROP DATABASE IF EXISTS %s WITH (FORCE);" % name)


def base_args(cluster, db, tmp_path, **extra):
    args = {
        "dbname": db,
        "host": str(cluster.base),
        "port": cluster.port,
        "os_user": "postgres",
        "bindir": str(PGBIN),
        "tables": [{"name": "market.trades", "retention": "365d"}],
        "dump_dir": str(tmp_path / "warm" / "pg-partitions"),
        "require_mounted": False,
        "journal": str(tmp_path / "state" / "journal.jsonl"),
        "lock_dir": str(tmp_path / "locks"),
        "warm_tier_path": str(tmp_path / "warm-tier-not-used"),
        "nas_path": str(tmp_path / "nas-not-used"),
        "lock_timeout": 5,
    }
    args.update(extra)
    return args


def module_cmd(tmp_path, args, check_mode=False):
    return _module_cmd("pg_partition_archive", tmp_path, args, check_mode)


def run_pa(tmp_path, args, check_mode=False, timeout=180):
    cmd, env = module_cmd(tmp_path, args, check_mode)
    result, proc = module_result(cmd, env, timeout)
    result["_stdout"] = proc.stdout.decode("utf-8", "replace")
    return result


def fingerprint(cluster, db, table):
    query = "SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM %s t;" % table  # noqa: S608
    return cluster.sql(query, db=db)


def partitions(cluster, db):
    """{partition: (bound, detach pending)} of market.trades."""
    out = cluster.sql(
        "SELECT c.oid::regclass::text || '|' || pg_get_expr(c.relpartbound, c.oid) || '|' || i.inhdetachpending "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'market.trades'::regclass ORDER BY 1;",
        db=db,
    )
    found = {}
    for line in out.splitlines():
        name, bound, pending = line.split("|")
        found[name] = (bound, pending == "true")
    return found


def exists(cluster, db, table):
    return cluster.sql("SELECT to_regclass('%s') IS NOT NULL;" % table, db=db) == "t"


def scratch_databases(cluster):
    return cluster.sql("SELECT datname FROM pg_database WHERE datname LIKE 'jts_pgarchive_scratch_%';").split()


def journal_ops(tmp_path, partition=None):
    path = tmp_path / "state" / "journal.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["op"] for r in records if partition is None or r.get("partition") == partition]


def dump_files(tmp_path):
    root = tmp_path / "warm" / "pg-partitions"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------- archival


def test_check_mode_lists_then_archives_verified_then_a_rerun_changes_nothing(cluster, db, tmp_path):
    before = {name: fingerprint(cluster, db, name) for name in OLD}
    recent = fingerprint(cluster, db, "market.trades_recent")
    attached = partitions(cluster, db)
    args = base_args(cluster, db, tmp_path)

    plan = run_pa(tmp_path, args, check_mode=True)
    assert plan["changed"] is True and not plan.get("failed"), plan
    assert [p["partition"] for p in plan["partitions"]] == OLD
    assert plan["partitions"][0]["bounds"] == "FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00')"
    assert plan["archived"] == [] and plan["run_id"] is None
    assert partitions(cluster, db) == attached
    assert not (tmp_path / "warm").exists() and not (tmp_path / "state").exists()

    done = run_pa(tmp_path, args)
    assert done["changed"] is True and not done.get("failed"), done
    assert [a["partition"] for a in done["archived"]] == OLD
    for entry in done["archived"]:
        assert entry["rows"] == int(before[entry["partition"]].split()[0])
        assert entry["detached_with"] == "concurrently"
        dump = Path(entry["dump"])
        assert (
            hashlib.sha256(dump.read_bytes()).hexdigest() == entry["sha256"] and dump.stat().st_size == entry["bytes"]
        )
        check = subprocess.run(
            ["sha256sum", "-c", dump.name + ".sha256"], cwd=dump.parent, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        side = json.loads(Path(str(dump) + ".json").read_text())
        assert (
            side["rows"] == entry["rows"]
            and side["checksum"] == entry["checksum"]
            and side["sha256"] == entry["sha256"]
        )
        assert oct(dump.stat().st_mode & 0o777) == "0o600"
        assert not exists(cluster, db, entry["partition"])
    assert set(partitions(cluster, db)) == {"market.trades_recent"}
    assert fingerprint(cluster, db, "market.trades_recent") == recent
    assert scratch_databases(cluster) == [] and done["scratch_database"].startswith("jts_pgarchive_scratch_")
    assert journal_ops(tmp_path, OLD[0]) == ["detach", "archive", "drop"]
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "warm" / "pg-partitions").stat().st_mode & 0o777) == "0o700"

    again = run_pa(tmp_path, args)
    assert again["changed"] is False and not again.get("failed"), again
    assert again["archived"] == [] and again["partitions"] == [] and again["scratch_database"] is None


def _wrapper(directory, tool, body):
    """A stand-in for ``tool`` in ``directory``: a shell script that ends by running the real one."""
    script = directory / tool
    script.write_text('#!/bin/sh\nREAL=%s\n%s\nexec "$REAL" "$@"\n' % (PGBIN / tool, body))
    script.chmod(0o755)


def tools_with(injected):
    """A bindir where every tool runs the real one, except for the ``injected`` {tool: shell body}."""
    directory = public_dir("jts-pgbin-")
    for tool in ("psql", "pg_dump", "pg_restore"):
        _wrapper(directory, tool, injected.get(tool, ""))
    return directory


INJECTED = {
    # pg_restore fails when it restores the partition's data into the scratch database
    "restore fails": (
        {
            "pg_restore": 'case " $* " in *" --section=data "*) echo "pg_restore: error: injected failure" >&2; exit 1;; esac'
        },
        "restore into the scratch database of market.trades_2020_01 failed",
    ),
    # the partition's dump is cut in half on its way to the disk: a corrupted dump
    "corrupted dump": (
        {
            "pg_dump": 'case " $* " in *" -t "*) "$REAL" "$@" > /tmp/jts-pgdump.$$ || exit 1; '
            "head -c $(( $(stat -c %s /tmp/jts-pgdump.$$) / 2 )) /tmp/jts-pgdump.$$; rm -f /tmp/jts-pgdump.$$; exit 0;; esac"
        },
        "restore into the scratch database of market.trades_2020_01 failed",
    ),
    # the restore "succeeds" without the rows: only the comparison with the source can tell
    "copy without rows": (
        {
            "pg_restore": 'case " $* " in *" --section=data "*) '
            'for a; do shift; [ "$a" = "--section=data" ] || set -- "$@" "$a"; done;; esac'
        },
        "comparison with the source and DROP of market.trades_2020_01 failed: the source has rows:h0:h1",
    ),
}


@pytest.mark.parametrize("case", sorted(INJECTED))
def test_injected_failure_leaves_the_partition_attached_and_says_why(cluster, db, tmp_path, case):
    injected, message = INJECTED[case]
    before = {name: fingerprint(cluster, db, name) for name in OLD}
    attached = partitions(cluster, db)
    bindir = tools_with(injected)
    try:
        failed = run_pa(tmp_path, base_args(cluster, db, tmp_path, bindir=str(bindir)))
    finally:
        shutil.rmtree(bindir)
    assert failed.get("failed") is True, failed
    assert message in failed["msg"], failed["msg"]
    assert (
        "market.trades_2020_01 was re-attached to market.trades FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00')"
        in failed["msg"]
    )
    assert "its dump was removed" in failed["msg"]
    # every partition is where it was, with its bounds and its rows
    assert partitions(cluster, db) == attached
    assert {name: fingerprint(cluster, db, name) for name in OLD} == before
    assert failed["archived"] == [] and dump_files(tmp_path) == []
    assert scratch_databases(cluster) == []
    assert journal_ops(tmp_path, OLD[0])[-1] == "reattach"

    # the same run with the real tools archives them all
    rerun = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    assert rerun["changed"] and not rerun.get("failed"), rerun
    assert [a["partition"] for a in rerun["archived"]] == OLD
    assert set(partitions(cluster, db)) == {"market.trades_recent"}


# --------------------------------------------------------------------------- interrupted runs


class Blocker:
    """A session that holds market.trades (ACCESS SHARE) in an open transaction, as a long report would."""

    def __init__(self, cluster, db):
        self.cluster = cluster
        self.db = db
        self.proc = subprocess.Popen(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PGBIN / "psql"),
                "-X",
                "-q",
                "-h",
                str(cluster.base),
                "-p",
                str(cluster.port),
                "-d",
                "dbname=%s application_name=jts_test_blocker" % db,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.proc.stdin.write("BEGIN;\nSELECT count(*) FROM market.trades;\nSELECT pg_sleep(600);\n")
        self.proc.stdin.flush()
        wait_for(
            lambda: (
                cluster.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'jts_test_blocker' AND query LIKE '%pg_sleep%';"
                )
                == "1"
            )
        )

    def release(self):
        self.cluster.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'jts_test_blocker';"
        )
        self.proc.kill()
        self.proc.wait(timeout=30)


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_detach_concurrently_interrupted_by_its_lock_timeout_is_finished_by_the_next_run(cluster, db, tmp_path):
    before = {name: fingerprint(cluster, db, name) for name in OLD}
    blocker = Blocker(cluster, db)
    try:
        failed = run_pa(tmp_path, base_args(cluster, db, tmp_path, lock_timeout=2))
        assert failed.get("failed") is True, failed
        assert "detach of market.trades_2020_01 failed" in failed["msg"] and "lock timeout" in failed["msg"], failed[
            "msg"
        ]
        assert "with its detach pending" in failed["msg"] and "FINALIZE" in failed["msg"], failed["msg"]
        found = partitions(cluster, db)
        assert found["market.trades_2020_01"][1] is True, found  # left pending by the interrupted DETACH
        assert not found["market.trades_2020_02"][1] and not found["market.trades_2020_03"][1]
        assert journal_ops(tmp_path, OLD[0]) == ["detach"]
        assert dump_files(tmp_path) == []
    finally:
        blocker.release()

    plan = run_pa(tmp_path, base_args(cluster, db, tmp_path), check_mode=True)
    assert plan["recovered"] == [{"partition": OLD[0], "action": "continued from a detach left pending"}], plan
    assert partitions(cluster, db)["market.trades_2020_01"][1] is True  # check mode finished nothing

    done = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    assert done["changed"] and not done.get("failed"), done
    assert done["recovered"] == [{"partition": OLD[0], "action": "continued from a detach left pending"}]
    archived = {a["partition"]: a for a in done["archived"]}
    assert sorted(archived) == OLD
    assert archived[OLD[0]]["detached_with"] == "finalize"
    for name in OLD:
        assert archived[name]["rows"] == int(before[name].split()[0])
    assert set(partitions(cluster, db)) == {"market.trades_recent"}
    assert journal_ops(tmp_path, OLD[0]) == ["detach", "archive", "drop"]


def test_run_killed_during_its_detach_is_finished_by_the_next_run(cluster, db, tmp_path):
    """SIGKILL of the module while its DETACH CONCURRENTLY waits: the detach completes on the server
    after the blocker ends, leaving a table of its own that only the journal knows about."""
    before = fingerprint(cluster, db, OLD[0])
    blocker = Blocker(cluster, db)
    cmd, env = module_cmd(tmp_path, base_args(cluster, db, tmp_path, lock_timeout=300))
    module = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(
            lambda: (
                cluster.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE%DETACH PARTITION%' AND wait_event_type = 'Lock';"
                )
                == "1"
            )
        )
        module.send_signal(signal.SIGKILL)
        module.wait(timeout=30)
    finally:
        blocker.release()
    # the orphaned psql finishes its DETACH once the blocker is gone
    wait_for(
        lambda: cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE%DETACH%';") == "0"
    )
    assert OLD[0] not in partitions(cluster, db) and exists(cluster, db, OLD[0])
    assert journal_ops(tmp_path, OLD[0]) == ["detach"]

    done = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    assert done["changed"] and not done.get("failed"), done
    assert done["recovered"] == [{"partition": OLD[0], "action": "continued from a detach left detached"}]
    archived = {a["partition"]: a for a in done["archived"]}
    assert archived[OLD[0]]["detached_with"] == "earlier run" and archived[OLD[0]]["rows"] == int(before.split()[0])
    assert not exists(cluster, db, OLD[0]) and set(partitions(cluster, db)) == {"market.trades_recent"}
    assert run_pa(tmp_path, base_args(cluster, db, tmp_path))["changed"] is False


def test_a_table_with_a_default_partition_is_detached_without_concurrently(cluster, db, tmp_path):
    cluster.sql("CREATE TABLE market.trades_default PARTITION OF market.trades DEFAULT;", db=db)
    done = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    assert done["changed"] and not done.get("failed"), done
    assert [(a["partition"], a["detached_with"]) for a in done["archived"]] == [(name, "plain") for name in OLD]
    assert set(partitions(cluster, db)) == {"market.trades_default", "market.trades_recent"}


# --------------------------------------------------------------------------- restore


def restore_playbook(tmp_path, cluster, db, **extra):
    variables = {
        "ansible_python_interpreter": str(BIN / "python"),
        "pg_partition_restore_hosts": "localhost",
        "pg_archive_dbname": db,
        "pg_archive_host": str(cluster.base),
        "pg_archive_port": cluster.port,
        "pg_archive_bindir": str(PGBIN),
        "pg_archive_journal": str(tmp_path / "state" / "journal.jsonl"),
        "pg_archive_lock_dir": str(tmp_path / "locks"),
    }
    variables.update(extra)
    return playbook(ROOT / "playbooks" / "pg_partition_restore.yml", variables)


def test_restore_playbook_brings_a_partition_back_with_the_same_rows(cluster, db, tmp_path):
    before = fingerprint(cluster, db, OLD[1])
    attached = partitions(cluster, db)
    archived = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    assert [a["partition"] for a in archived["archived"]] == OLD, archived
    assert not exists(cluster, db, OLD[1])

    played = restore_playbook(tmp_path, cluster, db, pg_partition_restore_partition=OLD[1])
    assert played.returncode == 0, played.stdout + played.stderr
    report = " ".join(played.stdout.split())  # the callback folds long lines
    assert "restored market.trades_2020_02 (%s rows)" % before.split()[0] in report, played.stdout
    assert "checked against the journal" in report
    assert fingerprint(cluster, db, OLD[1]) == before
    assert partitions(cluster, db)[OLD[1]] == attached[OLD[1]]
    # its index came back and is attached to the table's
    assert (
        cluster.sql(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE c.relkind = 'i' AND i.inhparent = 'market.trades_sym_ts'::regclass "
            "AND c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'market.trades_2020_02'::regclass);",
            db=db,
        )
        == "1"
    )
    # rows written through the table land in it again
    cluster.sql("INSERT INTO market.trades (ts, sym, side) VALUES ('2020-02-15', 'X', 'buy');", db=db)
    assert cluster.sql("SELECT count(*) FROM market.trades_2020_02 WHERE sym = 'X';", db=db) == "1"

    again = restore_playbook(tmp_path, cluster, db, pg_partition_restore_partition=OLD[1])
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout + again.stderr
    expected = "attached to market.trades FROM ('2020-02-01 00:00:00+00') TO ('2020-03-01 00:00:00+00') already"
    assert expected in " ".join(again.stdout.split()), again.stdout

    # the archival leaves the restored partition alone during its hold
    held = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    assert held["changed"] is False and held["skipped"][0]["partition"] == OLD[1], held
    assert "restore_hold" in held["skipped"][0]["reason"]


def test_restore_from_a_moved_dump_without_journal_and_a_damaged_one(cluster, db, tmp_path):
    before = fingerprint(cluster, db, OLD[2])
    archived = run_pa(tmp_path, base_args(cluster, db, tmp_path))
    dump = Path(next(a for a in archived["archived"] if a["partition"] == OLD[2])["dump"])
    nas = tmp_path / "nas"
    nas.mkdir()
    for suffix in ("", ".sha256", ".json"):
        shutil.move(str(dump) + suffix, nas / (dump.name + suffix))
    moved = nas / dump.name
    restore = base_args(
        cluster,
        db,
        tmp_path,
        state="restored",
        partition=OLD[2],
        dump=str(moved),
        journal=str(tmp_path / "rebuilt-host" / "journal.jsonl"),
    )
    for key in ("tables", "dump_dir"):
        restore.pop(key)

    # one byte changed: refused before anything is restored
    data = bytearray(moved.read_bytes())
    data[len(data) // 2] ^= 0xFF
    original = moved.read_bytes()
    moved.write_bytes(bytes(data))
    damaged = run_pa(tmp_path, restore)
    assert damaged.get("failed") is True and "nothing was restored" in damaged["msg"], damaged
    assert "not the sha256 recorded in the files beside the dump" in damaged["msg"]
    assert not exists(cluster, db, OLD[2])

    moved.write_bytes(original)
    check = run_pa(tmp_path, restore, check_mode=True)
    assert check["changed"] is True and "would restore" in check["msg"] and not exists(cluster, db, OLD[2]), check
    done = run_pa(tmp_path, restore)
    assert done["changed"] is True and done["verified_against"] == "files beside the dump", done
    assert fingerprint(cluster, db, OLD[2]) == before and OLD[2] in partitions(cluster, db)


# --------------------------------------------------------------------------- refusals and secrets


@pytest.mark.parametrize("via_link", [False, True])
def test_a_tablespace_on_the_warm_tier_is_refused_unless_acknowledged(cluster, db, tmp_path, via_link):
    warm = public_dir("jts-warm-")
    (warm / "ts").mkdir()
    shutil.chown(warm / "ts", "postgres", "postgres")
    location = warm / "ts"
    if via_link:
        elsewhere = public_dir("jts-elsewhere-")
        (elsewhere / "link").symlink_to(warm)
        location = elsewhere / "link" / "ts"
    cluster.sql("CREATE TABLESPACE jts_test_ts LOCATION '%s';" % location)
    try:
        attached = partitions(cluster, db)
        args = base_args(cluster, db, tmp_path, warm_tier_path=str(warm))
        refused = run_pa(tmp_path, args)
        assert refused.get("failed") is True, refused
        assert "tablespace jts_test_ts" in refused["msg"] and "allow_tablespaces_on: [warm]" in refused["msg"], refused[
            "msg"
        ]
        assert "warm_tier_path" in refused["msg"]
        assert partitions(cluster, db) == attached and journal_ops(tmp_path) == []
        allowed = run_pa(tmp_path, dict(args, allow_tablespaces_on=["warm"]))
        assert allowed["changed"] and len(allowed["archived"]) == 3, allowed
    finally:
        cluster.sql("DROP TABLESPACE IF EXISTS jts_test_ts;")
        shutil.rmtree(warm, ignore_errors=True)
        if via_link:
            shutil.rmtree(elsewhere, ignore_errors=True)


def test_the_password_reaches_the_tools_through_the_environment_only(cluster, db, tmp_path):
    password = "S3cret-%s" % os.urandom(6).hex()
    cluster.sql("CREATE ROLE jts_archiver LOGIN SUPERUSER PASSWORD '%s';" % password)
    log = public_dir("jts-pglog-") / "calls.log"
    body = 'echo "$(basename "$0") ${PGPASSWORD:+PGPASSWORD-set} $*" >> %s' % log
    bindir = tools_with({tool: body for tool in ("psql", "pg_dump", "pg_restore")})
    try:
        args = base_args(
            cluster, db, tmp_path, host="127.0.0.1", user="jts_archiver", password=password, bindir=str(bindir)
        )
        args.pop("os_user")
        wrong = run_pa(tmp_path, dict(args, password="wrong-" + os.urandom(4).hex()))
        assert wrong.get("failed") is True and "password authentication failed" in wrong["msg"], wrong
        assert password not in wrong["_stdout"]

        done = run_pa(tmp_path, args)
        assert done["changed"] and len(done["archived"]) == 3 and not done.get("failed"), done
        assert password not in done["_stdout"]
        calls = log.read_text().splitlines()
        assert {line.split()[0] for line in calls} == {"psql", "pg_dump", "pg_restore"}
        assert all(line.split()[1] == "PGPASSWORD-set" for line in calls)
        assert not any(password in line for line in calls)
        assert password not in (tmp_path / "state" / "journal.jsonl").read_text()
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
        shutil.rmtree(log.parent, ignore_errors=True)
        cluster.sql("DROP ROLE IF EXISTS jts_archiver;")
