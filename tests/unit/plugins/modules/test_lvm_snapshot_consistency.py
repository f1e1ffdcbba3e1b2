"""lvm_snapshot's ``consistency`` option: PostgreSQL backup held across the set, fsfreeze, none.

LVM is the fake of lvm_fake.py (run_command mocked); psql is psql_fake.py on real pipes and the
freeze watchdog's Popen is recorded (both through the manager's ``popen``); fsfreeze goes through
run_command like LVM.
"""

from __future__ import annotations

import os
import signal
import types

import pytest
from lvm_fake import NOW, STAMP, FakeLvm
from psql_fake import LABEL, FakePsql

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency, _lvm_snapshot
from ansible_collections.jts.tiered_storage.plugins.modules import lvm_snapshot

SET = [{"lv": "postgres", "size": "5G"}, {"lv": "clickhouse", "size": "10G"}, {"lv": "mongodb", "size": "1%"}]
PG = {"origins": ["postgres"], "method": "postgresql", "mounts": ["/srv/pg"], "wal_from_archive": True}
FREEZE = {"origins": ["clickhouse", "mongodb"], "method": "fsfreeze", "mounts": ["/srv/ch", "/srv/mongo"]}


@pytest.fixture(autouse=True)
def kernel(monkeypatch):
    """A kernel that can hold fsfreeze across lvcreate, whatever this host runs; a test may set another."""
    release = {"value": "6.12.48-amd64"}
    monkeypatch.setattr(_consistency, "running_kernel", lambda: release["value"])
    return release


class Lvm(FakeLvm):
    """FakeLvm that also answers fsfreeze, and can run something when a given lvcreate is issued."""

    def __init__(self, on_lvcreate=None, **kw):
        super().__init__(**kw)
        self.on_lvcreate = on_lvcreate or {}

    def __call__(self, cmd, **kw):
        tool = os.path.basename(cmd[0])
        if tool == "fsfreeze":
            self.calls.append((tool, cmd))
            return self.fail.get((tool, " ".join(cmd[1:])), (0, "", ""))
        if tool == "lvcreate" and cmd[-1] in self.on_lvcreate:
            self.on_lvcreate[cmd[-1]]()
        return super().__call__(cmd, **kw)


class Popen:
    """Records every Popen of the run: psql goes to the fake psql, the watchdog is recorded."""

    def __init__(self, psql=None):
        self.psql = psql or FakePsql()
        self.watchdogs = []

    def __call__(self, argv, **kw):
        if argv[1] == "-c":
            proc = types.SimpleNamespace(argv=argv, kw=kw, signals=[], returncode=None)
            proc.poll = lambda: proc.returncode
            proc.send_signal = lambda s: (proc.signals.append(s), setattr(proc, "returncode", -s))
            proc.wait = lambda timeout=None: proc.returncode
            self.watchdogs.append(proc)
            return proc
        return self.psql(argv, **kw)


@pytest.fixture
def lvm(monkeypatch, run_module):
    monkeypatch.setattr(lvm_snapshot, "time", types.SimpleNamespace(time=lambda: NOW))
    monkeypatch.setattr(_consistency, "validate_mounts", lambda mounts: list(mounts))

    def call(args, fake=None, popen=None, check_mode=False):
        fake = fake or Lvm()
        popen = popen or Popen()
        monkeypatch.setattr(
            lvm_snapshot,
            "SnapshotManager",
            lambda module, now: _lvm_snapshot.SnapshotManager(module, now, popen=popen),
        )
        result = run_module(lvm_snapshot, dict({"vg": "vg_jts"}, **args), commands=fake, check_mode=check_mode)
        return result, fake, popen

    return call


def order(fake, popen):
    """The LVM and fsfreeze calls, as 'tool arg' strings."""
    return ["%s %s" % (name, cmd[-1]) for name, cmd in fake.calls if name in ("lvcreate", "fsfreeze", "lvremove")]


def test_without_consistency_every_origin_is_crash_consistent_and_says_why(lvm):
    result, _, popen = lvm({"origins": SET[:2]})
    assert result["changed"] is True
    for item in result["created"]:
        assert item["consistency"]["mode"] == "crash"
        assert item["consistency"]["reason"] == "no consistency method configured"
        assert item["consistency"]["backup_label"] is None
    assert set(result["consistency"]) == {"postgres", "clickhouse"}
    assert popen.psql.procs == [] and popen.watchdogs == []


