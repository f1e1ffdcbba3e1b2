"""Functional tests of the consistent-snapshot machinery of lvm_snapshot, on this host.

PostgreSQL: a real PostgreSQL 15 cluster (the scratch cluster fixture of
test_pg_partition_archive_functional: initdb in a temporary directory, started on a free port) with
rows being written by another session. ``PgHolder`` (what lvm_snapshot runs for ``method:
postgresql``) starts the backup over its psql pipe; LVM is not available on this host, so the
"snapshot" is a ``cp -a`` of the data directory taken while the backup is held; the backup is then
stopped, ``backup_label`` (and ``tablespace_map`` when not empty) written into the copy and the WAL
that ``copy_wal`` saved put into its ``pg_wal``. The copy is started as a second cluster on another
port: it must recover and hold every row committed before the backup started.

fsfreeze: a small ext4 image on a loop device, mounted in a temporary directory. A write from
another process blocks while ``Freezer`` holds it frozen and completes after the thaw; when the
process holding the freeze is killed with SIGKILL, the watchdog thaws the filesystem after the bound.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from test_pg_partition_archive_functional import (  # the scratch cluster of the PostgreSQL tests
    PGBIN,
    _has_postgres_user,
    as_postgres,
    cluster,  # noqa: F401 - a fixture
    free_port,
    public_dir,
)

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
from ansible_collections.jts.tiered_storage.plugins.module_utils._freeze import Freezer

ROOT = Path(__file__).resolve().parents[2]
needs_pg = pytest.mark.skipif(
    not (PGBIN / "initdb").exists() or os.geteuid() != 0 or not _has_postgres_user(),
    reason="needs Debian's PostgreSQL 15, root and a postgres user",
)
needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("fsfreeze") or not shutil.which("mkfs.ext4"),
    reason="needs root, fsfreeze, mkfs.ext4 and loop devices",
)

WRITER = """
DO $$
BEGIN
  FOR i IN 1..200000 LOOP
    INSERT INTO ticks (note) VALUES (repeat('x', 200));
    COMMIT;
  END LOOP;
