"""The lab tool's own behaviour, without booting a VM (the Molecule run boots the real one)."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
spec = importlib.util.spec_from_file_location("jtslab", ROOT / "tools" / "lab.py")
lab = importlib.util.module_from_spec(spec)
sys.modules["jtslab"] = lab
spec.loader.exec_module(lab)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JTS_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("JTS_LAB_STATE", raising=False)
    return tmp_path / "cache"


def test_cache_and_state_locations_follow_the_environment(tmp_path, monkeypatch, cache):
    assert lab.image_dir() == cache / "images" / lab.image_key()
    assert lab.run_dir("a") == cache / "run" / "a"
    monkeypatch.setenv("JTS_LAB_STATE", str(tmp_path / "state"))
    assert lab.run_dir("a") == tmp_path / "state" / "a"


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
    leftover = cache / "images" / (".build-%s-killed" % lab.image_key())
    fake_image(leftover)  # a build killed with SIGKILL earlier
    with pytest.raises(lab.LabError, match="debootstrap failed"):
        lab.build()
    assert [p.name for p in (cache / "images").iterdir()] == [".build.lock"]


def test_forced_rebuild_refuses_while_a_vm_uses_the_image(monkeypatch, cache):
    image = fake_image(lab.image_dir())
    state_dir = lab.run_dir("busy")
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text(json.dumps({"image": str(image), "port": 1}))
    monkeypatch.setattr(lab, "qemu_pid", lambda d: 4242 if d == state_dir else None)
    monkeypatch.setattr(lab, "_build", lambda *a: pytest.fail("must not build over a running VM's base"))
    with pytest.raises(lab.LabError, match="in use by running VM\\(s\\) busy"):
        lab.build(force=True)
    assert lab.image_is_complete(image)


def test_rootfs_configuration(tmp_path, monkeypatch):
    chrooted = []
    monkeypatch.setattr(lab, "chroot", lambda rootfs, *cmd: chrooted.append(cmd))
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    lab.configure_rootfs(rootfs, "ssh-ed25519 AAAA jts-lab\n")
    fstab = (rootfs / "etc/fstab").read_text()
    nas_line = next(line.split() for line in fstab.splitlines() if line.startswith("LABEL=jts-nas"))
    assert nas_line[1:3] == ["/srv/nas", "ext4"]
    options = dict(o.partition("=")[::2] for o in nas_line[3].split(","))
    assert "nofail" in options
    # TCG's slow udev coldplug: a short device time-out leaves the NAS (and nfs-server) down
    assert int(options["x-systemd.device-timeout"].rstrip("s")) >= 60
    exports = (rootfs / "etc/exports").read_text().split()
    assert exports[0] == "/srv/nas"
    assert {"rw", "sync", "no_subtree_check", "no_root_squash"} <= set(exports[1].split("(")[1].rstrip(")").split(","))
    assert exports[1].startswith("127.0.0.1(")
    assert "DHCP=yes" in (rootfs / "etc/systemd/network/20-wired.network").read_text()
    keys = rootfs / "root/.ssh/authorized_keys"
    assert keys.read_text().startswith("ssh-ed25519") and oct(keys.stat().st_mode & 0o777) == "0o600"
    site = rootfs / "usr/lib/python3/dist-packages"
    assert (site / "jts-lab-zipimport-cache.pth").read_text() == "import jts_lab_zipimport_cache\n"
    assert (site / "jts_lab_zipimport_cache.py").read_bytes() == (TOOLS / "lab_zipimport_cache.py").read_bytes()
    sshd = (rootfs / "etc/ssh/sshd_config.d/jts-lab.conf").read_text()
    assert "PermitRootLogin prohibit-password" in sshd and "PasswordAuthentication no" in sshd
    assert ("systemctl", "enable", "systemd-networkd.service", "nfs-server.service") in chrooted
    assert (rootfs / "etc/hostname").read_text().strip() == "jts-lab"


def test_host_mirror_reads_deb822_and_one_line_sources(tmp_path, monkeypatch):
    real_path = lab.Path

    def fake_path(p):
        return real_path(str(p).replace("/etc/apt", str(tmp_path / "apt")))

    (tmp_path / "apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "apt/sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    )
    monkeypatch.setattr(lab, "Path", fake_path)
    assert lab.host_mirror() == "http://mirror.example/debian"
    (tmp_path / "apt/sources.list.d/debian.sources").unlink()
    (tmp_path / "apt/sources.list").write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert lab.host_mirror() == "http://other.example/debian"
    (tmp_path / "apt/sources.list").unlink()
    assert lab.host_mirror() == lab.DEFAULT_MIRROR


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


def _fake_qemu(state_dir: Path, code: str = "import time; time.sleep(300)") -> subprocess.Popen:
    """A process whose argv[0] ends in qemu-system-x86_64 and that names the state dir."""
    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs /usr/bin/python3 to impersonate QEMU")
    fake = state_dir.parent / "bin" / "qemu-system-x86_64"
    fake.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy("/usr/bin/python3", fake)
    proc = subprocess.Popen(
        [str(fake), "-c", code, "-pidfile", str(state_dir / "qemu.pid")],
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


def test_down_escalates_to_sigkill_when_qemu_ignores_sigterm(cache, monkeypatch, capsys):
    monkeypatch.setattr(lab, "TERM_GRACE", 0.5)
    state_dir = lab.run_dir("deaf")
    state_dir.mkdir(parents=True)
    proc = _fake_qemu(state_dir, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)")
    time.sleep(0.3)
    lab.down("deaf")
    proc.wait(timeout=5)  # down() may already have reaped it (it is our child here)
    assert not Path("/proc/%d" % proc.pid).exists()
    assert "sending SIGKILL" in capsys.readouterr().err
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


def test_down_never_kills_the_qemu_of_a_vm_with_a_longer_name(cache):
    """run/lab/ must not claim the QEMU of run/lab2/ (a recycled pid in a stale pidfile)."""
    other = lab.run_dir("t42")
    other.mkdir(parents=True)
    proc = _fake_qemu(other)
    try:
        mine = lab.run_dir("t4")
        mine.mkdir(parents=True)
        (mine / "qemu.pid").write_text("%d\n" % proc.pid)
        time.sleep(0.2)
        assert lab.qemu_pid(mine) is None
        lab.down("t4")
        assert proc.poll() is None
        assert lab.qemu_pid(other) == proc.pid
    finally:
        proc.kill()
        proc.wait()


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


# ---------------------------------------------------------------- up and down with a stand-in QEMU

FAKE_QEMU = r"""
import os, socket, sys, time
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
port = int(opt("-netdev").split("hostfwd=tcp:127.0.0.1:")[1].split("-")[0])
console = opt("-serial")[len("file:"):]
with open(opt("-pidfile"), "w") as f:
    f.write("%d\n" % os.getpid())
