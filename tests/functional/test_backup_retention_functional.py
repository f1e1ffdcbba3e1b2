"""Retention and capacity of the backups (issue 15 part 4), for real on tmpfs mounts of this host.

* the backup step (roles/lifecycle/tasks/backup.yml, on the fake LVM host of lvm_host.py, tar
  and zstd real) with the warm tier a small tmpfs filled near
  its critical threshold: the LV that would pass it is refused, nothing of it is written, the step
  fails, and a whole run reports it (textfile success 0, webhook);
* more archives than the retention keeps: the oldest pruned on the warm tier (backup step) and on
  the NAS (archive step), none with the NAS unmounted; check mode lists and keeps;
* the module backup_retention against symlinks planted by a real unprivileged user.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import typing
from pathlib import Path

import pytest
from as_ansible import BIN, playbook, tasks_from_play
from lvm_host import Host

from ansible_collections.jts.tiered_storage.plugins.module_utils import _backup_retention as br

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts tmpfs: needs root"),
    pytest.mark.skipif(not (shutil.which("zstd") and shutil.which("tar")), reason="needs zstd and GNU tar"),
]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", str(path)], check=True)


def umount(path):
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def mounts():
    done = []

    def mount(path, size):
        mount_tmpfs(path, size)
        done.append(path)
        return path

    yield mount
    for path in reversed(done):
        umount(path)


def used_percent(path):
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return 100.0 * used / (used + st.f_bavail * st.f_frsize)


def fill_to(path, percent):
    """Write a file so that the filesystem of ``path`` is ``percent`` used (as df counts)."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    usable = used + st.f_bavail * st.f_frsize
    with open(os.path.join(path, "filler"), "wb") as handle:
        handle.write(b"\0" * int(usable * percent / 100.0 - used))
    return used_percent(path)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def plant(directory, volume, days_ago, data=b"archive\n"):
    """Archives of ``volume`` (with valid checksum files) dated ``days_ago`` days before now; names, oldest first."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for days in sorted(days_ago, reverse=True):
        when = (utc_now() - datetime.timedelta(days=days)).replace(hour=2, minute=30, second=0)
        name = "%s_%s.tar.zst" % (volume, when.strftime(br.STAMP_FORMAT))
        (directory / name).write_bytes(data)
        (directory / (name + ".sha256")).write_text("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
        names.append(name)
    return names


def archives_in(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tar.zst"))


def pruner_params(path, mount, keep_last):
    """backup_retention's parameters for postgres's archives in ``path`` on ``mount``: the newest ``keep_last``."""
    params = dict(path=str(path), mount=str(mount), volumes=["postgres"], nas_host=None, nas_port=2049)
    params.update(keep_last=keep_last, keep_daily=0, keep_weekly=0, keep_monthly=0, max_age="")
    return dict(params, max_clock_jump_days=366, probe_timeout=10, remove_timeout=10)


def flat(text):
    return " ".join(text.split()).replace("''", "'")


# --------------------------------------------------------------------------- capacity


@pytest.fixture
def full_host(tmp_path, mounts):
    """The fake LVM host with its warm tier a 16 MiB tmpfs, postgres holding 4 MiB that zstd cannot shrink."""
    host = Host(tmp_path)
    (host.origins / "postgres" / "data" / "big.bin").write_bytes(os.urandom(4 << 20))
    mounts(host.warm, "16m")
    host.backups.mkdir()
    return host


@pytest.mark.parametrize("critical", [90, 95])
def test_backup_near_the_critical_threshold_refuses_the_lv_and_writes_nothing_of_it(full_host, critical):
    host = full_host
    before = fill_to(host.warm, critical - 6)
    result = host.run({"lifecycle_health_critical": critical})
    out = flat(result.stdout)
    assert result.returncode != 0, out
    # the threshold is the health step's (lifecycle_health_critical -> lifecycle_health_tiers' warm entry)
    assert "Backup refused for postgres: postgres: archive refused, nothing written" in out
    assert "at or above the critical threshold %d%% (lifecycle_backup_warm_critical)" % critical in out
    assert "the archive may take up to 4." in out and "MiB" in out
    # nothing of postgres, not even a hidden temporary file; mongodb's archive written and verified
    assert os.listdir(host.backups / "postgres") == []
    mongodb = sorted(os.listdir(host.backups / "mongodb"))
    assert len(mongodb) == 2 and mongodb[1] == mongodb[0] + ".sha256"
    assert subprocess.run(["sha256sum", "-c", mongodb[1]], cwd=host.backups / "mongodb").returncode == 0
    assert used_percent(host.warm) < critical and used_percent(host.warm) > before
    # no snapshot and no mount left
    assert host.snapshots() == [] and host.state()["mounted"] == {}


class _Receiver(http.server.BaseHTTPRequestHandler):
    calls: typing.ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Receiver.calls.append(json.loads(body or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_refused_backup_fails_the_run_and_alerts(full_host, tmp_path):
    """The whole role with the backup step alone: the run's report says the step failed, and the webhook hears it."""
    host = full_host
    fill_to(host.warm, 84)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    play = tmp_path / "role.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: jts.tiered_storage.lifecycle\n")
    variables = {
        "ansible_python_interpreter": str(BIN / "python"),
        "lifecycle_steps": ["backup"],
        "lifecycle_pause_file": str(tmp_path / "paused"),
        "lifecycle_lock_dir": str(tmp_path / "lock" / "lifecycle.lock.d"),
        "lifecycle_report_state_dir": str(tmp_path / "state"),
        "lifecycle_report_textfile": str(tmp_path / "jts_lifecycle.prom"),
        "lifecycle_report_journal": False,
        "lifecycle_report_webhook_url": "http://127.0.0.1:%d/hook" % server.server_port,
        "lifecycle_backup_vg": "vg_test",
        "lifecycle_backup_volumes": [{"lv": "postgres", "size": "1G"}, {"lv": "mongodb", "size": "512M"}],
        "lifecycle_backup_dir": str(host.backups),
        "lifecycle_backup_warm_mount": str(host.warm),
        "lifecycle_backup_mount_dir": str(host.mounts),
        "lifecycle_backup_dir_group": "root",
    }
    try:
        result = playbook(play, variables, env=host.env())
    finally:
        server.shutdown()
    out = flat(result.stdout)
    assert result.returncode != 0, out
    assert "Step backup failed: Backup refused for postgres" in out
    assert os.listdir(host.backups / "postgres") == []
    textfile = (tmp_path / "jts_lifecycle.prom").read_text()
    assert 'jts_lifecycle_step_success{step="backup"} 0' in textfile, textfile
    assert 'jts_lifecycle_step_files{step="backup",action="failed"} 1' in textfile, textfile
    assert 'jts_lifecycle_step_files{step="backup",action="archived"} 1' in textfile, textfile
    assert _Receiver.calls and "postgres" in json.dumps(_Receiver.calls), _Receiver.calls


