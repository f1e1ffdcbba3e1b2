#!/usr/bin/env python3
"""jts-lab: a throw-away Debian 12 VM with an NVMe disk, a SATA disk and an NFS "NAS".

The lab is where jts.tiered_storage meets real block devices: this machine's kernel has no
device-mapper, so LVM, real mounts, systemd timers and NFS are exercised inside QEMU (TCG).

  build   build the VM image once (debootstrap), cached outside the checkout, keyed by its recipe
  up      boot a VM from a throw-away overlay; wait for SSH; write an Ansible inventory
  ssh     log in, or run a command (after --)
  status  is it running, on which port, with which disks (--json for machines)
  nas     take the NAS away (packets to NFS dropped, so hard mounts hang) or bring it back
  console print the VM's console log
  down    stop the VM and remove its state; safe after a crash of this tool, a no-op if none runs
  inventory-path  print the path of the generated inventory

Images live in ${JTS_LAB_CACHE:-~/.cache/jts-lab}/images/<key>/ (kernel, initrd and SSH key next to
them); one VM's overlay, disks, console log, pid and state in ${JTS_LAB_STATE:-<cache>/run}/<name>/.
See docs/lab.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE_VERSION = "6"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "openssh-server",
    "python3",
    "python3-apt",
    "lvm2",
    "btrfs-progs",
    "xfsprogs",
    "e2fsprogs",
    "nfs-kernel-server",
    "nfs-common",
    "rsync",
    "zstd",
    "nftables",
    "util-linux",
    "procps",
    # playbooks/benchmark.yml's tool (the Molecule step runs it; the VM needs no mirror then)
    "fio",
    # a real PostgreSQL for the Molecule step that takes an application-consistent snapshot of a
    # cluster on the postgres LV while it is written, and restores and starts it (issue 16)
    "postgresql-15",
    "ansible-core",
    # debootstrap does not resolve virtual packages: python3-cryptography (for ansible-core)
    # needs python3-cffi-backend-api-*, which only python3-cffi-backend provides.
    "python3-cffi-backend",
    "ca-certificates",
)
ROOT_IMAGE_SIZE = "3G"
NVME_SIZE = "8G"
SATA_SIZE = "4G"
NAS_SIZE = 2 * 1024**3
DATA_DISK_SIZE = "256M"
# TCG CPU model, overridable with JTS_LAB_CPU (qemu64 measured no faster than max here).
DEFAULT_CPU = "max"
DATA_FILE = "precious.txt"
VM_USER = "root"
HOSTNAME = "jts-lab"
INVENTORY_HOST = "jts-lab"
DEFAULT_BOOT_TIMEOUT = 300
TERM_GRACE = 10  # seconds QEMU gets to exit on SIGTERM before SIGKILL


def log(message: str) -> None:
    print("%s jts-lab: %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)


class LabError(RuntimeError):
    """A failure the user can act on; the message says what happened and what to do."""


# --------------------------------------------------------------------------- paths and keys


def cache_root() -> Path:
    return Path(os.environ.get("JTS_LAB_CACHE", Path.home() / ".cache" / "jts-lab"))


def image_key(packages=PACKAGES, suite=SUITE, recipe=RECIPE_VERSION) -> str:
    """The image cache key: changes when the package list, the suite, the recipe or a file it copies changes."""
    copied = hashlib.sha256(Path(__file__).with_name("lab_zipimport_cache.py").read_bytes()).hexdigest()
    material = json.dumps(
        {"packages": sorted(packages), "suite": suite, "recipe": recipe, "files": copied}, sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def image_dir(key: str | None = None) -> Path:
    return cache_root() / "images" / (key or image_key())


def state_root() -> Path:
    return Path(os.environ.get("JTS_LAB_STATE", cache_root() / "run"))


def run_dir(name: str) -> Path:
    return state_root() / name


IMAGE_FILES = ("base.qcow2", "vmlinuz", "initrd.img", "id_ed25519", "id_ed25519.pub", "manifest.json")


def image_is_complete(path: Path) -> bool:
    """A cached image counts only when every file is there (a build renames into place last)."""
    return path.is_dir() and all((path / name).is_file() for name in IMAGE_FILES)


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (deb822 or one-line sources), else deb.debian.org."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in candidates:
        with contextlib.suppress(OSError):
            for line in source.read_text().splitlines():
                words = line.split()
                if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                    return words[1]
                if words[:1] == ["deb"] and "security" not in line:
                    uri = next((w for w in words[1:] if "://" in w), None)
                    if uri:
                        return uri
    return DEFAULT_MIRROR


# --------------------------------------------------------------------------- commands


def run(cmd, check=True, **kwargs) -> subprocess.CompletedProcess:
    """Run an argument list; on failure raise LabError with the command and its stderr."""
    result = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kwargs)
    if check and result.returncode != 0:
        raise LabError(
            "command failed (rc=%d): %s\n%s"
            % (result.returncode, shlex.join(map(str, cmd)), (result.stdout[-1500:] + result.stderr[-3000:]).strip())
        )
    return result


def chroot(rootfs: Path, *cmd) -> None:
    run(["chroot", rootfs, *cmd])


# --------------------------------------------------------------------------- build


def configure_rootfs(rootfs: Path, public_key: str) -> None:
    """Turn a debootstrapped tree into a bootable, reachable lab VM."""
    (rootfs / "etc/hostname").write_text(HOSTNAME + "\n")
    (rootfs / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n" % HOSTNAME)
    (rootfs / "etc/fstab").write_text(
        "# jts-lab\n"
        "/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n"
        # udev's coldplug under TCG can take tens of seconds: a short device time-out left /srv/nas
        # unmounted and nfs-server (which requires the mount) dead.
        "LABEL=jts-nas\t/srv/nas\text4\tdefaults,nofail,x-systemd.device-timeout=120s\t0\t2\n"
    )
    (rootfs / "srv/nas").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/exports").write_text("/srv/nas\t127.0.0.1(rw,sync,no_subtree_check,no_root_squash,fsid=1)\n")
    network = rootfs / "etc/systemd/network/20-wired.network"
    network.parent.mkdir(parents=True, exist_ok=True)
    network.write_text("[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n")
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public_key)
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    sshd = rootfs / "etc/ssh/sshd_config.d/jts-lab.conf"
    sshd.parent.mkdir(parents=True, exist_ok=True)
    sshd.write_text("PermitRootLogin prohibit-password\nUseDNS no\nPasswordAuthentication no\n")
    install_zipimport_cache(rootfs)
    # The package's own cluster would live on the root filesystem, in the directory where the hot
    # tier mounts the postgres LV (which refuses to hide what a mount point holds): the lab keeps
    # PostgreSQL installed with no cluster and an empty home, and the tests make theirs on the LV.
    if (rootfs / "etc/postgresql/15/main").is_dir():
        chroot(rootfs, "pg_dropcluster", "15", "main")
    home = rootfs / "var/lib/postgresql"
    if home.is_dir():
        shutil.rmtree(home)
        home.mkdir()
        os.chmod(home, 0o755)  # noqa: S103 - the home Debian gives postgres
        chroot(rootfs, "chown", "postgres:postgres", "/var/lib/postgresql")
    chroot(rootfs, "systemctl", "enable", "systemd-networkd.service", "nfs-server.service")
    # Nothing in the lab should reach out or compete for the two emulated CPUs at boot.
    chroot(rootfs, "systemctl", "mask", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer")
    chroot(rootfs, "passwd", "--lock", "root")


def install_zipimport_cache(rootfs: Path) -> None:
    """Lab-only speed-up: cache the bytecode of the zips Ansible ships (see lab_zipimport_cache.py)."""
    site = rootfs / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("lab_zipimport_cache.py"), site / "jts_lab_zipimport_cache.py")
    (site / "jts-lab-zipimport-cache.pth").write_text("import jts_lab_zipimport_cache\n")


def vms_using_image(image: Path) -> list:
    """Names of running lab VMs whose overlay is backed by `image`."""
    names = []
    for state_file in state_root().glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if Path(json.loads(state_file.read_text())["image"]) == image and qemu_pid(state_file.parent):
                names.append(state_file.parent.name)
    return sorted(names)


@contextlib.contextmanager
def build_lock(images: Path):
    """One build at a time per cache (two `up` at once must not race on the same image)."""
    images.mkdir(parents=True, exist_ok=True)
    with open(images / ".build.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another build of the lab image is running; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def build(force: bool = False) -> Path:
    """Build the image once; a complete cached image is a hit and is reused."""
    key = image_key()
    target = image_dir(key)
    if image_is_complete(target) and not force:
        log("image %s is cached at %s (build skipped)" % (key, target))
        return target
    with build_lock(target.parent):
        if image_is_complete(target) and not force:
            log("image %s was built meanwhile at %s (build skipped)" % (key, target))
            return target
        users = vms_using_image(target)
        if users:
            raise LabError(
                "image %s is in use by running VM(s) %s: `tools/lab.py down --name ...` them before --force"
                % (key, ", ".join(users))
            )
        for stale in target.parent.glob(".build-*"):  # left by a killed build (we hold the lock)
            log("removing %s, left by an interrupted build" % stale)
            shutil.rmtree(stale, ignore_errors=True)
        return _build(key, target)


def _build(key: str, target: Path) -> Path:
    for tool in ("debootstrap", "mkfs.ext4", "qemu-img", "ssh-keygen", "chroot"):
        if not shutil.which(tool):
            raise LabError("%s is missing: run `make deps` (Debian packages for the lab)" % tool)
    if os.geteuid() != 0:
        raise LabError("building the lab image needs root (debootstrap, chroot)")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-%s-" % key, dir=target.parent))
    log("building image %s in %s (debootstrap takes a few minutes)" % (key, work))
    try:
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "jts-lab", "-f", work / "id_ed25519"])
        rootfs = work / "rootfs"
        mirror = host_mirror()
        started = time.monotonic()
        try:
            run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, rootfs, mirror])
        except LabError as exc:
            log_tail = console_tail(rootfs / "debootstrap", lines=30, name="debootstrap.log")
            raise LabError("%s\ndebootstrap.log tail:\n%s" % (exc, log_tail)) from None
        log("debootstrap done in %.0f s" % (time.monotonic() - started))
        configure_rootfs(rootfs, (work / "id_ed25519.pub").read_text())
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise LabError("no kernel or initrd in %s/boot" % rootfs)
        shutil.copy2(kernels[-1], work / "vmlinuz")
        shutil.copy2(initrds[-1], work / "initrd.img")
        raw = work / "root.raw"
        run(["mkfs.ext4", "-q", "-L", "jts-root", "-d", rootfs, raw, ROOT_IMAGE_SIZE])
        run(["qemu-img", "convert", "-O", "qcow2", raw, work / "base.qcow2"])
        raw.unlink()
        shutil.rmtree(rootfs)
        manifest = {"key": key, "suite": SUITE, "packages": list(PACKAGES), "recipe": RECIPE_VERSION, "mirror": mirror}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)  # the image becomes visible, complete, in one step
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log("image %s built at %s" % (key, target))
    return target


# --------------------------------------------------------------------------- VM lifecycle


def ports_in_use_by_lab() -> set:
    """Ports recorded by other lab VMs' state (one may be between boot and bind)."""
    ports = set()
    for state_file in state_root().glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            ports.add(int(json.loads(state_file.read_text())["port"]))
    return ports


