"""The lab tool's own behaviour, without booting a VM (the Molecule run boots the real one)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("jtslab", ROOT / "tools" / "lab.py")
lab = importlib.util.module_from_spec(spec)
sys.modules["jtslab"] = lab
spec.loader.exec_module(lab)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JTS_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_image(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in lab.IMAGE_FILES:
        (path / name).write_text("x")
    return path


# ---------------------------------------------------------------- image cache


def test_key_follows_the_package_list_and_recipe():
    base = lab.image_key()
    assert base == lab.image_key()
    assert lab.image_key(packages=(*lab.PACKAGES, "htop")) != base
    assert lab.image_key(recipe="other") != base
    assert lab.image_key(packages=tuple(reversed(lab.PACKAGES))) == base  # order does not matter


def test_complete_image_is_a_cache_hit(monkeypatch, capsys):
    fake_image(lab.image_dir())
    monkeypatch.setattr(lab, "run", lambda *a, **k: pytest.fail("a cache hit must run nothing"))
    assert lab.build() == lab.image_dir()
    assert "build skipped" in capsys.readouterr().err


def test_incomplete_image_is_not_a_hit(cache):
    partial = fake_image(lab.image_dir())
    (partial / "base.qcow2").unlink()
    assert not lab.image_is_complete(partial)
    leftover = cache / "images" / (".build-%s-xyz" % lab.image_key())
    fake_image(leftover)  # a killed build's temp dir never counts
    assert not lab.image_is_complete(lab.image_dir())


def test_failed_build_leaves_no_image_and_no_temp_dir(monkeypatch, cache):
    if os.geteuid() != 0:
        pytest.skip("build() refuses to run without root")
    monkeypatch.setattr(lab.shutil, "which", lambda tool: "/usr/bin/" + tool)

    def failing_run(cmd, check=True, **kwargs):
        if cmd[0] == "debootstrap":
            raise lab.LabError("debootstrap failed")
        if cmd[0] == "ssh-keygen":
            Path(str(cmd[-1])).write_text("key")
            Path(str(cmd[-1]) + ".pub").write_text("key.pub")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(lab, "run", failing_run)
    with pytest.raises(lab.LabError, match="debootstrap failed"):
        lab.build()
    assert list((cache / "images").iterdir()) == []


# ---------------------------------------------------------------- qemu command


def test_qemu_command_has_the_lab_hardware(tmp_path):
    cmd = lab.qemu_command(tmp_path / "img", tmp_path / "run", 2222, data_disk=True)
    joined = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert "-machine q35" in joined
    assert "-accel tcg,thread=multi" in joined
    assert "-device nvme,serial=jtsnvme0,drive=nvme0" in joined
    assert "-device ahci,id=ahci" in joined
    assert "ide-hd,bus=ahci.0,drive=sata0,serial=JTSSATA0" in joined
    assert "ide-hd,bus=ahci.1,drive=data0,serial=JTSDATA0" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined  # SSH only on loopback
    assert "-pidfile" in cmd
    assert "enable-kvm" not in joined


def test_no_data_disk_unless_asked(tmp_path):
    assert "JTSDATA0" not in " ".join(lab.qemu_command(tmp_path, tmp_path, 2222, data_disk=False))


def test_free_port_is_bindable():
    port = lab.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# ---------------------------------------------------------------- waiting for SSH


def _server(banner_after: float | None):
    """Accept connections; send the OpenSSH banner only after `banner_after` seconds (None: never)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    started = time.monotonic()

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if banner_after is not None and time.monotonic() - started >= banner_after:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_banner_read_distinguishes_open_port_from_sshd():
    server, port = _server(banner_after=None)
    try:
        assert lab.read_banner(port, timeout=0.5) == ""
    finally:
        server.close()
    server, port = _server(banner_after=0)
    try:
        assert lab.read_banner(port, timeout=2).startswith("SSH-2.0-OpenSSH")
    finally:
        server.close()


def test_wait_for_ssh_times_out_with_console_tail(tmp_path, monkeypatch):
    server, port = _server(banner_after=None)
    (tmp_path / "console.log").write_text("line %d\n" * 3 % (1, 2, 3) + "Kernel panic - not syncing\n")
    monkeypatch.setattr(lab.time, "sleep", lambda s: None)
    state = {"port": port, "identity_file": "k", "user": "root", "address": "127.0.0.1"}
    try:
        with pytest.raises(lab.LabError) as exc:
            lab.wait_for_ssh(state, tmp_path, timeout=1.5, is_alive=lambda: True)
    finally:
        server.close()
    message = str(exc.value)
    assert "no SSH banner" in message
    assert "Kernel panic - not syncing" in message


