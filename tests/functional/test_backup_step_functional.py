"""The lifecycle's backup step (roles/lifecycle/tasks/backup.yml) run for real by Ansible against
a fake storage host (lvm_host.py's Host, on tests/functional/fake_lvm_host.py: LVM, blkid and mounts
faked on PATH, tar and zstd real), since this machine has no device-mapper. The lab VM's Molecule run covers real LVM."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest
from lvm_host import Host, lv

pytestmark = pytest.mark.skipif(not (shutil.which("zstd") and shutil.which("tar")), reason="needs zstd and GNU tar")


def digest(root):
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return out


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_backup_archives_each_lv_verifies_and_leaves_nothing_behind(host, tmp_path):
    result = host.run()
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("postgres", "mongodb"):
        files = sorted(os.listdir(host.backups / name))
        assert len(files) == 2 and files[0].startswith(name + "_") and files[0].endswith(".tar.zst"), files
        assert files[1] == files[0] + ".sha256"
        check = subprocess.run(["sha256sum", "-c", files[1]], cwd=host.backups / name, capture_output=True)
        assert check.returncode == 0
        restored = tmp_path / ("restored-" + name)
        restored.mkdir()
        subprocess.run(
            ["tar", "--extract", "--file", str(host.backups / name / files[0]), "--zstd", "-C", str(restored)],
            check=True,
        )
        manifest = json.loads((restored / ".jts-backup-manifest.json").read_text())
        assert manifest["mode"] == "crash" and manifest["reason"] == "no consistency method configured"
        (restored / ".jts-backup-manifest.json").unlink()
        assert digest(restored) == digest(host.origins / name)
    state = host.state()
    assert host.snapshots() == [] and state["mounted"] == {}
    assert not os.listdir(host.mounts), "the mount points are removed"
    created = [entry for entry in state["log"] if entry[0] == "lvcreate"]
    assert [entry[-1] for entry in created] == ["vg_test/postgres", "vg_test/mongodb"]
    assert all(entry[-3:-1] == ["--extents", "256"] or entry[-3:-1] == ["--extents", "128"] for entry in created)


def test_a_failing_archive_keeps_earlier_archives_and_leaves_no_mount_or_snapshot(host):
    earlier = host.backups / "postgres" / "postgres_20261101T023000Z.tar.zst"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"an earlier archive")
    result = host.run(env={"FAKE_FAIL_ZSTD": "1"})
    assert result.returncode != 0
    assert "Backup failed for postgres, mongodb" in result.stdout
    assert host.snapshots() == [] and host.state()["mounted"] == {}
    assert os.listdir(host.backups / "postgres") == [earlier.name] and earlier.read_bytes() == b"an earlier archive"
    assert os.listdir(host.backups / "mongodb") == []


def test_a_failing_mount_leaves_no_mount_and_no_snapshot(host):
    result = host.run(env={"FAKE_FAIL_MOUNT": "mongodb"})
    assert result.returncode != 0 and "wrong fs type" in result.stdout
    assert host.snapshots() == [] and host.state()["mounted"] == {}
    umounts = [entry for entry in host.state()["log"] if entry[0] == "umount"]
    assert umounts == [["umount", str(host.mounts / "postgres")]]


def test_leftovers_of_an_interrupted_run_are_cleaned_and_others_snapshots_kept(host):
    state = host.state()
    leftover = lv("jts_backup_postgres_20261101T023000Z", 1 << 30, attr="swi-aos---", origin="postgres")
    foreign = lv("manual_postgres_before_upgrade", 1 << 30, attr="swi-a-s---", origin="postgres")
    retained = lv("jts_snap_postgres_20261101T023000Z", 1 << 30, attr="swi-a-s---", origin="postgres")
    state["lvs"] += [leftover, foreign, retained]
    target = host.mounts / "postgres"
    target.mkdir(parents=True)
    (target / "stale").write_text("x")
    state["mounted"][str(target)] = "/dev/vg_test/jts_backup_postgres_20261101T023000Z"
    host.write(state)
    result = host.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert host.snapshots() == ["jts_snap_postgres_20261101T023000Z", "manual_postgres_before_upgrade"]
    assert len(os.listdir(host.backups / "postgres")) == 2


def test_warm_tier_not_mounted_skips_the_step(host):
    state = host.state()
    state["real_mounts"] = []
    host.write(state)
    result = host.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Backup skipped: " in result.stdout and "no snapshot taken" in " ".join(result.stdout.split())
    assert not any(entry[0] == "lvcreate" for entry in host.state()["log"])


def test_too_little_room_takes_no_snapshot(tmp_path):
    host = Host(tmp_path, free_extents=300)
    result = host.run()
    assert result.returncode != 0 and "MiB missing; no snapshot created" in result.stdout
    assert host.snapshots() == [] and not any(entry[0] == "lvcreate" for entry in host.state()["log"])


def test_check_mode_reports_and_changes_nothing(host):
    result = host.run(check=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Would snapshot vg_test/postgres" in result.stdout
    log = host.state()["log"]
    assert not any(entry[0] in ("lvcreate", "lvremove", "mount", "umount") for entry in log)
    assert not host.backups.exists() or not any(host.backups.iterdir())