# --------------------------------------------------------------------------- warm retention


def test_backup_prunes_the_oldest_archives_on_the_warm_tier(tmp_path, mounts):
    host = Host(tmp_path)
    mounts(host.warm, "64m")
    planted = plant(host.backups / "postgres", "postgres", range(1, 41))  # 40 nightly archives
    mongodb = plant(host.backups / "mongodb", "mongodb", [1, 2, 3])
    (host.backups / "postgres" / "README").write_text("not an archive: stays")
    result = host.run({"lifecycle_backup_keep_last": 35, "lifecycle_backup_max_age": "40d"})
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    kept = archives_in(host.backups / "postgres")
    assert len(kept) == 36  # the newest 35 planted and tonight's
    assert set(planted[5:]) < set(kept) and not set(planted[:5]) & set(kept)
    assert not any(os.path.exists(host.backups / "postgres" / (n + ".sha256")) for n in planted[:5])
    assert (host.backups / "postgres" / "README").exists()
    assert set(mongodb) < set(archives_in(host.backups / "mongodb"))
    assert "removed 5 archive(s) (10 file(s)" in out
    for name in planted[:5]:
        assert "postgres/" + name in out


def test_check_mode_lists_the_warm_archives_it_would_prune_and_keeps_them(tmp_path, mounts):
    host = Host(tmp_path)
    mounts(host.warm, "64m")
    planted = plant(host.backups / "postgres", "postgres", range(1, 39))
    result = host.run({"lifecycle_backup_keep_last": 35}, check=True)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert archives_in(host.backups / "postgres") == sorted(planted)
    assert "would remove 3 archive(s) (6 file(s)" in out
    assert all("postgres/" + n in out for n in planted[:3])