def test_postgresql_backup_is_held_across_the_set_and_stopped_after(lvm):
    popen = Popen()
    order_seen = []
    fake = Lvm(on_lvcreate={"vg_jts/postgres": lambda: order_seen.append(list(popen.psql.statements))})
    result, fake, popen = lvm({"origins": SET[:2], "consistency": [PG]}, fake=fake, popen=popen)
    # when postgres's lvcreate ran, the backup had started and had not stopped
    assert any("pg_backup_start(" in s for s in order_seen[0])
    assert not any("pg_backup_stop(" in s for s in order_seen[0])
    assert any("pg_backup_stop(false)" in s for s in popen.psql.statements)
    assert len(popen.psql.procs) == 1 and popen.psql.procs[0].quit
    pg = result["consistency"]["postgres"]
    assert pg["mode"] == "application" and pg["method"] == "postgresql"
    assert pg["backup_label"] == LABEL and pg["tablespace_map"] == ""
    assert pg["start_lsn"] == "0/2000028" and pg["stop_lsn"] == "0/3000100"
    assert pg["data_directory"] == "data/15/main" and pg["origins"] == ["postgres"]
    assert result["created"][0]["consistency"] == pg
    assert result["consistency"]["clickhouse"]["mode"] == "crash"
    assert result["findings"] == []


def test_session_start_failure_means_no_snapshot(lvm):
    popen = Popen(FakePsql(refuse="psql: error: connection refused\n"))
    result, fake, _ = lvm({"origins": SET, "consistency": [PG, FREEZE]}, popen=popen)
    assert result["failed"] is True and result["changed"] is False
    assert "PostgreSQL backup start failed" in result["msg"] and "connection refused" in result["msg"]
    assert result["msg"].endswith("no snapshot created")
    assert fake.issued("lvcreate") == [] and result["created"] == []
    assert fake.issued("fsfreeze") == [], "the group after the failed one is never frozen"


def test_freeze_failure_aborts_the_backup_already_held_and_creates_nothing(lvm):
    fake = Lvm(fail={("fsfreeze", "-f /srv/mongo"): (1, "", "fsfreeze: /srv/mongo: Operation not supported\n")})
    result, fake, popen = lvm({"origins": SET, "consistency": [PG, FREEZE]}, fake=fake)
    assert result["failed"] is True and fake.issued("lvcreate") == []
    assert "fsfreeze -f /srv/mongo failed" in result["msg"]
    assert order(fake, popen) == ["fsfreeze /srv/ch", "fsfreeze /srv/mongo", "fsfreeze /srv/ch"]
    assert fake.issued("fsfreeze")[-1][1] == "-u"
    assert not any("pg_backup_stop" in s for s in popen.psql.statements)
    assert popen.psql.procs[0].returncode is not None, "the session ended: the server aborts the backup"
    assert result["consistency"]["postgres"]["mode"] == "crash"
    assert "aborted" in result["consistency"]["postgres"]["reason"]


def test_lvcreate_failure_aborts_the_backup_thaws_and_rolls_back(lvm):
    fake = Lvm(fail={("lvcreate", "vg_jts/mongodb"): (5, "", "  Insufficient free space\n")})
    result, fake, popen = lvm({"origins": SET, "consistency": [PG, FREEZE]}, fake=fake)
    assert result["failed"] is True
    assert "lvcreate of vg_jts/jts_snap_mongodb_%s" % STAMP in result["msg"]
    assert "rolled back the 2 snapshot(s)" in result["msg"]
    assert order(fake, popen) == [
        "fsfreeze /srv/ch",
        "fsfreeze /srv/mongo",
        "lvcreate vg_jts/postgres",
        "lvcreate vg_jts/clickhouse",
        "lvcreate vg_jts/mongodb",
        "fsfreeze /srv/mongo",
        "fsfreeze /srv/ch",
        "lvremove vg_jts/jts_snap_postgres_" + STAMP,
        "lvremove vg_jts/jts_snap_clickhouse_" + STAMP,
    ]
    assert [cmd[1] for cmd in fake.issued("fsfreeze")] == ["-f", "-f", "-u", "-u"]
    assert popen.watchdogs[0].signals == [signal.SIGTERM]
    assert not any("pg_backup_stop" in s for s in popen.psql.statements)
    assert popen.psql.procs[0].returncode is not None
    assert result["consistency"]["mongodb"]["mode"] == "crash"


