"""What warm_tier and hot_tier may format, run for real on loop devices of this host (issue 14, case 6).

The part of each role that decides and formats runs against localhost with ``include_role``
``tasks_from``: warm_tier's ``device.yml`` (wipefs, the content probe, the refusals, the btrfs) and
hot_tier's ``lvm_check.yml`` + ``filesystems.yml`` (the device and LV checks, the LV filesystems).
This host has no device-mapper, so the hot tier's LVM reports come from small fakes of pvs, vgs
and lvs put first on PATH, and each "LV" ``/dev/<vg>/<lv>`` is a symlink to a loop device: wipefs,
blkid, the zero probe and mkfs are the real ones.

Left to the VM (molecule): the packages, fstab and the mounts, the remounts, the directories,
and for the hot tier the PV, VG and LV changes themselves (wipefs --all, lvg, lvol).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
MIB = 1024**2
SIZE = 256 * MIB
LABEL = "jts-warm-test"
KEEP = "keep me: a file written before the run\n"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("losetup", "wipefs", "blkid", "mkfs.btrfs", "mkfs.ext4")),
    reason="needs root, loop devices, wipefs, blkid, mkfs.btrfs and mkfs.ext4",
)


def sh(*argv, **kwargs):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kwargs)


def mounts_of(device):
    real = os.path.realpath(device)
    with open("/proc/self/mounts") as handle:
        return [line.split()[1] for line in handle if os.path.realpath(line.split()[0]) == real]


@pytest.fixture
def loops(tmp_path):
    """``loops()`` makes a sparse 256 MiB file and its loop device; all are unmounted and detached at the end."""
    made = []

    def make(size=SIZE):
        backing = tmp_path / ("disk%d.img" % len(made))
        with open(backing, "wb") as handle:
            handle.truncate(size)
        done = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip("no loop device: %s" % done.stderr.strip())
        made.append(done.stdout.strip())
        return made[-1]

    yield make
    for device in made:
        for mount in reversed(mounts_of(device)):
            subprocess.run(["umount", "--lazy", mount], check=False)
        subprocess.run(["losetup", "--detach", device], check=False)


def uuid_of(device):
    done = subprocess.run(["blkid", "--probe", "-o", "value", "-s", "UUID", device], capture_output=True, text=True)
    return done.stdout.strip()


def signatures(device):
    out = sh("wipefs", "--json", device).stdout
    return [(s["type"], s.get("label")) for s in (json.loads(out)["signatures"] if out.strip() else [])]


def write_file(device, where, text=KEEP):
    where.mkdir(exist_ok=True)
    sh("mount", device, str(where))
    try:
        (where / "keep.txt").write_text(text)
    finally:
        sh("umount", str(where))


def read_file(device, where):
    where.mkdir(exist_ok=True)
    sh("mount", "-o", "ro", device, str(where))
    try:
        return (where / "keep.txt").read_text()
    finally:
        sh("umount", str(where))


def write_random(device, offsets=(0, SIZE // 2 + 123 * 4096)):
    """Raw data without any signature: random MiBs at the start and somewhere in the middle."""
    with open(device, "r+b") as handle:
        for offset in offsets:
            handle.seek(offset)
            handle.write(os.urandom(MIB))
    assert signatures(device) == []


def damage_superblock(device):
    """An ext4 whose magic is gone: wipefs and blkid see nothing, its metadata is still there."""
    sh("mkfs.ext4", "-q", "-F", device)
    sh("wipefs", "--all", "--quiet", device)
    assert signatures(device) == []


def add_dos_table(device):
    """A stray DOS partition table in sector 0, which btrfs and ext4 leave unused."""
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 4096)
    with open(device, "r+b") as handle:
        handle.seek(446)
        handle.write(entry)
        handle.seek(510)
        handle.write(b"\x55\xaa")


def lvm_crc(data):
    """LVM's label CRC: CRC-32 without the final inversion, started at 0xf597a6cf."""
    return zlib.crc32(data, 0xF597A6CF ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def write_pv_label(device):
    """An LVM2 PV label in sector 1, as pvcreate writes it (wipefs reports LVM2_member)."""
    sector = bytearray(512)
    sector[0:8] = b"LABELONE"
    struct.pack_into("<QxxxxI8s32sQ", sector, 8, 1, 32, b"LVM2 001", b"JtsTestPvUuid0123456789abcdefghi", SIZE)
    struct.pack_into("<I", sector, 16, lvm_crc(bytes(sector[20:])))
    with open(device, "r+b") as handle:
        handle.seek(512)
        handle.write(sector)
    assert [t for t, _ in signatures(device)] == ["LVM2_member"]


def head(device, size=MIB):
    with open(device, "rb") as handle:
        return handle.read(size)


def run_tasks(tmp_path, role, task_files, variables, path_first=None, extra_env=None):
    play = tmp_path / "play.yml"
    lines = ["- hosts: localhost", "  gather_facts: false", "  tasks:"]
    for name in task_files:
        lines += [
            "    - name: Run %s of %s" % (name, role),
            "      ansible.builtin.include_role:",
            "        name: jts.tiered_storage.%s" % role,
            "        tasks_from: %s" % name,
        ]
    play.write_text("\n".join(lines) + "\n")
    variables = dict(variables, ansible_python_interpreter=str(BIN / "python"))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **(extra_env or {}))
    if path_first:
        env["PATH"] = "%s:%s" % (path_first, env["PATH"])
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables), str(play)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    done.output = done.stdout + done.stderr
    return done


