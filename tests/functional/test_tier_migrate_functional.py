"""Functional tests for tier_migrate: the real module, run as Ansible would, between loop-mounted filesystems.

Each test builds small ext4/btrfs images on loop devices (root only), runs
``python plugins/modules/tier_migrate.py args.json`` and checks the files byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "modules" / "tier_migrate.py"
DAY = 86400

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts"),
    pytest.mark.skipif(shutil.which("losetup") is None, reason="needs util-linux losetup"),
]


class LoopFs:
    def __init__(self, base, name, size_mb, fstype="ext4"):
        self.image = base / (name + ".img")
        self.mount = base / name
        self.mount.mkdir()
        with open(self.image, "wb") as handle:
            handle.truncate(size_mb << 20)
        self.loop = subprocess.run(
            ["losetup", "--find", "--show", str(self.image)], check=True, capture_output=True, text=True
        ).stdout.strip()
        mkfs = {"ext4": ["mkfs.ext4", "-q", "-F", "-m", "0"], "btrfs": ["mkfs.btrfs", "-q", "-f"]}[fstype]
        subprocess.run([*mkfs, self.loop], check=True, capture_output=True)
        subprocess.run(["mount", self.loop, str(self.mount)], check=True)

    def close(self):
        subprocess.run(["umount", "-l", str(self.mount)], check=False)
        subprocess.run(["losetup", "-d", self.loop], check=False)


@pytest.fixture
def loopfs(tmp_path):
    made = []

    def make(name, size_mb=64, fstype="ext4"):
        fs = LoopFs(tmp_path, name, size_mb, fstype)
        made.append(fs)
        return fs.mount

    yield make
    for fs in reversed(made):
        fs.close()


def run_tm(tmp_path, args, check_mode=False, timeout=120):
    args = dict(args)
    args.setdefault("settle_time", "0")
    args.setdefault("lock_dir", str(tmp_path / "locks"))
    if check_mode:
        args["_ansible_check_mode"] = True
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".collections"))
    proc = subprocess.run(
        [sys.executable, str(MODULE), str(path)], capture_output=True, env=env, timeout=timeout, check=False
    )
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail("module printed no JSON (rc=%d): %s %s" % (proc.returncode, proc.stdout, proc.stderr))


def old_file(path, data, days=10):
    path = os.fsencode(str(path)) if not isinstance(path, bytes) else path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    when = time.time() - days * DAY
    os.utime(path, (when, when))


def tree_hashes(root, skip_state=True):
    """{relative bytes path: sha256} of every regular file under root."""
    out = {}
    root = os.fsencode(str(root))
    for dirpath, dirs, files in os.walk(root):
        if skip_state and b".jts-migrate" in dirs:
            dirs.remove(b".jts-migrate")
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            with open(p, "rb") as handle:
                out[os.path.relpath(p, root)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def temp_files(root):
    return [
        os.path.join(d, n)
        for d, _dirs, files in os.walk(os.fsencode(str(root)))
        for n in files
        if n.startswith(b".jts-migrate-")
    ]


def test_move_compressed_keeps_everything_and_undo_restores_it(tmp_path, loopfs):
    src, dst = loopfs("hot"), loopfs("warm", 128, "btrfs")
    outside = tmp_path / "outside"
    old_file(outside / "secret.log", b"not ours")
    old_file(src / "app" / "a.log", os.urandom(200_000))
    old_file(src / "app" / "with space\nand newline.log", b"line\n" * 1000)
    old_file(os.path.join(os.fsencode(str(src)), b"app/caf\xe9-latin1.log"), b"bytes name")
    old_file(src / "app" / "young.log", b"new", days=0)
    old_file(src / "app" / "already.log.gz", b"\x1f\x8b already compressed")
    os.chown(src / "app" / "a.log", 1234, 4321)
    os.chmod(src / "app" / "a.log", 0o640)
    (src / "app" / "link-out").symlink_to(outside)
    (src / "app" / "link-file.log").symlink_to(outside / "secret.log")
    before = tree_hashes(src)
    st_a = os.stat(src / "app" / "a.log")
    (dst / "logs").mkdir()

    result = run_tm(tmp_path, {"source": str(src), "destination": str(dst / "logs"), "compression": "zstd"})
    assert result.get("failed") is not True, result
    assert (result["moved"], result["failed_count"]) == (4, 0)
    assert result["selection_skipped"]["symlink (not followed)"] == 2
    assert result["selection_skipped"]["too young"] == 1
    assert sorted(os.listdir(src / "app")) == ["link-file.log", "link-out", "young.log"]
    placed = os.listdir(os.fsencode(str(dst / "logs" / "app")))
    assert sorted(placed) == sorted(
        [b"a.log.zst", b"with space\nand newline.log.zst", b"caf\xe9-latin1.log.zst", b"already.log.gz"]
    )
    st = os.stat(dst / "logs" / "app" / "a.log.zst")
    assert (st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns) == (1234, 4321, st_a.st_mode, st_a.st_mtime_ns)
    assert (outside / "secret.log").read_bytes() == b"not ours"
    assert temp_files(dst) == []

    again = run_tm(tmp_path, {"source": str(src), "destination": str(dst / "logs"), "compression": "zstd"})
    assert again["changed"] is False and again["moved"] == 0

    undo = run_tm(
        tmp_path,
        {"source": str(src), "destination": str(dst / "logs"), "state": "rolled_back", "run_id": result["run_id"]},
    )
    assert undo.get("failed") is not True, undo
    assert undo["rolled_back"] == 4
    assert tree_hashes(src) == before
    assert os.stat(src / "app" / "a.log").st_uid == 1234
    assert tree_hashes(dst / "logs") == {}


def test_destination_full_mid_run_loses_nothing(tmp_path, loopfs):
    src, dst = loopfs("src", 96), loopfs("tiny", 16)
    for i in range(24):
        old_file(src / ("f%02d.bin" % i), os.urandom(1 << 20), days=10 + i)
    before = tree_hashes(src)
    result = run_tm(tmp_path, {"source": str(src), "destination": str(dst), "check_space": False, "batch_files": 4})
    assert result["failed"] is True
    assert "is full" in result["msg"] and "stay at the source" in result["msg"]
    assert 0 < result["moved"] < 24
    after_src, after_dst = tree_hashes(src), tree_hashes(dst)
    assert not set(after_src) & set(after_dst)
    assert {**after_src, **after_dst} == before
    assert temp_files(dst) == []


def test_space_preflight_refuses_before_anything_moves(tmp_path, loopfs):
    src, dst = loopfs("src", 96), loopfs("tiny", 16)
    for i in range(24):
        old_file(src / ("f%02d.bin" % i), os.urandom(1 << 20))
    result = run_tm(tmp_path, {"source": str(src), "destination": str(dst)})
    assert result["failed"] is True and "do not fit; nothing was moved" in result["msg"]
    assert len(os.listdir(src)) == 25  # 24 files + lost+found
    assert tree_hashes(dst) == {}


def test_kill_9_mid_run_then_rerun_finishes_without_duplicates(tmp_path, loopfs):
    src, dst = loopfs("src", 160), loopfs("dst", 160)
    for i in range(400):
        old_file(src / ("d%d" % (i % 8)) / ("f%03d.dat" % i), os.urandom(4096 + i * 97))
    for i in range(3):
        old_file(src / "big" / ("b%d.bin" % i), os.urandom(16 << 20))
    before = tree_hashes(src)
    args = {"source": str(src), "destination": str(dst), "batch_files": 5, "lock_dir": str(tmp_path / "locks")}
    args["settle_time"] = "0"
    path = tmp_path / "kill.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".collections"))
    proc = subprocess.Popen(
        [sys.executable, str(MODULE), str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    journal = dst / ".jts-migrate" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    mid_src, mid_dst = tree_hashes(src), tree_hashes(dst)
    assert mid_src, "nothing left at the source: the kill came too late to test anything"
    # Every file is at the source or complete at the destination (perhaps both), never damaged.
    for rel, digest in before.items():
        assert mid_src.get(rel) == digest or mid_dst.get(rel) == digest, rel
    result = run_tm(tmp_path, args)
    assert result.get("failed") is not True, result
    assert tree_hashes(src) == {}
    assert tree_hashes(dst) == before
    assert temp_files(dst) == []


def test_file_appended_during_copy_is_kept_at_the_source(tmp_path, loopfs):
    src, dst = loopfs("src", 160), loopfs("dst", 160)
    growing = src / "growing.log"
    old_file(growing, os.urandom(48 << 20))
    old_file(src / "quiet.log", b"quiet")
    when = time.time() - 10 * DAY
    stop = threading.Event()
    appended = []

    def writer():
        # Start appending once the copy has begun (a temporary file shows up): appending any
        # earlier would make the file merely "too young" at selection, which is not this test.
        while not stop.is_set() and not temp_files(dst):
            time.sleep(0.0002)
        while not stop.is_set():
            with open(growing, "ab") as handle:
                handle.write(b"x")
            appended.append(1)
            os.utime(growing, (when, when))  # still looks old: only the copy-time check can catch it
            time.sleep(0.001)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        result = run_tm(tmp_path, {"source": str(src), "destination": str(dst)})
    finally:
        stop.set()
        thread.join(10)
    assert result.get("failed") is not True, result
    assert result["moved"] == 1 and (dst / "quiet.log").read_bytes() == b"quiet"
    reasons = {f["path"]: f["reason"] for f in result["skipped_files"]}
    assert "changed" in reasons[str(growing)]
    assert growing.stat().st_size == (48 << 20) + len(appended)
    assert not (dst / "growing.log").exists()
    assert temp_files(dst) == []


def test_unmounted_destination_is_refused(tmp_path, loopfs):
    src = loopfs("src")
    old_file(src / "a.log", b"a")
    mount_point = tmp_path / "nas"  # an empty mount point on the root filesystem: the NAS is absent
    mount_point.mkdir()
    if os.stat(mount_point).st_dev != os.stat("/").st_dev:
        pytest.skip("the temporary directory is not on the root filesystem here")
    result = run_tm(tmp_path, {"source": str(src), "destination": str(mount_point)})
    assert result["failed"] is True and "not on a mounted filesystem" in result["msg"]
    result = run_tm(tmp_path, {"source": str(src), "destination": str(src.parent), "require_mounted": False})
    assert result["failed"] is True and "is inside destination" in result["msg"]
    dst = loopfs("dst")
    result = run_tm(tmp_path, {"source": str(src), "destination": str(dst), "destination_mount": str(mount_point)})
    assert result["failed"] is True and "is expected to be a mount point" in result["msg"]
    assert (src / "a.log").read_bytes() == b"a"
    assert tree_hashes(mount_point) == {}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"source": "relative/src"}, "is not an absolute path"),
        ({"older_than": "7x"}, "older_than: '7x' is not an age"),
        ({"destination": "INSIDE"}, "is inside source"),
    ],
)
def test_bad_input_refused_before_anything_moves(tmp_path, loopfs, override, message):
    src, dst = loopfs("src"), loopfs("dst")
    old_file(src / "sub" / "a.log", b"a")
    args = {"source": str(src), "destination": str(dst)}
    args.update(override)
    if args["destination"] == "INSIDE":
        args["destination"] = str(src / "sub")
    result = run_tm(tmp_path, args)
    assert result["failed"] is True and message in result["msg"]
    assert (src / "sub" / "a.log").read_bytes() == b"a"


def test_bind_mount_overlap_is_refused(tmp_path, loopfs):
    src = loopfs("src")
    (src / "inner").mkdir()
    alias = tmp_path / "alias"
    alias.mkdir()
    subprocess.run(["mount", "--bind", str(src / "inner"), str(alias)], check=True)
    try:
        result = run_tm(tmp_path, {"source": str(src), "destination": str(alias)})
    finally:
        subprocess.run(["umount", str(alias)], check=False)
    assert result["failed"] is True and "bind mount or link" in result["msg"]


def test_second_run_is_locked(tmp_path, loopfs):
    src, dst = loopfs("src"), loopfs("dst")
    old_file(src / "a.log", b"a")
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_runs
    from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate import build_policy

    policy = build_policy({"source": str(src), "destination": str(dst), "lock_dir": str(tmp_path / "locks")})
    with _migrate_runs.lock(policy, policy.source, policy.dest):
        result = run_tm(tmp_path, {"source": str(src), "destination": str(dst)})
    assert result["failed"] is True and result["locked"] is True and "in use by another run" in result["msg"]
    assert (src / "a.log").exists()


def test_check_mode_lists_and_changes_nothing(tmp_path, loopfs):
    src, dst = loopfs("src"), loopfs("dst")
    old_file(src / "a.log", b"abc")
    result = run_tm(tmp_path, {"source": str(src), "destination": str(dst)}, check_mode=True)
    assert result["changed"] is True and result["moved"] == 1 and result["moved_bytes"] == 3
    assert (src / "a.log").exists() and tree_hashes(dst) == {}
    assert not (dst / ".jts-migrate").exists()


def test_benchmark_quick_smoke(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_tier_migrate.py"), "--quick", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tier_migrate (verified move)" in proc.stdout
    assert "C: zstd size / gzip -6 size" in proc.stdout
    assert subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout.count(str(tmp_path)) == 0


def run_migrate_step(tmp_path, moves, check=False):
    """The lifecycle role's migrate step (tasks_from: migrate) against localhost."""
    bin_dir = Path(sys.executable).parent
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Run the migrate step\n      ansible.builtin.include_role:\n"
        "        name: jts.tiered_storage.lifecycle\n        tasks_from: migrate\n"
    )
    variables = {
        "lifecycle_migrate_moves": moves,
        "lifecycle_migrate_settle_time": "0",
        "lifecycle_migrate_min_free": "0",
        "ansible_python_interpreter": sys.executable,
    }
    cmd = [str(bin_dir / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables), str(play)]
    if check:
        cmd.append("--check")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)