banner = os.environ.get("FAKE_QEMU_BANNER", "1") == "1"
with open(console, "w") as f:
    f.write("[    0.000000] Linux version 6.1.0-fake\n[   12.345678] Kernel panic - fake boot stuck\n")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(8)
while True:
    conn, _ = server.accept()
    if banner:
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    conn.close()
"""


@pytest.fixture
def fake_vm_tools(tmp_path, monkeypatch, cache):
    """qemu-system-x86_64 and ssh stand-ins on PATH; a complete cached image; real qemu-img and mkfs."""
    for tool in ("qemu-img", "mkfs.ext4", "bash"):
        if not shutil.which(tool):
            pytest.skip("%s missing" % tool)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "fake_qemu.py").write_text(FAKE_QEMU)
    qemu = bindir / "qemu-system-x86_64"
    # exec -a: /proc/<pid>/cmdline[0] reads qemu-system-x86_64, as lab.qemu_pid() demands
    qemu.write_text('#!/bin/bash\nexec -a qemu-system-x86_64 %s %s "$@"\n' % (sys.executable, bindir / "fake_qemu.py"))
    (bindir / "ssh").write_text('#!/bin/sh\necho "$@" >> %s\nexit 0\n' % (tmp_path / "ssh.log"))
    for script in (qemu, bindir / "ssh"):
        script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    real_sleep = time.sleep
    monkeypatch.setattr(lab.time, "sleep", lambda s: real_sleep(min(s, 0.1)))
    image = fake_image(lab.image_dir())
    (image / "base.qcow2").unlink()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image / "base.qcow2"), "64M"], check=True)
    return tmp_path


def _alive(pid: int) -> bool:
    try:
        return lab._is_zombie(pid) is False
    except OSError:
        return False


def test_up_then_down_leaves_no_process_port_or_file(fake_vm_tools, capsys):
    assert lab.main(["up", "--name", "e2e", "--data-disk", "--timeout", "20"]) == 0
    capsys.readouterr()
    assert lab.main(["status", "--name", "e2e", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["running"] is True
    pid, port = info["pid"], info["port"]
    assert _alive(pid)
    assert not lab.port_is_free(port)
    assert {d["role"] for d in info["disks"]} == {"root", "nas", "hot", "warm", "data"}
    assert len(info["data_disk"]["sha256"]) == 64
    state_dir = lab.run_dir("e2e")
    for name in ("root.qcow2", "nvme.qcow2", "sata.qcow2", "nas.img", "data.img", "inventory.yml"):
        assert (state_dir / name).is_file(), name
    overlay = subprocess.run(["qemu-img", "info", "--output=json", str(state_dir / "root.qcow2")], capture_output=True)
    assert json.loads(overlay.stdout)["backing-filename"].endswith("base.qcow2")
    assert lab.main(["inventory-path", "--name", "e2e"]) == 0
    assert capsys.readouterr().out.strip() == str(state_dir / "inventory.yml")
    assert "true" in (fake_vm_tools / "ssh.log").read_text()  # the login probe ran after the banner

    assert lab.main(["down", "--name", "e2e"]) == 0
    assert not _alive(pid)
    assert lab.port_is_free(port)
    assert not state_dir.exists()
    assert lab.main(["down", "--name", "e2e"]) == 0  # a second down is a no-op
    assert "nothing to do" in capsys.readouterr().err


def test_boot_time_out_kills_the_vm_and_shows_the_console(fake_vm_tools, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_QEMU_BANNER", "0")  # the port accepts, sshd never answers
    assert lab.main(["up", "--name", "stuck", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert "no SSH banner" in err
    assert "Kernel panic - fake boot stuck" in err  # the console-log tail
    assert not lab.run_dir("stuck").exists()
    stray = subprocess.run(["pgrep", "-f", str(lab.run_dir("stuck"))], capture_output=True, text=True)
    assert stray.stdout.strip() == ""


def test_up_twice_reuses_the_running_vm(fake_vm_tools):
    first = lab.up("again", data_disk=False, timeout=20)
    try:
        second = lab.up("again", data_disk=False, timeout=20)
        assert (second["port"], second["pid"]) == (first["port"], first["pid"])
    finally:
        lab.down("again")


# ---------------------------------------------------------------- smaller pieces


def test_free_port_skips_ports_other_lab_vms_claimed(monkeypatch, cache):
    taken = lab.free_port()
    other = lab.run_dir("other")
    other.mkdir(parents=True)
    (other / "state.json").write_text(json.dumps({"port": taken}))
    picks = iter([taken, taken + 1 if taken < 65535 else taken - 1])

    class FakeSocket:
        def __init__(self, *a):
            self.port = next(picks)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def bind(self, addr):
            pass

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(lab.socket, "socket", FakeSocket)
    assert lab.free_port() != taken


def test_down_signals_only_qemu_when_it_shares_our_process_group(cache, monkeypatch):
    """A QEMU that is not a group leader must not take its group (maybe pytest itself) down with it."""
    sent = []
    monkeypatch.setattr(lab.os, "getpgid", lambda pid: 4242)
    monkeypatch.setattr(lab.os, "killpg", lambda pgid, sig: sent.append(("killpg", pgid, sig)))
    monkeypatch.setattr(lab.os, "kill", lambda pid, sig: sent.append(("kill", pid, sig)))
    lab._signal_qemu(1234, lab.signal.SIGTERM)
    assert sent == [("kill", 1234, lab.signal.SIGTERM)]


def test_nas_outage_rule_drops_nfs_and_rpcbind_on_loopback():
    rules = lab.NAS_DROP_RULES
    assert "drop" in rules and "reject" not in rules
    for proto in ("tcp", "udp"):
        assert 'oifname "lo" %s dport { 111, 2049 } drop' % proto in rules


def running_vm(monkeypatch, name):
    """A VM ``name`` that lab.py takes for running: its state file (SSH to 127.0.0.1:2222) and QEMU's pid."""
    state_dir = lab.run_dir(name)
    state_dir.mkdir(parents=True)
    state = {"name": name, "address": "127.0.0.1", "port": 2222, "user": "root", "identity_file": "/k"}
    (state_dir / "state.json").write_text(json.dumps(state))
    monkeypatch.setattr(lab, "qemu_pid", lambda d: 99)


