"""What site.yml built on the lab VM, as the VM's kernel and tools report it.

Run by Molecule's testinfra verifier after converge, idempotence and the side effects. Expected
values come from the lab inventory (inventories/lab/group_vars/storage_hosts/*.yml) merged over
the roles' defaults, so a change of the inventory changes what is checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.jts.tiered_storage.plugins.filter.lvm_plan import lvm_plan  # noqa: E402
from ansible_collections.jts.tiered_storage.plugins.filter.mount_opts import mount_options_missing  # noqa: E402

MIB = 1024**2


def _settings(role):
    settings = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    lab = ROOT / "inventories" / "lab" / "group_vars" / "storage_hosts" / ("%s.yml" % role)
    if lab.exists():
        settings.update(yaml.safe_load(lab.read_text()) or {})
    return settings


HOT = _settings("hot_tier")
WARM = _settings("warm_tier")
COLD = _settings("cold_tier")
TUNING = _settings("tuning")
VOLUMES = HOT["hot_tier_volumes"]


def _proc_mounts(host):
    mounts = {}
    for line in host.file("/proc/mounts").content_string.splitlines():
        source, target, fstype, options = line.split()[:4]
        mounts[target] = {"source": source, "fstype": fstype, "options": options.split(",")}
    return mounts


@pytest.fixture(scope="module")
def mounts(host):
    return _proc_mounts(host)


@pytest.fixture(scope="module")
def vg(host):
    out = host.check_output(
        "vgs --reportformat json --units b --nosuffix -o vg_name,vg_extent_size,vg_extent_count %s", HOT["hot_tier_vg"]
    )
    return json.loads(out)["report"][0]["vg"][0]


@pytest.fixture(scope="module")
def lvs(host):
    out = host.check_output(
        "lvs --reportformat json --units b --nosuffix -o lv_name,lv_size,origin %s", HOT["hot_tier_vg"]
    )
    return {lv["lv_name"]: lv for lv in json.loads(out)["report"][0]["lv"] if not lv["origin"]}


def test_pv_alignment_and_extent_size(host, vg):
    assert int(vg["vg_extent_size"]) == 4 * MIB
    pe_start = host.check_output("pvs --noheadings --units b --nosuffix -o pe_start %s", HOT["hot_tier_device"])
    assert int(pe_start.strip()) % (4 * MIB) == 0


def test_lvs_have_the_planned_sizes_and_leave_the_reserve_free(vg, lvs):
    plan = lvm_plan(VOLUMES, int(vg["vg_extent_count"]), int(vg["vg_extent_size"]), HOT["hot_tier_snapshot_reserve"])
    assert plan["errors"] == []
    for volume in plan["volumes"]:
        assert int(lvs[volume["name"]]["lv_size"]) == volume["size_bytes"], volume["name"]
    vg_bytes = int(vg["vg_extent_count"]) * int(vg["vg_extent_size"])
    used = sum(int(lvs[v["name"]]["lv_size"]) for v in plan["volumes"])
    # the snapshot reserve, and in the lab 1.2 GiB for the lifecycle's snapshots
    assert vg_bytes - used >= plan["summary"]["reserve_bytes"] + 1200 * MIB


@pytest.mark.parametrize("volume", VOLUMES, ids=[v["name"] for v in VOLUMES])
def test_volume_is_mounted_with_its_filesystem_and_options(mounts, volume):
    mount = mounts[volume["mount"]]
    assert mount["source"] == "/dev/mapper/%s-%s" % (HOT["hot_tier_vg"], volume["name"].replace("-", "--"))
    assert mount["fstype"] == volume["fstype"]
    assert mount_options_missing(volume["mount_opts"], mount["options"], ["data=ordered"]) == []


def test_ext4_volumes_carry_the_mkfs_features(host):
    wanted = {"extent", "huge_file", "flex_bg", "metadata_csum", "64bit", "dir_nlink", "extra_isize"}
    for volume in VOLUMES:
        if volume["fstype"] != "ext4":
            continue
        info = host.check_output("tune2fs -l /dev/%s/%s", HOT["hot_tier_vg"], volume["name"])
        features = next(line for line in info.splitlines() if line.startswith("Filesystem features:"))
        assert wanted <= set(features.split(":", 1)[1].split()), (volume["name"], features)


def test_xfs_volume_has_32_ags_stripe_unit_and_128m_log(host):
    (kafka,) = [v for v in VOLUMES if v["fstype"] == "xfs"]
    info = host.check_output("xfs_info %s", kafka["mount"])
    assert "agcount=32," in info
    # su=64k, sw=1 with 4 KiB blocks: stripe unit and width of 16 blocks
    assert "sunit=16 " in info and "swidth=16 blks" in info
    log = next(line for line in info.splitlines() if line.startswith("log "))
    assert "internal" in log and "blocks=32768," in log  # 128 MiB of 4 KiB blocks


def test_fstab_uses_stable_names(host):
    sources = [
        line.split()[0]
        for line in host.file("/etc/fstab").content_string.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert not [s for s in sources if s.startswith("/dev/sd") or s.startswith("/dev/nvme")]
    assert "LABEL=%s" % WARM["warm_tier_label"] in sources


def test_warm_tier_is_btrfs_with_zstd_and_its_directories(host, mounts):
    mount = mounts[WARM["warm_tier_mount"]]
    assert mount["fstype"] == "btrfs"
    assert {"compress=zstd:3", "autodefrag", "noatime"} <= set(mount["options"])
    label = host.check_output("btrfs filesystem label %s", WARM["warm_tier_mount"])
    assert label.strip() == WARM["warm_tier_label"]
    for directory in WARM["warm_tier_directories"]:
        f = host.file("%s/%s" % (WARM["warm_tier_mount"], directory["name"]))
        assert f.is_directory
        assert (f.user, f.group, f.mode) == (directory["owner"], directory["group"], int(directory["mode"], 8))


def test_btrfs_compresses_what_is_written(host):
    probe = "%s/temp-processing/.compress-probe" % WARM["warm_tier_mount"]
    host.check_output("head -c 8M /dev/zero > %s && sync", probe)
    try:
        # btrfs reports compressed extents as "encoded"
        assert "encoded" in host.check_output("filefrag -v %s", probe)
    finally:
        host.run("rm -f %s", probe)


def test_nas_is_mounted_over_nfs_with_the_specification_options(host, mounts):
    mount = mounts[COLD["cold_tier_mount"]]
    assert mount["fstype"].startswith("nfs")
    assert mount["source"] == "%s:%s" % (COLD["cold_tier_server"], COLD["cold_tier_export"])
    options = set(mount["options"])
    assert {"hard", "timeo=600", "retrans=2", "proto=tcp"} <= options
    # rsize/wsize: what was asked (1 MiB), lowered to the server's maximum; the lab's NAS is the
    # VM's own nfsd, whose maximum depends on the VM's memory
    server_max = host.file("/proc/fs/nfsd/max_block_size")
    agreed = min(1048576, int(server_max.content_string) if server_max.exists else 1048576)
    assert {"rsize=%d" % agreed, "wsize=%d" % agreed} <= options
    assert "vers=%s" % COLD["cold_tier_nfs_version"] in options


def test_nas_fstab_entry_keeps_a_boot_from_hanging(host):
    (line,) = [
        line for line in host.file("/etc/fstab").content_string.splitlines() if " %s " % COLD["cold_tier_mount"] in line
    ]
    options = set(line.split()[3].split(","))
    assert {"_netdev", "nofail"} <= options
    assert any(o.startswith("x-systemd.mount-timeout=") for o in options)


def test_nas_tree(host):
    root = "%s/%s" % (COLD["cold_tier_mount"], COLD["cold_tier_root"])
    for top, subs in COLD["cold_tier_tree"].items():
        for sub in subs:
            f = host.file("%s/%s/%s" % (root, top, sub))
            assert f.is_directory
            assert (f.user, f.group, f.mode) == (COLD["cold_tier_owner"], COLD["cold_tier_group"], 0o755)


@pytest.mark.parametrize("volume", VOLUMES, ids=[v["name"] for v in VOLUMES])
def test_owners_and_modes_of_the_hot_tier(host, volume):
    paths = [volume["mount"]] + ["%s/%s" % (volume["mount"], d) for d in volume.get("subdirs", [])]
    for path in paths:
        f = host.file(path)
        assert f.is_directory
        assert (f.user, f.group, f.mode) == (volume["owner"], volume["group"], int(volume["mode"], 8)), path
        assert not f.mode & 0o002, path


@pytest.mark.parametrize("name", HOT["hot_tier_service_users"])
def test_service_users_are_system_accounts_without_a_shell(host, name):
    user = host.user(name)
    assert user.exists
    assert user.uid < 1000
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")


def test_nothing_world_writable_in_the_tiers(host):
    roots = [v["mount"] for v in VOLUMES] + [WARM["warm_tier_mount"]]
    out = host.check_output("find " + " ".join(["%s"] * len(roots)) + " -xdev -perm -0002 -not -type l -print", *roots)
    assert out.strip() == ""


def test_schedulers_by_device_class(host):
    nvme = host.file("/sys/block/nvme0n1/queue/scheduler").content_string
    sata = host.file("/sys/block/sda/queue/scheduler").content_string
    assert "[%s]" % TUNING["tuning_scheduler_nonrotational"] in nvme
    assert "[%s]" % TUNING["tuning_scheduler_rotational"] in sata
    rules = host.file(TUNING["tuning_udev_rules_file"]).content_string
    assert "nvme0n1" not in rules and "ATTR{queue/rotational}" in rules


def test_nfs_socket_buffers(host):
    for name, value in TUNING["tuning_sysctl"].items():
        assert host.sysctl(name) == int(value), name
    conf = host.file(TUNING["tuning_sysctl_file"])
    assert conf.exists and "net.core.rmem_max" in conf.content_string
    assert "jts" not in host.file("/etc/sysctl.conf").content_string


def test_fstrim_timer_is_enabled_for_the_hot_mounts(host):
    timer = host.service("jts-fstrim-hot.timer")
    assert timer.is_enabled
    assert timer.is_running
    service = host.file("/etc/systemd/system/jts-fstrim-hot.service").content_string
    for volume in VOLUMES:
        assert volume["mount"] in service


def test_prerequisites_were_installed_again(host):
    """prepare removed zstd; site.yml (the lifecycle install) must have put it back."""
    assert host.package("zstd").is_installed
    for name in ("lvm2", "btrfs-progs", "xfsprogs", "nfs-common", "rsync", "ansible-core"):
        assert host.package(name).is_installed, name


def test_fstrim_service_trims_every_hot_mount(host):
    """The weekly unit itself, started: one fstrim per mount, all of them, and a clean result."""
    run = host.run(
        "systemctl start jts-fstrim-hot.service; echo result=$(systemctl show -p Result --value jts-fstrim-hot.service); "
        "journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value jts-fstrim-hot.service)"
    )
    assert run.rc == 0 and "result=success" in run.stdout, run.stdout + run.stderr
    for volume in VOLUMES:
        assert "%s:" % volume["mount"] in run.stdout, run.stdout