def flat(text):
    """Ansible's YAML callback folds long messages: compare with whitespace collapsed."""
    return " ".join(text.split())


def test_lifecycle_migrate_step(tmp_path, loopfs):
    hot, warm = loopfs("hot"), loopfs("warm")
    old_file(hot / "logs" / "app.log", b"old log line\n" * 1000)
    old_file(hot / "logs" / "today.log", b"new\n", days=0)
    absent_nas = tmp_path / "nas"
    absent_nas.mkdir()
    moves = [
        {
            "name": "logs",
            "source": str(hot / "logs"),
            "destination": str(warm / "logs"),
            "destination_mount": str(warm),
            "older_than": "7d",
            "compression": "zstd",
        },
        {"name": "missing", "source": str(tmp_path / "none"), "destination": str(warm / "x"), "older_than": "1d"},
        {
            "name": "backups to an absent NAS",
            "source": str(hot / "logs"),
            "destination": str(absent_nas / "archives"),
            "destination_mount": str(absent_nas),
            "older_than": "1d",
        },
    ]
    checked = run_migrate_step(tmp_path, moves, check=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "logs: would create %s" % (warm / "logs") in flat(checked.stdout)
    assert (hot / "logs" / "app.log").exists() and not (warm / "logs").exists()
    result = run_migrate_step(tmp_path, moves)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "logs: moved 1 file(s), 13000 bytes" in flat(result.stdout)
    assert "Migration missing skipped: %s does not exist" % (tmp_path / "none") in flat(result.stdout)
    assert "Migration backups to an absent NAS skipped: %s is not mounted" % absent_nas in flat(result.stdout)
    assert not (hot / "logs" / "app.log").exists() and (hot / "logs" / "today.log").exists()
    assert (warm / "logs" / "app.log.zst").exists()
    assert not (absent_nas / "archives").exists()
    again = run_migrate_step(tmp_path, moves)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout
    old_file(hot / "logs" / "late.log", b"late\n")
    checked = run_migrate_step(tmp_path, moves, check=True)
    assert checked.returncode == 0 and "logs: would move 1 file(s), 5 bytes" in flat(checked.stdout), checked.stdout
    assert (hot / "logs" / "late.log").exists()
    bad = [*moves, {"name": "overlap", "source": str(warm), "destination": str(warm / "logs"), "older_than": "1d"}]
    failed = run_migrate_step(tmp_path, bad)  # a move that fails: reported, the others go on, the step fails
    assert failed.returncode != 0
    assert "logs: moved 1 file(s), 5 bytes" in flat(failed.stdout), failed.stdout
    assert "overlap: FAILED: destination %s is inside source" % (warm / "logs") in flat(failed.stdout), failed.stdout
    assert "Migration failed for overlap" in flat(failed.stdout)
