"""Unit tests for pg_partition_archive: the module's main() with the PostgreSQL tools replaced.

``FakePg`` stands in for ``_pg_cli.spawn`` (the one place that starts psql, pg_dump and
pg_restore): it reads the psql script and variables each call gets and answers as a server with
one partitioned table would, keeping the partitions' state (attached, pending, detached, gone).
Failures are injected per step, for the error paths a real server cannot be made to take on cue
(a DROP that committed but whose answer was lost, a state query that fails after an error, an
ATTACH refused after a failed restore, a journal that cannot be written).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _journal, _pg_cli
from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.modules import pg_partition_archive

BOUNDS = {
    "market.trades_2020_01": ("2020-01-01 00:00:00+00", "2020-02-01 00:00:00+00"),
    "market.trades_2020_02": ("2020-02-01 00:00:00+00", "2020-03-01 00:00:00+00"),
    "market.trades_recent": ("2020-03-01 00:00:00+00", None),
}
NOW = 1_800_000_000.0  # 2027-01-15
PASSWORD = "pw-never-shown-" + os.urandom(3).hex()


class FakePg:
    """A server with market.trades; ``fail`` maps a step to (rc, stderr) or a callable."""

    def __init__(self):
        self.parts = {name: "attached" for name in BOUNDS}
        self.rows = {name: "%d:%d:%d" % (10 + i, 111 * (i + 1), -7 * (i + 1)) for i, name in enumerate(BOUNDS)}
        self.scratch_rows = {}
        self.fail = {}
        self.calls = []
        self.scripts = []
        self.tablespaces = [{"name": "pg_default", "location": ""}, {"name": "pg_global", "location": ""}]
        self.databases = set()
        self.has_default = False

    # plumbing
    def __call__(self, argv, env, stdin=None, stdout=None, input_bytes=None, timeout=None, preexec_fn=None):
        tool = os.path.basename(argv[0])
        self.calls.append((tool, list(argv), dict(env)))
        dbname = re.search(r"dbname='([^']*)'", " ".join(argv)).group(1)
        if tool == "psql":
            variables = dict(
                a.split("=", 1) for a in argv[argv.index("-X") :] if "=" in a and not a.startswith("dbname")
            )
            return self.psql(input_bytes.decode(), variables, dbname)
        if tool == "pg_dump":
            step = "dump-schema" if "--schema-only" in argv else "dump"
            failed = self._failed(step)
            if failed:
                return failed
            os.write(
                stdout,
                b"PGDMP fake dump of " + argv[argv.index("-t") + 1].encode() if step == "dump" else b"PGDMP schema",
            )
            return 0, b"", b""
        if tool == "pg_restore":
            data = os.read(stdin, 1 << 20)
            if b"schema" in data:
                return self._failed("restore-schema") or (0, b"", b"")
            if dbname in self.databases:  # the scratch database
                return self._failed("restore") or (0, b"", b"")
            return self._failed("restore-source") or self._restore_source(data)
        raise AssertionError(argv)

    def _failed(self, step):
        how = self.fail.get(step)
        if how is None:
            return None
        if callable(how):
            return how()
        return how[0], b"", how[1].encode()

    def _restore_source(self, data):
        name = data.decode().rsplit(" ", 1)[1].replace('"', "")
        self.parts[name] = "detached"
        return 0, b"", b""

    @staticmethod
    def _out(value):
        return 0, (json.dumps(value) + "\n").encode(), b""

    def psql(self, script, v, dbname):
        self.scripts.append((script, v, dbname))
        part = "%s.%s" % (v.get("ps"), v.get("pn"))
        if script == sql.SERVER_SQL:
            return self._failed("server") or self._out(
                {
                    "now": NOW,
                    "version": 150004,
                    "database": "trading",
                    "encoding": "UTF8",
                    "collate": "C",
                    "ctype": "C",
                    "tablespaces": self.tablespaces,
                }
            )
        if script == sql.TABLE_SQL:
            partitions = [
                {
                    "schema": "market",
                    "name": n.split(".")[1],
                    "kind": "r",
                    "pending": state == "pending",
                    "bound": "FOR VALUES FROM ('%s') TO (%s)"
                    % (BOUNDS[n][0], "'%s'" % BOUNDS[n][1] if BOUNDS[n][1] else "MAXVALUE"),
                    "bytes": 8192,
                    "estimated_rows": 10,
                    "tablespace": None,
                }
                for n, state in sorted(self.parts.items())
                if state in ("attached", "pending")
            ]
            table = {
                "schema": "market",
                "name": "trades",
                "kind": "p",
                "strategy": "r",
                "natts": 1,
                "key": "RANGE (ts)",
                "key_type": "timestamp with time zone",
                "has_default": self.has_default,
            }
            return self._out({"table": table, "partitions": partitions})
        if script == sql.STATE_SQL:
            failed = self._failed("state")
            if failed:
                return failed
            name = v["part"]
            state = self.parts.get(name, "gone")
            lo, hi = BOUNDS[name]
            return self._out(
                {
                    "exists": state != "gone",
                    "parent": {"schema": "market", "name": "trades"} if state in ("attached", "pending") else None,
                    "pending": True if state == "pending" else (False if state == "attached" else None),
                    "bound": "FOR VALUES FROM ('%s') TO ('%s')" % (lo, hi)
                    if state in ("attached", "pending")
                    else None,
                }
            )
        for how, text in sql.DETACH_SQL.items():
            if script == text:
                failed = self._failed(how)
                if failed:
                    if how == "concurrently" and self.fail.get("leave-pending"):
                        self.parts[part] = "pending"
                    return failed
                assert self.parts[part] == ("pending" if how == "finalize" else "attached"), (how, self.parts)
                self.parts[part] = "detached"
                return 0, b"", b""
        if script.startswith('ALTER TABLE :"ts".:"tn" ATTACH PARTITION'):
            failed = self._failed("attach")
            if failed:
                return failed
            assert self.parts[part] == "detached" and (v.get("lo"), v.get("hi")) == BOUNDS[part]
            self.parts[part] = "attached"
            return 0, b"", b""
        if script == sql.CREATE_SCRATCH_SQL:
            failed = self._failed("create-scratch")
            if failed:
                return failed
            self.databases.add(v["scratch"])
            return 0, b"", b""
        if script == sql.DROP_SCRATCH_SQL:
            self.databases.discard(v["scratch"])
            return 0, b"", b""
        if script == sql.DATABASE_EXISTS_SQL:
            return self._out(v["scratch"] in self.databases)
        if script in (sql.SCRATCH_PREPARE_SQL, sql.SCRATCH_DROP_TABLE_SQL):
            return 0, b"", b""
        if script == sql.CHECKSUM_SQL:
            if dbname in self.databases:
                return self._out(self.scratch_rows.get(part, self.rows[part]))
            return self._out(self.rows[part])
        if script == sql.DROP_VERIFIED_SQL:
            failed = self._failed("drop")
            if failed:
                if self.fail.get("drop-committed"):
                    self.parts[part] = "gone"
                return failed
            same = v["expected"] == self.rows[part]
            if same:
                self.parts[part] = "gone"
            return self._out({"dropped": same, "checksum": self.rows[part]})
        raise AssertionError("unexpected script: %s" % script)

    # what happened
    def tools(self):
        return [tool for tool, _argv, _env in self.calls]

    def issued(self, script):
        return [v for text, v, _db in self.scripts if text == script]


@pytest.fixture
def pg(monkeypatch):
    fake = FakePg()
    monkeypatch.setattr(_pg_cli, "spawn", fake)
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PGHOST", "evil.example")  # the caller's PG* settings never reach a connection
    monkeypatch.setenv("PGSERVICE", "other")
    return fake


def args_for(tmp_path, **extra):
    args = {
        "dbname": "trading",
        "host": "/var/run/postgresql",
        "port": 5432,
        "password": PASSWORD,
        "tables": [{"name": "market.trades", "retention": "365d"}],
        "dump_dir": str(tmp_path / "dumps"),
        "require_mounted": False,
        "journal": str(tmp_path / "state" / "journal.jsonl"),
        "lock_dir": str(tmp_path / "locks"),
        "warm_tier_path": str(tmp_path / "warm"),
        "nas_path": str(tmp_path / "nas"),
    }
    args.update(extra)
    return args


def ops(tmp_path, partition=None):
    path = tmp_path / "state" / "journal.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["op"] for r in records if partition is None or r.get("partition") == partition]


def dump_files(tmp_path):
    root = tmp_path / "dumps"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


P1, P2 = "market.trades_2020_01", "market.trades_2020_02"


def test_archives_expired_partitions_and_passes_the_password_in_the_environment_only(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["changed"] is True and not result.get("failed"), result
    assert [a["partition"] for a in result["archived"]] == [P1, P2]
    assert pg.parts == {P1: "gone", P2: "gone", "market.trades_recent": "attached"}
    assert ops(tmp_path, P1) == ["detach", "archive", "drop"]
    assert len(dump_files(tmp_path)) == 6 and pg.databases == set()
    for tool, argv, env in pg.calls:
        assert env["PGPASSWORD"] == PASSWORD and PASSWORD not in " ".join(argv), (tool, argv)
        assert "PGHOST" not in env and "PGSERVICE" not in env
        assert "host='/var/run/postgresql'" in " ".join(argv)
    assert PASSWORD not in json.dumps(result)


def test_check_mode_only_reads(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, args_for(tmp_path), check_mode=True)
    assert result["changed"] is True and [p["partition"] for p in result["partitions"]] == [P1, P2]
    assert set(pg.tools()) == {"psql"}
    assert {text for text, _v, _db in pg.scripts} == {sql.SERVER_SQL, sql.TABLE_SQL}
    assert not (tmp_path / "state").exists() and not (tmp_path / "dumps").exists() and not (tmp_path / "locks").exists()


def test_an_expired_pending_detach_is_finished_without_a_left_alone_warning(run_module, pg, tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(pg_partition_archive.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    pg.parts[P1] = "pending"  # an interrupted DETACH CONCURRENTLY that this module did not start
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert [(a["partition"], a["detached_with"]) for a in result["archived"]] == [
        (P1, "finalize"),
        (P2, "concurrently"),
    ]
    assert warnings == []


def test_a_pending_detach_not_yet_due_is_left_alone_with_a_warning(run_module, pg, tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(pg_partition_archive.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    pg.parts["market.trades_recent"] = "pending"
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert [a["partition"] for a in result["archived"]] == [P1, P2] and pg.parts["market.trades_recent"] == "pending"
    assert len(warnings) == 1 and "market.trades_recent has a detach pending" in warnings[0]


def test_default_partition_means_plain_detach(run_module, pg, tmp_path):
    pg.has_default = True
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert [a["detached_with"] for a in result["archived"]] == ["plain", "plain"]
    assert pg.issued(sql.DETACH_SQL["concurrently"]) == []


def test_detach_lock_timeout_leaves_it_attached(run_module, pg, tmp_path):
    pg.fail["concurrently"] = (3, "ERROR:  canceling statement due to lock timeout")
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True
    assert result["msg"].startswith(
        "detach of market.trades_2020_01 failed: DETACH PARTITION market.trades_2020_01 CONCURRENTLY"
    )
    assert "lock timeout" in result["msg"] and "it is still attached to market.trades" in result["msg"], result["msg"]
    assert pg.parts[P1] == "attached" and pg.parts[P2] == "attached"
    assert ops(tmp_path, P1) == ["detach", "reattach"] and dump_files(tmp_path) == []
    assert pg.databases == set()  # the scratch database was dropped


def test_interrupted_concurrent_detach_that_cannot_be_finished_says_so(run_module, pg, tmp_path):
    pg.fail.update(
        {
            "concurrently": (3, "ERROR:  canceling statement due to lock timeout"),
            "leave-pending": True,
            "finalize": (3, "ERROR:  canceling statement due to lock timeout"),
        }
    )
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True and pg.parts[P1] == "pending"
    assert "still attached to market.trades with its detach pending" in result["msg"], result["msg"]
    assert "ALTER TABLE market.trades DETACH PARTITION market.trades_2020_01 FINALIZE" in result["msg"]
    assert ops(tmp_path, P1) == ["detach"]  # in flight: the next run finishes it

    pg.fail.clear()
    again = run_module(pg_partition_archive, args_for(tmp_path))
    assert again["recovered"] == [{"partition": P1, "action": "continued from a detach left pending"}], again
    assert [(a["partition"], a["detached_with"]) for a in again["archived"]] == [(P1, "finalize"), (P2, "concurrently")]
    assert ops(tmp_path, P1) == ["detach", "archive", "drop"]


def test_restore_failure_reattaches_and_removes_the_dump(run_module, pg, tmp_path):
    pg.fail["restore"] = (1, "pg_restore: error: could not read from input file: end of file")
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True
    assert "restore into the scratch database of market.trades_2020_01 failed" in result["msg"]
    assert "end of file" in result["msg"] and "its dump was removed" in result["msg"]
    assert (
        "market.trades_2020_01 was re-attached to market.trades "
        "FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00')" in result["msg"]
    )
    assert pg.parts[P1] == "attached" and dump_files(tmp_path) == []
    assert pg.issued(sql.DROP_VERIFIED_SQL) == []
    assert ops(tmp_path, P1) == ["detach", "reattach"]


def test_a_restored_copy_that_differs_is_never_dropped(run_module, pg, tmp_path):
    pg.scratch_rows[P1] = "9:111:-7"
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True
    assert "comparison with the source and DROP of market.trades_2020_01 failed" in result["msg"]
    assert "the source has rows:h0:h1 10:111:-7 and its copy restored from the dump 9:111:-7" in result["msg"]
    assert pg.parts[P1] == "attached" and dump_files(tmp_path) == []
    assert ops(tmp_path, P1) == ["detach", "archive", "reattach"]


def test_a_drop_that_committed_before_its_answer_was_lost_keeps_the_dump(run_module, pg, tmp_path):
    pg.fail.update({"drop": (2, "server closed the connection unexpectedly"), "drop-committed": True})
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True and pg.parts[P1] == "gone"
    assert "market.trades_2020_01 no longer exists" in result["msg"] and "its dump is kept at" in result["msg"]
    assert len([n for n in dump_files(tmp_path) if n.endswith(".dump")]) == 1
    # the next run records the drop the journal missed, and goes on with the others
    pg.fail.clear()
    again = run_module(pg_partition_archive, args_for(tmp_path))
    assert again["recovered"][0]["partition"] == P1 and again["recovered"][0]["action"].startswith("dropped by a run")
    assert [a["partition"] for a in again["archived"]] == [P2]
    assert ops(tmp_path, P1) == ["detach", "archive", "drop"]


def test_a_state_that_cannot_be_read_after_a_failure_keeps_the_dump(run_module, pg, tmp_path):
    def restore_fails_then_server_gone():
        pg.fail["state"] = (2, "could not connect to server")
        return 1, b"", b"pg_restore: error: boom"

    pg.fail["restore"] = restore_fails_then_server_gone
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True
    assert "its state could not be read" in result["msg"] and "its dump is kept at" in result["msg"], result["msg"]
    assert len([n for n in dump_files(tmp_path) if n.endswith(".dump")]) == 1


def test_reattach_refused_tells_how_and_the_next_run_archives_it(run_module, pg, tmp_path):
    pg.fail["restore"] = (1, "pg_restore: error: boom")
    pg.fail["attach"] = (3, 'ERROR:  partition "trades_2020_01" would overlap partition "trades_2020_01b"')
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True and pg.parts[P1] == "detached"
    assert "putting it back failed too" in result["msg"] and "would overlap" in result["msg"]
    assert (
        "a table of its own, detached from market.trades (attach it with ALTER TABLE market.trades ATTACH PARTITION "
        "market.trades_2020_01 FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00')"
        in result["msg"]
    ), result["msg"]
    assert ops(tmp_path, P1) == ["detach"]

    pg.fail.clear()
    again = run_module(pg_partition_archive, args_for(tmp_path))
    assert again["recovered"] == [{"partition": P1, "action": "continued from a detach left detached"}]
    assert [(a["partition"], a["detached_with"]) for a in again["archived"]] == [
        (P1, "earlier run"),
        (P2, "concurrently"),
    ]


def test_a_journal_that_cannot_be_written_puts_the_partition_back(run_module, pg, tmp_path, monkeypatch):
    real = _journal.Journal.append

    def append(self, records):
        if records[0]["op"] == "archive":
            raise _journal.JournalError("cannot write journal %s: No space left on device" % self.path)
        return real(self, records)

    monkeypatch.setattr(_journal.Journal, "append", append)
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True and "No space left on device" in result["msg"]
    assert pg.parts[P1] == "attached" and "was re-attached" in result["msg"] and dump_files(tmp_path) == []
    assert pg.issued(sql.DROP_VERIFIED_SQL) == []


def test_scratch_database_that_cannot_be_made_means_nothing_is_detached(run_module, pg, tmp_path):
    pg.fail["create-scratch"] = (3, "ERROR:  permission denied to create database")
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True and result["msg"].startswith("nothing was detached: creating the scratch database")
    assert pg.issued(sql.DETACH_SQL["concurrently"]) == [] and set(pg.parts.values()) == {"attached"}


def test_a_scratch_database_left_by_a_killed_run_is_dropped_by_the_next(run_module, pg, tmp_path):
    journal = _journal.Journal(str(tmp_path / "state" / "journal.jsonl"))
    journal.append(
        [
            {"op": "scratch", "port": 5432, "name": "jts_pgarchive_scratch_old_1"},
            {"op": "scratch", "port": 5432, "name": "jts_pgarchive_scratch_never_made"},
        ]
    )
    pg.databases.add("jts_pgarchive_scratch_old_1")
    plan = run_module(
        pg_partition_archive, args_for(tmp_path, retention="1000w", tables=[{"name": "market.trades"}]), check_mode=True
    )
    assert plan["cleaned"] == ["scratch database jts_pgarchive_scratch_old_1"] and plan["changed"] is True, plan
    result = run_module(pg_partition_archive, args_for(tmp_path, retention="1000w", tables=[{"name": "market.trades"}]))
    assert result["cleaned"] == ["scratch database jts_pgarchive_scratch_old_1"] and pg.databases == set()
    again = run_module(pg_partition_archive, args_for(tmp_path, retention="1000w", tables=[{"name": "market.trades"}]))
    assert again["changed"] is False and again["cleaned"] == []


def test_a_tablespace_on_the_nas_is_refused_before_anything(run_module, pg, tmp_path):
    pg.tablespaces.append({"name": "cold_ts", "location": str(tmp_path / "nas" / "pg")})
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True and result["msg"].startswith("refused before any change: tablespace cold_ts")
    assert "option nas_path" in result["msg"] and "allow_tablespaces_on: [nas]" in result["msg"]
    assert {text for text, _v, _db in pg.scripts} == {sql.SERVER_SQL}
    ok = run_module(pg_partition_archive, args_for(tmp_path, allow_tablespaces_on=["nas"]))
    assert ok["changed"] is True and len(ok["archived"]) == 2


def test_a_table_without_retention_is_refused_naming_the_option(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, args_for(tmp_path, tables=[{"name": "market.trades"}]))
    assert result["failed"] is True and "tables[].retention or retention" in result["msg"]
    assert pg.tools() == ["psql"]


# --------------------------------------------------------------------------- restore


def _archived(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert [a["partition"] for a in result["archived"]] == [P1, P2]
    return {a["partition"]: a for a in result["archived"]}


def restore_args(tmp_path, **extra):
    args = args_for(tmp_path, state="restored", partition=P1)
    args.pop("tables")
    args.pop("dump_dir")
    args.update(extra)
    return args


def test_restore_checks_the_dump_hash_before_anything(run_module, pg, tmp_path):
    archived = _archived(run_module, pg, tmp_path)
    with open(archived[P1]["dump"], "ab") as handle:
        handle.write(b"x")
    result = run_module(pg_partition_archive, restore_args(tmp_path))
    assert result["failed"] is True and "not the sha256 recorded in the journal" in result["msg"], result
    assert "nothing was restored" in result["msg"] and pg.parts[P1] == "gone"
    assert pg.tools().count("pg_restore") == 3  # the archival's: the schema copy and two partitions


def test_restore_verifies_the_restored_rows_before_attaching(run_module, pg, tmp_path):
    _archived(run_module, pg, tmp_path)
    pg.rows[P1] = "10:999:-7"  # what comes back is not what was archived
    result = run_module(pg_partition_archive, restore_args(tmp_path))
    assert result["failed"] is True and "it is left detached, not attached" in result["msg"], result
    assert pg.parts[P1] == "detached"


def test_restore_then_again_changes_nothing_and_wrong_bounds_are_refused(run_module, pg, tmp_path):
    _archived(run_module, pg, tmp_path)
    done = run_module(pg_partition_archive, restore_args(tmp_path))
    assert done["changed"] is True and done["restored_from_dump"] is True and pg.parts[P1] == "attached", done
    assert done["rows"] == 10 and done["verified_against"] == "journal"
    again = run_module(pg_partition_archive, restore_args(tmp_path))
    assert again["changed"] is False and again["msg"].endswith("already"), again
    # by its bare name too
    bare = run_module(pg_partition_archive, restore_args(tmp_path, partition="trades_2020_01"))
    assert bare["changed"] is False and bare["partition"] == P1


def test_restore_of_an_unknown_partition_names_the_option(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, restore_args(tmp_path, partition="market.nope"))
    assert result["failed"] is True and "name the dump with the option dump" in result["msg"]


def test_restore_by_a_bare_name_that_two_schemas_share_is_refused(run_module, pg, tmp_path):
    archived = _archived(run_module, pg, tmp_path)
    journal = _journal.Journal(str(tmp_path / "state" / "journal.jsonl"))
    other = {k: v for k, v in json.loads(Path(archived[P1]["dump"] + ".json").read_text()).items() if k != "time"}
    other.update(partition="archive.trades_2020_01", partition_schema="archive")
    journal.append([other])
    result = run_module(pg_partition_archive, restore_args(tmp_path, partition="trades_2020_01"))
    assert result["failed"] is True, result
    assert "archive.trades_2020_01, market.trades_2020_01" in result["msg"] and "qualified" in result["msg"]
    assert pg.parts[P1] == "gone"


def test_an_unknown_os_user_is_refused_naming_the_option(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, args_for(tmp_path, os_user="no-such-user-jts"))
    assert result["failed"] is True and result["msg"] == "os_user: there is no user no-such-user-jts on this host"
    assert pg.calls == []


def test_a_journal_error_while_dropping_the_scratch_database_does_not_hide_the_failure(
    run_module, pg, tmp_path, monkeypatch
):
    real = _journal.Journal.append

    def append(self, records):
        if records[0]["op"] == "scratch_dropped":
            raise _journal.JournalError("cannot write journal %s: No space left on device" % self.path)
        return real(self, records)

    monkeypatch.setattr(_journal.Journal, "append", append)
    pg.fail["restore"] = (1, "pg_restore: error: boom")
    result = run_module(pg_partition_archive, args_for(tmp_path))
    assert result["failed"] is True
    assert result["msg"].startswith("restore into the scratch database of market.trades_2020_01 failed"), result["msg"]
    assert pg.databases == set() and pg.parts[P1] == "attached"


def test_detach_concurrently_false_always_detaches_plainly(run_module, pg, tmp_path):
    result = run_module(pg_partition_archive, args_for(tmp_path, detach_concurrently=False))
    assert [(a["partition"], a["detached_with"]) for a in result["archived"]] == [(P1, "plain"), (P2, "plain")]
    assert result["archived"] and not result.get("failed"), result