def port_is_free(port: int) -> bool:
    """Nothing listens on the loopback port (connections left in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(attempts: int = 20) -> int:
    """A loopback port nothing listens on and no other lab VM has claimed."""
    claimed = ports_in_use_by_lab()
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in claimed:
            return port
    raise LabError("no free loopback port after %d attempts" % attempts)


def disk_layout(state_dir: Path, data_disk: bool) -> list:
    """The disks a VM gets, as recorded in its state and shown by `status`."""
    disks = [
        {"role": "root", "bus": "virtio", "guest": "/dev/vda", "file": str(state_dir / "root.qcow2"),
         "size": ROOT_IMAGE_SIZE},
        {"role": "nas", "bus": "virtio", "guest": "/dev/vdb", "label": "jts-nas", "file": str(state_dir / "nas.img"),
         "size": "%dG" % (NAS_SIZE // 1024**3), "mount": "/srv/nas"},
        {"role": "hot", "bus": "nvme", "serial": "jtsnvme0", "guest": "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_jtsnvme0",
         "file": str(state_dir / "nvme.qcow2"), "size": NVME_SIZE},
        {"role": "warm", "bus": "sata", "serial": "JTSSATA0", "guest": "/dev/disk/by-id/ata-QEMU_HARDDISK_JTSSATA0",
         "file": str(state_dir / "sata.qcow2"), "size": SATA_SIZE},
    ]  # fmt: skip
    if data_disk:
        disks.append(
            {"role": "data", "bus": "sata", "serial": "JTSDATA0", "guest": "/dev/disk/by-id/ata-QEMU_HARDDISK_JTSDATA0",
             "file": str(state_dir / "data.img"), "size": DATA_DISK_SIZE, "label": "jts-data"}
        )  # fmt: skip
    return disks


def qemu_command(image: Path, state: Path, port: int, data_disk: bool, memory: int = 2048, cpus: int = 2) -> list:
    """The QEMU argument list: q35, TCG, NVMe + SATA (+ data disk) + virtio NAS disk, SSH on 127.0.0.1."""
    cmd = [
        "qemu-system-x86_64",
        "-name", "jts-lab-" + state.name,
        "-machine", "q35",
        "-accel", "tcg,thread=multi",
        "-cpu", os.environ.get("JTS_LAB_CPU", DEFAULT_CPU),
        "-m", str(memory),
        "-smp", str(cpus),
        "-kernel", image / "vmlinuz",
        "-initrd", image / "initrd.img",
        "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet",
        "-display", "none",
        "-monitor", "none",
        "-serial", "file:%s" % (state / "console.log"),
        "-pidfile", state / "qemu.pid",
        "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % (state / "root.qcow2"),
        "-drive", "file=%s,if=virtio,format=raw,cache=unsafe" % (state / "nas.img"),
        "-drive", "file=%s,if=none,id=nvme0,format=qcow2,cache=unsafe" % (state / "nvme.qcow2"),
        "-device", "nvme,serial=jtsnvme0,drive=nvme0",
        "-device", "ahci,id=ahci",
        "-drive", "file=%s,if=none,id=sata0,format=qcow2,cache=unsafe" % (state / "sata.qcow2"),
        "-device", "ide-hd,bus=ahci.0,drive=sata0,serial=JTSSATA0",
        "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22" % port,
        "-device", "virtio-net-pci,netdev=n0",
    ]  # fmt: skip
    if data_disk:
        cmd += [
            "-drive", "file=%s,if=none,id=data0,format=raw,cache=unsafe" % (state / "data.img"),
            "-device", "ide-hd,bus=ahci.1,drive=data0,serial=JTSDATA0",
        ]  # fmt: skip
    return [str(c) for c in cmd]


def ssh_command(state: dict, *remote, tty: bool = False) -> list:
    cmd = [
        "ssh", "-i", state["identity_file"], "-p", str(state["port"]),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
    ]  # fmt: skip
    if tty:
        cmd.append("-t")
    cmd.append("%s@%s" % (state["user"], state["address"]))
    if remote:
        cmd.append(shlex.join(remote))
    return cmd


def read_banner(port: int, timeout: float = 5.0) -> str:
    """The first line the port sends, or '' (QEMU's forwarder accepts before sshd runs)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(256).decode("ascii", "replace").strip()
    except OSError:
        return ""


def console_tail(state_dir: Path, lines: int = 40, name: str = "console.log") -> str:
    path = state_dir / name
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no %s)" % path
    return "\n".join(text.splitlines()[-lines:])


