"""The lifecycle's backup step (roles/lifecycle/tasks/backup.yml) run for real by Ansible against
a fake storage host (tests/functional/fake_lvm_host.py: LVM, blkid and mounts faked on PATH, tar
and zstd real), since this machine has no device-mapper. The lab VM's Molecule run covers real LVM."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
FAKE = Path(__file__).resolve().parent / "fake_lvm_host.py"
TOOLS = ("vgs", "lvs", "lvcreate", "lvremove", "blkid", "mount", "umount", "mountpoint", "findmnt", "zstd")
EXTENT = 4194304

pytestmark = pytest.mark.skipif(not (shutil.which("zstd") and shutil.which("tar")), reason="needs zstd and GNU tar")


def lv(name, size, attr="owi-aos---", origin="", lv_time="2026-09-01 10:00:00 +0000"):
    return {
        "lv_name": name,
        "vg_name": "vg_test",
        "lv_attr": attr,
        "lv_size": str(size),
        "origin": origin,
        "origin_size": "" if not origin else str(100 << 30),
        "data_percent": "" if not origin else "1.00",
        "lv_time": lv_time,
        "lv_snapshot_invalid": "",
    }


class Host:
    def __init__(self, tmp_path, free_extents=10000):
        self.tmp = tmp_path
        self.bin = tmp_path / "fakebin"
        self.bin.mkdir()
        for tool in TOOLS:
            wrapper = self.bin / tool
            wrapper.write_text('#!/bin/sh\nexec "%s" "%s" %s "$@"\n' % (sys.executable, FAKE, tool))
            wrapper.chmod(0o755)
        self.origins = tmp_path / "origins"
        for name in ("postgres", "mongodb"):
            tree = self.origins / name
            (tree / "data").mkdir(parents=True)
            (tree / "data" / "file.bin").write_bytes(os.urandom(50_000))
            (tree / ("%s.conf" % name)).write_text("name = %s\n" % name)
        self.warm = tmp_path / "warm"
        self.backups = self.warm / "daily-backups"
        self.mounts = tmp_path / "run" / "jts-backup"
        self.state_file = tmp_path / "state.json"
        self.write(
            {
                "vg": {
                    "vg_name": "vg_test",
                    "vg_size": str(400 << 30),
                    "vg_free": str(free_extents * EXTENT),
                    "vg_extent_size": str(EXTENT),
                    "vg_extent_count": "102400",
                    "vg_free_count": str(free_extents),
                },
                "lvs": [lv("postgres", 100 << 30), lv("mongodb", 100 << 30), lv("redis", 10 << 30, attr="-wi-ao----")],
                "mounted": {},
                "real_mounts": [str(self.warm)],
            }
        )

    def write(self, state):
        self.state_file.write_text(json.dumps(state))

    def state(self):
        return json.loads(self.state_file.read_text())

    def snapshots(self):
        return sorted(row["lv_name"] for row in self.state()["lvs"] if row["lv_attr"][0] in "sS")

    def run(self, extra=None, check=False, env=None):
        play = self.tmp / "play.yml"
        play.write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - name: Run the backup step\n      ansible.builtin.include_role:\n"
            "        name: jts.tiered_storage.lifecycle\n        tasks_from: backup\n"
        )
        variables = {
            "ansible_python_interpreter": str(BIN / "python"),
            "lifecycle_backup_vg": "vg_test",
            "lifecycle_backup_volumes": [{"lv": "postgres", "size": "1G"}, {"lv": "mongodb", "size": "512M"}],
            "lifecycle_backup_dir": str(self.backups),
            "lifecycle_backup_warm_mount": str(self.warm),
            "lifecycle_backup_mount_dir": str(self.mounts),
            "lifecycle_backup_dir_group": "root",
        }
        variables.update(extra or {})
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables), str(play)]
        if check:
            cmd.append("--check")
        full_env = dict(
            os.environ,
            PATH="%s:%s" % (self.bin, os.environ["PATH"]),
            FAKE_LVM_STATE=str(self.state_file),
            FAKE_ORIGINS=str(self.origins),
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
        )
        full_env.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=full_env, timeout=300)


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