def test_fsfreeze_group_spawns_the_watchdog_and_thaws_after_the_set(lvm):
    result, fake, popen = lvm({"origins": SET, "consistency": [dict(FREEZE, freeze_timeout=30)]})
    assert result["changed"] is True and "failed" not in result
    (watchdog,) = popen.watchdogs
    assert watchdog.argv[1:2] == ["-c"] and watchdog.argv[3:] == ["30", "/usr/bin/fsfreeze", "/srv/ch", "/srv/mongo"]
    assert watchdog.kw["start_new_session"] is True
    assert watchdog.signals == [signal.SIGTERM]
    assert order(fake, popen)[:2] == ["fsfreeze /srv/ch", "fsfreeze /srv/mongo"]
    assert order(fake, popen)[-2:] == ["fsfreeze /srv/mongo", "fsfreeze /srv/ch"]
    ch = result["consistency"]["clickhouse"]
    assert ch["mode"] == "application" and ch["method"] == "fsfreeze" and ch["mounts"] == ["/srv/ch", "/srv/mongo"]
    assert result["consistency"]["mongodb"] == ch
    assert result["consistency"]["postgres"]["reason"] == "no consistency method configured"


def test_a_set_slower_than_the_freeze_bound_is_only_crash_consistent(lvm, monkeypatch):
    ticks = iter([0.0, 100.0])
    monkeypatch.setattr(_consistency.Freezer, "elapsed", lambda self: next(ticks) + 100.0)
    result, _, _ = lvm({"origins": SET, "consistency": [dict(FREEZE, freeze_timeout=30)]})
    assert result["consistency"]["clickhouse"]["mode"] == "crash"
    assert "more than freeze_timeout 30s" in result["consistency"]["clickhouse"]["reason"]
    assert result["findings"][0]["severity"] == "warning"
    assert "crash-consistent only" in result["findings"][0]["message"]


def test_a_signal_mid_way_releases_everything_and_rolls_back(lvm):
    fake = Lvm(on_lvcreate={"vg_jts/clickhouse": lambda: os.kill(os.getpid(), signal.SIGTERM)})
    before = signal.getsignal(signal.SIGTERM)
    result, fake, popen = lvm({"origins": SET, "consistency": [PG, FREEZE]}, fake=fake)
    assert result["failed"] is True
    assert "interrupted by signal %d while the snapshots were created" % signal.SIGTERM in result["msg"]
    assert [cmd[1] for cmd in fake.issued("fsfreeze")] == ["-f", "-f", "-u", "-u"]
    assert not any("pg_backup_stop" in s for s in popen.psql.statements)
    assert popen.psql.procs[0].returncode is not None
    assert [cmd[-1] for cmd in fake.issued("lvremove")] == ["vg_jts/jts_snap_postgres_" + STAMP]
    assert signal.getsignal(signal.SIGTERM) == before, "the handlers are put back"


def test_stop_failure_keeps_the_set_but_says_crash_with_a_warning(lvm):
    popen = Popen(FakePsql(fail={"pg_backup_stop": "ERROR:  canceling statement due to user request\n"}))
    result, fake, popen = lvm({"origins": SET[:1], "consistency": [PG]}, popen=popen)
    assert result["changed"] is True and "failed" not in result
    assert result["consistency"]["postgres"]["mode"] == "crash"
    assert "pg_backup_stop failed" in result["consistency"]["postgres"]["reason"]
    assert result["findings"][0]["lv"] == "postgres"
    assert fake.issued("lvremove") == []


def test_check_mode_connects_to_nothing_and_freezes_nothing(lvm):
    result, fake, popen = lvm(
        {"origins": SET, "consistency": [PG, FREEZE]},
        check_mode=True,
    )
    assert result["changed"] is True
    assert popen.psql.procs == [] and popen.watchdogs == [] and fake.issued("fsfreeze") == []
    assert fake.issued("lvcreate") == []
    assert result["consistency"]["postgres"]["mode"] == "application"
    assert result["consistency"]["postgres"]["reason"].startswith("would hold a non-exclusive PostgreSQL backup")
    assert "would freeze /srv/ch, /srv/mongo" in result["consistency"]["mongodb"]["reason"]