def wait_for_ssh(state: dict, state_dir: Path, timeout: float, is_alive) -> None:
    """Wait for the OpenSSH banner, then for a real login; on time-out raise with the console tail."""
    deadline = time.monotonic() + timeout
    stage = "banner"
    while time.monotonic() < deadline:
        if not is_alive():
            raise LabError("the VM exited during boot; console log tail:\n" + console_tail(state_dir))
        if stage == "banner":
            if read_banner(state["port"]).startswith("SSH-2.0-OpenSSH"):
                stage = "login"
                continue
        else:
            try:
                probe = subprocess.run(ssh_command(state, "true"), capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                probe = None  # sshd answered but the login stalled (TCG is slow): try again
            if probe is not None and probe.returncode == 0:
                return
        time.sleep(2)
    raise LabError(
        "no SSH %s from the VM on 127.0.0.1:%d within %d s; console log tail (%s):\n%s"
        % (stage, state["port"], timeout, state_dir / "console.log", console_tail(state_dir))
    )


def load_state(name: str) -> dict | None:
    path = run_dir(name) / "state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def qemu_pid(state_dir: Path) -> int | None:
    """The pid of this VM's QEMU if it runs: checked against its command line, never trusted blindly."""
    candidates = []
    for source in (state_dir / "qemu.pid", state_dir / "launcher.pid"):
        with contextlib.suppress(OSError, ValueError):
            candidates.append(int(source.read_text().strip()))
    for pid in candidates:
        try:
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
        except OSError:
            continue
        ours = (str(state_dir) + os.sep).encode()  # "run/lab/" must not match run/lab2's QEMU
        if cmdline and cmdline[0].endswith(b"qemu-system-x86_64") and ours in b" ".join(cmdline):
            return pid
    return None


def write_inventory(state: dict, state_dir: Path) -> Path:
    path = state_dir / "inventory.yml"
    ssh_args = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    path.write_text(
        "# Generated by tools/lab.py for VM %s; removed by `lab.py down`.\n"
        "storage_hosts:\n"
        "  hosts:\n"
        "    %s:\n"
        "      ansible_host: %s\n"
        "      ansible_port: %d\n"
        "      ansible_user: %s\n"
        "      ansible_ssh_private_key_file: %s\n"
        "      ansible_ssh_common_args: %s\n"
        "      ansible_python_interpreter: /usr/bin/python3\n"
        % (state["name"], INVENTORY_HOST, state["address"], state["port"], state["user"], state["identity_file"],
           json.dumps(ssh_args))
    )  # fmt: skip
    return path


def make_data_disk(state_dir: Path) -> str:
    """A small ext4 disk that already holds data, for the never-destroy tests; returns the file's sha256."""
    content_dir = state_dir / "data-content"
    content_dir.mkdir(exist_ok=True)
    payload = b"".join(hashlib.sha256(b"jts-precious-%d" % i).digest() for i in range(32768))  # 1 MiB
    (content_dir / DATA_FILE).write_bytes(payload)
    run(["mkfs.ext4", "-q", "-L", "jts-data", "-d", content_dir, state_dir / "data.img", DATA_DISK_SIZE])
    shutil.rmtree(content_dir)
    return hashlib.sha256(payload).hexdigest()


def prepare_disks(image: Path, state_dir: Path, data_disk: bool) -> str | None:
    """The overlay on the cached image and blank disks; returns the data disk's file checksum."""
    base = image / "base.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", state_dir / "root.qcow2"])
    run(["qemu-img", "create", "-q", "-f", "qcow2", state_dir / "nvme.qcow2", NVME_SIZE])
    run(["qemu-img", "create", "-q", "-f", "qcow2", state_dir / "sata.qcow2", SATA_SIZE])
    with open(state_dir / "nas.img", "wb") as nas:
        nas.truncate(NAS_SIZE)
    run(["mkfs.ext4", "-q", "-F", "-L", "jts-nas", state_dir / "nas.img"])
    return make_data_disk(state_dir) if data_disk else None