def test_wait_for_ssh_logs_in_after_the_banner(tmp_path, monkeypatch):
    server, port = _server(banner_after=0.3)
    calls = []
    real_sleep = time.sleep
    monkeypatch.setattr(lab.time, "sleep", lambda s: real_sleep(0.05))
    monkeypatch.setattr(
        lab.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, b"", b"")
    )
    state = {"port": port, "identity_file": "k", "user": "root", "address": "127.0.0.1"}
    try:
        lab.wait_for_ssh(state, tmp_path, timeout=10, is_alive=lambda: True)
    finally:
        server.close()
    assert calls and calls[0][0] == "ssh" and calls[0][-1] == "true"


def test_wait_for_ssh_reports_a_dead_vm(tmp_path):
    (tmp_path / "console.log").write_text("qemu died\n")
    with pytest.raises(lab.LabError, match="exited during boot"):
        lab.wait_for_ssh({"port": 1}, tmp_path, timeout=5, is_alive=lambda: False)


# ---------------------------------------------------------------- teardown


def _fake_qemu(state_dir: Path) -> subprocess.Popen:
    """A process whose argv[0] ends in qemu-system-x86_64 and that names the state dir."""
    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs /usr/bin/python3 to impersonate QEMU")
    fake = state_dir.parent / "bin" / "qemu-system-x86_64"
    fake.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy("/usr/bin/python3", fake)
    proc = subprocess.Popen(
        [str(fake), "-c", "import time; time.sleep(300)", "-pidfile", str(state_dir / "qemu.pid")],
        start_new_session=True,
    )
    (state_dir / "qemu.pid").write_text("%d\n" % proc.pid)
    return proc


def test_down_kills_our_qemu_and_leaves_nothing(cache):
    state_dir = lab.run_dir("t1")
    state_dir.mkdir(parents=True)
    proc = _fake_qemu(state_dir)
    time.sleep(0.2)
    assert lab.qemu_pid(state_dir) == proc.pid
    assert lab.down("t1") is True
    assert proc.wait(timeout=5) is not None
    assert not state_dir.exists()


def test_down_after_a_crash_of_the_tool_uses_the_pidfile(cache):
    state_dir = lab.run_dir("t2")
    state_dir.mkdir(parents=True)
    proc = _fake_qemu(state_dir)  # no state.json: the tool died right after starting QEMU
    time.sleep(0.2)
    lab.down("t2")
    assert proc.wait(timeout=5) is not None
    assert not state_dir.exists()


def test_down_never_kills_a_stranger_with_a_stale_pid(cache):
    state_dir = lab.run_dir("t3")
    state_dir.mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "300"])
    (state_dir / "qemu.pid").write_text("%d\n" % stranger.pid)
    try:
        assert lab.qemu_pid(state_dir) is None
        lab.down("t3")
        assert stranger.poll() is None, "a process that is not our QEMU must survive"
        assert not state_dir.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_down_is_a_no_op_when_nothing_runs(capsys):
    assert lab.down("never-started") is False
    assert "nothing to do" in capsys.readouterr().err


# ---------------------------------------------------------------- inventory and CLI


def test_inventory_names_host_group_and_key(tmp_path):
    state = {"name": "lab", "address": "127.0.0.1", "port": 2345, "user": "root", "identity_file": "/k/id"}
    text = lab.write_inventory(state, tmp_path).read_text()
    import yaml

    data = yaml.safe_load(text)
    host = data["storage_hosts"]["hosts"]["jts-lab"]
    assert host["ansible_port"] == 2345
    assert host["ansible_ssh_private_key_file"] == "/k/id"
    assert "StrictHostKeyChecking=no" in host["ansible_ssh_common_args"]


def test_status_json_when_nothing_runs(capsys):
    assert lab.main(["status", "--name", "none", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["running"] is False
    assert info["image_key"] == lab.image_key()


def test_commands_that_need_a_vm_say_how_to_start_it(capsys):
    assert lab.main(["ssh", "--name", "none", "--", "true"]) == 1
    assert "tools/lab.py up --name none" in capsys.readouterr().err


def test_data_disk_holds_the_known_file(tmp_path):
    if not lab.shutil.which("mkfs.ext4") or not lab.shutil.which("debugfs"):
        pytest.skip("e2fsprogs missing")
    digest = lab.make_data_disk(tmp_path)
    out = subprocess.run(
        ["debugfs", "-R", "cat /%s" % lab.DATA_FILE, str(tmp_path / "data.img")], capture_output=True, check=True
    ).stdout
    import hashlib

    assert hashlib.sha256(out).hexdigest() == digest