@pytest.mark.parametrize(
    ("consistency", "message"),
    [
        ([{"origins": ["kafka"], "method": "none"}], "consistency[0]: kafka is not one of the origins of this set"),
        ([{"origins": ["postgres"], "method": "fsfreeze"}], "method fsfreeze needs mounts"),
        ([dict(PG, wal_dest="relative/dir")], "wal_dest"),
        ([dict(PG, wal_from_archive=False)], "method postgresql needs wal_dest"),
        ([dict(FREEZE, freeze_timeout=0)], "freeze_timeout must be more than zero"),
    ],
)
def test_consistency_input_errors(lvm, consistency, message):
    result, fake, _ = lvm({"origins": SET, "consistency": consistency})
    assert result["failed"] is True and message in result["msg"]
    assert fake.issued("lvcreate") == []


def test_method_none_records_the_reason_given(lvm):
    result, _, _ = lvm(
        {"origins": SET[:1], "consistency": [{"origins": ["postgres"], "method": "none", "reason": "replica"}]}
    )
    assert (
        result["consistency"]["postgres"]["mode"] == "crash"
        and result["consistency"]["postgres"]["reason"] == "replica"
    )


def test_consistency_is_refused_outside_present(lvm):
    result, _, _ = lvm({"state": "pruned", "consistency": [FREEZE]})
    assert result["failed"] is True and result["msg"] == "consistency is only used with state=present"


def test_password_never_reaches_the_result(lvm):
    result, _, popen = lvm({"origins": SET[:1], "consistency": [dict(PG, password="hunter2-secret")]})  # noqa: S106
    assert "hunter2-secret" not in repr(dict(result))
    assert "hunter2-secret" not in " ".join(popen.psql.procs[0].argv)


def test_a_wal_dest_that_is_not_an_empty_directory_fails_before_the_backup(lvm, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "000000010000000000000001").write_text("old")
    for wal_dest, message in ((tmp_path / "missing", "No such file or directory"), (tmp_path / "full", "not empty")):
        result, fake, popen = lvm({"origins": SET, "consistency": [dict(PG, wal_dest=str(wal_dest))]})
        assert result["failed"] is True and message in result["msg"] and "no snapshot created" in result["msg"]
        assert popen.psql.procs == [] and fake.issued("lvcreate") == []


def test_wal_that_cannot_be_copied_after_the_set_keeps_it_as_crash_with_a_warning(lvm, tmp_path):
    # the fake server's data directory /srv/pg/data/15/main does not exist here: the copy fails
    result, fake, popen = lvm({"origins": SET[:1], "consistency": [dict(PG, wal_dest=str(tmp_path))]})
    assert result["changed"] is True and "failed" not in result
    pg = result["consistency"]["postgres"]
    assert pg["mode"] == "crash" and "WAL could not be copied" in pg["reason"]
    assert pg["backup_label"] == LABEL, "kept for the record; the manifest must say crash"
    assert "crash-consistent only" in result["findings"][0]["message"]
    assert any("pg_backup_stop(false)" in s for s in popen.psql.statements)
    assert fake.issued("lvremove") == [] and os.listdir(tmp_path) == []


def test_a_signal_between_two_freezes_thaws_the_first(lvm):
    class Interrupting(Lvm):
        def __call__(self, cmd, **kw):
            if cmd[1:] == ["-f", "/srv/mongo"]:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().__call__(cmd, **kw)

    result, fake, popen = lvm({"origins": SET, "consistency": [FREEZE]}, fake=Interrupting())
    assert result["failed"] is True and "interrupted by signal" in result["msg"]
    freezes = [" ".join(cmd[1:]) for name, cmd in fake.calls if name == "fsfreeze"]
    assert freezes[-1] == "-u /srv/ch", freezes
    assert popen.watchdogs[0].signals == [signal.SIGTERM]
    assert fake.issued("lvcreate") == []


def test_a_signal_while_the_backup_starts_ends_the_session(lvm):
    psql = FakePsql()
    answer = psql.answer

    def interrupting(sql):
        if "pg_backup_start" in sql:
            os.kill(os.getpid(), signal.SIGTERM)
        return answer(sql)

    psql.answer = interrupting
    result, fake, popen = lvm({"origins": SET, "consistency": [PG]}, popen=Popen(psql))
    assert result["failed"] is True and "interrupted by signal" in result["msg"]
    assert popen.psql.procs[0].returncode is not None, "psql ended: the server aborts the backup"
    assert fake.issued("lvcreate") == []