def test_nas_switch_runs_nft_in_the_vm(monkeypatch, cache):
    running_vm(monkeypatch, "n1")
    calls = []

    def fake_run(cmd, **kw):
        calls.append((cmd, kw.get("input")))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(lab.subprocess, "run", fake_run)
    lab.nas("n1", "down")
    assert calls[-1][0][-1] == "nft -f -" and calls[-1][1] == lab.NAS_DROP_RULES
    calls.clear()
    lab.nas("n1", "up")
    assert [c[0][-1] for c in calls] == ["nft delete table inet jtslab"]


def test_ssh_passes_the_command_after_the_separator(monkeypatch, cache):
    running_vm(monkeypatch, "s1")
    seen = []
    monkeypatch.setattr(lab.subprocess, "call", lambda cmd: seen.append(cmd) or 3)
    assert lab.main(["ssh", "--name", "s1", "--", "ls", "--", "-x y"]) == 3
    assert seen[0][-1] == "ls -- '-x y'"
    assert "UserKnownHostsFile=/dev/null" in seen[0] and "127.0.0.1" in seen[0][-2]


# ---------------------------------------------------------------- the real VM (JTS_LAB_E2E=1)


@pytest.mark.vm
@pytest.mark.skipif(os.environ.get("JTS_LAB_E2E") != "1", reason="boots the real lab VM: set JTS_LAB_E2E=1")
def test_real_vm_boots_with_nvme_and_sata_and_tears_down_cleanly(monkeypatch):
    monkeypatch.setenv("JTS_LAB_CACHE", os.environ.get("JTS_LAB_REAL_CACHE", str(Path.home() / ".cache" / "jts-lab")))
    name = "pytest-e2e-%d" % os.getpid()
    tool = [sys.executable, str(ROOT / "tools" / "lab.py")]
    subprocess.run([*tool, "build"], check=True)
    try:
        subprocess.run([*tool, "up", "--name", name], check=True)
        info = json.loads(
            subprocess.run([*tool, "status", "--name", name, "--json"], check=True, capture_output=True).stdout
        )
        assert subprocess.run([*tool, "ssh", "--name", name, "--", "true"]).returncode == 0
        out = subprocess.run(
            [*tool, "ssh", "--name", name, "--", "lsblk", "--json", "--nodeps", "-o", "NAME,ROTA,TRAN"],
            check=True,
            capture_output=True,
        ).stdout
        devices = {d["name"]: d for d in json.loads(out)["blockdevices"]}
        assert devices["nvme0n1"]["rota"] in (False, "0") and devices["nvme0n1"]["tran"] == "nvme"
        assert devices["sda"]["tran"] == "sata"
    finally:
        subprocess.run([*tool, "down", "--name", name], check=True)
    assert not _alive(info["pid"])
    assert lab.port_is_free(info["port"])
    assert not (Path(info["state_dir"])).exists()