END $$;
"""


def group(pg, **extra):
    return dict(
        {
            "origins": ["postgres"],
            "method": "postgresql",
            "mounts": [str(pg.base)],
            "freeze_timeout": 60,
            "database": "postgres",
            "host": str(pg.base),
            "port": pg.port,
            "os_user": "postgres",
            "connect_timeout": 10,
            "statement_timeout": 120,
            "label": "jts_functional",
        },
        **extra,
    )


def run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def writer(cluster):  # noqa: F811 - the fixture imported above
    cluster.sql("DROP TABLE IF EXISTS ticks; CREATE TABLE ticks (id bigserial PRIMARY KEY, note text)")
    proc = subprocess.Popen(
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
            "postgres",
            "-c",
            WRITER,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while int(cluster.sql("SELECT count(*) FROM ticks") or 0) < 200 and time.time() < deadline:
        time.sleep(0.1)
    yield proc
    proc.kill()
    proc.wait()


@needs_pg
def test_backup_held_across_a_copy_restores_into_a_scratch_cluster(cluster, writer):  # noqa: F811
    wal_dest = public_dir("jts-wal-")
    copy_base = public_dir("jts-pg-copy-")
    copy_port = free_port()
    started = False
    try:
        before = int(cluster.sql("SELECT max(id) FROM ticks"))
        count_before = int(cluster.sql("SELECT count(*) FROM ticks WHERE id <= %d" % before))  # noqa: S608
        holder = _consistency.PgHolder(group(cluster, wal_dest=str(wal_dest)), str(PGBIN / "psql"))
        holder.acquire()
        assert holder.session.version_num >= 150000
        assert holder.session.data_directory == str(cluster.base / "data")
        # the "snapshot": a copy of the running cluster's data directory while the backup is held
        _, _, err = run(["cp", "-a", str(cluster.base / "data"), str(copy_base / "data")])
        assert (copy_base / "data" / "PG_VERSION").exists(), err
        during = int(cluster.sql("SELECT max(id) FROM ticks"))
        assert during > before, "rows are written while the backup is held"
        state, finding = holder.release(True)
        assert finding is None
        assert state["mode"] == "application" and state["method"] == "postgresql"
        assert state["data_directory"] == "data"
        assert state["backup_label"].startswith("START WAL LOCATION: ")
        assert "LABEL: jts_functional" in state["backup_label"]
        assert state["start_lsn"] and state["stop_lsn"]
        assert state["wal_files"][0] == state["start_wal"] and state["wal_files"][-1] == state["stop_wal"]
        assert sorted(os.listdir(wal_dest)) == state["wal_files"]
        assert "backup_label" in state["reason"]
        assert holder.session.proc is None, "the session ends with the backup"

        data = copy_base / "data"
        (data / "postmaster.pid").unlink(missing_ok=True)
        (data / "backup_label").write_text(state["backup_label"])
        if state["tablespace_map"]:
            (data / "tablespace_map").write_text(state["tablespace_map"])
        for name in state["wal_files"]:
            shutil.copyfile(wal_dest / name, data / "pg_wal" / name)
        subprocess.run(["chown", "-R", "postgres:postgres", str(copy_base)], check=True)
        options = "-p %d -k %s -c listen_addresses=''" % (copy_port, copy_base)
        start = as_postgres(
            [str(PGBIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(copy_base / "log"), "-w", "start"],
            timeout=120,
        )
        started = start.returncode == 0
        log = (copy_base / "log").read_text() if (copy_base / "log").exists() else ""
        assert started, start.stderr + start.stdout + log
        assert "redo done" in log or "consistent recovery state reached" in log, log

        def copy_sql(query):
            proc = as_postgres(
                [str(PGBIN / "psql"), "-X", "-A", "-t", "-h", str(copy_base), "-p", str(copy_port), "-c", query]
            )
            assert proc.returncode == 0, proc.stderr
            return proc.stdout.strip()

        assert int(copy_sql("SELECT count(*) FROM ticks WHERE id <= %d" % before)) == count_before  # noqa: S608
        assert copy_sql("SELECT pg_is_in_recovery()") == "f"
    finally:
        if started:
            as_postgres([str(PGBIN / "pg_ctl"), "-D", str(copy_base / "data"), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(copy_base, ignore_errors=True)
        shutil.rmtree(wal_dest, ignore_errors=True)


def start_writer(pg):
    """A session inserting and committing rows in a loop until killed."""
    pg.sql("CREATE TABLE IF NOT EXISTS ticks (id bigserial PRIMARY KEY, note text)")
    argv = [str(PGBIN / "psql"), "-X", "-q", "-h", str(pg.base), "-p", str(pg.port), "-d", "postgres", "-c", WRITER]
    proc = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 30
    while int(pg.sql("SELECT count(*) FROM ticks") or 0) < 200 and time.time() < deadline:
        time.sleep(0.1)
    return proc


@pytest.fixture
def split_cluster():
    """A scratch cluster whose WAL is in another directory (``initdb --waldir``: pg_wal is a symlink),
    as when data and WAL are on two LVs."""
    base = public_dir("jts-pg-split-")
    shutil.chown(base, "postgres", "postgres")
    port = free_port()
    init = as_postgres(
        [
            str(PGBIN / "initdb"),
            "-D",
            str(base / "data"),
            "--waldir",
            str(base / "wal"),
            "-U",
            "postgres",
            "--no-sync",
            "--auth-local=peer",
        ],
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    options = "-p %d -k %s -c listen_addresses='' -c fsync=off" % (port, base)
    start = as_postgres(
        [str(PGBIN / "pg_ctl"), "-D", str(base / "data"), "-o", options, "-l", str(base / "log"), "-w", "start"],
        timeout=120,
    )
    assert start.returncode == 0, start.stderr + start.stdout
    try:
        yield Pg(base, port)
    finally:
        as_postgres([str(PGBIN / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "-w", "stop"], timeout=120)
        shutil.rmtree(base, ignore_errors=True)


class Pg:
    def __init__(self, base, port):
        self.base = base
        self.port = port

    def sql(self, query):
        argv = [str(PGBIN / "psql"), "-X", "-A", "-t", "-q", "-h", str(self.base), "-p", str(self.port), "-c", query]
        proc = as_postgres(argv, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()


def start_copy(copy_base, data, port):
    """Start the restored copy; return (started, log text)."""
    (data / "postmaster.pid").unlink(missing_ok=True)
    subprocess.run(["chown", "-R", "postgres:postgres", str(copy_base)], check=True)
    options = "-p %d -k %s -c listen_addresses=''" % (port, copy_base)
    start = as_postgres(
        [
            str(PGBIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(copy_base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=120,
    )
    log = (copy_base / "log").read_text() if (copy_base / "log").exists() else ""
    return start.returncode == 0, start.stdout + start.stderr + log


@needs_pg
def test_data_and_wal_on_two_volumes_copied_at_different_times_restore(split_cluster):
    """pg_wal on another "LV", its copy taken BEFORE the data's while rows are written: the label and
    the WAL copied by the module after the stop are what make the pair restorable."""
    pg = split_cluster
    writer = start_writer(pg)
    wal_dest = public_dir("jts-wal-")
    copy_base = public_dir("jts-pg-copy-")
    copy_port = free_port()
    started = False
    try:
        before = int(pg.sql("SELECT max(id) FROM ticks"))
        count_before = int(pg.sql("SELECT count(*) FROM ticks WHERE id <= %d" % before))  # noqa: S608
        holder = _consistency.PgHolder(group(pg, mounts=[str(pg.base)], wal_dest=str(wal_dest)), str(PGBIN / "psql"))
        holder.acquire()
        assert (pg.base / "data" / "pg_wal").is_symlink()
        run(["cp", "-a", str(pg.base / "wal"), str(copy_base / "wal")])  # the WAL LV's snapshot, first
        time.sleep(1)
        run(["cp", "-a", str(pg.base / "data"), str(copy_base / "data")])  # the data LV's, later
        state, finding = holder.release(True)
        assert finding is None and state["mode"] == "application"
        assert len(state["wal_files"]) >= 1
        writer.kill()
        data = copy_base / "data"
        (data / "pg_wal").unlink()
        (data / "pg_wal").symlink_to(copy_base / "wal")  # the restored WAL volume, as the restore mounts it
        (data / "backup_label").write_text(state["backup_label"])
        for name in state["wal_files"]:
            shutil.copyfile(wal_dest / name, copy_base / "wal" / name)
        started, log = start_copy(copy_base, data, copy_port)
        assert started, log
        copy = Pg(copy_base, copy_port)
        assert int(copy.sql("SELECT count(*) FROM ticks WHERE id <= %d" % before)) == count_before  # noqa: S608
    finally:
        writer.kill()
        writer.wait()
        if started:
            as_postgres([str(PGBIN / "pg_ctl"), "-D", str(copy_base / "data"), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(copy_base, ignore_errors=True)
        shutil.rmtree(wal_dest, ignore_errors=True)


@needs_pg
def test_without_the_backups_wal_the_copy_does_not_start(cluster, writer):  # noqa: F811
    """Why wal_dest exists: the copy's own pg_wal ends before pg_backup_stop's end-of-backup record."""
    copy_base = public_dir("jts-pg-copy-")
    copy_port = free_port()
    started = False
    try:
        holder = _consistency.PgHolder(group(cluster), str(PGBIN / "psql"))
        holder.acquire()
        run(["cp", "-a", str(cluster.base / "data"), str(copy_base / "data")])
        state, _ = holder.release(True)
        assert state["mode"] == "application" and "WAL archive" in state["reason"]
        (copy_base / "data" / "backup_label").write_text(state["backup_label"])
        started, log = start_copy(copy_base, copy_base / "data", copy_port)
        assert not started, "a copy without the backup's WAL must not start"
        assert "WAL ends before end of online backup" in log, log
    finally:
        if started:
            as_postgres([str(PGBIN / "pg_ctl"), "-D", str(copy_base / "data"), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(copy_base, ignore_errors=True)


HOLD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, %r)
    from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
    holder = _consistency.PgHolder(%r, %r)
    holder.acquire()
    print(holder.session.proc.pid, flush=True)
    time.sleep(300)
    """
)