def test_a_missing_os_user_or_psql_fails_before_the_pre_hook(lvm, monkeypatch):
    result, fake, _ = lvm(
        {"origins": SET, "pre_hook": ["/usr/local/bin/pre"], "consistency": [dict(PG, os_user="no-such-user-jts")]}
    )
    assert result["failed"] is True and "no user no-such-user-jts" in result["msg"]
    assert fake.issued("timeout") == [] and fake.issued("lvcreate") == []


@pytest.mark.parametrize(
    "release, version",
    [
        ("6.1.0-50-amd64", (6, 1)),
        ("6.18.44-fc-v669", (6, 18)),
        ("5.15.0", (5, 15)),
        ("6.8", (6, 8)),
        ("6.10.0-rc1", (6, 10)),
        ("6.1rc7", (6, 1)),
        ("6.1+2-amd64", (6, 1)),
        ("6", None),
        ("", None),
        ("x", None),
    ],
)
def test_kernel_version(release, version):
    assert _consistency.kernel_version(release) == version


@pytest.mark.parametrize("check_mode", [False, True])
def test_fsfreeze_is_refused_on_a_kernel_that_cannot_freeze_a_frozen_filesystem(lvm, kernel, check_mode):
    """Seen on the lab VM (Linux 6.1): lvcreate of a frozen origin fails in the device-mapper suspend
    ('Device or resource busy') and leaves a half-made LV; refused before anything, in check mode too."""
    kernel["value"] = "6.1.0-50-amd64"
    fake = Lvm()
    result, fake, popen = lvm({"origins": SET, "consistency": [PG, FREEZE]}, fake=fake, check_mode=check_mode)
    assert result["failed"] is True and result.get("changed") is not True
    assert result["msg"].startswith("consistency[1]: method fsfreeze cannot be held across lvcreate on Linux 6.1.0-50")
    assert "Device or resource busy" in result["msg"] and "method none" in result["msg"]
    assert fake.issued("lvcreate") == [] and fake.issued("fsfreeze") == []
    assert popen.psql.procs == [] and popen.watchdogs == []


def test_a_half_made_lv_left_by_a_failed_lvcreate_is_rolled_back_with_the_set(lvm):
    name = "jts_snap_clickhouse_" + STAMP
    fake = Lvm(
        fail={("lvcreate", "vg_jts/clickhouse"): (5, "", "  Aborting. Manual intervention required.\n")},
        left={"vg_jts/" + name},
    )
    result, fake, _ = lvm({"origins": SET, "consistency": [FREEZE]}, fake=fake)
    assert result["failed"] is True
    assert "lvcreate left vg_jts/%s behind; rolled back the 2 snapshot(s) created in this call" % name in result["msg"]
    assert [cmd[-1] for cmd in fake.issued("lvremove")] == ["vg_jts/jts_snap_postgres_" + STAMP, "vg_jts/" + name]
    assert result["created"] == [] and fake.issued("fsfreeze")[-1][1] == "-u"


def test_an_lv_of_that_name_made_by_someone_else_meanwhile_is_never_removed(lvm):
    name = "jts_snap_clickhouse_" + STAMP
    fake = Lvm(
        fail={
            ("lvcreate", "vg_jts/clickhouse"): (
                5,
                "",
                '  Logical Volume "%s" already exists in volume group "vg_jts"\n' % name,
            )
        },
        left={"vg_jts/" + name},
    )
    result, fake, _ = lvm({"origins": SET}, fake=fake)
    assert result["failed"] is True and "behind" not in result["msg"]
    assert [cmd[-1] for cmd in fake.issued("lvremove")] == ["vg_jts/jts_snap_postgres_" + STAMP]


@pytest.mark.parametrize(
    "release, refused", [("6.7.12-amd64", True), ("6.6.0", True), ("6.1rc7", True), ("6.8.0-31-generic", False)]
)
def test_fsfreeze_needs_linux_6_8(release, refused):
    assert bool(_consistency.fsfreeze_refusal("consistency[0]", release)) is refused
