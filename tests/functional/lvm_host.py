"""The fake storage host of the backup step's functional tests: fake LVM, blkid and mount tools on
PATH (wrappers that run tests/functional/fake_lvm_host.py on a JSON state file), origin trees that
its lvcreate "snapshots", a warm tier directory, and ``run`` that plays the lifecycle role's
tasks/backup.yml against it. Used by test_backup_step_functional.py, test_consistent_backup_functional.py
and test_backup_retention_functional.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from as_ansible import BIN, ansible_env, playbook, tasks_from_play

FAKE = Path(__file__).resolve().parent / "fake_lvm_host.py"
TOOLS = ("vgs", "lvs", "lvcreate", "lvremove", "blkid", "mount", "umount", "mountpoint", "findmnt", "zstd")
EXTENT = 4194304


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

    def env(self, extra=None):
        """ansible-playbook's environment with the fake tools first on PATH, ``extra`` added last."""
        env = ansible_env(
            PATH="%s:%s" % (self.bin, os.environ["PATH"]),
            FAKE_LVM_STATE=str(self.state_file),
            FAKE_ORIGINS=str(self.origins),
        )
        env.update(extra or {})
        return env

    def run(self, extra=None, check=False, env=None):
        play = tasks_from_play(self.tmp / "play.yml", "Run the backup step", "backup")
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
        return playbook(play, variables, *(["--check"] if check else []), env=self.env(env))
