"""Application-consistent PostgreSQL backups end to end (issue 16): the lifecycle role's backup step run
by ansible-playbook against the fake LVM host (tests/functional/fake_lvm_host.py; its lvcreate copies the
running cluster's directory while lvm_snapshot holds the base backup), with
``lifecycle_backup_consistency`` naming the postgres LV, then playbooks/restore.yml into a scratch
directory and PostgreSQL started on it: every row committed before the backup started is there.
Without a consistency group the archive is crash-consistent and carries no backup_label."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from as_ansible import BIN, ROOT, playbook
from lvm_host import Host
from pg_scratch import consistency_group, free_port, needs_pg, public_dir, restored_cluster

MANIFEST = ".jts-backup-manifest.json"


def group(pg):
    return consistency_group(pg, statement_timeout=120)


def backup(host, pg, tmp_path, consistency):
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir(exist_ok=True)
    env = {"FAKE_LIVE": "postgres=%s" % pg.base, "FAKE_SNAPSHOTS": str(snapshots)}
    extra = {
        "lifecycle_backup_volumes": [{"lv": "postgres", "size": "1G"}],
        "lifecycle_backup_consistency": consistency,
    }
    result = host.run(extra=extra, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(os.listdir(host.backups / "postgres"))
    assert len(names) == 2 and names[1] == names[0] + ".sha256", names
    assert os.listdir(snapshots) == [], "the snapshot is removed"
    if any(group.get("method") == "postgresql" for group in consistency):
        assert not os.path.lexists(host.warm / ".jts-backup-wal"), "the run's WAL directory is removed"
        assert sorted(os.listdir(host.warm)) == ["daily-backups"]
    return host.backups / "postgres" / names[0], result


def listing(archive):
    out = subprocess.run(["tar", "--zstd", "-tf", str(archive)], capture_output=True, text=True, check=True).stdout
    return [os.path.normpath(line) for line in out.splitlines()]


def manifest_of(archive):
    out = subprocess.run(
        ["tar", "--zstd", "-xOf", str(archive), MANIFEST], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def restore(archive, dest):
    variables = {
        "ansible_python_interpreter": str(BIN / "python"),
        "restore_hosts": "localhost",
        "restore_archive": str(archive),
        "restore_dest": str(dest),
    }
    proc = playbook(ROOT / "playbooks" / "restore.yml", variables)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return " ".join(proc.stdout.split())


@needs_pg
def test_the_backup_step_archive_alone_restores_into_a_cluster_that_starts(cluster, writer, tmp_path):
    host = Host(tmp_path)
    before = cluster.last_tick()
    count_before = cluster.ticks_up_to(before)
    archive, run = backup(host, cluster, tmp_path, [group(cluster)])
    assert "application-consistent (postgresql)" in run.stdout

    manifest = manifest_of(archive)
    assert manifest["mode"] == "application" and manifest["method"] == "postgresql", manifest
    assert manifest["data_directory"] == "data" and manifest["backup_label"] is True
    assert manifest["start_lsn"] and manifest["stop_lsn"] and manifest["wal_files"]
    names = listing(archive)
    assert names.count("data/backup_label") == 1 and "data/postmaster.pid" not in names
    for segment in manifest["wal_files"]:
        assert names.count("data/pg_wal/" + segment) == 1, segment

    base = public_dir("jts-pg-restored-")
    shutil.chown(base, "postgres", "postgres")  # the log and socket of the restored cluster
    dest = base / "restored"
    port = free_port()
    try:
        report = restore(archive, dest)
        assert "Consistency: application (postgresql: non-exclusive backup held" in report, report
        assert "Start PostgreSQL on %s/data" % dest in report
        data = dest / "data"
        assert (data / "backup_label").read_text().startswith("START WAL LOCATION: ")
        assert not (data / "postmaster.pid").exists() and not (dest / MANIFEST).exists()
        os.chmod(dest, 0o711)  # noqa: S103 - restore.yml makes it root-only; the operator moves it into place
        with restored_cluster(data, base, port) as restored:
            restored.assert_recovered()
            assert restored.ticks_up_to(before) == count_before
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_pg
def test_without_a_consistency_group_the_archive_is_crash_consistent_without_a_label(cluster, tmp_path):
    host = Host(tmp_path)
    # without a postgresql group the run never touches the WAL directory's name
    (host.warm / ".jts-backup-wal").mkdir(parents=True)
    (host.warm / ".jts-backup-wal" / "operator-file").write_bytes(b"not ours")
    archive, run = backup(host, cluster, tmp_path, [])
    assert "crash-consistent (none)" in run.stdout
    assert (host.warm / ".jts-backup-wal" / "operator-file").read_bytes() == b"not ours"
    manifest = manifest_of(archive)
    assert manifest["mode"] == "crash" and manifest["reason"] == "no consistency method configured", manifest
    assert manifest["backup_label"] is False and manifest["wal_files"] == []
    names = listing(archive)
    assert "data/PG_VERSION" in names
    assert not [name for name in names if os.path.basename(name) in ("backup_label", "tablespace_map")], names
    dest = tmp_path / "restored"
    report = restore(archive, dest)
    assert "Consistency: crash (none: no consistency method configured)" in report, report
    assert (dest / "data" / "PG_VERSION").exists() and not (dest / "data" / "backup_label").exists()


def test_check_mode_with_a_postgresql_group_connects_to_no_database_and_writes_nothing(tmp_path):
    host = Host(tmp_path)
    unreachable = {"origins": ["postgres"], "method": "postgresql", "host": "/nonexistent", "port": 1}
    result = host.run(extra={"lifecycle_backup_consistency": [unreachable]}, check=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Would snapshot vg_test/postgres" in result.stdout
    assert not os.path.lexists(host.warm / ".jts-backup-wal")
    assert not any(entry[0] in ("lvcreate", "mount") for entry in host.state()["log"])


@pytest.mark.parametrize("backup_dir", ["{warm}", "{warm}/.jts-backup-wal", "{warm}/.jts-backup-wal/archives"])
def test_archives_where_the_wal_directory_is_removed_are_refused_with_a_postgresql_group(tmp_path, backup_dir):
    host = Host(tmp_path)
    (host.backups / "postgres").mkdir(parents=True)
    keep = host.backups / "postgres" / "postgres_20261101T023000Z.tar.zst"
    keep.write_bytes(b"an earlier archive")
    group = {"origins": ["postgres"], "method": "postgresql", "host": "/nonexistent", "port": 1}
    result = host.run(
        extra={"lifecycle_backup_dir": backup_dir.format(warm=host.warm), "lifecycle_backup_consistency": [group]}
    )
    assert result.returncode != 0 and ".jts-backup-wal (the run's WAL copies)" in result.stdout, result.stdout
    assert keep.read_bytes() == b"an earlier archive"
    assert not any(entry[0] == "lvcreate" for entry in host.state().get("log", []))
