"""Tests for storage_health's checks (module_utils/_health.py) and the module with everything faked.

Filesystem answers come from a fake ``statvfs``, the mount table and /proc/diskstats from
fixtures/storage_health/, LVM reports from the lab VM captures in fixtures/lvm_snapshot/.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from ansible.module_utils import basic
from lvm_fake import report

from ansible_collections.jts.tiered_storage.plugins.module_utils import _health, _sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._health import HealthChecker
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_report import render_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import build_config
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_verdicts import (
    evaluate_usage,
    should_fail,
    usage_from_statvfs,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.modules import storage_health

FIXTURES = Path(__file__).parent / "fixtures"
HEALTH = FIXTURES / "storage_health"
LVM = FIXTURES / "lvm_snapshot"
GIB = 1024**3


def text(path):
    return path.read_text()


def vfs(size, used, files=1000, ffree=900, frsize=4096, reserved=0):
    """A statvfs answer for ``size`` bytes of which ``used`` are used (``reserved`` only root may use)."""
    blocks = size // frsize
    bfree = (size - used) // frsize
    return {
        "f_bsize": frsize,
        "f_frsize": frsize,
        "f_blocks": blocks,
        "f_bfree": bfree,
        "f_bavail": max(bfree - reserved // frsize, 0),
        "f_files": files,
        "f_ffree": ffree,
        "f_favail": ffree,
    }


def tier_cfg(**overrides):
    raw = {"name": "warm", "paths": ["/data/warm-storage"]}
    raw.update(overrides)
    return build_config({"tiers": [raw]})["tiers"][0]


# ------------------------------------------------------------------------------ thresholds


def test_usage_like_df_with_reserved_blocks():
    usage = usage_from_statvfs(vfs(100 * GIB, 40 * GIB, reserved=10 * GIB))
    # df: used / (used + avail) = 40 / (40 + 50)
    assert usage["used_ratio"] == pytest.approx(40 / 90)
    assert usage["free_bytes"] == 50 * GIB and usage["size_bytes"] == 100 * GIB


@pytest.mark.parametrize(
    ("used_percent", "severity"),
    [(0, None), (79.99, None), (80, "warning"), (89.9, "warning"), (90, "critical"), (100, "critical")],
)
def test_space_thresholds_alert_at_or_above(used_percent, severity):
    tier = tier_cfg()
    size = 100000 * 4096
    usage = usage_from_statvfs(vfs(size, int(size * used_percent / 100) // 4096 * 4096))
    alerts = evaluate_usage(tier, "/data/warm-storage", usage)
    assert [a["severity"] for a in alerts] == ([severity] if severity else [])


def test_exactly_80_percent_is_a_warning_with_the_numbers_in_the_message():
    tier = tier_cfg()
    alerts = evaluate_usage(tier, "/d", usage_from_statvfs(vfs(10 * GIB, 8 * GIB)))
    assert alerts == [
        {
            "severity": "warning",
            "tier": "warm",
            "path": "/d",
            "message": "80.0% used (2.0 GiB free of 10.0 GiB), warning threshold 80%",
        }
    ]


def test_free_bytes_thresholds():
    tier = tier_cfg(warning=99, critical=100, free_warning="3G", free_critical="1G")
    assert [a["severity"] for a in evaluate_usage(tier, "/d", usage_from_statvfs(vfs(10 * GIB, 8 * GIB)))] == [
        "warning"
    ]
    assert [a["severity"] for a in evaluate_usage(tier, "/d", usage_from_statvfs(vfs(10 * GIB, 9.5 * GIB)))] == [
        "critical"
    ]
    assert evaluate_usage(tier, "/d", usage_from_statvfs(vfs(10 * GIB, 5 * GIB))) == []


def test_free_percent_threshold():
    tier = tier_cfg(warning=99, critical=100, free_warning="25%")
    alerts = evaluate_usage(tier, "/d", usage_from_statvfs(vfs(10 * GIB, 8 * GIB)))
    assert [a["message"] for a in alerts] == ["2.0 GiB free, below the warning minimum of 25%"]


def test_zero_size_filesystem_is_unknown_not_a_crash():
    usage = usage_from_statvfs(vfs(0, 0, files=0, ffree=0))
    assert usage["used_ratio"] is None and usage["inode_ratio"] is None
    alerts = evaluate_usage(tier_cfg(free_warning="10%"), "/d", usage)
    assert [a["severity"] for a in alerts] == ["unknown"]
    assert "size of 0 bytes" in alerts[0]["message"]


def test_no_inode_limit_means_no_inode_alert():
    usage = usage_from_statvfs(vfs(10 * GIB, 1 * GIB, files=0, ffree=0))  # btrfs
    assert usage["inode_ratio"] is None
    assert evaluate_usage(tier_cfg(), "/d", usage) == []


def test_inode_thresholds():
    usage = usage_from_statvfs(vfs(10 * GIB, 1 * GIB, files=1000, ffree=50))
    alerts = evaluate_usage(tier_cfg(), "/d", usage)
    assert [(a["severity"], a["message"]) for a in alerts] == [
        ("critical", "95.0% of inodes used, critical threshold 90%")
    ]


@pytest.mark.parametrize(
    ("status", "fail_on", "fails"),
    [
        ("critical", "never", False),
        ("warning", "warning", True),
        ("ok", "warning", False),
        ("unknown", "warning", True),
        ("warning", "critical", False),
        ("critical", "critical", True),
        ("unknown", "unknown", True),
        ("warning", "unknown", False),
    ],
)
def test_should_fail(status, fail_on, fails):
    assert should_fail(status, fail_on) is fails


# ------------------------------------------------------------------------------ the checker


class Fakes:
    """Answers of the system, per path and command; records what was asked."""

    def __init__(self, statvfs=None, probe=(True, ""), commands=None, tools=("lvs", "vgs", "btrfs", "logger")):
        self.vfs = statvfs or {}
        self.probe_answer = probe
        self.commands = commands or {}
        self.tools = tools
        self.issued = []
        self.probed = []
        self.statted = []

    def read_file(self, path):
        return {
            "/proc/self/mounts": text(HEALTH / "mounts_lab.txt"),
            "/proc/diskstats": text(HEALTH / "diskstats.txt"),
        }[path]

    def statvfs(self, path, timeout):
        self.statted.append((path, timeout))
        answer = self.vfs.get(path, vfs(10 * GIB, 1 * GIB))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def probe(self, host, port, timeout):
        self.probed.append((host, port, timeout))
        return self.probe_answer

    def which(self, name):
        return "/usr/sbin/%s" % name if name in self.tools else None

    def runner(self, argv, timeout):
        self.issued.append(list(argv))
        tool = argv[0].rsplit("/", 1)[-1]
        answer = self.commands.get(tool)
        if answer is None:
            raise AssertionError("unexpected command %s" % argv)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def check(self, settings, clock=None):
        config = build_config(settings)
        kwargs = {"read_file": self.read_file, "statvfs": self.statvfs, "probe": self.probe}
        if clock:
            kwargs["clock"] = clock
        return HealthChecker(config, self.runner, self.which, **kwargs).run()


LAB_TIERS = [
    {
        "name": "hot",
        "vg": "vg_jts",
        "vg_free_warning": "5%",
        "mounts": [
            {"path": "/var/lib/postgres", "fstype": "ext4", "options": ["noatime", "commit=60", "data=ordered"]}
        ],
    },
    {
        "name": "warm",
        "mounts": [{"path": "/data/warm-storage", "fstype": "btrfs", "options": "compress=zstd:3,autodefrag,noatime"}],
    },
    {
        "name": "cold",
        "nas_server": "127.0.0.1",
        "mounts": [
            {"path": "/mnt/synology", "fstype": "nfs", "options": ["hard", "rsize=1048576", "wsize=1048576", "_netdev"]}
        ],
    },
]


def lab_commands(lvs="lvs_vg_jts_plain.json", btrfs="btrfs_stats_clean.txt"):
    return {
        "vgs": (0, text(LVM / "vgs_vg_jts_lab.json"), ""),
        "lvs": (0, text(LVM / lvs), ""),
        "btrfs": (0, text(HEALTH / btrfs), ""),
    }


def test_all_tiers_ok():
    fakes = Fakes(commands=lab_commands())
    result = fakes.check({"tiers": LAB_TIERS})
    assert result["status"] == "ok" and result["exit_code"] == 0 and result["alerts"] == []
    assert result["tier_order"] == ["hot", "warm", "cold"]
    assert result["tiers"]["cold"]["nas"] == {"server": "127.0.0.1", "port": 2049, "up": True, "message": ""}
    assert result["tiers"]["hot"]["lvm"]["free_bytes"] == 1971322880
    assert result["tiers"]["hot"]["lvm"]["snapshots"] == []
    assert result["tiers"]["warm"]["btrfs"][0]["devices"]["/dev/sda"]["read_io_errs"] == 0
    assert result["tiers"]["warm"]["io"]["/data/warm-storage"]["device"] == "sda"
    assert result["tiers"]["hot"]["mounts"][0]["drift"] is False
    # the fixture's lvs rows carry no VG fields, so vgs is asked as well
    lvs, vgs, btrfs = fakes.issued
    assert vgs[:5] == ["/usr/sbin/vgs", "--reportformat", "json", "--units", "b"] and vgs[-1] == "vg_jts"
    assert "lv_snapshot_invalid" in lvs[lvs.index("-o") + 1] and lvs[-1] == "vg_jts"
    assert lvs[lvs.index("-o") + 1].endswith(",vg_size,vg_free")
    assert btrfs == ["/usr/sbin/btrfs", "device", "stats", "/data/warm-storage"]
    assert all(timeout <= 3.0 for _path, timeout in fakes.statted)


def test_snapshots_invalid_is_critical_and_fill_thresholds():
    fakes = Fakes(commands=lab_commands(lvs="lvs_vg_jts.json"))
    result = fakes.check({"tiers": [LAB_TIERS[0]]})
    snaps = {s["name"]: s for s in result["tiers"]["hot"]["lvm"]["snapshots"]}
    assert snaps["jts_snap_mongodb_20261122T013000Z"]["valid"] is False
    assert snaps["jts_snap_mongodb_20261122T013000Z"]["status"] == "critical"
    by_path = {a["path"]: a for a in result["alerts"]}
    invalid = by_path["/dev/vg_jts/jts_snap_mongodb_20261122T013000Z"]
    assert invalid["severity"] == "critical" and "invalid" in invalid["message"]
    assert result["status"] == "critical"


def test_snapshot_fill_levels_on_lab_capture():
    # lab capture: cap_mongodb is invalid ("snapshot invalid"), cap_postgres 0.02 % full
    fakes = Fakes(commands=lab_commands(lvs="lvs_vg_jts_lab.json"))
    tier = dict(LAB_TIERS[0], snapshot_warning=0.01, snapshot_critical=50)
    result = fakes.check({"tiers": [tier]})
    levels = {s["name"]: s["status"] for s in result["tiers"]["hot"]["lvm"]["snapshots"]}
    assert levels["cap_mongodb_20261123T000000Z"] == "critical"
    assert levels["cap_postgres_20261123T000000Z"] == "warning"


def test_vg_free_below_minimum():
    fakes = Fakes(commands=lab_commands())
    tier = dict(LAB_TIERS[0], vg_free_warning="30%", vg_free_critical="2G")
    result = fakes.check({"tiers": [tier]})
    vg_alerts = [a for a in result["alerts"] if a["path"] == "/dev/vg_jts"]
    assert [a["severity"] for a in vg_alerts] == ["critical"]
    assert "below the critical minimum of 2.0 GiB" in vg_alerts[0]["message"]


def lvs_with_vg_fields(name):
    """An lvs capture with the VG's size and free space on each row, as ``-o ...,vg_size,vg_free`` prints."""
    data = json.loads(text(LVM / name))
    vg = json.loads(text(LVM / "vgs_vg_jts_lab.json"))["report"][0]["vg"][0]
    for row in data["report"][0]["lv"]:
        row.update(vg_size=vg["vg_size"], vg_free=vg["vg_free"])
    return json.dumps(data)