# --- warm tier ----------------------------------------------------------------------------------


def run_warm(tmp_path, device, allow, mount_over=False):
    variables = {
        "warm_tier_device": device,
        "warm_tier_label": LABEL,
        "warm_tier_mount": str(tmp_path / "warm"),
        "warm_tier_allow_format": allow,
        "warm_tier_allow_mount_over": mount_over,
    }
    return run_tasks(tmp_path, "warm_tier", ["device.yml"], variables)


def test_warm_keeps_its_own_btrfs_when_format_is_allowed(tmp_path, loops):
    device = loops()
    sh("mkfs.btrfs", "-q", "-L", LABEL, device)
    write_file(device, tmp_path / "mnt")
    before = uuid_of(device)

    done = run_warm(tmp_path, device, allow=True)

    assert done.returncode == 0, done.output
    assert uuid_of(device) == before, "the btrfs was formatted again"
    assert read_file(device, tmp_path / "mnt") == KEEP


def test_warm_refuses_its_own_btrfs_next_to_another_signature_even_when_allowed(tmp_path, loops):
    device = loops()
    sh("mkfs.btrfs", "-q", "-L", LABEL, device)
    write_file(device, tmp_path / "mnt")
    add_dos_table(device)
    before = uuid_of(device)

    done = run_warm(tmp_path, device, allow=True)

    assert done.returncode != 0, done.output
    assert device in done.output and "dos" in done.output
    assert uuid_of(device) == before
    assert read_file(device, tmp_path / "mnt") == KEEP


@pytest.mark.parametrize("content", [write_random, damage_superblock], ids=["random-bytes", "damaged-superblock"])
def test_warm_refuses_content_wipefs_does_not_recognise(tmp_path, loops, content):
    device = loops()
    content(device)
    before = head(device)

    done = run_warm(tmp_path, device, allow=False)

    assert done.returncode != 0, done.output
    assert "Refusing to format %s" % device in done.output
    assert "warm_tier_allow_format: true" in done.output
    assert head(device) == before
    assert signatures(device) == []


def test_warm_formats_unrecognised_content_when_allowed(tmp_path, loops):
    device = loops()
    write_random(device)

    done = run_warm(tmp_path, device, allow=True)

    assert done.returncode == 0, done.output
    assert signatures(device) == [("btrfs", LABEL)]


def test_warm_formats_an_all_zero_device(tmp_path, loops):
    device = loops()

    done = run_warm(tmp_path, device, allow=False)

    assert done.returncode == 0, done.output
    assert signatures(device) == [("btrfs", LABEL)]