@pytest.mark.parametrize(
    "limits",
    [
        {"lifecycle_backup_keep_last": 20},
        {"lifecycle_backup_max_age": "20d"},
        # weekly copies alone would prune the nights between them before the move
        {"lifecycle_backup_keep_last": 0, "lifecycle_backup_keep_weekly": 8, "lifecycle_backup_max_age": ""},
    ],
)
def test_a_warm_retention_that_would_prune_before_the_migrate_step_is_refused(tmp_path, mounts, limits):
    host = Host(tmp_path)
    mounts(host.warm, "16m")
    planted = plant(host.backups / "postgres", "postgres", range(1, 30))
    result = host.run(limits)
    assert result.returncode != 0
    assert "must keep the archives longer than lifecycle_migrate_backup_age (30d)" in flat(result.stdout)
    assert archives_in(host.backups / "postgres") == sorted(planted)


# --------------------------------------------------------------------------- NAS retention


def run_archive_step(tmp_path, nas, extra=None, check=False):
    play = tasks_from_play(tmp_path / "archive.yml", "Run the archive step", "archive")
    variables = {
        "ansible_python_interpreter": str(BIN / "python"),
        "lifecycle_archive_mirrors": [],
        "lifecycle_archive_snapshots": [],
        "lifecycle_archive_nas_host": "",
        "lifecycle_archive_backup_dir": str(nas / "trading" / "archives" / "database"),
        "lifecycle_archive_backup_mount": str(nas),
        "lifecycle_backup_volumes": [{"lv": "postgres", "size": "1G"}, {"lv": "mongodb", "size": "1G"}],
        "lifecycle_archive_backup_keep_last": 3,
        "lifecycle_archive_backup_keep_daily": 5,
        "lifecycle_archive_backup_keep_weekly": 2,
        "lifecycle_archive_backup_keep_monthly": 0,
    }
    variables.update(extra or {})
    return playbook(play, variables, *(["--check"] if check else []))


def test_archive_step_prunes_the_oldest_backups_on_the_nas(tmp_path, mounts):
    nas = mounts(tmp_path / "nas", "16m")
    database = nas / "trading" / "archives" / "database"
    planted = plant(database / "postgres", "postgres", range(31, 61))  # 30 nights, as migrate brings them
    mongodb = plant(database / "mongodb", "mongodb", [31, 32])
    result = run_archive_step(tmp_path, nas)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    kept = archives_in(database / "postgres")
    # keep_last 3 and keep_daily 5: the newest 5 nights; keep_weekly 2: the newest of the two newest ISO weeks
    expected = br.select_retention(
        [br.parse_archive_name(n, "postgres") for n in planted], keep_last=3, keep_daily=5, keep_weekly=2
    )
    assert kept == sorted(n for n in planted if br.parse_archive_name(n, "postgres") in expected)
    assert 5 <= len(kept) <= 7 and planted[-1] in kept and planted[0] not in kept
    assert archives_in(database / "mongodb") == sorted(mongodb)
    assert "Backups on the NAS (%s): removed %d archive(s)" % (database, 30 - len(kept)) in out


