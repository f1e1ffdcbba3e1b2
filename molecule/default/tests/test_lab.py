"""The lab VM itself, after converge and the side effects: its disks, its NAS and the data disk.

Run by Molecule's testinfra verifier (``--connection=ansible`` with Molecule's inventory).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAB_NAME = os.environ.get("JTS_LAB_NAME", "molecule-jts")


@pytest.fixture(scope="module")
def lab_state():
    """What tools/lab.py recorded when it booted this VM (`status --json`)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lab.py"), "status", "--name", LAB_NAME, "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    state = json.loads(out)
    assert state["running"], "lab VM %s is not running" % LAB_NAME
    return state


@pytest.fixture(scope="module")
def block_devices(host):
    out = host.check_output("lsblk --json --nodeps --output NAME,ROTA,TRAN,SERIAL,TYPE,SIZE")
    return {dev["name"]: dev for dev in json.loads(out)["blockdevices"]}


def test_nvme_disk_is_non_rotational(block_devices):
    nvme = block_devices["nvme0n1"]
    assert nvme["tran"] == "nvme"
    assert nvme["rota"] in (False, "0", 0)


def test_sata_disk_is_there(block_devices):
    sata = [dev for dev in block_devices.values() if (dev.get("serial") or "") == "JTSSATA0"]
    assert sata and sata[0]["tran"] == "sata"


def test_disks_by_id_match_the_lab_inventory(host, lab_state):
    for disk in lab_state["disks"]:
        if disk["guest"].startswith("/dev/disk/by-id/"):
            assert host.file(disk["guest"]).exists, "%s disk missing: %s" % (disk["role"], disk["guest"])


def test_nas_disk_is_mounted_and_exported(host):
    nas = host.mount_point("/srv/nas")
    assert nas.exists and nas.filesystem == "ext4"
    exports = host.check_output("exportfs -v")
    assert "/srv/nas" in exports and "127.0.0.1" in exports and "no_root_squash" in exports


def test_nfs_ports_answer_on_loopback(host):
    """The NAS is reachable: no outage rule left behind by the side effects."""
    probe = (
        "python3 -c 'import socket,sys; "
        '[socket.create_connection(("127.0.0.1", p), timeout=5).close() for p in (111, 2049)]\''
    )
    assert host.run(probe).rc == 0
    assert host.run("nft list table inet jtslab").rc != 0, "the NAS outage rule is still loaded"


def test_nfs_export_mounts_over_loopback(host):
    target = "/run/jts-lab-verify"
    host.check_output("mkdir -p %s", target)
    try:
        host.check_output("timeout 60 mount -t nfs -o vers=3,proto=tcp,soft,timeo=50 127.0.0.1:/srv/nas %s", target)
        host.check_output("touch %s/.jts-lab-verify && rm %s/.jts-lab-verify", target, target)
    finally:
        host.run("umount -l %s", target)
        host.run("rmdir %s", target)


def test_data_disk_still_holds_its_file(host, lab_state):
    """Converge must never write to a disk that already holds data (never-destroy)."""
    if not lab_state.get("data_disk"):
        pytest.skip("VM booted without --data-disk")
    data = next(d for d in lab_state["disks"] if d["role"] == "data")
    read = "debugfs -R %s %s 2>/dev/null | sha256sum" % (
        shlex.quote("cat /" + lab_state["data_disk"]["file"]),
        shlex.quote(data["guest"]),
    )
    out = host.check_output(read)
    assert out.split()[0] == lab_state["data_disk"]["sha256"]
    assert host.run("blkid -s LABEL -o value %s", data["guest"]).stdout.strip() == "jts-data"
