"""The backup archive and restore path run for real: snapshot_archive through Ansible on a plain
directory standing in for a mounted snapshot, then playbooks/restore.yml, bytes compared."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess

import as_ansible
import pytest
from as_ansible import BIN, ROOT, module_cmd

pytestmark = pytest.mark.skipif(not (shutil.which("zstd") and shutil.which("tar")), reason="needs zstd and GNU tar")


def tree_digest(root):
    """Paths, types, modes, owners, times of files and content hashes: equal trees, equal digests."""
    out = []
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            st = os.lstat(path)
            content, mtime = "", None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
                mtime = int(st.st_mtime)
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            rel = os.path.relpath(path, root)
            out.append((rel, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, mtime, content))
    return out


def ansible(args, tmp_path, playbook=None, tasks=None, extra=None):
    if tasks is not None:
        playbook = tmp_path / "play.yml"
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
        playbook.write_text(json.dumps(play))
    variables = {"ansible_python_interpreter": str(BIN / "python"), "restore_hosts": "localhost"}
    variables.update(extra or {})
    return as_ansible.playbook(playbook, variables, *args)


def archive(tmp_path, src, path):
    task = {"name": "Archive", "jts.tiered_storage.snapshot_archive": {"src": str(src), "path": str(path)}}
    result = ansible([], tmp_path, tasks=[task])
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def restore(tmp_path, **variables):
    return ansible([], tmp_path, playbook=ROOT / "playbooks" / "restore.yml", extra=variables)


@pytest.fixture
def backups(tmp_path):
    """A 'mounted snapshot' archived twice (the tree changed in between) into daily-backups/postgres/."""
    snap = tmp_path / "snap"
    (snap / "base" / "16384").mkdir(parents=True)
    (snap / "base" / "16384" / "1259").write_bytes(os.urandom(300_000))
    (snap / "PG_VERSION").write_text("15\n")
    (snap / "pg_wal").mkdir(mode=0o700)
    (snap / "pg_wal" / "000000010000000000000001").write_bytes(b"\0" * 65536)
    (snap / "space name.conf").write_text("listen_addresses = '*'\n")
    os.symlink("PG_VERSION", snap / "link")
    with open(snap / "sparse", "wb") as handle:
        handle.truncate(16 << 20)
        handle.write(b"end")
    if os.geteuid() == 0:
        os.chown(snap / "base", 70, 70)
        os.chown(snap / "PG_VERSION", 70, 70)
    directory = tmp_path / "daily-backups" / "postgres"
    directory.mkdir(parents=True)
    older = directory / "postgres_20261122T023000Z.tar.zst"
    archive(tmp_path, snap, older)
    older_digest = tree_digest(snap)
    (snap / "PG_VERSION").write_text("16\n")
    (snap / "new-file").write_bytes(os.urandom(1000))
    newer = directory / "postgres_20261123T023000Z.tar.zst"
    archive(tmp_path, snap, newer)
    return {
        "snap": snap,
        "older": older,
        "newer": newer,
        "older_digest": older_digest,
        "dir": tmp_path / "daily-backups",
    }


def test_archives_land_with_checksum_files_that_sha256sum_accepts(backups):
    directory = backups["newer"].parent
    names = sorted(os.listdir(directory))
    assert names == [
        "postgres_20261122T023000Z.tar.zst",
        "postgres_20261122T023000Z.tar.zst.sha256",
        "postgres_20261123T023000Z.tar.zst",
        "postgres_20261123T023000Z.tar.zst.sha256",
    ]
    check = subprocess.run(["sha256sum", "-c", *[n for n in names if n.endswith(".sha256")]], cwd=directory)
    assert check.returncode == 0


def test_restore_of_the_newest_archive_gives_back_the_same_bytes(backups, tmp_path):
    dest = tmp_path / "restored"
    result = restore(tmp_path, restore_lv="postgres", restore_backup_dir=str(backups["dir"]), restore_dest=str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restored %s" % backups["newer"] in result.stdout
    assert tree_digest(dest) == tree_digest(backups["snap"])


def test_restore_finds_the_archives_of_a_host_whose_warm_tier_is_elsewhere(backups, tmp_path):
    """No restore_backup_dir: the daily-backups directory comes from warm_tier_mount, said once."""
    dest = tmp_path / "restored"
    result = restore(tmp_path, restore_lv="postgres", warm_tier_mount=str(tmp_path), restore_dest=str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree_digest(dest) == tree_digest(backups["snap"])


def test_restore_of_a_named_older_archive(backups, tmp_path):
    dest = tmp_path / "restored-older"
    result = restore(tmp_path, restore_archive=str(backups["older"]), restore_dest=str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree_digest(dest) == backups["older_digest"]
    assert (dest / "PG_VERSION").read_text() == "15\n"


def test_a_corrupted_archive_is_refused_before_anything_is_written(backups, tmp_path):
    data = bytearray(backups["newer"].read_bytes())
    data[100] ^= 0x01
    backups["newer"].write_bytes(bytes(data))
    dest = tmp_path / "restored"
    result = restore(tmp_path, restore_lv="postgres", restore_backup_dir=str(backups["dir"]), restore_dest=str(dest))
    assert result.returncode != 0
    assert "does not match its checksum" in result.stdout
    assert os.listdir(dest) == []


def test_restore_refuses_a_non_empty_destination(backups, tmp_path):
    dest = tmp_path / "live"
    dest.mkdir()
    (dest / "PG_VERSION").write_text("14\n")
    result = restore(tmp_path, restore_archive=str(backups["newer"]), restore_dest=str(dest))
    assert result.returncode != 0 and "is not empty" in result.stdout
    assert (dest / "PG_VERSION").read_text() == "14\n"


def test_restore_without_an_archive_says_so(tmp_path):
    (tmp_path / "daily-backups" / "redis").mkdir(parents=True)
    result = restore(
        tmp_path,
        restore_lv="redis",
        restore_backup_dir=str(tmp_path / "daily-backups"),
        restore_dest=str(tmp_path / "r"),
    )
    assert result.returncode != 0 and "No archive redis_*.tar.zst in" in result.stdout


def test_restore_settings_are_checked(tmp_path):
    result = restore(tmp_path, restore_dest="relative/path", restore_lv="postgres")
    assert result.returncode != 0 and "Set restore_dest" in result.stdout


# --------------------------------------------------------------------------- issue 14 case 14: a killed run


def _open_in(pid, directory):
    """The files process ``pid`` has open in ``directory`` (an unnamed one reads '<dir>/#<inode> (deleted)')."""
    found = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith(str(directory) + "/"):
            found.append(target)
    return found


def test_a_run_killed_while_writing_leaves_nothing_for_the_backup_move(tmp_path):
    """kill -9 in the middle of an archive: nothing in daily-backups/<lv>/ for the move to the NAS to carry."""
    import signal
    import time

    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "base.dat").write_bytes(os.urandom(24 << 20))  # zstd -19, one thread: several seconds
    directory = tmp_path / "daily-backups" / "postgres"
    directory.mkdir(parents=True)
    path = directory / "postgres_20261123T023000Z.tar.zst"
    args = {"src": str(snap), "path": str(path), "compression_level": 19, "threads": 1}
    cmd, env = module_cmd("snapshot_archive", tmp_path, args)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and not _open_in(proc.pid, directory):
            time.sleep(0.02)
        writing = _open_in(proc.pid, directory) if proc.poll() is None else []
        assert writing, "the module never started writing: %r" % (proc.poll(),)
        time.sleep(0.5)
        assert proc.poll() is None, "the archive was written too fast to be interrupted"
        during = sorted(os.listdir(directory))  # what the backup move would see now
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    assert during == [], during
    assert sorted(os.listdir(directory)) == []
    # the next run writes the archive; nothing is left to clean
    cmd, env = module_cmd("snapshot_archive", tmp_path, {"src": str(snap), "path": str(path), "compression_level": 1})
    again = json.loads(subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=300).stdout)
    assert again["changed"] is True and again["cleaned_incomplete"] == [], again
    assert sorted(os.listdir(directory)) == [path.name, path.name + ".sha256"]