def up(name: str, data_disk: bool, timeout: float) -> dict:
    state_dir = run_dir(name)
    existing = load_state(name)
    if existing and qemu_pid(state_dir):
        log("VM %s already runs on port %d" % (name, existing["port"]))
        wait_for_ssh(existing, state_dir, timeout, lambda: qemu_pid(state_dir) is not None)
        return existing
    if state_dir.exists():
        log("removing stale state of VM %s" % name)
        down(name, quiet=True)
    image = build()
    state_dir.mkdir(parents=True)
    try:
        digest = prepare_disks(image, state_dir, data_disk)
    except BaseException:
        shutil.rmtree(state_dir, ignore_errors=True)  # nothing runs yet: leave no half-made VM
        raise
    port = free_port()
    state = {
        "name": name,
        "address": "127.0.0.1",
        "port": port,
        "user": VM_USER,
        "identity_file": str(image / "id_ed25519"),
        "image": str(image),
        "state_dir": str(state_dir),
        "data_disk": None,
        "inventory": str(state_dir / "inventory.yml"),
        "disks": disk_layout(state_dir, data_disk),
    }
    if data_disk:
        state["data_disk"] = {"serial": "JTSDATA0", "file": DATA_FILE, "sha256": digest}
    cmd = qemu_command(image, state_dir, port, data_disk)
    (state_dir / "qemu.cmd").write_text(shlex.join(cmd) + "\n")
    with open(state_dir / "qemu.log", "wb") as qemu_log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (state_dir / "launcher.pid").write_text("%d\n" % proc.pid)
    state["pid"] = proc.pid
    (state_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    log("VM %s booting (pid %d, ssh on 127.0.0.1:%d); waiting up to %d s for SSH" % (name, proc.pid, port, timeout))
    started = time.monotonic()
    try:
        wait_for_ssh(state, state_dir, timeout, lambda: proc.poll() is None)
    except BaseException as exc:
        qemu_output = (state_dir / "qemu.log").read_text(errors="replace")[-2000:]
        down(name, quiet=True)
        if isinstance(exc, LabError) and qemu_output.strip():
            raise LabError("%s\nQEMU said:\n%s" % (exc, qemu_output)) from None
        raise
    log("VM %s is up after %.0f s" % (name, time.monotonic() - started))
    write_inventory(state, state_dir)
    return state


def down(name: str, quiet: bool = False) -> bool:
    """Stop the VM (by process group, after checking it is our QEMU) and remove its state."""
    state_dir = run_dir(name)
    if not state_dir.exists():
        if not quiet:
            log("VM %s is not running (nothing to do)" % name)
        return False
    pid = qemu_pid(state_dir)
    if pid:
        _signal_qemu(pid, signal.SIGTERM)
        if not _wait_gone(pid, TERM_GRACE):
            log("QEMU (pid %d) ignored SIGTERM for %s s; sending SIGKILL" % (pid, TERM_GRACE))
            _signal_qemu(pid, signal.SIGKILL)
            if not _wait_gone(pid, 10):
                raise LabError("QEMU (pid %d) of VM %s survived SIGKILL; state kept in %s" % (pid, name, state_dir))
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
    port = (load_state(name) or {}).get("port")
    if port:
        for _ in range(50):  # QEMU's forwarder closes its listening socket as it exits
            if port_is_free(int(port)):
                break
            time.sleep(0.1)
        else:
            log("warning: port %s is still taken after VM %s stopped" % (port, name))
    shutil.rmtree(state_dir, ignore_errors=True)
    if not quiet:
        log("VM %s stopped and its state removed" % name)
    return True


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Path("/proc/%d" % pid).exists() or _is_zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _signal_qemu(pid: int, sig: int) -> None:
    """Signal QEMU's process group when it leads its own (as `up` starts it), else QEMU alone."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _is_zombie(pid: int) -> bool:
    try:
        return Path("/proc/%d/stat" % pid).read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def status(name: str) -> dict:
    state = load_state(name) or {"name": name}
    state_dir = run_dir(name)
    pid = qemu_pid(state_dir) if state_dir.exists() else None
    state["running"] = pid is not None
    state["pid"] = pid
    state["image_key"] = image_key()
    state["image_cached"] = image_is_complete(image_dir())
    return state


# Dropped, not rejected: a client sees no answer at all, as when the NAS vanishes, so a hard
# NFS mount hangs instead of failing fast.
NAS_DROP_RULES = """table inet jtslab {
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" tcp dport { 111, 2049 } drop
    oifname "lo" udp dport { 111, 2049 } drop
  }
}
"""


def nas(name: str, action: str) -> None:
    state = _require_running(name)
    if action == "down":
        subprocess.run(ssh_command(state, "nft", "delete", "table", "inet", "jtslab"), capture_output=True)
        result = subprocess.run(
            ssh_command(state, "nft", "-f", "-"), input=NAS_DROP_RULES, text=True, capture_output=True
        )
        if result.returncode != 0:
            raise LabError("could not take the NAS away: %s" % result.stderr.strip())
        log("NAS on VM %s is away: NFS packets are dropped (hard mounts hang)" % name)
    else:
        subprocess.run(ssh_command(state, "nft", "delete", "table", "inet", "jtslab"), capture_output=True)
        log("NAS on VM %s is back" % name)


def _require_running(name: str) -> dict:
    state = load_state(name)
    if not state or not qemu_pid(run_dir(name)):
        raise LabError("VM %s is not running: start it with `tools/lab.py up --name %s`" % (name, name))
    return state


# --------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="lab.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build_text = (
        "build the Debian 12 image once with debootstrap from the host's apt mirror (a few minutes); "
        "a complete cached image is reused and the build skipped"
    )
    p_build = sub.add_parser("build", help=build_text, description=build_text)
    p_build.add_argument("--force", action="store_true", help="rebuild even when the image is cached")
    for cmd, text in (
        ("up", "boot the VM (building the image first if needed) from a throw-away overlay with an 8 GiB NVMe "
         "disk, a 4 GiB SATA disk and a 2 GiB NAS disk; wait for the OpenSSH banner and a login; write "
         "an Ansible inventory (see inventory-path)"),
        ("down", "stop the VM (its QEMU process group, checked by command line) and remove its overlay and "
         "state; works after a crash of this tool and is a no-op when nothing runs"),
        ("status", "show whether the VM runs, its port, pid, disks and the data disk's checksum"),
        ("ssh", "log in to the VM, or run the command given after --"),
        ("console", "print the VM's serial console log (boot problems show here)"),
        ("inventory-path", "print the path of the inventory `up` wrote (host jts-lab in storage_hosts)"),
        ("nas", "down: drop NFS/rpcbind packets (2049, 111) on the VM's loopback so a hard NFS mount hangs "
         "like a vanished NAS; up: remove that rule"),
    ):  # fmt: skip
        p = sub.add_parser(cmd, help=text, description=text)
        p.add_argument("--name", default="lab", help="VM name (default: lab)")
        if cmd == "up":
            p.add_argument(
                "--data-disk", action="store_true", help="attach a disk that already holds data (never-destroy tests)"
            )
            p.add_argument(
                "--timeout",
                type=float,
                default=float(os.environ.get("JTS_LAB_BOOT_TIMEOUT", DEFAULT_BOOT_TIMEOUT)),
                help="seconds to wait for SSH, banner then login (default %d, or $JTS_LAB_BOOT_TIMEOUT)"
                % DEFAULT_BOOT_TIMEOUT,
            )
        if cmd == "status":
            p.add_argument("--json", action="store_true", help="print JSON")
        if cmd == "ssh":
            p.add_argument("remote", nargs=argparse.REMAINDER, help="command to run (after --)")
        if cmd == "nas":
            p.add_argument("action", choices=["down", "up"], help="down: take the NAS away; up: bring it back")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(force=args.force)
        elif args.command == "up":
            state = up(args.name, args.data_disk, args.timeout)
            print(
                "VM %s: ssh -i %s -p %d root@127.0.0.1   (or: tools/lab.py ssh --name %s)"
                % (args.name, state["identity_file"], state["port"], args.name)
            )
        elif args.command == "down":
            down(args.name)
        elif args.command == "status":
            info = status(args.name)
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                print(
                    "VM %s: %s"
                    % (
                        args.name,
                        "running on 127.0.0.1:%s (pid %s)" % (info.get("port"), info["pid"])
                        if info["running"]
                        else "not running",
                    )
                )
        elif args.command == "ssh":
            state = _require_running(args.name)
            remote = list(args.remote)
            if remote[:1] == ["--"]:
                remote = remote[1:]
            return subprocess.call(ssh_command(state, *remote, tty=not remote and sys.stdin.isatty()))
        elif args.command == "console":
            print(console_tail(run_dir(args.name), lines=100000))
        elif args.command == "inventory-path":
            state = _require_running(args.name)
            print(state["inventory"])
        elif args.command == "nas":
            nas(args.name, args.action)
    except LabError as exc:
        log("error: %s" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
