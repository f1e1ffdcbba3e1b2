"""Functional tests of the consistent-snapshot machinery of lvm_snapshot, on this host.

PostgreSQL: a real PostgreSQL 15 cluster (the scratch ``cluster`` fixture of conftest.py, see
pg_scratch.py: initdb in a temporary directory, started on a free port) with
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
from as_ansible import BIN, ROOT, ansible_env, playbook
from pg_scratch import (
    PGBIN,
    consistency_group,
    free_port,
    needs_pg,
    public_dir,
    restored_cluster,
    scratch_cluster,
    start_writer,
)

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
from ansible_collections.jts.tiered_storage.plugins.module_utils._freeze import Freezer

needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("fsfreeze") or not shutil.which("mkfs.ext4"),
    reason="needs root, fsfreeze, mkfs.ext4 and loop devices",
)


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
def restore_dirs():
    """(WAL directory, copy directory, port): where a test saves the backup's WAL and restores its copy."""
    wal_dest = public_dir("jts-wal-")
    copy_base = public_dir("jts-pg-copy-")
    yield wal_dest, copy_base, free_port()
    shutil.rmtree(copy_base, ignore_errors=True)
    shutil.rmtree(wal_dest, ignore_errors=True)


@needs_pg
def test_backup_held_across_a_copy_restores_into_a_scratch_cluster(cluster, writer, restore_dirs):
    wal_dest, copy_base, copy_port = restore_dirs
    before = cluster.last_tick()
    count_before = cluster.ticks_up_to(before)
    holder = _consistency.PgHolder(group(cluster, wal_dest=str(wal_dest)), str(PGBIN / "psql"))
    holder.acquire()
    assert holder.session.version_num >= 150000
    assert holder.session.data_directory == str(cluster.base / "data")
    # the "snapshot": a copy of the running cluster's data directory while the backup is held
    _, _, err = run(["cp", "-a", str(cluster.base / "data"), str(copy_base / "data")])
    assert (copy_base / "data" / "PG_VERSION").exists(), err
    during = cluster.last_tick()
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
    if state["tablespace_map"]:
        (data / "tablespace_map").write_text(state["tablespace_map"])
    with restored_copy(copy_base, data, state, wal_dest, data / "pg_wal", copy_port) as copy:
        copy.assert_recovered()
        assert copy.ticks_up_to(before) == count_before


@pytest.fixture
def split_cluster():
    """A scratch cluster whose WAL is in another directory (``initdb --waldir``: pg_wal is a symlink),
    as when data and WAL are on two LVs."""
    with scratch_cluster("jts-pg-split-", ["--waldir={base}/wal"], "-c listen_addresses='' -c fsync=off") as pg:
        yield pg


def prepare_copy(copy_base, data):
    """The restored copy made ready to start: no postmaster.pid, everything the postgres user's."""
    (data / "postmaster.pid").unlink(missing_ok=True)
    subprocess.run(["chown", "-R", "postgres:postgres", str(copy_base)], check=True)


def restored_copy(copy_base, data, state, wal_dest, wal_dir, port):
    """The copy restored as the restore does it (the backup's label in ``data``, its WAL saved in
    ``wal_dest`` copied into ``wal_dir``), prepared and started: restored_cluster's context."""
    (data / "backup_label").write_text(state["backup_label"])
    for name in state["wal_files"]:
        shutil.copyfile(wal_dest / name, wal_dir / name)
    prepare_copy(copy_base, data)
    return restored_cluster(data, copy_base, port)


@needs_pg
def test_data_and_wal_on_two_volumes_copied_at_different_times_restore(split_cluster, restore_dirs):
    """pg_wal on another "LV", its copy taken BEFORE the data's while rows are written: the label and
    the WAL copied by the module after the stop are what make the pair restorable."""
    pg = split_cluster
    writer = start_writer(pg)
    wal_dest, copy_base, copy_port = restore_dirs
    try:
        before = pg.last_tick()
        count_before = pg.ticks_up_to(before)
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
        with restored_copy(copy_base, data, state, wal_dest, copy_base / "wal", copy_port) as copy:
            assert copy.started, copy.output
            assert copy.ticks_up_to(before) == count_before
    finally:
        writer.kill()
        writer.wait()