def test_archive_step_prunes_nothing_with_the_nas_unmounted(tmp_path, mounts):
    nas = mounts(tmp_path / "nas", "16m")
    umount(nas)  # the mount point stays: a directory on the root filesystem, as when the NAS is away
    database = nas / "trading" / "archives" / "database"
    planted = plant(database / "postgres", "postgres", range(31, 61))
    result = run_archive_step(tmp_path, nas)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert archives_in(database / "postgres") == sorted(planted)
    assert "skipped: %s is not mounted; nothing pruned" % nas in out


def test_archive_step_prunes_nothing_with_the_nas_unreachable(tmp_path, mounts):
    nas = mounts(tmp_path / "nas", "16m")
    database = nas / "trading" / "archives" / "database"
    planted = plant(database / "postgres", "postgres", range(31, 61))
    # a port nothing listens on: the NAS host does not answer
    result = run_archive_step(
        tmp_path, nas, {"lifecycle_archive_nas_host": "127.0.0.1", "lifecycle_archive_nas_port": 9}
    )
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert archives_in(database / "postgres") == sorted(planted)
    assert "skipped: NAS 127.0.0.1 is not reachable" in out


def test_archive_step_skips_a_mirror_without_source_and_records_no_missing_nas(tmp_path, mounts):
    """The module says a mirror's source is missing (missing: source); the step does not stat it, and
    does not count it as the NAS missing (that would fail the run): the other mirror goes on."""
    nas = mounts(tmp_path / "nas", "16m")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "prices.csv").write_text("1,2\n")
    mirrors = [
        {"name": "notebooks", "source": str(tmp_path / "notebooks"), "destination": str(nas / "notebooks")},
        {"name": "datasets", "source": str(tmp_path / "datasets"), "destination": str(nas / "datasets")},
    ]
    play = tasks_from_play(
        tmp_path / "archive.yml",
        "Run the archive step",
        "archive",
        "    - name: Show what the step recorded as missing\n"
        "      ansible.builtin.debug:\n"
        '        msg: "missing tiers: {{ __lifecycle_skipped | default({}) }}"\n',
    )
    variables = {
        "ansible_python_interpreter": str(BIN / "python"),
        "lifecycle_archive_mirrors": mirrors,
        "lifecycle_archive_snapshots": [],
        "lifecycle_archive_nas_host": "",
        "lifecycle_archive_destination_mount": str(nas),
        "lifecycle_archive_destination_fstype": "tmpfs",  # the test's NAS
        "lifecycle_archive_backup_dir": "",
        "lifecycle_backup_volumes": [],
    }
    result = playbook(play, variables)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert "Archive notebooks: skipped: source %s does not exist" % (tmp_path / "notebooks") in out
    assert (nas / "datasets" / "prices.csv").read_text() == "1,2\n"
    assert "missing tiers: {}" in out


def test_archive_step_check_mode_lists_and_keeps(tmp_path, mounts):
    nas = mounts(tmp_path / "nas", "16m")
    database = nas / "trading" / "archives" / "database"
    planted = plant(database / "postgres", "postgres", range(31, 61))
    result = run_archive_step(tmp_path, nas, check=True)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert archives_in(database / "postgres") == sorted(planted)
    assert "would remove" in out and "postgres/" + planted[0] in out


# --------------------------------------------------------------------------- symlinks