def test_warm_refuses_another_filesystem_and_replaces_it_only_when_allowed(tmp_path, loops):
    device = loops()
    sh("mkfs.ext4", "-q", "-F", device)

    refused = run_warm(tmp_path, device, allow=False)
    assert refused.returncode != 0, refused.output
    assert "warm_tier_allow_format: true" in refused.output
    assert signatures(device) == [("ext4", None)]

    allowed = run_warm(tmp_path, device, allow=True)
    assert allowed.returncode == 0, allowed.output
    assert signatures(device) == [("btrfs", LABEL)]


# --- hot tier -----------------------------------------------------------------------------------

FAKE = """#!/bin/sh
# fake {tool}: prints what the test put in $JTS_FAKE_LVM/{tool}.json, exits with {tool}.rc
cat "$JTS_FAKE_LVM/{tool}.json"
cat "$JTS_FAKE_LVM/{tool}.err" >&2
exit "$(cat "$JTS_FAKE_LVM/{tool}.rc")"
"""
EXTENT = 4 * MIB


@pytest.fixture
def vg():
    """A VG name no host has, and its /dev/<vg> directory for the "LV" symlinks."""
    name = "jtstest%s" % secrets.token_hex(4)
    os.mkdir("/dev/" + name, 0o755)
    yield name
    shutil.rmtree("/dev/" + name, ignore_errors=True)


class FakeLvm:
    """pvs, vgs and lvs of a host, as LVM 2.03 prints them in JSON."""

    def __init__(self, tmp_path, vg):
        self.dir = tmp_path / "fake-lvm"
        self.bin = self.dir / "bin"
        self.bin.mkdir(parents=True)
        self.vg = vg
        for tool in ("pvs", "vgs", "lvs"):
            path = self.bin / tool
            path.write_text(FAKE.format(tool=tool))
            path.chmod(0o755)
            self.set(tool, 5, "", '  Volume group "%s" not found\n  Cannot process volume group %s\n' % (vg, vg))
        self.set("pvs", 5, "", "  Failed to find physical volume.\n")

    def set(self, tool, rc, report, err=""):
        (self.dir / ("%s.json" % tool)).write_text(report)
        (self.dir / ("%s.err" % tool)).write_text(err)
        (self.dir / ("%s.rc" % tool)).write_text(str(rc))

    def pv_of_vg(self, device):
        self.set("pvs", 0, json.dumps({"report": [{"pv": [{"pv_name": device, "vg_name": self.vg}]}]}))

    def vg_with_lvs(self, lvs, extents=60):
        used = sum(size // EXTENT for size in lvs.values())
        row = {"vg_name": self.vg, "vg_extent_size": str(EXTENT), "vg_extent_count": str(extents)}
        row["vg_free_count"] = str(extents - used)
        self.set("vgs", 0, json.dumps({"report": [{"vg": [row]}]}))
        rows = [{"lv_name": n, "lv_size": str(s), "lv_attr": "-wi-a-----", "origin": ""} for n, s in lvs.items()]
        self.set("lvs", 0, json.dumps({"report": [{"lv": rows}]}))


def run_hot(tmp_path, fake, device, volumes, allow, task_files=("lvm_check.yml", "filesystems.yml"), mount_over=()):
    variables = {
        "hot_tier_device": device,
        "hot_tier_vg": fake.vg,
        "hot_tier_volumes": volumes,
        "hot_tier_allow_format_devices": allow,
        "hot_tier_allow_mount_over": list(mount_over),
    }
    env = {"JTS_FAKE_LVM": str(fake.dir)}
    return run_tasks(tmp_path, "hot_tier", list(task_files), variables, path_first=str(fake.bin), extra_env=env)


def volume(tmp_path, size="128M"):
    return {"name": "pg", "size": size, "fstype": "ext4", "mount": str(tmp_path / "pg"), "mount_opts": "noatime"}


@pytest.fixture
def hot(tmp_path, loops, vg):
    """The PV (a blank loop device the fake pvs puts in the VG) and one existing 64 MiB LV, pg."""
    fake = FakeLvm(tmp_path, vg)
    pv = loops()
    fake.pv_of_vg(pv)
    fake.vg_with_lvs({"pg": 64 * MIB})
    lv_device = loops()
    lv = "/dev/%s/pg" % vg
    os.symlink(lv_device, lv)
    return fake, pv, lv


def test_hot_grow_keeps_the_filesystem_of_an_allow_listed_lv(tmp_path, hot):
    fake, pv, lv = hot
    sh("mkfs.ext4", "-q", "-F", lv)
    write_file(lv, tmp_path / "mnt")
    before = uuid_of(lv)

    # 64 MiB -> 128M: the plan grows pg; lvol's resizefs grows the ext4, nothing may format it
    done = run_hot(tmp_path, fake, pv, [volume(tmp_path, "128M")], allow=[lv])

    assert done.returncode == 0, done.output
    assert "pg:grow" in done.output
    assert uuid_of(lv) == before, "the ext4 of the LV was formatted again"
    assert read_file(lv, tmp_path / "mnt") == KEEP


def test_hot_refuses_an_allow_listed_lv_holding_its_filesystem_next_to_another_signature(tmp_path, hot):
    fake, pv, lv = hot
    sh("mkfs.ext4", "-q", "-F", lv)
    add_dos_table(lv)
    before = uuid_of(lv)

    done = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[lv])

    assert done.returncode != 0, done.output
    assert lv in done.output and "dos" in done.output
    assert uuid_of(lv) == before