@needs_pg
def test_killing_the_holder_with_sigkill_aborts_the_backup(cluster):  # noqa: F811
    """SIGKILL of the process holding the backup: psql reads end-of-file, exits, the server aborts the backup."""
    log = cluster.base / "log"
    mark = len(log.read_bytes())
    code = HOLD % (str(ROOT / ".collections"), group(cluster), str(PGBIN / "psql"))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        psql_pid = int(proc.stdout.readline())
        assert "jts-lvm-snapshot" in cluster.sql("SELECT string_agg(application_name, ',') FROM pg_stat_activity")
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 20
    text = ""
    while time.time() < deadline:
        text = log.read_bytes()[mark:].decode("utf-8", "replace")
        if "aborting backup due to backend exiting before pg_backup_stop was called" in text:
            break
        time.sleep(0.2)
    assert "aborting backup due to backend exiting before pg_backup_stop was called" in text, text
    assert not Path("/proc/%d" % psql_pid).exists() or "zombie" in Path("/proc/%d/status" % psql_pid).read_text()
    assert "jts-lvm-snapshot" not in (cluster.sql("SELECT string_agg(application_name, ',') FROM pg_stat_activity"))


@needs_pg
def test_failed_set_aborts_the_backup_on_the_server(cluster):  # noqa: F811
    log = cluster.base / "log"
    mark = len(log.read_bytes())
    holder = _consistency.PgHolder(group(cluster), str(PGBIN / "psql"))
    holder.acquire()
    state, finding = holder.release(False)
    assert state["mode"] == "crash" and "aborted" in state["reason"] and finding is None
    deadline = time.time() + 20
    while time.time() < deadline and "aborting backup" not in log.read_bytes()[mark:].decode():
        time.sleep(0.2)
    assert "aborting backup due to backend exiting before pg_backup_stop was called" in log.read_bytes()[mark:].decode()


