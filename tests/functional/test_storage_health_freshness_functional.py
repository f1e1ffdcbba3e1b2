"""Freshness for real: install_health.yml derives the checks from the layout (tmpfs mounts stand in
for the warm tier and the NAS), and the installed jts-storage-check and the lifecycle role's health
step look at real archives, snapshot directories and run state in temporary directories.

Ages come from the names, so the archives carry old stamps (and, to show that mtimes do not count,
fresh or old mtimes). The NAS "away" is a closed TCP port and the NAS "up" a socket that listens,
as in test_storage_health_functional.py; a mount that hangs is shown in the unit tests with a
real child that never answers (tests/unit/plugins/module_utils/test_health_freshness.py).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
from as_ansible import BIN, ROOT, SHOW, ansible_env, playbook, tasks_from_play

ENV = ansible_env()
PERF_ITEM = re.compile(r"^'(?:[^']|'')+'=-?\d+(?:\.\d+)?(?:%|B|s)?;[0-9.]*;[0-9.]*;[0-9.]*;[0-9.]*$")
H = 3600
LVS = ("postgres", "clickhouse", "mongodb")  # hot_tier_volumes' defaults with a snapshot_size


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backup(directory, lv, age, mtime_age=None):
    """``<lv>_<stamp>.tar.zst`` and its ``.sha256`` as snapshot_archive names them, ``age`` seconds old."""
    directory.mkdir(parents=True, exist_ok=True)
    when = time.time() - age
    name = "%s_%s.tar.zst" % (
        lv,
        datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
    )
    for path, data in (
        (directory / name, b"zstd"),
        (directory / (name + ".sha256"), b"0" * 64 + b"  " + name.encode()),
    ):
        path.write_bytes(data)
        stamp = time.time() - (age if mtime_age is None else mtime_age)
        os.utime(path, (stamp, stamp))
    return name


def snapshot(directory, age):
    when = datetime.datetime.fromtimestamp(time.time() - age, datetime.timezone.utc)
    path = directory / when.strftime("%Y-%m-%dT%H%M%SZ")
    path.mkdir(parents=True)
    return path


def state(directory, last_success):
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / "last-run.json"
    path.write_text(json.dumps({"version": 1, "run": {"last_success": last_success}, "steps": {}}))
    os.chmod(path, 0o600)
    return path


def tmpfs(path):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "jts-test", str(path)], check=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """install_health.yml run for real, the warm tier and the NAS on tmpfs, the NAS port listening."""
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook not found in %s" % BIN)
    if os.geteuid() != 0:
        pytest.skip("needs root (tmpfs mounts)")
    base = tmp_path_factory.mktemp("freshness-site")
    (base / "collections").symlink_to(ROOT / ".collections")
    warm, nas = base / "warm", base / "nas"
    mounted = []
    listener = socket.socket()
    try:
        for path in (warm, nas):
            tmpfs(path)
            mounted.append(path)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel accepts the probe's connections: the NAS answers
        play = tasks_from_play(base / "play.yml", "Install the check", "install_health")
        variables = {
            # the layout, said once: everything the freshness checks look at derives from it
            "warm_tier_mount": str(warm),
            "cold_tier_mount": str(nas),
            "cold_tier_server": "127.0.0.1",
            "cold_tier_probe_port": listener.getsockname()[1],
            "lifecycle_report_state_dir": str(base / "state"),
            "lifecycle_install_dir": str(base),
            "lifecycle_health_config_file": str(base / "storage-health.json"),
            "lifecycle_health_check_command": str(base / "jts-storage-check"),
            "lifecycle_health_tiers": [{"name": "warm", "paths": [str(warm)], "warning": 100, "critical": 100}],
            "lifecycle_health_textfile": str(base / "jts_storage.prom"),
            "ansible_python_interpreter": sys.executable,
        }
        result = playbook(play, variables, env=ENV)
        assert result.returncode == 0, result.stdout + result.stderr
        for lv in LVS:
            backup(warm / "daily-backups" / lv, lv, 30 * 24 * H)  # older ones, moved later
            backup(warm / "daily-backups" / lv, lv, 2 * H)
            backup(nas / "jts" / "archives" / "database" / lv, lv, 31 * 24 * H)
        snapshot(nas / "jts" / "archives" / "configs" / "configs", 3 * H)
        state(base / "state", time.time() - H)
        yield {"base": base, "warm": warm, "nas": nas, "variables": variables, "port": listener.getsockname()[1]}
    finally:
        listener.close()
        for path in mounted:
            subprocess.run(["umount", str(path)], check=False)


def check(site, config, *args, timeout=30, scope="--all"):
    """The installed command; ``--all`` (tiers and freshness) unless another ``scope`` is given."""
    started = time.monotonic()
    scope_args = [scope] if scope else []
    result = subprocess.run(
        [sys.executable, str(site["base"] / "jts-storage-check"), "--config", str(config), *scope_args, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    return result, time.monotonic() - started


def config_with(site, tmp_path, **freshness):
    config = tmp_path / "health.json"
    tiers = [{"name": "warm", "paths": [str(tmp_path)], "warning": 100, "critical": 100}]
    config.write_text(json.dumps({"tiers": tiers, "timeout": 4, "probe_timeout": 2, "freshness": freshness}))
    return config


def test_install_derives_the_checks_from_the_layout(site):
    config = json.loads((site["base"] / "storage-health.json").read_text())
    fresh = config["freshness"]
    warm, nas = str(site["warm"]), str(site["nas"])
    assert (fresh["nas_server"], int(fresh["nas_port"])) == ("127.0.0.1", site["port"])
    assert fresh["backups"] == {
        "directory": warm + "/daily-backups",
        "mount": warm,
        "volumes": list(LVS),
        "warning": "26h",
        "critical": "50h",
        "missing": "critical",
    }
    assert (fresh["nas_backups"]["directory"], fresh["nas_backups"]["mount"]) == (nas + "/jts/archives/database", nas)
    assert fresh["nas_backups"]["missing"] == "warning"
    assert fresh["nas_snapshots"]["archives"] == {"configs": nas + "/jts/archives/configs"}
    assert fresh["last_run"]["state_dir"] == str(site["base"] / "state")
    # no database step in the default lifecycle_steps: none checked
    assert fresh["databases"]["state_dir"] == str(site["base"] / "state") and fresh["databases"]["steps"] == []


def test_by_default_the_command_checks_the_tiers_and_freshness_is_its_own_service(site):
    result, _elapsed = check(site, site["base"] / "storage-health.json", scope=None)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("STORAGE OK - all 1 tier(s) ok | ") and "[freshness]" not in result.stdout
    result, _elapsed = check(site, site["base"] / "storage-health.json", scope="--freshness")
    assert result.returncode == 0, result.stdout
    status, _, perf = result.stdout.splitlines()[0].partition(" | ")
    assert status == "FRESHNESS OK - all 8 freshness check(s) ok"
    assert "used'=" not in perf and "'last success age'=" in perf


def test_all_fresh_is_ok_with_ages_in_perfdata(site):
    result, elapsed = check(site, site["base"] / "storage-health.json")
    assert result.returncode == 0, result.stdout + result.stderr
    status, _, perf = result.stdout.splitlines()[0].partition(" | ")
    assert status == "STORAGE OK - all 1 tier(s) and 8 freshness check(s) ok"
    items = re.findall(r"'(?:[^']|'')+'=\S+", perf)
    assert all(PERF_ITEM.match(item) for item in items), perf
    ages = {
        m.group(1): (int(m.group(2)), m.group(3)) for m in (re.match(r"'(.+ age)'=(\d+)s;(.*)", i) for i in items) if m
    }
    assert sorted(ages) == sorted(
        ["backup %s age" % lv for lv in LVS]
        + ["nas backup %s age" % lv for lv in LVS]
        + ["nas snapshot configs age", "last success age"]
    )
    assert 2 * H - 120 <= ages["backup postgres age"][0] <= 2 * H + 120
    assert ages["backup postgres age"][1] == "93600;180000;0;"
    assert ages["nas backup mongodb age"][1] == "2772000;2858400;0;"
    assert "[freshness] OK" in result.stdout
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("age", "code", "word", "shown"), [(30 * H, 1, "WARNING", "1d 6h"), (60 * H, 2, "CRITICAL", "2d 12h")]
)
def test_stale_backup_by_its_name_even_when_touched(site, tmp_path, age, code, word, shown):
    name = backup(tmp_path / "b" / "postgres", "postgres", age, mtime_age=0)  # mtime: now
    config = config_with(site, tmp_path, backups={"directory": str(tmp_path / "b"), "volumes": ["postgres"]})
    result, _elapsed = check(site, config)
    assert result.returncode == code, result.stdout
    assert result.stdout.startswith(
        "STORAGE %s - 1 alert(s): freshness %s: newest backup of postgres (%s) is %s old"
        % (word, tmp_path / "b" / "postgres", name, shown)
    )


def test_old_mtime_does_not_make_a_fresh_backup_stale(site, tmp_path):
    backup(tmp_path / "b" / "postgres", "postgres", H, mtime_age=90 * 24 * H)  # copied with an old mtime
    config = config_with(site, tmp_path, backups={"directory": str(tmp_path / "b"), "volumes": ["postgres"]})
    result, _elapsed = check(site, config)
    assert result.returncode == 0, result.stdout


def test_missing_and_empty_backup_directories_are_critical(site, tmp_path):
    (tmp_path / "b" / "postgres").mkdir(parents=True)
    config = config_with(site, tmp_path, backups={"directory": str(tmp_path / "b"), "volumes": ["postgres", "mongodb"]})
    result, _elapsed = check(site, config, "--json")
    assert result.returncode == 2
    messages = [a["message"] for a in json.loads(result.stdout)["alerts"]]
    assert messages == [
        "no backup of postgres: %s holds none" % (tmp_path / "b" / "postgres"),
        "no backup of mongodb: %s does not exist" % (tmp_path / "b" / "mongodb"),
    ]


def test_state_missing_says_never_ran_and_a_planted_symlink_is_not_followed(site, tmp_path):
    config = config_with(site, tmp_path, last_run={"state_dir": str(tmp_path / "state")})
    result, _elapsed = check(site, config)
    assert result.returncode == 2
    assert "the nightly run never reported (never ran, or its state is gone)" in result.stdout
    good = state(tmp_path / "elsewhere", time.time())
    (tmp_path / "state").mkdir(mode=0o700)
    os.symlink(good, tmp_path / "state" / "last-run.json")
    result, _elapsed = check(site, config)
    assert result.returncode == 3, result.stdout
    assert result.stdout.startswith(
        "STORAGE UNKNOWN - 1 alert(s): freshness %s: successful nightly run: not checked: "
        % (tmp_path / "state" / "last-run.json")
    )
    assert "not followed" in result.stdout.splitlines()[0]


def test_a_fifo_planted_as_the_state_does_not_block(site, tmp_path):
    (tmp_path / "state").mkdir(mode=0o700)
    os.mkfifo(tmp_path / "state" / "last-run.json", 0o600)
    result, elapsed = check(site, config_with(site, tmp_path, last_run={"state_dir": str(tmp_path / "state")}))
    assert result.returncode == 3 and "is not a regular file" in result.stdout
    assert elapsed < 4


def test_nas_away_is_unknown_within_the_time_out(site, tmp_path):
    nas = {
        "directory": str(site["nas"] / "jts" / "archives" / "database"),
        "volumes": ["postgres"],
        "mount": str(site["nas"]),
    }
    config = config_with(site, tmp_path, nas_server="127.0.0.1", nas_port=closed_port(), nas_backups=nas)
    result, elapsed = check(site, config)
    assert result.returncode == 3, result.stdout
    assert "backup of postgres on the NAS: not checked: the NAS does not answer" in result.stdout
    assert "nas backup" not in result.stdout.splitlines()[0].partition(" | ")[2]  # no age: no perfdata
    assert elapsed < 4 + 1 + 1.5


def test_nas_not_mounted_is_unknown(site, tmp_path):
    nas = tmp_path / "nas"  # not a mount point
    backup(nas / "db" / "postgres", "postgres", 31 * 24 * H)
    config = config_with(
        site, tmp_path, nas_backups={"directory": str(nas / "db"), "volumes": ["postgres"], "mount": str(nas)}
    )
    result, _elapsed = check(site, config)
    assert result.returncode == 3 and "not checked: %s is not mounted" % nas in result.stdout


def test_nas_ages_and_snapshots_on_a_mounted_nas(site, tmp_path):
    nas = site["nas"]
    root = nas / ("freshness-test-%d" % os.getpid())
    try:
        backup(root / "db" / "postgres", "postgres", 33 * 24 * H)
        snaps = root / "archives" / "etc"
        snapshot(snaps, 51 * H)
        (snaps / "latest").symlink_to(snapshot(snaps, 27 * H).name)
        config = config_with(
            site,
            tmp_path,
            nas_server="127.0.0.1",
            nas_port=site["port"],
            nas_backups={"directory": str(root / "db"), "volumes": ["postgres"], "mount": str(nas)},
            nas_snapshots={"archives": {"etc": str(root / "archives")}, "mount": str(nas)},
        )
        result, _elapsed = check(site, config, "--json")
        data = json.loads(result.stdout)
        assert {(c["kind"], c["status"]) for c in data["freshness"]["checks"]} == {
            ("nas_backup", "warning"),
            ("nas_snapshot", "warning"),
        }
        assert data["exit_code"] == 1 and result.returncode == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_sinks_write_the_ages_and_promtool_accepts_them(site, tmp_path):
    backup(tmp_path / "b" / "postgres", "postgres", 30 * H)
    state(tmp_path / "state", time.time() - H)
    prom = tmp_path / "jts_storage.prom"
    config = config_with(
        site,
        tmp_path,
        backups={"directory": str(tmp_path / "b"), "volumes": ["postgres", "mongodb"]},
        last_run={"state_dir": str(tmp_path / "state")},
    )
    data = json.loads(config.read_text())
    config.write_text(json.dumps(dict(data, textfile=str(prom))))
    result, _elapsed = check(site, config, "--sinks")
    assert result.returncode == 2, result.stdout
    text = prom.read_text()
    assert re.search(r'^jts_storage_backup_age_seconds\{lv="postgres"\} 10[78]\d\d\d$', text, re.M), text
    assert re.search(r"^jts_storage_lifecycle_last_success_age_seconds 3[56]\d\d$", text, re.M), text
    assert 'jts_storage_freshness_status{kind="backup",name="mongodb"} 2' in text
    assert 'jts_storage_backup_age_seconds{lv="mongodb"}' not in text
    promtool = shutil.which("promtool")
    if promtool:
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_health_step_of_the_lifecycle_role_checks_freshness(site, tmp_path):
    prom = tmp_path / "textfile" / "jts_storage.prom"
    show = SHOW % "\"FRESHNESS={{ __lifecycle_health.freshness.checks | map(attribute='status') | join(',') }}\""
    play = tasks_from_play(tmp_path / "play.yml", "Run the health step", "health", show)
    variables = dict(site["variables"], lifecycle_health_textfile=str(prom), lifecycle_health_journal=False)
    result = playbook(play, variables, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FRESHNESS=ok,ok,ok,ok,ok,ok,ok,ok" in result.stdout
    text = prom.read_text()
    for lv in LVS:
        assert 'jts_storage_backup_age_seconds{lv="%s"}' % lv in text
        assert 'jts_storage_nas_backup_age_seconds{lv="%s"}' % lv in text
    assert 'jts_storage_nas_snapshot_age_seconds{archive="configs"}' in text
    assert "jts_storage_lifecycle_last_success_age_seconds " in text


def test_unprivileged_user_gets_unknown_not_a_guess(site, tmp_path):
    # the state directory is root's (0700): a Nagios user that may not read it is told so
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not found")
    state(tmp_path / "state", time.time() - H)
    os.chmod(tmp_path, 0o755)  # noqa: S103 - nobody must reach the root-only state directory inside
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from ansible_collections.jts.tiered_storage.plugins.module_utils import _freshness as f\n"
        "from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import call_with_timeout\n"
        "config = f.build_freshness({'last_run': {'state_dir': %r}})\n"
        "entries, alerts = f.check_freshness(config, call_with_timeout, lambda: 3.0, 0, None, None)\n"
        "print(json.dumps(alerts))\n"
    ) % (str(ROOT / ".collections"), str(tmp_path / "state"))
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    if result.returncode != 0 and "Permission denied" in result.stderr and "ansible_collections" in result.stderr:
        pytest.skip("the checkout is not readable by nobody")
    assert result.returncode == 0, result.stderr
    alerts = json.loads(result.stdout)
    assert alerts[0]["severity"] == "unknown"
    assert (
        "permission denied on %s (run the check as root)" % (tmp_path / "state" / "last-run.json")
        in alerts[0]["message"]
    )