@pytest.mark.parametrize("size", ["64M", "128M"], ids=["keep", "grow"])
@pytest.mark.parametrize("content", [write_random, damage_superblock], ids=["random-bytes", "damaged-superblock"])
def test_hot_refuses_an_existing_lv_with_content_wipefs_does_not_recognise(tmp_path, hot, content, size):
    fake, pv, lv = hot
    content(lv)
    before = head(lv)

    done = run_hot(tmp_path, fake, pv, [volume(tmp_path, size)], allow=[])

    assert done.returncode != 0, done.output
    assert "Refusing to format %s" % lv in done.output
    assert "hot_tier_allow_format_devices" in done.output
    assert head(lv) == before
    assert signatures(lv) == []


def test_hot_formats_an_allow_listed_lv_with_unrecognised_content(tmp_path, hot):
    fake, pv, lv = hot
    write_random(lv)

    done = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[lv])

    assert done.returncode == 0, done.output
    assert signatures(lv) == [("ext4", None)]


def test_hot_refuses_when_lvs_fails_instead_of_taking_the_vg_for_empty(tmp_path, hot):
    """A lock or metadata error from lvs leaves the LVs unknown: an LV holding raw data must not be formatted."""
    fake, pv, lv = hot
    write_random(lv)
    before = head(lv)
    fake.set("lvs", 5, "", "  Unable to obtain global lock.\n")

    done = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[])

    assert done.returncode != 0, done.output
    assert "lvs failed (rc 5): Unable to obtain global lock." in done.output
    assert head(lv) == before


def test_hot_formats_an_existing_all_zero_lv(tmp_path, hot):
    fake, pv, lv = hot

    done = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[])

    assert done.returncode == 0, done.output
    assert signatures(lv) == [("ext4", None)]


@pytest.mark.parametrize("content", [write_random, damage_superblock], ids=["random-bytes", "damaged-superblock"])
def test_hot_refuses_a_device_with_content_wipefs_does_not_recognise(tmp_path, loops, vg, content):
    fake = FakeLvm(tmp_path, vg)  # the device is no PV and the VG does not exist
    device = loops()
    content(device)

    refused = run_hot(tmp_path, fake, device, [volume(tmp_path)], allow=[], task_files=["lvm_check.yml"])
    assert refused.returncode != 0, refused.output
    assert "Refusing to use %s" % device in refused.output
    assert "hot_tier_allow_format_devices" in refused.output

    allowed = run_hot(tmp_path, fake, device, [volume(tmp_path)], allow=[device], task_files=["lvm_check.yml"])
    assert allowed.returncode == 0, allowed.output