@needs_pg
def test_start_failure_on_a_wrong_port_leaves_no_session(cluster):  # noqa: F811
    holder = _consistency.PgHolder(group(cluster, port=free_port(), connect_timeout=3), str(PGBIN / "psql"))
    with pytest.raises(_consistency.ConsistencyError, match=r"PostgreSQL backup start failed.*psql exited"):
        holder.acquire()
    assert holder.session.proc is None


# -- fsfreeze -----------------------------------------------------------------------------------


@pytest.fixture
def loop_mount():
    base = Path(tempfile.mkdtemp(prefix="jts-freeze-"))
    image = base / "fs.img"
    mnt = base / "mnt"
    mnt.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(base)
        pytest.skip("cannot loop-mount here: %s" % mounted.stderr.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["fsfreeze", "-u", str(mnt)], capture_output=True)
        subprocess.run(["umount", str(mnt)], check=True)
        shutil.rmtree(base)


def writer_process(mnt):
    """Another process writing (and fsyncing) a file on the mount; it blocks while the mount is frozen."""
    code = (
        "import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT, 0o600); os.write(fd, b'x'*4096); os.fsync(fd)"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(mnt / "written")])


@needs_loop
def test_freeze_blocks_writers_and_thaw_releases_them(loop_mount):
    freezer = Freezer(run, shutil.which("fsfreeze"), [str(loop_mount)], 60)
    freezer.freeze()
    try:
        assert freezer.watchdog.poll() is None
        proc = writer_process(loop_mount)
        time.sleep(1.5)
        assert proc.poll() is None, "a write to a frozen filesystem must block"
    finally:
        errors = freezer.thaw()
    assert errors == []
    assert proc.wait(timeout=20) == 0
    assert (loop_mount / "written").stat().st_size == 4096
    assert freezer.watchdog is None


FREEZE_AND_HANG = textwrap.dedent(
    """
    import subprocess, sys, time
    sys.path.insert(0, %r)
    from ansible_collections.jts.tiered_storage.plugins.module_utils._freeze import Freezer
    def run(argv):
        p = subprocess.run(argv, capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr
    f = Freezer(run, %r, [%r], %d)
    f.freeze()
    print(f.watchdog.pid, flush=True)
    time.sleep(300)
    """
)