@needs_pg
def test_without_the_backups_wal_the_copy_does_not_start(cluster, writer, restore_dirs):
    """Why wal_dest exists: the copy's own pg_wal ends before pg_backup_stop's end-of-backup record."""
    _wal_dest, copy_base, copy_port = restore_dirs
    holder = _consistency.PgHolder(group(cluster), str(PGBIN / "psql"))
    holder.acquire()
    run(["cp", "-a", str(cluster.base / "data"), str(copy_base / "data")])
    state, _ = holder.release(True)
    assert state["mode"] == "application" and "WAL archive" in state["reason"]
    (copy_base / "data" / "backup_label").write_text(state["backup_label"])
    prepare_copy(copy_base, copy_base / "data")
    with restored_cluster(copy_base / "data", copy_base, copy_port) as copy:
        assert not copy.started, "a copy without the backup's WAL must not start"
        assert "WAL ends before end of online backup" in copy.output, copy.output


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


def _exited(pid):
    """The process is gone or a zombie (its exit is done; only the wait is left to its parent)."""
    try:
        return "(zombie)" in Path("/proc/%d/status" % pid).read_text()
    except FileNotFoundError:
        return True


@needs_pg
def test_killing_the_holder_with_sigkill_aborts_the_backup(cluster):
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
    # The server logs the abort when psql's connection closes; psql itself may still be exiting
    # (seen under load: state R, reparented to init), so it gets the rest of the deadline to go.
    while not _exited(psql_pid) and time.time() < deadline:
        time.sleep(0.1)
    assert _exited(psql_pid), Path("/proc/%d/status" % psql_pid).read_text()
    assert "jts-lvm-snapshot" not in (cluster.sql("SELECT string_agg(application_name, ',') FROM pg_stat_activity"))


@needs_pg
def test_failed_set_aborts_the_backup_on_the_server(cluster):
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
def test_start_failure_on_a_wrong_port_leaves_no_session(cluster):
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
# lvcreate of the fake host, preceded by a copy of the live data directory: the "snapshot"
LVCREATE = """#!/bin/sh
cp -a "$SNAP_SOURCE" "$SNAP_DIR/copy" 2>/dev/null
exec "%s" "%s" lvcreate "$@"
"""


@needs_pg
def test_the_module_run_by_ansible_holds_the_backup_across_lvcreate_and_the_copy_restores(
    cluster, writer, tmp_path, restore_dirs
):
    """lvm_snapshot run by ansible-playbook (AnsiballZ, psql as postgres) with a fake LVM whose
    lvcreate copies the live data directory; the result's label and WAL make the copy start."""
    wal_dest, copy_base, copy_port = restore_dirs
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
            "consistency": [{**consistency_group(cluster, wal_dest=str(wal_dest)), "password": "not-a-real-secret-x9"}],
        },
        "register": "snapset",
    }
    dump = {
        "name": "Result",
        "ansible.builtin.copy": {"content": "{{ snapset | to_json }}", "dest": str(tmp_path / "r.json")},
    }
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task, dump]}]))
    env = ansible_env(
        PATH="%s:%s" % (fakebin, os.environ["PATH"]),
        FAKE_LVM_STATE=str(tmp_path / "state.json"),
        SNAP_SOURCE=str(cluster.base / "data"),
        SNAP_DIR=str(copy_base),
    )
    before = cluster.last_tick()
    count_before = cluster.ticks_up_to(before)
    proc = playbook(play, {"ansible_python_interpreter": str(BIN / "python")}, env=env)
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
    with restored_copy(copy_base, data, pg, wal_dest, data / "pg_wal", copy_port) as copy:
        assert copy.started, copy.output
        assert copy.ticks_up_to(before) == count_before