@pytest.fixture
def open_base():
    """A directory other users can traverse (pytest's tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="jts-retention-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_symlinks_planted_by_an_unprivileged_user_are_not_followed(open_base, mounts):
    tmp_path = open_base
    warm = mounts(tmp_path / "warm", "16m")
    backups = warm / "daily-backups"
    planted = plant(backups / "postgres", "postgres", range(1, 6))
    elsewhere = tmp_path / "precious"
    kept_elsewhere = plant(elsewhere, "mongodb", range(1, 6))
    target = tmp_path / "passwd-like"
    target.write_text("not yours\n")
    # a backup directory an unprivileged user can write to (a mistake the module must survive)
    os.chown(backups, 65534, 65534)
    os.chown(backups / "postgres", 65534, 65534)
    old = "postgres_20200101T023000Z.tar.zst"
    for argv in (
        ["ln", "-s", str(target), str(backups / "postgres" / old)],
        ["ln", "-s", str(target), str(backups / "postgres" / (old + ".sha256"))],
        ["ln", "-s", str(elsewhere), str(backups / "mongodb")],
    ):
        subprocess.run(NOBODY + argv, check=True)
    params = pruner_params(backups, warm, keep_last=2)
    result = br.Pruner(br.build_policy(params)).run()
    assert target.read_text() == "not yours\n" and os.path.islink(backups / "postgres" / old)
    assert result["ignored"] == ["postgres/" + old]
    assert archives_in(backups / "postgres") == sorted([*planted[-2:], old])
    # a volume directory swapped for a symlink is refused, and what it points to is untouched
    params["volumes"] = ["mongodb"]
    with pytest.raises(br.RetentionError, match="mongodb is a symlink or not a directory; not followed"):
        br.Pruner(br.build_policy(params)).run()
    assert archives_in(elsewhere) == sorted(kept_elsewhere)


def test_a_directory_below_the_mount_on_another_filesystem_is_refused(tmp_path, mounts):
    warm = mounts(tmp_path / "warm", "16m")
    backups = warm / "daily-backups"
    backups.mkdir()
    mounts(backups, "4m")  # something else mounted over the backup directory
    planted = plant(backups / "postgres", "postgres", range(1, 6))
    params = pruner_params(backups, warm, keep_last=1)
    with pytest.raises(br.RetentionError, match="not on %s" % warm):
        br.Pruner(br.build_policy(params)).run()
    assert archives_in(backups / "postgres") == sorted(planted)


def test_the_mount_point_directory_itself_is_found_unmounted(tmp_path):
    bare = Path(tmp_path / "nas")
    (bare / "database").mkdir(parents=True)
    params = pruner_params(bare / "database", bare, keep_last=1)
    from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped

    with pytest.raises(Skipped, match="is not mounted; nothing pruned"):
        br.Pruner(br.build_policy(params)).run()


# --------------------------------------------------------------------------- warm logs (clean-up step)

DAY = 86400


def run_cleanup_step(tmp_path, warm, nas, extra=None, check=False):
    play = tasks_from_play(tmp_path / "cleanup.yml", "Run the clean-up step", "cleanup")
    variables = {
        "ansible_python_interpreter": str(BIN / "python"),
        "lifecycle_cleanup_temp_paths": [],
        "lifecycle_cleanup_log_dir": str(warm / "logs"),
        "lifecycle_cleanup_log_mount": str(warm),
        "lifecycle_cleanup_log_nas_dir": str(nas / "trading" / "archives" / "logs"),
        "lifecycle_cleanup_log_nas_mount": str(nas),
    }
    variables.update(extra or {})
    return playbook(play, variables, *(["--check"] if check else []))


@pytest.fixture
def warm_logs(tmp_path, mounts):
    warm = mounts(tmp_path / "warm", "16m")
    logs = warm / "logs"
    old = {
        logs / "system" / "syslog.1.zst": b"old syslog\n" * 10,
        logs / "postgres" / "postgresql-2026-10-01.log.zst": b"old pg\n" * 20,
    }
    young = {logs / "system" / "syslog.2.zst": b"young\n", logs / "postgres" / "today.log.zst": b"today\n"}
    # tier_migrate's own journal and a copy in flight: never touched, however old
    own = {
        logs / "system" / ".jts-migrate" / "journal.jsonl": b"{}\n",
        logs / "system" / ".jts-migrate-run-1.tmp": b"in flight\n",
    }
    past = datetime.datetime.now().timestamp() - 40 * DAY
    for path, data in {**old, **young, **own}.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if path not in young:
            os.utime(path, (past, past))
    return warm, old, young, own


def test_cleanup_deletes_the_warm_logs_older_than_30_days(tmp_path, warm_logs):
    warm, old, young, own = warm_logs
    result = run_cleanup_step(tmp_path, warm, tmp_path / "nas", {"lifecycle_cleanup_log_action": "delete"})
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert not any(p.exists() for p in old) and all(p.exists() for p in [*young, *own])
    assert "Deleted 2 log file(s) (%d bytes) older than 30d" % sum(len(d) for d in old.values()) in out
    assert all(str(p) in out for p in old)


def test_cleanup_check_mode_lists_the_warm_logs_and_keeps_them(tmp_path, warm_logs):
    warm, old, _young, _own = warm_logs
    result = run_cleanup_step(tmp_path, warm, tmp_path / "nas", {"lifecycle_cleanup_log_action": "delete"}, check=True)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert all(p.exists() for p in old) and "Would delete 2 log file(s)" in out


def test_cleanup_moves_the_warm_logs_older_than_30_days_to_the_nas(tmp_path, warm_logs, mounts):
    warm, old, young, own = warm_logs
    nas = mounts(tmp_path / "nas", "16m")
    result = run_cleanup_step(tmp_path, warm, nas)  # the default action: nas
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    target = nas / "trading" / "archives" / "logs"
    for path, data in old.items():
        assert not path.exists() and (target / path.relative_to(warm / "logs")).read_bytes() == data
    assert all(p.exists() for p in [*young, *own])
    assert "moved 2 file(s), %d bytes" % sum(len(d) for d in old.values()) in out


def test_cleanup_keeps_the_warm_logs_with_the_nas_unmounted(tmp_path, warm_logs):
    warm, old, _young, _own = warm_logs
    nas = tmp_path / "nas"
    nas.mkdir()  # a mount point with nothing mounted on it
    result = run_cleanup_step(tmp_path, warm, nas)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert all(p.exists() for p in old)
    assert "Clean-up skips the warm logs: %s is not mounted" % nas in out
    assert not (nas / "trading").exists()


@pytest.mark.parametrize("action", ["nas", "delete"])
def test_cleanup_keeps_logs_left_below_the_warm_mount_point_with_the_warm_tier_away(tmp_path, mounts, action):
    # the warm tier is not mounted, but its mount point holds a log directory on the root filesystem
    warm = tmp_path / "warm"
    old = warm / "logs" / "system" / "syslog.1.zst"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old syslog\n")
    past = datetime.datetime.now().timestamp() - 40 * DAY
    os.utime(old, (past, past))
    nas = mounts(tmp_path / "nas", "16m")
    result = run_cleanup_step(tmp_path, warm, nas, {"lifecycle_cleanup_log_action": action})
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert old.exists() and not (nas / "trading").exists()
    assert "Clean-up skips the warm logs: %s is not mounted" % warm in out


def test_cleanup_check_mode_says_it_would_make_the_nas_directory_and_makes_nothing(tmp_path, warm_logs, mounts):
    warm, old, _young, _own = warm_logs
    nas = mounts(tmp_path / "nas", "16m")
    result = run_cleanup_step(tmp_path, warm, nas, check=True)
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert all(p.exists() for p in old) and not (nas / "trading").exists()
    assert "would create %s and move them into it" % (nas / "trading" / "archives" / "logs") in out


def test_cleanup_without_a_warm_log_directory_does_nothing(tmp_path, mounts):
    warm = mounts(tmp_path / "warm", "16m")
    result = run_cleanup_step(tmp_path, warm, tmp_path / "nas")
    out = flat(result.stdout)
    assert result.returncode == 0, out + result.stderr
    assert "Clean-up skips the warm logs:" not in out and "file(s)," not in out and "ok=" in out