def _import_from_zip(tmp_path, cache_dir, source):
    """Run a fresh Python with the zipimport cache that imports a module from a zip; return its output."""
    archive = tmp_path / "payload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload_mod.py", source)
    script = (
        "import sys; sys.path.insert(0, %r); import lab_zipimport_cache; sys.path.insert(0, %r); "
        "import payload_mod; print(payload_mod.VALUE)" % (str(TOOLS), str(archive))
    )
    env = dict(os.environ, JTS_LAB_ZIPIMPORT_CACHE=str(cache_dir))
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout


def test_zipimport_cache_reuses_bytecode_and_follows_source_changes(tmp_path):
    cache_dir = tmp_path / "cache"
    assert _import_from_zip(tmp_path, cache_dir, "VALUE = 41 + 1\n") == "42\n"
    entries = list(cache_dir.iterdir()) if cache_dir.exists() else []
    if os.geteuid() != 0:
        assert entries == []  # only root writes the cache
        return
    assert len(entries) == 1 and not entries[0].name.endswith(".tmp")
    # the next import loads the entry instead of compiling: swap its code and see it run
    entries[0].write_bytes(marshal.dumps(compile("VALUE = 'from the cache'", "payload_mod.py", "exec")))
    assert _import_from_zip(tmp_path, cache_dir, "VALUE = 41 + 1\n") == "from the cache\n"
    # an entry others could have written is not trusted
    entries[0].chmod(0o666)
    assert _import_from_zip(tmp_path, cache_dir, "VALUE = 41 + 1\n") == "42\n"
    # a corrupt entry is compiled again, not trusted
    entries[0].write_bytes(b"not marshal data")
    assert _import_from_zip(tmp_path, cache_dir, "VALUE = 41 + 1\n") == "42\n"
    # other source, other entry: a cached compile never stands in for changed code
    assert _import_from_zip(tmp_path, cache_dir, "VALUE = 'changed'\n") == "changed\n"
    assert len(list(cache_dir.iterdir())) == 2