def test_one_lvs_call_when_its_rows_carry_the_vg_fields():
    fakes = Fakes(commands={"lvs": (0, lvs_with_vg_fields("lvs_vg_jts_lab.json"), "")})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert [c[0] for c in fakes.issued] == ["/usr/sbin/lvs"]
    lvm = result["tiers"]["hot"]["lvm"]
    assert (lvm["size_bytes"], lvm["free_bytes"]) == (8585740288, 1971322880)
    assert len(lvm["snapshots"]) == 2


def test_vg_not_found_is_critical_and_lvm_failure_unknown():
    fakes = Fakes(commands={"lvs": (5, "", '  Volume group "vg_jts" not found\n'), "btrfs": (0, "", "")})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert [(a["severity"], a["message"]) for a in result["alerts"]] == [
        ("critical", 'cannot check VG vg_jts: lvs failed (rc 5): Volume group "vg_jts" not found')
    ]
    fakes = Fakes(commands={"lvs": (3, "", "locking failed")})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["status"] == "unknown" and "lvs failed (rc 3): locking failed" in result["alerts"][0]["message"]
    fakes = Fakes(commands={"lvs": report("lv", []), "vgs": report("vg", [])})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["alerts"][0]["message"] == "cannot check VG vg_jts: VG vg_jts not found"
    fakes = Fakes(commands={"lvs": report("lv", []), "vgs": (3, "", "locking failed")})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["alerts"][0]["message"] == "cannot check VG vg_jts: vgs failed (rc 3): locking failed"
    fakes = Fakes(commands={"lvs": report("lv", []), "vgs": (0, text(LVM / "vgs_vg_jts_lab.json"), "")})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["status"] == "ok" and result["tiers"]["hot"]["lvm"]["snapshots"] == []


