"""Freshness checks (module_utils/_freshness.py) on real directories in tmp_path.

The scanners run as in production, in a forked child with a time-out (``call_with_timeout``);
only the mount table, the NAS probe and the clock are given. Every branch: fresh, warning,
critical, missing, empty, NAS away, not mounted, stalled (a real child that never answers),
the run state missing or null, and symlinks planted where a directory or the state should be.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import time

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _freshness, _health_sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import FreshnessError, build_freshness
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness_check import (
    check_freshness,
    evaluate,
    format_age,
    os_error_reason,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness_scan import scan_archives
from ansible_collections.jts.tiered_storage.plugins.module_utils._health import HealthChecker
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_report import render_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import HealthError, build_config
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import call_with_timeout

NOW = 1795400000  # a fixed "now" (2026-11-22T...Z); stamps are made relative to it
H = 3600


def backup_stamp(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def snapshot_stamp(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")


def make_backup(directory, lv, age, sha=True):
    directory.mkdir(parents=True, exist_ok=True)
    name = "%s_%s.tar.zst" % (lv, backup_stamp(NOW - age))
    (directory / name).write_bytes(b"zstd")
    if sha:
        (directory / (name + ".sha256")).write_text("0" * 64 + "  " + name + "\n")
    return name


def write_state(state_dir, last_success, mode=0o600):
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "last-run.json"
    path.write_text(json.dumps({"version": 1, "run": {"last_success": last_success}, "steps": {}}))
    os.chmod(path, mode)
    return path


def settings(tmp_path, **blocks):
    raw = {
        "backups": {"directory": str(tmp_path / "warm" / "daily-backups"), "volumes": ["postgres"]},
        "last_run": {"state_dir": str(tmp_path / "state")},
    }
    raw.update(blocks)
    return {k: v for k, v in raw.items() if v is not None}


def run(config, mounts=None, nas_up=None, call=call_with_timeout, budget=5.0, now=NOW, stalled=None):
    return check_freshness(config, call, lambda: budget, now, mounts, nas_up, stalled)


def by_kind(entries):
    return {(e["kind"], e["name"]): e for e in entries}


# ------------------------------------------------------------------------------ settings


def test_nothing_configured_means_no_checks():
    assert build_freshness(None)["checks"] == []
    assert build_freshness({})["checks"] == []


def test_blocks_become_checks_with_the_default_ages(tmp_path):
    config = build_freshness(
        {
            "nas_server": "nas.example",
            "nas_port": "2049",
            "backups": {"directory": "/data/warm/daily-backups", "mount": "/data/warm", "volumes": ["pg", "ch"]},
            "nas_backups": {"directory": "/mnt/nas/jts/archives/database", "mount": "/mnt/nas", "volumes": ["pg"]},
            "nas_snapshots": {"archives": {"configs": "/mnt/nas/jts/archives/configs"}, "mount": "/mnt/nas"},
            "last_run": {"state_dir": "/var/lib/jts/lifecycle"},
        }
    )
    checks = {(c["kind"], c["name"]): c for c in config["checks"]}
    assert config["nas_server"] == "nas.example" and config["nas_port"] == 2049
    assert checks[("backup", "pg")]["path"] == "/data/warm/daily-backups/pg"
    assert (checks[("backup", "pg")]["warning"], checks[("backup", "pg")]["critical"]) == (26 * H, 50 * H)
    assert checks[("backup", "ch")]["missing"] == "critical"
    nas = checks[("nas_backup", "pg")]
    assert (nas["path"], nas["mount"], nas["warning"], nas["critical"], nas["missing"]) == (
        "/mnt/nas/jts/archives/database/pg",
        "/mnt/nas",
        770 * H,
        794 * H,
        "warning",
    )
    assert checks[("nas_snapshot", "configs")]["path"] == "/mnt/nas/jts/archives/configs/configs"
    assert checks[("last_run", "nightly")]["path"] == "/var/lib/jts/lifecycle/last-run.json"


def test_empty_lists_and_no_destination_give_no_check():
    config = build_freshness(
        {
            "backups": {"directory": "/d", "volumes": []},
            "nas_backups": {"directory": "", "volumes": ["pg"]},
            "nas_snapshots": {"archives": {}},
        }
    )
    assert config["checks"] == []


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"backups": {"directory": "rel", "volumes": ["pg"]}}, "backups.directory: 'rel' is not an absolute path"),
        ({"backups": {"directory": "/d", "volumes": ["../etc"]}}, "backups.volumes[0]: '../etc' is not a name"),
        ({"backups": {"directory": "/d", "volumes": "pg"}}, "volumes must be a list"),
        ({"backups": {"directory": "/d", "volumes": ["pg"], "warning": "3d", "critical": "1d"}}, "must not be above"),
        ({"backups": {"directory": "/d", "volumes": ["pg"], "warning": "soon"}}, "is not an age"),
        ({"backups": {"directory": "/d", "volumes": ["pg"], "missing": "fatal"}}, "missing: 'fatal' is not one of"),
        ({"backups": {"directory": "/d", "volumes": ["pg"], "colour": "red"}}, "backups: unknown key(s) colour"),
        ({"nas_snapshots": {"archives": {"a/b": "/x"}}}, "'a/b' is not a name"),
        ({"nas_snapshots": {"archives": ["configs"]}}, "archives must be a dict"),
        ({"last_run": {"warning": "1h"}}, "last_run.state_dir: None is not an absolute path"),
        ({"nas_port": 70000}, "nas_port: 70000 is not a TCP port"),
        ({"nas_server": "a b"}, "is not a host name"),
        ({"extra": 1}, "freshness: unknown key(s) extra"),
    ],
)
def test_bad_settings_are_refused_by_name(raw, words):
    with pytest.raises(FreshnessError) as info:
        build_freshness(raw)
    assert words in str(info.value)


def test_build_config_carries_freshness_and_reserves_its_name(tmp_path):
    tiers = [{"name": "warm", "paths": ["/data"]}]
    assert build_config({"tiers": tiers})["freshness"]["checks"] == []
    assert len(build_config({"tiers": tiers, "freshness": settings(tmp_path)})["freshness"]["checks"]) == 2
    with pytest.raises(HealthError, match=r"freshness\.backups\.warning"):
        build_config({"tiers": tiers, "freshness": {"backups": {"directory": "/d", "volumes": ["pg"], "warning": "x"}}})
    with pytest.raises(HealthError, match="rename that tier"):
        build_config({"tiers": [{"name": "freshness", "paths": ["/data"]}], "freshness": settings(tmp_path)})


# ------------------------------------------------------------------------------ backups on warm


@pytest.mark.parametrize(
    "age, status",
    [
        (1 * H, "ok"),
        (25 * H, "ok"),
        (26 * H, "warning"),
        (49 * H, "warning"),
        (50 * H, "critical"),
        (90 * H, "critical"),
    ],
)
def test_backup_age_against_26h_and_50h(tmp_path, age, status):
    lv_dir = tmp_path / "warm" / "daily-backups" / "postgres"
    make_backup(lv_dir, "postgres", 200 * H)  # an older one: the newest counts
    name = make_backup(lv_dir, "postgres", age)
    config = build_freshness({"backups": settings(tmp_path)["backups"]})
    entries, alerts = run(config)
    entry = entries[0]
    assert (entry["status"], entry["age_seconds"], entry["newest"], entry["count"]) == (status, age, name, 2)
    assert entry["newest_epoch"] == NOW - age
    if status == "ok":
        assert alerts == []
    else:
        limit = "26h" if status == "warning" else "50h"
        assert alerts == [
            {
                "severity": status,
                "tier": "freshness",
                "path": str(lv_dir),
                "message": "newest backup of postgres (%s) is %s old, %s at %s"
                % (name, format_age(age), status, limit),
            }
        ]


def test_backup_directory_missing_is_critical(tmp_path):
    (tmp_path / "warm" / "daily-backups").mkdir(parents=True)
    entries, alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert entries[0]["status"] == "critical" and entries[0]["age_seconds"] is None
    assert alerts[0]["message"] == "no backup of postgres: %s does not exist" % (
        tmp_path / "warm" / "daily-backups" / "postgres"
    )


def test_backup_directory_empty_is_critical(tmp_path):
    (tmp_path / "warm" / "daily-backups" / "postgres").mkdir(parents=True)
    entries, alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert entries[0]["status"] == "critical" and entries[0]["count"] == 0
    assert alerts[0]["message"].endswith("postgres holds none")


def test_missing_severity_is_configurable(tmp_path):
    raw = dict(settings(tmp_path)["backups"], missing="ok")
    entries, alerts = run(build_freshness({"backups": raw}))
    assert entries[0]["status"] == "ok" and alerts == []


def test_only_complete_verified_archives_of_that_lv_count(tmp_path):
    lv_dir = tmp_path / "warm" / "daily-backups" / "postgres"
    old = make_backup(lv_dir, "postgres", 60 * H)
    newer = make_backup(lv_dir, "postgres", 1 * H, sha=False)  # no .sha256: not counted
    (lv_dir / (".%s.abcd1234.partial" % newer)).write_bytes(b"")  # snapshot_archive's temporary
    make_backup(lv_dir, "clickhouse", 1 * H)  # another LV's name
    (lv_dir / ("postgres_%s.tar.zst" % backup_stamp(NOW)[:-1])).write_bytes(b"")  # not a stamp
    os.mkdir(lv_dir / ("postgres_%s.tar.zst" % backup_stamp(NOW - 60)))  # a directory
    found = scan_archives(str(lv_dir), "postgres")
    assert found == {"count": 1, "newest": old, "newest_epoch": NOW - 60 * H, "unverified": 1}
    entries, alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert entries[0]["status"] == "critical" and alerts[0]["severity"] == "critical"


def test_unverified_archives_are_named_when_none_counts(tmp_path):
    make_backup(tmp_path / "warm" / "daily-backups" / "postgres", "postgres", 1 * H, sha=False)
    _entries, alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert alerts[0]["message"].endswith("holds none (1 archive(s) without their .sha256 not counted)")


def test_symlinked_archive_is_not_followed(tmp_path):
    lv_dir = tmp_path / "warm" / "daily-backups" / "postgres"
    make_backup(lv_dir, "postgres", 60 * H)
    elsewhere = tmp_path / "elsewhere"
    fresh = make_backup(elsewhere, "postgres", 1 * H)
    os.symlink(elsewhere / fresh, lv_dir / fresh)
    os.symlink(elsewhere / (fresh + ".sha256"), lv_dir / (fresh + ".sha256"))
    entries, _alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert entries[0]["status"] == "critical" and entries[0]["age_seconds"] == 60 * H


@pytest.mark.parametrize("where", ["lv", "parent"])
def test_symlinked_directory_is_unknown_and_not_followed(tmp_path, where):
    elsewhere = tmp_path / "elsewhere" / "postgres"
    make_backup(elsewhere, "postgres", 1 * H)  # fresh, but not where it should be
    backups = tmp_path / "warm" / "daily-backups"
    if where == "lv":
        backups.mkdir(parents=True)
        os.symlink(elsewhere, backups / "postgres")
    else:
        (tmp_path / "warm").mkdir()
        os.symlink(elsewhere.parent, backups)
    entries, alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert entries[0]["status"] == "unknown" and entries[0]["age_seconds"] is None
    link = backups / "postgres" if where == "lv" else backups  # the component that is the symlink is named
    assert "not checked: %s is a symlink or not a directory; not followed" % link in alerts[0]["message"]
    assert alerts[0]["message"].startswith("backup of postgres: not checked: ")


def test_future_stamp_is_a_warning(tmp_path):
    make_backup(tmp_path / "warm" / "daily-backups" / "postgres", "postgres", -3 * H)
    entries, alerts = run(build_freshness({"backups": settings(tmp_path)["backups"]}))
    assert entries[0]["status"] == "warning" and "3h 00m in the future: is the clock right?" in alerts[0]["message"]


def test_warm_tier_not_mounted_is_unknown_and_not_scanned(tmp_path):
    raw = dict(settings(tmp_path)["backups"], mount=str(tmp_path / "warm"))
    calls = []
    entries, alerts = run(build_freshness({"backups": raw}), mounts={"/": {}}, call=lambda *a: calls.append(a))
    assert calls == [] and entries[0]["status"] == "unknown"
    assert alerts[0]["message"].endswith("not checked: %s is not mounted" % (tmp_path / "warm"))
    make_backup(tmp_path / "warm" / "daily-backups" / "postgres", "postgres", H)
    entries, _alerts = run(build_freshness({"backups": raw}), mounts={str(tmp_path / "warm"): {}})
    assert entries[0]["status"] == "ok"


def test_permission_denied_and_other_errors_are_unknown():
    check = {"path": "/x"}
    assert os_error_reason(OSError(errno.ENOENT, "gone"), check) is None
    assert os_error_reason(OSError(errno.EACCES, "denied"), check) == "permission denied on /x (run the check as root)"
    assert os_error_reason(OSError(errno.EIO, "I/O error"), check) == "cannot read /x: I/O error"


# ------------------------------------------------------------------------------ NAS


def nas_settings(tmp_path):
    nas = tmp_path / "nas"
    return {
        "nas_server": "nas.example",
        "nas_backups": {
            "directory": str(nas / "jts" / "archives" / "database"),
            "mount": str(nas),
            "volumes": ["postgres"],
        },
        "nas_snapshots": {"archives": {"configs": str(nas / "jts" / "archives" / "configs")}, "mount": str(nas)},
    }


def test_nas_backup_ages_against_770h_and_794h_and_missing_is_a_warning(tmp_path):
    config = build_freshness(nas_settings(tmp_path))
    mounts = {str(tmp_path / "nas"): {}}
    entries, _alerts = run(config, mounts=mounts, nas_up=(True, ""))
    assert by_kind(entries)[("nas_backup", "postgres")]["status"] == "warning"  # a host's first 30 days
    lv_dir = tmp_path / "nas" / "jts" / "archives" / "database" / "postgres"
    for age, status in ((31 * 24 * H, "ok"), (32 * 24 * H + 2 * H, "warning"), (34 * 24 * H, "critical")):
        for old in lv_dir.glob("*"):
            old.unlink()
        make_backup(lv_dir, "postgres", age)
        entries, _alerts = run(config, mounts=mounts, nas_up=(True, ""))
        assert by_kind(entries)[("nas_backup", "postgres")]["status"] == status, age


def test_nas_snapshots_newest_complete_stamp_counts(tmp_path):
    root = tmp_path / "nas" / "jts" / "archives" / "configs" / "configs"
    root.mkdir(parents=True)
    (root / snapshot_stamp(NOW - 30 * H)).mkdir()
    (root / (snapshot_stamp(NOW - H) + ".partial")).mkdir()  # an unfinished run
    (root / "notes.txt").write_text("not ours\n")
    os.symlink(snapshot_stamp(NOW - 30 * H), root / "latest")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / snapshot_stamp(NOW - 60))  # a planted symlink named as a stamp
    (root / snapshot_stamp(NOW - 120)).write_text("")  # a file named as a stamp
    entries, alerts = run(build_freshness(nas_settings(tmp_path)), mounts={str(tmp_path / "nas"): {}})
    snap = by_kind(entries)[("nas_snapshot", "configs")]
    assert (snap["status"], snap["age_seconds"], snap["newest"], snap["count"]) == (
        "warning",
        30 * H,
        snapshot_stamp(NOW - 30 * H),
        1,
    )
    assert "newest NAS snapshot configs (%s) is 1d 6h old, warning at 26h" % snap["newest"] in [
        a["message"] for a in alerts
    ]
    (root / snapshot_stamp(NOW - H)).mkdir()
    entries, _alerts = run(build_freshness(nas_settings(tmp_path)), mounts={str(tmp_path / "nas"): {}})
    assert by_kind(entries)[("nas_snapshot", "configs")]["status"] == "ok"
    (root / snapshot_stamp(NOW - 51 * H)).mkdir()
    for name in (snapshot_stamp(NOW - H), snapshot_stamp(NOW - 30 * H)):
        os.rmdir(root / name)
    entries, _alerts = run(build_freshness(nas_settings(tmp_path)), mounts={str(tmp_path / "nas"): {}})
    assert by_kind(entries)[("nas_snapshot", "configs")]["status"] == "critical"


def test_nas_away_is_unknown_and_its_mount_is_never_touched(tmp_path):
    raw = dict(nas_settings(tmp_path), **settings(tmp_path))
    make_backup(tmp_path / "warm" / "daily-backups" / "postgres", "postgres", H)
    touched = []

    def call(func, args, timeout):
        touched.append(args[0])
        return call_with_timeout(func, args, timeout)

    entries, alerts = run(
        build_freshness(raw), nas_up=(False, "no answer from nas.example:2049 within 3.0s"), call=call
    )
    kinds = by_kind(entries)
    assert kinds[("nas_backup", "postgres")]["status"] == "unknown"
    assert kinds[("nas_snapshot", "configs")]["status"] == "unknown"
    assert kinds[("backup", "postgres")]["status"] == "ok"  # warm is still checked
    assert not any(path.startswith(str(tmp_path / "nas")) for path in touched)
    message = next(a["message"] for a in alerts if a["path"].startswith(str(tmp_path / "nas")))
    assert message == (
        "backup of postgres on the NAS: not checked: the NAS does not answer (no answer from nas.example:2049 "
        "within 3.0s); its mount is not touched (it would hang)"
    )


def test_stalled_nas_is_unknown_within_the_time_out_and_not_asked_twice(tmp_path):
    # a real child that never answers (as a stat on a dead hard NFS mount): killed at the time-out
    hung = []

    def call(func, args, timeout):
        hung.append(args[0])
        return call_with_timeout(time.sleep, (60,), timeout)

    started = time.monotonic()
    entries, alerts = run(build_freshness(nas_settings(tmp_path)), nas_up=(True, ""), call=call, budget=0.5)
    assert time.monotonic() - started < 3
    assert len(hung) == 1  # the second check on the same mount is not probed again
    assert [e["status"] for e in entries] == ["unknown", "unknown"]
    assert all("%s did not answer within 0.5s (stalled mount?)" % (tmp_path / "nas") in a["message"] for a in alerts)


def test_a_mount_already_stalled_in_the_tier_checks_is_not_probed(tmp_path):
    stalled = {str(tmp_path / "nas"): "/nas did not answer within 3.0s (stalled mount?)"}
    entries, _alerts = run(
        build_freshness(nas_settings(tmp_path)), call=lambda *a: pytest.fail("probed"), stalled=stalled
    )
    assert {e["status"] for e in entries} == {"unknown"}


def test_time_out_used_up_is_unknown(tmp_path):
    entries, alerts = run(build_freshness(settings(tmp_path)), budget=0, call=lambda *a: pytest.fail("called"))
    assert {e["status"] for e in entries} == {"unknown"}
    assert alerts[0]["message"].endswith("not checked: the run's time-out was used up")


# ------------------------------------------------------------------------------ last successful run


def last_run_only(tmp_path, **extra):
    return build_freshness({"last_run": dict({"state_dir": str(tmp_path / "state")}, **extra)})


@pytest.mark.parametrize("age, status", [(2 * H, "ok"), (27 * H, "warning"), (51 * H, "critical")])
def test_last_success_age(tmp_path, age, status):
    write_state(tmp_path / "state", NOW - age)
    entries, alerts = run(last_run_only(tmp_path))
    assert (entries[0]["status"], entries[0]["age_seconds"]) == (status, age)
    assert len(alerts) == (0 if status == "ok" else 1)
    if alerts:
        assert alerts[0]["message"].startswith("newest successful nightly run is ")


def test_state_missing_means_never_ran(tmp_path):
    entries, alerts = run(last_run_only(tmp_path))
    assert entries[0]["status"] == "critical"
    assert alerts[0]["message"] == (
        "no successful nightly run: no %s: the nightly run never reported (never ran, or its state is gone)"
        % (tmp_path / "state" / "last-run.json")
    )
    (tmp_path / "state").mkdir()  # the directory without the file: the same
    assert run(last_run_only(tmp_path))[0][0]["status"] == "critical"


def test_state_with_no_success_yet(tmp_path):
    write_state(tmp_path / "state", None)
    entries, alerts = run(last_run_only(tmp_path, missing="warning"))
    assert entries[0]["status"] == "warning" and alerts[0]["message"].endswith("records no successful run yet")


def test_symlink_planted_as_the_state_is_not_followed(tmp_path):
    fresh = write_state(tmp_path / "elsewhere", NOW - 60)  # would say all is well
    (tmp_path / "state").mkdir()
    os.symlink(fresh, tmp_path / "state" / "last-run.json")
    entries, alerts = run(last_run_only(tmp_path))
    assert entries[0]["status"] == "unknown" and entries[0]["age_seconds"] is None
    assert "not followed" in alerts[0]["message"]


def test_symlinked_state_directory_is_not_followed(tmp_path):
    write_state(tmp_path / "elsewhere", NOW - 60)
    os.symlink(tmp_path / "elsewhere", tmp_path / "state")
    entries, _alerts = run(last_run_only(tmp_path))
    assert entries[0]["status"] == "unknown"


def test_state_others_may_write_is_not_believed(tmp_path):
    path = write_state(tmp_path / "state", NOW - 60, mode=0o666)
    entries, alerts = run(last_run_only(tmp_path))
    assert (
        entries[0]["status"] == "unknown" and "with mode 0666: not root's alone, not believed" in alerts[0]["message"]
    )
    os.chmod(path, 0o600)
    os.chown(path, 65534, 65534)
    entries, alerts = run(last_run_only(tmp_path))
    assert entries[0]["status"] == "unknown" and "belongs to uid 65534" in alerts[0]["message"]


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "JSONDecodeError"),
        (json.dumps({"version": 1}), "is not a lifecycle run state"),
        (json.dumps({"run": {"last_success": "yesterday"}}), "run.last_success 'yesterday' is not a Unix time"),
    ],
)
def test_state_that_is_not_ours_is_unknown(tmp_path, content, words):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "last-run.json").write_text(content)
    entries, alerts = run(last_run_only(tmp_path))
    assert entries[0]["status"] == "unknown" and words in alerts[0]["message"]


# ------------------------------------------------------------------------------ the health check with freshness


class FakeChecker:
    """HealthChecker with one directory tier, the NAS probe and the clock given."""

    @staticmethod
    def make(tmp_path, freshness, probe_up=True, probes=None):
        config = build_config({"tiers": [{"name": "warm", "paths": [str(tmp_path)]}], "freshness": freshness})

        def probe(host, port, timeout):
            (probes if probes is not None else []).append((host, port))
            return (True, "") if probe_up else (False, "no answer from %s:%s within 3.0s" % (host, port))

        return HealthChecker(
            config,
            runner=lambda argv, timeout: pytest.fail("no command expected"),
            which=lambda name: None,
            read_file=lambda path: "/dev/sda1 %s ext4 rw 0 0\n" % tmp_path if "mounts" in path else "",
            statvfs=lambda path, timeout: {"f_frsize": 4096, "f_blocks": 100, "f_bfree": 90, "f_bavail": 90},
            probe=probe,
            now=lambda: NOW,
        )


def full_settings(tmp_path):
    raw = dict(nas_settings(tmp_path), **settings(tmp_path))
    for block in ("nas_backups", "nas_snapshots"):
        raw[block] = dict(raw[block], mount=None)  # tmp_path is no mount point here
    return raw


def test_health_result_status_report_perfdata_and_metrics(tmp_path):
    make_backup(tmp_path / "warm" / "daily-backups" / "postgres", "postgres", 30 * H)
    write_state(tmp_path / "state", NOW - H)
    snaps = tmp_path / "nas" / "jts" / "archives" / "configs" / "configs"
    snaps.mkdir(parents=True)
    (snaps / snapshot_stamp(NOW - 2 * H)).mkdir()
    make_backup(tmp_path / "nas" / "jts" / "archives" / "database" / "postgres", "postgres", 31 * 24 * H)
    probes = []
    result = FakeChecker.make(tmp_path, full_settings(tmp_path), probes=probes).run()
    assert probes == [("nas.example", 2049)]  # probed once for the freshness checks
    assert result["status"] == "warning" and result["exit_code"] == 1
    assert result["freshness"]["status"] == "warning" and result["freshness"]["nas"]["up"] is True
    assert result["alert_counts"] == {"critical": 0, "warning": 1, "unknown": 0}
    report = render_report(result, "db1")
    assert "[freshness] WARNING" in report
    assert "  backup       postgres 2026-11-21T" in report
    assert "  backup       postgres 2026-11-21T20:13:20Z 1d 6h  26h/50h       WARNING" in report
    assert "  nas_backup   postgres 2026-10-23T02:13:20Z 31d 0h 32d 2h/33d 2h OK" in report
    perf = _health_sinks.perfdata(result)
    assert "'backup postgres age'=%ds;93600;180000;0;" % (30 * H) in perf
    assert "'nas backup postgres age'=%ds;2772000;2858400;0;" % (31 * 24 * H) in perf
    assert "'nas snapshot configs age'=7200s;93600;180000;0;" in perf
    assert "'last success age'=3600s;93600;180000;0;" in perf
    text = _health_sinks.render_textfile(result)
    assert 'jts_storage_backup_age_seconds{lv="postgres"} %d' % (30 * H) in text
    assert 'jts_storage_backup_newest_timestamp_seconds{lv="postgres"} %d' % (NOW - 30 * H) in text
    assert 'jts_storage_nas_backup_age_seconds{lv="postgres"} %d' % (31 * 24 * H) in text
    assert 'jts_storage_nas_snapshot_age_seconds{archive="configs"} 7200' in text
    assert 'jts_storage_nas_snapshot_newest_timestamp_seconds{archive="configs"} %d' % (NOW - 2 * H) in text
    assert "jts_storage_lifecycle_last_success_age_seconds 3600" in text
    assert 'jts_storage_freshness_status{kind="backup",name="postgres"} 1' in text
    assert 'jts_storage_freshness_status{kind="last_run",name="nightly"} 0' in text
    line = _health_sinks.status_line(result)
    assert line.startswith(
        "STORAGE WARNING - 1 alert(s): freshness %s: newest backup of postgres"
        % (tmp_path / "warm" / "daily-backups" / "postgres")
    )


def test_health_with_nas_away_is_unknown_for_the_nas_checks(tmp_path):
    make_backup(tmp_path / "warm" / "daily-backups" / "postgres", "postgres", H)
    write_state(tmp_path / "state", NOW - H)
    result = FakeChecker.make(tmp_path, full_settings(tmp_path), probe_up=False).run()
    assert result["status"] == "unknown" and result["exit_code"] == 3
    statuses = {(e["kind"], e["name"]): e["status"] for e in result["freshness"]["checks"]}
    assert statuses == {
        ("backup", "postgres"): "ok",
        ("nas_backup", "postgres"): "unknown",
        ("nas_snapshot", "configs"): "unknown",
        ("last_run", "nightly"): "ok",
    }
    perf = _health_sinks.perfdata(result)
    assert "nas backup" not in perf and "'backup postgres age'=3600s" in perf  # no age: no perfdata
    text = _health_sinks.render_textfile(result)
    assert "jts_storage_nas_backup_age_seconds" not in text
    assert 'jts_storage_freshness_status{kind="nas_backup",name="postgres"} 3' in text


def test_nas_probe_of_a_tier_is_reused(tmp_path):
    raw = full_settings(tmp_path)
    config = build_config(
        {
            "tiers": [{"name": "cold", "paths": [str(tmp_path)], "nas_server": "nas.example"}],
            "freshness": raw,
        }
    )
    probes = []

    def probe(host, port, timeout):
        probes.append(host)
        return True, ""

    checker = HealthChecker(
        config,
        runner=None,
        which=lambda name: None,
        read_file=lambda path: "",
        statvfs=lambda path, timeout: {"f_frsize": 4096, "f_blocks": 100, "f_bfree": 90, "f_bavail": 90},
        probe=probe,
        now=lambda: NOW,
    )
    checker.run()
    assert probes == ["nas.example"]


def test_no_freshness_changes_nothing(tmp_path):
    result = FakeChecker.make(tmp_path, None).run()
    assert result["freshness"] == {"status": "ok", "checks": [], "nas": None}
    assert "[freshness]" not in render_report(result)
    text = _health_sinks.render_textfile(result)
    assert "jts_storage_freshness" not in text and "age_seconds" not in text
    assert _health_sinks.status_line(result).startswith("STORAGE OK - all 1 tier(s) ok | ")


def test_existing_metric_names_are_kept():
    # Prometheus rules are written against these: freshness adds names, it renames none
    names = [name for name, _kind, _help in _health_sinks.METRICS]
    for kept in (
        "used_ratio",
        "free_bytes",
        "size_bytes",
        "inode_used_ratio",
        "path_up",
        "mount_ok",
        "vg_free_bytes",
        "vg_free_ratio",
        "snapshot_fill_ratio",
        "snapshot_valid",
        "nas_up",
        "btrfs_device_errors",
        "tier_status",
        "status",
        "alerts",
        "check_duration_seconds",
        "last_run_timestamp_seconds",
    ):
        assert kept in names
    assert len(names) == len(set(names))


def test_format_age():
    assert [format_age(s) for s in (0, 59, 61, 3600, 3660 * 2, 86400 * 31 + 3600 * 5, -5)] == [
        "0m",
        "0m",
        "1m",
        "1h 00m",
        "2h 02m",
        "31d 5h",
        "0m",
    ]


def test_evaluate_is_pure():
    check = _freshness._check("backup", "pg", "/d/pg", None, (10, 20, "critical"))
    entry, alerts = evaluate(check, {"count": 1, "newest": "n", "newest_epoch": 100}, 115)
    assert entry["status"] == "warning" and entry["age_seconds"] == 15 and len(alerts) == 1