@needs_loop
def test_watchdog_thaws_after_the_bound_when_the_freezer_is_killed(loop_mount):
    bound = 4
    code = FREEZE_AND_HANG % (str(ROOT / ".collections"), shutil.which("fsfreeze"), str(loop_mount), bound)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    watchdog_pid = int(holder.stdout.readline())
    frozen_at = time.monotonic()
    os.killpg(holder.pid, signal.SIGKILL)  # the module and its whole process group, as a killed task
    holder.wait()
    proc = writer_process(loop_mount)
    time.sleep(1)
    assert proc.poll() is None, "still frozen after the freezer died"
    assert proc.wait(timeout=bound + 20) == 0, "the watchdog thawed the filesystem"
    waited = time.monotonic() - frozen_at
    assert bound - 0.5 <= waited < bound + 10, waited
    deadline = time.time() + 10
    while os.path.exists("/proc/%d" % watchdog_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists("/proc/%d" % watchdog_pid), "the watchdog exits after the thaw"


# -- the module end to end ---------------------------------------------------------------------

FAKE_HOST = Path(__file__).resolve().parent / "fake_lvm_host.py"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
# lvcreate of the fake host, preceded by a copy of the live data directory: the "snapshot"
LVCREATE = """#!/bin/sh
cp -a "$SNAP_SOURCE" "$SNAP_DIR/copy" 2>/dev/null
exec "%s" "%s" lvcreate "$@"
"""


@needs_pg
def test_the_module_run_by_ansible_holds_the_backup_across_lvcreate_and_the_copy_restores(cluster, writer, tmp_path):  # noqa: F811
    """lvm_snapshot run by ansible-playbook (AnsiballZ, psql as postgres) with a fake LVM whose
    lvcreate copies the live data directory; the result's label and WAL make the copy start."""
    snap_dir = public_dir("jts-snap-")
    wal_dest = public_dir("jts-wal-")
    copy_port = free_port()
    started = False
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    for tool in ("vgs", "lvs", "lvremove"):
        (fakebin / tool).write_text('#!/bin/sh\nexec "%s" "%s" %s "$@"\n' % (sys.executable, FAKE_HOST, tool))
        (fakebin / tool).chmod(0o755)
    (fakebin / "lvcreate").write_text(LVCREATE % (sys.executable, FAKE_HOST))
    (fakebin / "lvcreate").chmod(0o755)
    extent = 4194304
    state = {
        "vg": {
            "vg_name": "vg_test",
            "vg_size": str(400 << 30),
            "vg_free": str(10000 * extent),
            "vg_extent_size": str(extent),
            "vg_extent_count": "102400",
            "vg_free_count": "10000",
        },
        "lvs": [
            {
                "lv_name": "postgres",
                "vg_name": "vg_test",
                "lv_attr": "owi-aos---",
                "lv_size": str(100 << 30),
                "origin": "",
                "origin_size": "",
                "data_percent": "",
                "lv_time": "2026-09-01 10:00:00 +0000",
                "lv_snapshot_invalid": "unknown",
            }
        ],
        "mounted": {},
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    play = tmp_path / "play.yml"
    task = {
        "jts.tiered_storage.lvm_snapshot": {
            "vg": "vg_test",
            "origins": [{"lv": "postgres", "size": "1G"}],
            "consistency": [
                {
                    "origins": ["postgres"],
                    "method": "postgresql",
                    "os_user": "postgres",
                    "host": str(cluster.base),
                    "port": cluster.port,
                    "psql": str(PGBIN / "psql"),
                    "mounts": [str(cluster.base)],
                    "wal_dest": str(wal_dest),
                    "password": "not-a-real-secret-x9",
                }
            ],
        },
        "register": "snapset",
    }
    dump = {
        "name": "Result",
        "ansible.builtin.copy": {"content": "{{ snapset | to_json }}", "dest": str(tmp_path / "r.json")},
    }
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task, dump]}]))
    env = dict(
        os.environ,
        PATH="%s:%s" % (fakebin, os.environ["PATH"]),
        FAKE_LVM_STATE=str(tmp_path / "state.json"),
        SNAP_SOURCE=str(cluster.base / "data"),
        SNAP_DIR=str(snap_dir),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
    )
    copy_base = snap_dir
    try:
        before = int(cluster.sql("SELECT max(id) FROM ticks"))
        count_before = int(cluster.sql("SELECT count(*) FROM ticks WHERE id <= %d" % before))  # noqa: S608
        proc = subprocess.run(
            [
                str(VENV_BIN / "ansible-playbook"),
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                json.dumps({"ansible_python_interpreter": str(VENV_BIN / "python")}),
                str(play),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "not-a-real-secret-x9" not in proc.stdout + proc.stderr
        result = json.loads((tmp_path / "r.json").read_text())
        assert "not-a-real-secret-x9" not in json.dumps(result)
        pg = result["consistency"]["postgres"]
        assert pg["mode"] == "application", pg
        assert pg["data_directory"] == "data"
        assert result["created"][0]["consistency"] == pg
        data = copy_base / "copy"
        assert (data / "PG_VERSION").exists(), "lvcreate copied the live data directory"
        (data / "backup_label").write_text(pg["backup_label"])
        for name in pg["wal_files"]:
            shutil.copyfile(wal_dest / name, data / "pg_wal" / name)
        started, log = start_copy(copy_base, data, copy_port)
        assert started, log
        copy = Pg(copy_base, copy_port)
        assert int(copy.sql("SELECT count(*) FROM ticks WHERE id <= %d" % before)) == count_before  # noqa: S608
    finally:
        if started:
            as_postgres([str(PGBIN / "pg_ctl"), "-D", str(copy_base / "copy"), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(snap_dir, ignore_errors=True)
        shutil.rmtree(wal_dest, ignore_errors=True)