def test_hot_accepts_an_all_zero_device(tmp_path, loops, vg):
    fake = FakeLvm(tmp_path, vg)
    device = loops()

    done = run_hot(tmp_path, fake, device, [volume(tmp_path)], allow=[], task_files=["lvm_check.yml"])

    assert done.returncode == 0, done.output
    assert "pg:create" in done.output


def test_hot_refuses_a_listed_device_whose_pv_pvs_cannot_read(tmp_path, loops, vg):
    """After an OS reinstall the LVM devices file may hide the tier's own PV: its VG is unknown, never wipe it."""
    fake = FakeLvm(tmp_path, vg)
    device = loops()
    write_pv_label(device)
    fake.set("pvs", 5, "", "  Cannot use %s: device is not in devices file\n" % device)

    done = run_hot(tmp_path, fake, device, [volume(tmp_path)], allow=[device], task_files=["lvm_check.yml"])

    assert done.returncode != 0, done.output
    assert "Refusing to use %s" % device in done.output
    assert "device is not in devices file" in done.output
    assert [t for t, _ in signatures(device)] == ["LVM2_member"]


def test_hot_accepts_a_listed_device_that_is_a_pv_of_another_vg(tmp_path, loops, vg):
    fake = FakeLvm(tmp_path, vg)
    device = loops()
    write_pv_label(device)
    fake.set("pvs", 0, json.dumps({"report": [{"pv": [{"pv_name": device, "vg_name": "vg_old"}]}]}))

    refused = run_hot(tmp_path, fake, device, [volume(tmp_path)], allow=[], task_files=["lvm_check.yml"])
    assert refused.returncode != 0, refused.output
    assert "(LVM VG vg_old)" in refused.output and "hot_tier_allow_format_devices" in refused.output

    allowed = run_hot(tmp_path, fake, device, [volume(tmp_path)], allow=[device], task_files=["lvm_check.yml"])
    assert allowed.returncode == 0, allowed.output


# --- mount points that already hold something -------------------------------------------------


def test_warm_refuses_to_mount_over_a_directory_that_holds_files(tmp_path, loops):
    """A service's files written before the tier existed would be hidden by the mount, and missed by backups."""
    device = loops()
    (tmp_path / "warm").mkdir()
    (tmp_path / "warm" / "projects").mkdir()
    (tmp_path / "warm" / "notes.txt").write_text("kept")

    refused = run_warm(tmp_path, device, allow=False)
    assert refused.returncode != 0, refused.output
    assert "Refusing to mount %s on %s" % (device, tmp_path / "warm") in refused.output
    assert "holds 2 entries (notes.txt, projects)" in refused.output
    assert "warm_tier_allow_mount_over" in refused.output
    assert signatures(device) == []

    allowed = run_warm(tmp_path, device, allow=False, mount_over=True)
    assert allowed.returncode == 0, allowed.output
    assert (tmp_path / "warm" / "notes.txt").read_text() == "kept"


def test_warm_refuses_a_mount_point_that_is_a_symlink_to_a_directory_with_files(tmp_path, loops):
    """mount(8) follows the link: the files of its target would be hidden (found by review)."""
    device = loops()
    (tmp_path / "real" / "projects").mkdir(parents=True)
    (tmp_path / "warm").symlink_to(tmp_path / "real")

    refused = run_warm(tmp_path, device, allow=False)
    assert refused.returncode != 0, refused.output
    assert "Refusing to mount %s on %s" % (device, tmp_path / "warm") in refused.output
    assert "(a symlink to %s) holds 1 entries (projects)" % (tmp_path / "real") in refused.output
    assert signatures(device) == []