def test_zipimport_cache_falls_back_when_the_cache_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    assert _import_from_zip(tmp_path, blocker / "cache", "VALUE = 7\n") == "7\n"


def test_make_lab_asks_for_the_inventory_after_the_vm_is_up(cache):
    """`make lab` on a fresh machine: no VM yet when make expands the recipe.

    A make variable for the inventory path was expanded before `up` ran, so the playbooks got
    ``-i ""`` and parsed the whole checkout as an inventory. The recipe must ask the shell, after
    `up`, and give every playbook the same path.
    """
    result = subprocess.run(
        ["make", "-n", "lab", "LAB_NAME=never-booted-%d" % os.getpid()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout
    assert '-i ""' not in text and "-i ''" not in text
    up = text.index("tools/lab.py up --name never-booted")
    asked = text.index("tools/lab.py inventory-path --name never-booted")
    site = text.index("playbooks/site.yml")
    nightly = text.index("playbooks/lifecycle.yml")
    assert up < asked < site < nightly
    assert text.count('-i "$inv"') == 2
    assert "jts-storage-check" in text


def test_make_test_builds_the_lab_image_beside_the_functional_layer():
    """The image build (2-3 min) overlaps the functional layer instead of delaying Molecule.

    It starts after the Debian packages it needs (debootstrap) are there, detached from make's
    terminal, and before the functional tests; Molecule's create waits on lab.py's build lock.
    """
    result = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True)
    text = result.stdout
    deps = text.index("Installing Debian packages")
    build = text.index("tools/lab.py build")
    functional = text.index("pytest -q -n")
    molecule = text.index("molecule test --scenario-name default")
    assert deps < build < functional < molecule
    line = next(line for line in text.splitlines() if "tools/lab.py build" in line)
    assert line.rstrip().endswith("&") and "< /dev/null" in line and "nohup" in line