def test_lvm_tools_missing_or_slow_is_unknown():
    result = Fakes(tools=()).check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["status"] == "unknown" and "lvs/vgs not found" in result["alerts"][0]["message"]
    fakes = Fakes(commands={"lvs": ProbeTimeout("lvs did not finish within 3.0s")})
    result = fakes.check({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["alerts"][0]["severity"] == "unknown" and "did not finish" in result["alerts"][0]["message"]


def test_mount_not_mounted_wrong_fstype_and_option_drift():
    tiers = [
        {"name": "hot", "mounts": [{"path": "/var/lib/clickhouse", "fstype": "ext4", "options": ["noatime"]}]},
        {"name": "kafka", "mounts": [{"path": "/var/lib/kafka", "fstype": "ext4"}]},
        {"name": "absent", "mounts": [{"path": "/var/lib/redis", "fstype": "ext4"}]},
        {"name": "src", "mounts": [{"path": "/mnt/synology", "source": "10.0.0.1:/volume1/jts"}]},
    ]
    fakes = Fakes()
    result = fakes.check({"tiers": tiers})
    got = [(a["tier"], a["severity"], a["message"]) for a in result["alerts"]]
    assert got == [
        ("hot", "warning", "mount options drifted: noatime missing (live: rw,relatime)"),
        ("kafka", "critical", "mounted as xfs, expected ext4 (another filesystem on the mount point?)"),
        ("absent", "critical", "not mounted"),
        ("src", "warning", "mounted from 127.0.0.1:/srv/nas, expected 10.0.0.1:/volume1/jts"),
    ]
    # an unmounted mount point is not measured: it would show the root filesystem
    assert "/var/lib/redis" not in [p for p, _t in fakes.statted]
    assert result["tiers"]["hot"]["mounts"][0]["missing_options"] == ["noatime"]


def test_missing_path_is_critical_and_unreadable_unknown():
    fakes = Fakes(
        statvfs={
            "/data/gone": OSError(errno.ENOENT, "No such file or directory"),
            "/data/secret": OSError(errno.EACCES, "Permission denied"),
            "/data/odd": RuntimeError("probe child died without an answer"),
        }
    )
    result = fakes.check({"tiers": [{"name": "t", "paths": ["/data/gone", "/data/secret", "/data/odd"]}]})
    assert [(a["path"], a["severity"], a["message"]) for a in result["alerts"]] == [
        ("/data/gone", "critical", "does not exist"),
        ("/data/secret", "unknown", "cannot be read: Permission denied"),
        ("/data/odd", "unknown", "probe failed: probe child died without an answer"),
    ]
    assert result["status"] == "critical"


def test_stalled_mount_is_unknown_and_not_probed_again():
    fakes = Fakes(statvfs={"/mnt/synology": ProbeTimeout("no answer within 3.0s")})
    tier = {"name": "cold", "nas_server": "127.0.0.1", "mounts": ["/mnt/synology"], "paths": ["/mnt/synology/jts"]}
    result = fakes.check({"tiers": [tier]})
    assert result["status"] == "unknown" and result["exit_code"] == 3
    assert [p for p, _t in fakes.statted] == ["/mnt/synology"]
    assert [a["message"] for a in result["alerts"]] == [
        "/mnt/synology did not answer within 3.0s (stalled mount?)",
        "not checked: /mnt/synology did not answer within 3.0s (stalled mount?)",
    ]


def test_nas_down_is_critical_and_its_nfs_mount_is_not_touched():
    fakes = Fakes(probe=(False, "no answer from 127.0.0.1:2049 within 3.0s"), commands=lab_commands())
    result = fakes.check({"tiers": LAB_TIERS})
    cold = [a for a in result["alerts"] if a["tier"] == "cold"]
    assert cold[0] == {
        "severity": "critical",
        "tier": "cold",
        "path": "127.0.0.1:2049",
        "message": "NAS unreachable: no answer from 127.0.0.1:2049 within 3.0s",
    }
    assert cold[1]["severity"] == "unknown" and "would hang" in cold[1]["message"]
    assert "/mnt/synology" not in [p for p, _t in fakes.statted]
    assert result["status"] == "critical" and result["exit_code"] == 2
    assert result["tiers"]["cold"]["status"] == "critical" and result["tiers"]["hot"]["status"] == "ok"


def test_btrfs_errors_alert_with_the_tier_severity():
    fakes = Fakes(commands=lab_commands(btrfs="btrfs_stats_errors.txt"))
    tier = dict(LAB_TIERS[1], btrfs_error_severity="critical")
    result = fakes.check({"tiers": [tier]})
    assert [(a["severity"], a["message"]) for a in result["alerts"]] == [
        (
            "critical",
            "btrfs device /dev/sda reports errors: corruption_errs=1, read_io_errs=3 "
            "(reset with btrfs device stats -z after repair)",
        )
    ]


def test_btrfs_failures_are_unknown():
    for commands, tools, message in [
        ({"btrfs": (1, "", "ERROR: permission denied")}, ("btrfs",), "btrfs device stats failed (rc 1)"),
        ({}, (), "btrfs (btrfs-progs) not found"),
        ({"btrfs": ProbeTimeout("btrfs did not finish")}, ("btrfs",), "did not finish"),
    ]:
        result = Fakes(commands=commands, tools=tools).check({"tiers": [LAB_TIERS[1]]})
        assert result["status"] == "unknown" and message in result["alerts"][0]["message"]


def test_btrfs_stats_can_be_turned_off():
    fakes = Fakes()
    result = fakes.check({"tiers": [dict(LAB_TIERS[1], btrfs_stats=False)]})
    assert result["status"] == "ok" and fakes.issued == []


class SteppingClock:
    """Each reading moves time forward by ``step`` seconds."""

    def __init__(self, step):
        self.now = 0.0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


def test_the_run_timeout_bounds_every_probe():
    fakes = Fakes()
    paths = ["/p%d" % i for i in range(10)]
    result = fakes.check({"tiers": [{"name": "t", "paths": paths}], "timeout": 2.5}, clock=SteppingClock(0.5))
    # the budget handed out shrinks and paths past the deadline are unknown, not probed
    assert all(timeout <= 2.5 for _p, timeout in fakes.statted)
    assert len(fakes.statted) < len(paths)
    assert any("time-out of 2.5s was used up" in a["message"] for a in result["alerts"])
    assert result["status"] == "unknown"


def test_unreadable_mount_table_is_unknown():
    fakes = Fakes()

    def read_file(path):
        raise OSError(errno.EACCES, "Permission denied")

    fakes.read_file = read_file
    result = fakes.check({"tiers": [{"name": "t", "paths": ["/p"], "mounts": ["/m"]}]})
    assert result["alerts"][0] == {
        "severity": "unknown",
        "tier": "-",
        "path": "/proc/self/mounts",
        "message": "cannot read /proc/self/mounts: Permission denied",
    }
    # without the table no mount is judged "not mounted"; the paths are still measured
    assert len(result["alerts"]) == 1 and [p["path"] for p in result["tiers"]["t"]["paths"]] == ["/m", "/p"]
    assert "  UNKNOWN  /proc/self/mounts: cannot read" in render_report(result)


def test_report_shows_paths_vg_nas_and_alerts():
    fakes = Fakes(commands=lab_commands(lvs="lvs_vg_jts_lab.json"))
    result = fakes.check({"tiers": LAB_TIERS})
    report = render_report(result, "jts-lab").splitlines()
    assert report[0].startswith("Storage health of jts-lab: CRITICAL (1 critical, 0 warning, 0 unknown) in ")
    assert "[hot] CRITICAL" in report and "[warm] OK" in report and "[cold] OK" in report
    assert any(line.startswith("  VG vg_jts: 1.8 GiB free of 8.0 GiB (23.0%); 2 snapshot(s)") for line in report)
    assert "  NAS 127.0.0.1:2049 up" in report
    assert any(line.startswith("  CRITICAL /dev/vg_jts/cap_mongodb_20261123T000000Z: snapshot") for line in report)


# ------------------------------------------------------------------------------ the module


@pytest.fixture
def module_run(monkeypatch, run_module):
    fakes = Fakes(commands=lab_commands())
    monkeypatch.setattr(_health, "statvfs_with_timeout", fakes.statvfs)
    monkeypatch.setattr(_health, "statvfs_in_process", lambda path: fakes.statvfs(path, None))
    monkeypatch.setattr(_health, "tcp_probe", fakes.probe)
    monkeypatch.setattr(_health, "_read_text", fakes.read_file)

    def call(args, check_mode=False):
        def commands(cmd, **kw):
            assert kw["environ_update"]["LC_ALL"] == "C"
            assert cmd[:2] == ["/usr/bin/timeout", "--signal=KILL"]
            return fakes.runner(cmd[3:], float(cmd[2]))

        return run_module(storage_health, args, commands=commands, check_mode=check_mode)

    call.fakes = fakes
    return call


def test_module_reports_without_failing_by_default(module_run):
    fakes = module_run.fakes
    fakes.vfs["/data/warm-storage"] = vfs(10 * GIB, 9.5 * GIB, files=0, ffree=0)
    result = module_run({"tiers": LAB_TIERS})
    assert result.get("failed") is not True and result["changed"] is False
    assert result["status"] == "critical" and result["exit_code"] == 2
    assert result["alert_counts"] == {"critical": 1, "warning": 0, "unknown": 0}
    assert result["status_line"].startswith("STORAGE CRITICAL - 1 alert(s): warm /data/warm-storage: 95.0% used")
    assert "'warm /data/warm-storage used'=95%;80;90;0;100" in result["perfdata"]
    assert result["report"].splitlines()[1] == "[hot] OK"
    assert result["sinks"] == {}
    assert "thresholds" not in result


def test_module_fail_on(module_run):
    module_run.fakes.vfs["/data/warm-storage"] = vfs(10 * GIB, 8.5 * GIB)
    result = module_run({"tiers": LAB_TIERS, "fail_on": "critical"})
    assert result.get("failed") is not True
    result = module_run({"tiers": LAB_TIERS, "fail_on": "warning"})
    assert result["failed"] is True and result["status"] == "warning"
    assert result["msg"].startswith("storage health is WARNING (fail_on=warning): warm /data/warm-storage: 85.0% used")


def test_module_rejects_bad_thresholds(module_run):
    result = module_run({"tiers": [{"name": "warm", "paths": ["/d"], "warning": "lots"}]})
    assert result["failed"] is True
    assert result["msg"] == "tier warm: warning: 'lots' is not a percentage (examples: 80, 80%, 12.5%)"


def test_module_webhook_url_never_shown(module_run, monkeypatch):

    url = "https://hooks.example.com/T0KEN-s3cret"

    def refuse(request, timeout):
        assert request.full_url == url and timeout == 2.0
        raise OSError("connect to %s failed" % url)

    monkeypatch.setattr(_sinks, "_urlopen", refuse)
    result = module_run({"tiers": LAB_TIERS, "webhook_url": url, "webhook_timeout": 2, "webhook_min_severity": "ok"})
    assert result["sinks"]["webhook"] == {
        "sent": False,
        "error": "webhook not delivered: connect to <webhook url> failed",
    }
    assert "T0KEN" not in repr(dict(result))
    assert storage_health.ARGUMENT_SPEC["webhook_url"]["no_log"] is True


def test_module_check_mode_writes_nothing(module_run, tmp_path):
    prom = tmp_path / "jts.prom"
    result = module_run({"tiers": LAB_TIERS, "textfile": str(prom), "journal": True}, check_mode=True)
    assert not prom.exists()
    assert result["sinks"]["textfile"] == {"path": str(prom), "written": False, "skipped": "check mode"}
    assert result["sinks"]["journal"]["skipped"] == "check mode"
    assert not [c for c in module_run.fakes.issued if "logger" in c[0]]


def test_module_sinks_write_and_log(module_run, tmp_path):
    prom = tmp_path / "jts.prom"
    module_run.fakes.commands["logger"] = (0, "", "")
    result = module_run({"tiers": LAB_TIERS, "textfile": str(prom), "journal": True, "journal_identifier": "jts-x"})
    assert result["sinks"]["textfile"]["written"] is True and prom.exists()
    assert result["sinks"]["journal"] == {"identifier": "jts-x", "sent": 1}
    logged = [c for c in module_run.fakes.issued if c[0].endswith("logger")]
    assert logged == [["/usr/bin/logger", "-t", "jts-x", "-p", "user.info", "--", logged[0][-1]]]
    assert logged[0][-1] == "storage health OK: 0 critical, 0 warning, 0 unknown"


def test_module_sink_failure_is_a_warning(module_run, tmp_path, monkeypatch):
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warned.append(text))
    result = module_run({"tiers": LAB_TIERS, "textfile": str(tmp_path / "nodir" / "jts.prom")})
    assert result["sinks"]["textfile"]["written"] is False
    assert "cannot write" in result["sinks"]["textfile"]["error"]
    assert [w for w in warned if w.startswith("storage_health sink textfile: cannot write")] == warned
    assert len(warned) == 1


def test_module_timeout_exit_code_is_unknown(module_run):
    module_run.fakes.commands["lvs"] = (137, "", "")
    result = module_run({"tiers": [{"name": "hot", "vg": "vg_jts"}]})
    assert result["status"] == "unknown" and "lvs did not finish within" in result["alerts"][0]["message"]


def test_module_bad_textfile_name(module_run):
    result = module_run({"tiers": LAB_TIERS, "textfile": "/tmp/jts.txt"})
    assert (
        result["failed"] is True
        and result["msg"] == "textfile: /tmp/jts.txt must end in .prom (node_exporter reads only those)"
    )


# ------------------------------------------------------------------------------ which statvfs


@pytest.mark.parametrize(
    ("path", "local"),
    [
        ("/var/lib/postgres", True),  # an ext4 mount point under local mounts only
        ("/var/lib/postgres/", True),
        ("/var/lib/postgres/sub", False),  # not itself a mount point: the time-out variant
        ("/mnt/synology", False),  # NFS
        ("/mnt/synology/jts/local", False),  # a local mount below an NFS one: the walk crosses NFS
        ("/srv/fuse", False),  # unknown filesystem types are treated as remote
    ],
)
def test_is_local_mount_point(path, local):
    mounts = _health.parse_mounts(
        "/dev/vda / ext4 rw 0 0\n"
        "/dev/mapper/vg_jts-postgres /var/lib/postgres ext4 rw,noatime 0 0\n"
        "127.0.0.1:/srv/nas /mnt/synology nfs rw,hard 0 0\n"
        "/dev/sdc1 /mnt/synology/jts/local xfs rw 0 0\n"
        "sshfs#x /srv/fuse fuse.sshfs rw 0 0\n"
    )
    assert _health.is_local_mount_point(path, mounts) is local
    assert _health.is_local_mount_point(path, None) is False


def test_local_mount_points_are_read_without_a_child_process(monkeypatch):
    calls = []
    monkeypatch.setattr(_health, "statvfs_in_process", lambda path: calls.append(("direct", path)) or vfs(GIB, 0))
    checker = HealthChecker.__new__(HealthChecker)
    checker.local_statvfs = _health.statvfs_in_process
    checker.statvfs = lambda path, timeout: calls.append(("timed", path)) or vfs(GIB, 0)
    checker.stalled = {}
    checker.config = {"timeout": 10}
    checker.deadline = _health.Deadline(10, 3)
    tier = _health.build_tier({"name": "t", "paths": ["/data"]})
    mounts = _health.parse_mounts("/dev/vda / ext4 rw 0 0\n/dev/sdb /data xfs rw 0 0\nsrv:/x /nas nfs rw 0 0\n")
    for path in ("/data", "/nas", "/data/sub"):
        entry, alerts = checker.check_path(tier, path, mounts, nas_down=False)
        assert entry["status"] == "ok" and alerts == []
    assert calls == [("direct", "/data"), ("timed", "/nas"), ("timed", "/data/sub")]