def test_hot_refuses_to_mount_an_lv_over_files_or_another_mount(tmp_path, hot):
    fake, pv, _lv = hot
    point = tmp_path / "pg"
    (point / "15" / "main").mkdir(parents=True)

    refused = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[], task_files=["lvm_check.yml"])
    assert refused.returncode != 0, refused.output
    assert "Refusing to mount /dev/%s/pg on %s" % (fake.vg, point) in refused.output
    assert "holds 1 entries (15)" in refused.output and "hot_tier_allow_mount_over" in refused.output

    sh("mount", "-t", "tmpfs", "-o", "size=1m", "jts-other", str(point))
    try:
        other = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[], task_files=["lvm_check.yml"])
        assert other.returncode != 0, other.output
        assert "jts-other is mounted there and would be hidden" in other.output
    finally:
        sh("umount", str(point))

    allowed = run_hot(
        tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[], task_files=["lvm_check.yml"], mount_over=[str(point)]
    )
    assert allowed.returncode == 0, allowed.output


def test_hot_mounts_over_its_own_lv_and_an_empty_directory(tmp_path, hot):
    fake, pv, lv = hot
    sh("mkfs.ext4", "-q", "-F", lv)
    point = tmp_path / "pg"
    point.mkdir()
    empty = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[], task_files=["lvm_check.yml"])
    assert empty.returncode == 0, empty.output

    sh("mount", lv, str(point))
    try:
        (point / "data").write_text("on the LV")
        mounted = run_hot(tmp_path, fake, pv, [volume(tmp_path, "64M")], allow=[], task_files=["lvm_check.yml"])
        assert mounted.returncode == 0, mounted.output
    finally:
        sh("umount", str(point))


def test_cold_refuses_to_mount_the_nas_over_files(tmp_path):
    """While the NAS is not mounted, files in the mount point would be hidden by the mount."""
    point = tmp_path / "synology"
    point.mkdir()
    variables = {
        "cold_tier_mount": str(point),
        "cold_tier_server": "nas.lan",
        "cold_tier_export": "/volume1/jts",
        "__cold_tier_findmnt": {"rc": 1, "stdout": ""},  # findmnt: nothing mounted there
    }
    empty = run_tasks(tmp_path, "cold_tier", ["mount_point.yml"], variables)
    assert empty.returncode == 0, empty.output

    (point / "archives").mkdir()
    (point / ".written-while-away").write_text("x")
    refused = run_tasks(tmp_path, "cold_tier", ["mount_point.yml"], variables)
    assert refused.returncode != 0, refused.output
    assert "Refusing to mount nas.lan:/volume1/jts on %s" % point in refused.output
    assert "holds 2 entries (.written-while-away, archives)" in refused.output
    assert "cold_tier_allow_mount_over" in refused.output

    allowed = run_tasks(tmp_path, "cold_tier", ["mount_point.yml"], dict(variables, cold_tier_allow_mount_over=True))
    assert allowed.returncode == 0, allowed.output


def findmnt_says(point, source):
    filesystems = [{"target": str(point), "source": source, "options": "rw,relatime"}]
    return {"rc": 0, "stdout": json.dumps({"filesystems": filesystems})}


def test_cold_refuses_to_mount_the_nas_over_another_mount_and_accepts_its_own(tmp_path):
    """A local disk or another export mounted there would be hidden, or unmounted by the remount (found by review)."""
    point = tmp_path / "synology"
    point.mkdir()
    variables = {"cold_tier_mount": str(point), "cold_tier_server": "nas.lan", "cold_tier_export": "/volume1/jts/"}

    other = run_tasks(
        tmp_path,
        "cold_tier",
        ["mount_point.yml"],
        dict(variables, __cold_tier_findmnt=findmnt_says(point, "/dev/sdc1")),
    )
    assert other.returncode != 0, other.output
    assert "/dev/sdc1 is mounted there and would be hidden" in other.output
    assert "cold_tier_allow_mount_over" in other.output

    own = run_tasks(
        tmp_path,
        "cold_tier",
        ["mount_point.yml"],
        dict(variables, __cold_tier_findmnt=findmnt_says(point, "nas.lan:/volume1/jts")),
    )
    assert own.returncode == 0, own.output
