"""ClickHouse hot/cold tiering with ClickHouse's own engine: the clickhouse_storage role's rendered
configuration and the clickhouse_tiering module, for real.

No ClickHouse server with storage policies can be installed on this machine (Debian 12 ships
18.16), so the engine is chdb (PyPI: ClickHouse 26.x in-process), started by
``clickhouse_http_front.py`` with the configuration file the role rendered. That script stands
in for the server's HTTP interface: a small HTTP server that runs each statement the module sends
in chdb and answers in the format the module asks for (see its docstring). The module runs as
Ansible runs it (``python clickhouse_tiering.py args.json``) and speaks HTTP to it; the role runs
with ansible-playbook against localhost, its tiers being temporary directories.

The dead NAS: under ``unshare --mount`` (root, /dev/fuse) the front mounts, over the cold disk's
directory, a FUSE filesystem that never answers, so every access to it blocks in the kernel as on
a hard NFS mount whose server went away; nothing outside the front's mount namespace sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("chdb")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
FRONT = Path(__file__).with_name("clickhouse_http_front.py")
MODULE = ROOT / "plugins" / "modules" / "clickhouse_tiering.py"
PASSWORD = "tiering-pw-42"  # noqa: S105 (a test value)
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


# --------------------------------------------------------------------------- the role


def run_role(base, check=False, site=False, **variables):
    """The clickhouse_storage role against localhost; its tiers are directories below ``base``.

    With ``site``, through playbooks/site.yml: localhost is then in the group clickhouse_hosts only (not
    storage_hosts), so only site.yml's ClickHouse play runs.
    """
    play = base / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: jts.tiered_storage.clickhouse_storage\n"
    )
    inventory = base / "inventory.ini"
    inventory.write_text("[clickhouse_hosts]\nlocalhost ansible_connection=local\n")
    (base / "config.d").mkdir(exist_ok=True)
    values = {
        "ansible_python_interpreter": sys.executable,
        "clickhouse_storage_config_file": str(base / "config.d" / "jts-storage.xml"),
        "clickhouse_storage_preprocessed_config": str(base / "preprocessed.xml"),
        "clickhouse_storage_server_path": str(base / "server"),
        "clickhouse_storage_hot_path": str(base / "server"),
        "warm_tier_mount": str(base / "warm"),
        "cold_tier_mount": str(base / "nas"),
        "clickhouse_storage_require_mounts": False,
        "clickhouse_storage_owner": "root",
        "clickhouse_storage_group": "root",
        "clickhouse_storage_config_group": "root",
        "clickhouse_storage_systemd_dropin": str(base / "systemd" / "clickhouse-server.service.d" / "jts.conf"),
        "clickhouse_storage_systemd_reload": False,
    }
    values.update(variables)
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(values), str(play)]
    if site:  # as root already: no become
        cmd[2] = str(inventory)
        cmd[-1] = str(ROOT / "playbooks" / "site.yml")
        cmd[-2] = json.dumps(dict(values, ansible_become=False))
    if check:
        cmd += ["--check", "--diff"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    return result


def recap(output):
    line = next(line for line in output.splitlines() if line.startswith("localhost") and "ok=" in line)
    return {k: int(v) for k, v in (item.split("=") for item in line.split(":", 1)[1].split())}


# --------------------------------------------------------------------------- the engine behind HTTP


class Front:
    """clickhouse_http_front.py as a subprocess; ``query`` speaks HTTP to it like the module does."""

    def __init__(self, base, config, stall=None):
        self.base = base
        self.port_file = base / "port"
        self.log = base / "front.log"
        for path in (self.port_file, self.log, Path(str(self.port_file) + ".stalled")):
            if path.exists():
                path.unlink()
        cmd = [
            sys.executable,
            str(FRONT),
            "--data",
            str(base / "server"),
            "--config",
            str(config),
            "--port-file",
            str(self.port_file),
            "--password",
            PASSWORD,
            "--log",
            str(self.log),
        ]
        if stall:
            cmd = ["unshare", "--mount", "--propagation", "private", *cmd, "--stall", str(stall)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(base / "front.err", "w"))  # noqa: SIM115
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the front did not start: %s" % (base / "front.err").read_text())
            time.sleep(0.1)
        self.port = int(self.port_file.read_text())
        self.url = "http://127.0.0.1:%d" % self.port

    def query(self, sql, fmt="JSON", timeout=30):
        request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            self.url + "/?default_format=" + fmt,
            data=sql.encode(),
            headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http://127.0.0.1)
            body = answer.read().decode()
        return json.loads(body)["data"] if fmt == "JSON" and body else body

    def logged(self):
        if not self.log.exists():
            return []
        return [json.loads(line)["sql"] for line in self.log.read_text().splitlines()]

    def stall(self):
        self.proc.send_signal(signal.SIGUSR1)
        marker = Path(str(self.port_file) + ".stalled")
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline, (self.base / "front.err").read_text()
            time.sleep(0.05)
        marker.unlink()

    def unstall(self):
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def run_module(args, timeout=120, netns_pid=None):
    """The module as Ansible runs it; returns (result, seconds)."""
    path = Path(args.pop("_args_file"))
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    cmd = [sys.executable, str(MODULE), str(path)]
    if netns_pid:
        cmd = ["nsenter", "--target", str(netns_pid), "--mount", "--", *cmd]
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".collections"))
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("module output is not JSON: %r %r" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    assert PASSWORD.encode() not in proc.stdout + proc.stderr
    return result, elapsed


def module_args(front, base, **extra):
    args = {
        "_args_file": str(base / ("args-%d.json" % time.monotonic_ns())),
        "url": front.url,
        "password": PASSWORD,
        "wait_timeout": 30,
        "tables": [
            {"database": "market", "table": "ticks", "column": "d"},
            {"database": "market", "table": "orders", "ttl": False},
        ],
    }
    args.update(extra)
    return args


def create_tables(front):
    front.query("CREATE DATABASE IF NOT EXISTS market", fmt="TabSeparated")
    for name, column, kind in (("ticks", "d", "Date"), ("orders", "ts", "DateTime")):
        front.query(
            "CREATE TABLE market.%s (%s %s, px Float64) ENGINE = MergeTree PARTITION BY toYYYYMM(%s) "
            "ORDER BY %s SETTINGS storage_policy = 'hot_cold'" % (name, column, kind, column, column),
            fmt="TabSeparated",
        )
        value = "today() - number" if kind == "Date" else "now() - number * 86400"
        for _ in range(2):  # two parts per partition
            insert = "INSERT INTO market.%s SELECT %s, number FROM numbers(120)" % (name, value)  # noqa: S608
            front.query(insert, fmt="TabSeparated")


def placement(front, table, column_kind):
    """Every active part: (name, partition, disk, due) where due = its newest row is 30 days old or more."""
    newest = "toDateTime(max_date)" if column_kind == "Date" else "max_time"
    return front.query(
        "SELECT name, partition_id, disk_name, %s + INTERVAL 30 DAY <= now() AS due FROM system.parts "  # noqa: S608
        "WHERE active AND database = 'market' AND table = '%s' ORDER BY name" % (newest, table)
    )


def assert_placed(front):
    for table, kind in (("ticks", "Date"), ("orders", "DateTime")):
        rows = placement(front, table, kind)
        assert any(r["due"] for r in rows) and not all(r["due"] for r in rows), rows
        wrong = [r for r in rows if (r["disk_name"] == "warm") != bool(r["due"])]
        assert wrong == [], "%s: misplaced parts %s" % (table, wrong)


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def tiers(tmp_path_factory):
    """The role rendered with the warm tier and the NAS, chdb started on it, two tables of 120 days."""
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook not found in %s" % BIN)
    base = tmp_path_factory.mktemp("clickhouse")
    (base / "server").mkdir()
    result = run_role(base, clickhouse_storage_nas_enabled=True)
    assert result.returncode == 0, result.stdout + result.stderr
    front = Front(base, base / "config.d" / "jts-storage.xml")
    try:
        create_tables(front)
        yield base, front
    finally:
        front.stop()


def test_the_rendered_configuration_is_what_the_engine_loads(tiers):
    base, front = tiers
    disks = {r["name"]: r["path"] for r in front.query("SELECT name, path FROM system.disks")}
    assert disks == {
        "default": str(base / "server") + "/",
        "warm": str(base / "warm" / "clickhouse") + "/",
        "nas": str(base / "nas" / "jts" / "clickhouse") + "/",
    }
    policy = front.query(
        "SELECT volume_name, disks, perform_ttl_move_on_insert, prefer_not_to_merge, move_factor "
        "FROM system.storage_policies WHERE policy_name = 'hot_cold' ORDER BY volume_priority"
    )
    assert [(v["volume_name"], v["disks"]) for v in policy] == [
        ("hot", ["default"]),
        ("cold", ["warm"]),
        ("nas", ["nas"]),
    ]
    assert [(v["perform_ttl_move_on_insert"], v["prefer_not_to_merge"]) for v in policy] == [(1, 0), (1, 0), (0, 1)]
    assert {v["move_factor"] for v in policy} == {0.1}
    assert "Ansible managed" in (base / "config.d" / "jts-storage.xml").read_text()


def test_check_mode_lists_the_changes_and_moves_nothing(tiers):
    base, front = tiers
    before = placement(front, "ticks", "Date") + placement(front, "orders", "DateTime")
    result, _ = run_module(dict(module_args(front, base), _ansible_check_mode=True, _ansible_diff=True))
    assert result["changed"] is True and not result.get("failed"), result
    assert result["statements"][0] == "ALTER TABLE `market`.`ticks` MODIFY TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'"
    assert all("MOVE PARTITION ID" in s for s in result["statements"][1:]) and len(result["statements"]) >= 2
    assert "TTL `d` + INTERVAL 30 DAY TO VOLUME 'cold'" in result["diff"]["after"]
    assert placement(front, "ticks", "Date") + placement(front, "orders", "DateTime") == before
    assert not any(s.startswith("ALTER") for s in front.logged())


def test_old_parts_go_cold_none_come_back_and_a_second_run_changes_nothing(tiers):
    base, front = tiers
    result, _ = run_module(module_args(front, base))
    assert result["changed"] is True and not result.get("failed"), result
    assert all(m["verified"] for m in result["tables"][1]["moves"]) and result["tables"][1]["moves"]
    assert [t["pending"] for t in result["tables"]] == [[], []]
    assert_placed(front)
    # the report: parts and bytes per disk, the oldest data on hot younger than the rule
    assert set(result["disks"]) >= {"default", "warm"}
    assert result["disks"]["warm"]["volume"] == "cold" and result["disks"]["warm"]["parts"] > 0
    assert sum(d["bytes"] for d in result["tables"][0]["disks"].values()) > 0
    assert 0 <= result["oldest_hot_part"]["age_days"] < 30

    cold = {r["name"] for r in placement(front, "ticks", "Date") if r["disk_name"] == "warm"}
    # merges, new old rows (straight to cold: perform_ttl_move_on_insert) and time: nothing comes back
    front.query("OPTIMIZE TABLE market.ticks FINAL", fmt="TabSeparated")
    front.query("OPTIMIZE TABLE market.orders FINAL", fmt="TabSeparated")
    front.query("INSERT INTO market.ticks SELECT today() - 100 - number, 1 FROM numbers(5)", fmt="TabSeparated")
    time.sleep(3)
    assert_placed(front)
    assert cold, "no part went cold"

    again, _ = run_module(module_args(front, base))
    assert again["changed"] is False and again["statements"] == [], again
    assert [t["pending"] for t in again["tables"]] == [[], []]
    assert again["tables"][0]["ttl_before"] == ["d + toIntervalDay(30) TO VOLUME 'cold'"]


def test_a_wrong_password_is_a_clean_failure(tiers):
    base, front = tiers
    result, _ = run_module(dict(module_args(front, base), password="wrong-one"))  # noqa: S106
    assert result["failed"] is True and "AUTHENTICATION_FAILED" in result["msg"], result
    assert "wrong-one" not in json.dumps(result)


def test_role_check_mode_is_truthful_and_a_second_run_changes_nothing(tmp_path):
    (tmp_path / "server").mkdir()
    config = tmp_path / "config.d" / "jts-storage.xml"
    dropin = tmp_path / "systemd" / "clickhouse-server.service.d" / "jts.conf"
    checked = run_role(tmp_path, check=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the warm directory, the drop-in's directory, the drop-in and the file
    assert recap(checked.stdout)["changed"] == 4, checked.stdout
    assert "+                        <disk>warm</disk>" in checked.stdout
    assert "+RequiresMountsFor=%s/warm/clickhouse/" % tmp_path in checked.stdout
    assert not config.exists() and not dropin.exists() and not (tmp_path / "warm" / "clickhouse").exists()

    first = run_role(tmp_path)
    assert first.returncode == 0 and recap(first.stdout)["changed"] == 4, first.stdout
    assert (tmp_path / "warm" / "clickhouse").is_dir()
    assert "RequiresMountsFor=%s/warm/clickhouse/\n" % tmp_path in dropin.read_text()
    again = run_role(tmp_path)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout
    checked_again = run_role(tmp_path, check=True)
    assert recap(checked_again.stdout)["changed"] == 0, checked_again.stdout

    # no tier to guard: the drop-in goes
    unguarded = run_role(tmp_path, clickhouse_storage_mount_guard_tiers=[])
    assert unguarded.returncode == 0 and recap(unguarded.stdout)["changed"] == 1, unguarded.stdout
    assert not dropin.exists()


def test_site_yml_puts_clickhouse_storage_on_the_tiers_of_clickhouse_hosts(tmp_path):
    """The front door: site.yml's play for the group clickhouse_hosts renders the file, and a rerun changes nothing."""
    (tmp_path / "server").mkdir()
    config = tmp_path / "config.d" / "jts-storage.xml"
    checked = run_role(tmp_path, check=True, site=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Put ClickHouse's storage on the tiers" in checked.stdout and not config.exists()
    first = run_role(tmp_path, site=True)
    assert first.returncode == 0 and recap(first.stdout)["changed"] == 4, first.stdout
    assert "<policy_name>" not in config.read_text() and "<hot_cold>" in config.read_text()
    again = run_role(tmp_path, site=True)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout


def chdb_policy(data, config):
    """The volumes of hot_cold as a fresh engine loads ``config``, in a process of its own."""
    code = (
        "import chdb, json, sys\n"  # noqa: S608 (a test's own statement)
        "c = chdb.connect('file:%s?config-file=%s')\n"
        "print(c.query(\"SELECT volume_name, disks FROM system.storage_policies WHERE policy_name = 'hot_cold' "
        "ORDER BY volume_priority\", 'JSONCompact').bytes().decode())\n" % (data, config)
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [tuple(row) for row in json.loads(result.stdout)["data"]]


def test_the_role_never_drops_a_disk_the_policy_had(tmp_path):
    (tmp_path / "server").mkdir()
    config = tmp_path / "config.d" / "jts-storage.xml"
    assert run_role(tmp_path, clickhouse_storage_nas_enabled=True).returncode == 0
    assert chdb_policy(tmp_path / "server", config) == [("hot", ["default"]), ("cold", ["warm"]), ("nas", ["nas"])]

    # the inventory stops asking for the NAS: the disk and its volume stay, and the run says so
    later = run_role(tmp_path, clickhouse_storage_nas_enabled=False)
    assert later.returncode == 0, later.stdout + later.stderr
    assert "disk nas (%s/nas/jts/clickhouse/) is kept" % tmp_path in " ".join(later.stdout.split())
    assert chdb_policy(tmp_path / "server", config) == [("hot", ["default"]), ("cold", ["warm"]), ("nas", ["nas"])]

    # the configuration the server loaded had one more disk in the cold volume: it stays there
    (tmp_path / "preprocessed.xml").write_text(
        "<clickhouse><storage_configuration><disks><old_sata><path>%s/sata/</path></old_sata></disks>"
        "<policies><hot_cold><volumes><hot><disk>default</disk></hot><cold><disk>warm</disk><disk>old_sata</disk>"
        "</cold></volumes></hot_cold></policies></storage_configuration></clickhouse>" % tmp_path
    )
    kept = run_role(tmp_path)
    assert kept.returncode == 0, kept.stdout
    assert "<disk>old_sata</disk>" in config.read_text()

    # a disk whose path the inventory changes is refused, and the file stays as it was
    text = config.read_text()
    moved = run_role(tmp_path, clickhouse_storage_warm_path=str(tmp_path / "elsewhere"))
    assert moved.returncode != 0
    assert "disk 'warm' is at %s/warm/clickhouse/" % tmp_path in " ".join(moved.stdout.split())
    assert config.read_text() == text


def _can_stall():
    return (
        os.geteuid() == 0
        and os.path.exists("/dev/fuse")
        and shutil.which("unshare")
        and shutil.which("nsenter")
        and subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0
    )


@pytest.mark.root
@pytest.mark.skipif(not _can_stall(), reason="needs root, /dev/fuse, unshare and nsenter")
def test_a_cold_disk_that_stops_answering_fails_the_run_within_its_time_outs(tmp_path):
    (tmp_path / "server").mkdir()
    assert run_role(tmp_path).returncode == 0
    warm = tmp_path / "warm" / "clickhouse"
    front = Front(tmp_path, tmp_path / "config.d" / "jts-storage.xml", stall=warm)
    try:
        create_tables(front)
        front.stall()  # from here on, anything that touches the warm disk's directory blocks

        # 1. The probe from the host (in the front's mount namespace, where the stall is): the
        #    server is never asked anything that touches the cold disk.
        result, elapsed = run_module(
            module_args(front, tmp_path, probe_paths=[str(warm)], probe_timeout=2), netns_pid=front.proc.pid
        )
        assert result["failed"] is True, result
        assert "cold disk path %s did not answer within 2s" % warm in result["msg"]
        assert elapsed < 2 + 3, elapsed
        assert not any(s.startswith("ALTER") or "system.disks" in s for s in front.logged())

        # 2. A move that hangs (the probe looked at a healthy path): the move's time-out ends it.
        result, elapsed = run_module(
            module_args(
                front,
                tmp_path,
                probe_paths=[str(tmp_path)],
                move_timeout=3,
                tables=[{"database": "market", "table": "orders", "ttl": False}],
            )
        )
        assert result["failed"] is True, result
        assert "moving partition" in result["msg"] and "no answer within 3s" in result["msg"], result["msg"]
        assert elapsed < 3 + 2 + 3, elapsed  # move time-out + the KILL request's + start-up
        front.unstall()  # the stuck statement fails (ENOTCONN) and the engine answers again
        front.query("SELECT 1", fmt="TabSeparated")
        front.stall()

        # 3. No probe paths: the server's system.disks is the probe, and it hangs (ClickHouse 65552).
        result, elapsed = run_module(module_args(front, tmp_path, probe_timeout=2))
        assert result["failed"] is True, result
        assert "did not answer within 2s (system.disks)" in result["msg"], result["msg"]
        assert result["changed"] is False and result["statements"] == []
        assert elapsed < 2 + 2 + 3, elapsed
        assert not any(s.startswith("ALTER TABLE `market`.`ticks`") for s in front.logged())
    finally:
        front.unstall()
        front.stop()


@pytest.fixture
def btrfs_warm(tmp_path):
    """A btrfs (zstd, as the warm tier mounts it) on a loop image, mounted at tmp_path/warm."""
    point = tmp_path / "warm"
    point.mkdir()
    image = tmp_path / "warm.img"
    with open(image, "wb") as handle:
        handle.truncate(160 << 20)
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True)
    device = loop.stdout.strip()
    mounted = False

    def mount():
        nonlocal mounted
        subprocess.run(["mount", "-o", "compress=zstd:3,noatime", device, str(point)], check=True)
        mounted = True

    try:
        subprocess.run(["mkfs.btrfs", "-q", "-f", device], check=True, capture_output=True)
        yield point, mount
    finally:
        if mounted:
            subprocess.run(["umount", str(point)], check=False)
        subprocess.run(["losetup", "-d", device], check=False)


def lsattr_flags(path):
    out = subprocess.run(["lsattr", "-d", str(path)], check=True, capture_output=True, text=True).stdout
    return out.split()[0]


@pytest.mark.root
@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("losetup", "mkfs.btrfs", "lsattr")),
    reason="needs root, losetup, mkfs.btrfs and lsattr",
)
def test_the_warm_disk_only_on_the_mounted_tier_and_btrfs_leaves_its_parts_uncompressed(tmp_path, btrfs_warm):
    (tmp_path / "server").mkdir()
    point, mount = btrfs_warm
    variables = {
        "hot_tier_mode": "directory",
        "clickhouse_storage_require_mounts": True,
        "clickhouse_storage_warm_nocompress": True,
    }
    config = tmp_path / "config.d" / "jts-storage.xml"

    # not mounted: refused before anything is written, nothing created below the mount point
    refused = run_role(tmp_path, **variables)
    assert refused.returncode != 0
    assert "(warm disk) must be below %s with a btrfs filesystem mounted there" % point in " ".join(
        refused.stdout.split()
    )
    assert not config.exists() and not (point / "clickhouse").exists()

    mount()
    done = run_role(tmp_path, **variables)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "m" in lsattr_flags(point / "clickhouse")
    part = point / "clickhouse" / "store"
    part.mkdir()
    (part / "data.bin").write_bytes(b"\0" * 65536)
    assert "m" in lsattr_flags(part) and "m" in lsattr_flags(part / "data.bin")  # inherited by what the server writes
    again = run_role(tmp_path, **variables)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout
