"""The database steps in the health check (freshness kind ``database``), on real state files.

The state is written by the nightly run's own code (``_run_report.merge_run``) into tmp_path and
read by the scanner in its forked child with a time-out, as in production; only the clock is given.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _health_sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import FreshnessError, build_freshness
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness_check import check_freshness, database_line
from ansible_collections.jts.tiered_storage.plugins.module_utils._health import HealthChecker
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_report import render_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import build_config
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    empty_state,
    merge_run,
    normalise_step,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import call_with_timeout

NOW = 1795400000
H = 3600
GIB = 1 << 30


def step(name, status, ended, figures=None, gauges=None, reason=""):
    return normalise_step(
        {
            "name": name,
            "status": status,
            "started": ended - 10,
            "ended": ended,
            "reason": reason,
            "figures": figures or {},
            "gauges": gauges or [],
        }
    )


def write_runs(state_dir, *runs):
    """Each run a list of steps, merged in turn as the nightly run does; the file as it writes it."""
    state = empty_state()
    for index, steps in enumerate(runs):
        ended = max(s["ended"] for s in steps) + 1
        state = merge_run(state, steps, "r%d" % index, "", ended - 20, ended)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "last-run.json"
    path.write_text(json.dumps(state))
    os.chmod(path, 0o600)
    return path


def config(tmp_path, **extra):
    block = {"state_dir": str(tmp_path / "state"), "steps": ["pg_archive", "clickhouse_tiering"]}
    block.update(extra)
    return build_freshness({"databases": block})


def run(cfg, now=NOW):
    entries, alerts = check_freshness(cfg, call_with_timeout, lambda: 5.0, now)
    return {e["name"]: e for e in entries}, alerts


CH_GAUGES = [
    {"metric": "clickhouse_disk_bytes", "labels": {"server": "ch1", "disk": "default"}, "value": 3 * GIB},
    {"metric": "clickhouse_disk_parts", "labels": {"server": "ch1", "disk": "default"}, "value": 40},
    {"metric": "clickhouse_disk_bytes", "labels": {"server": "ch1", "disk": "cold"}, "value": 12 * GIB},
    {"metric": "clickhouse_disk_parts", "labels": {"server": "ch1", "disk": "cold"}, "value": 120},
    {"metric": "clickhouse_hot_oldest_part_timestamp_seconds", "labels": {"server": "ch1"}, "value": NOW - 29 * 24 * H},
]


def test_settings_give_one_check_per_step_with_its_severities(tmp_path):
    cfg = config(tmp_path, pending="critical")
    assert [(c["kind"], c["name"]) for c in cfg["checks"]] == [
        ("database", "pg_archive"),
        ("database", "clickhouse_tiering"),
    ]
    check = cfg["checks"][0]
    assert check["path"] == str(tmp_path / "state" / "last-run.json")
    assert (check["warning"], check["critical"], check["missing"], check["pending_severity"]) == (
        26 * H,
        50 * H,
        "warning",
        "critical",
    )
    assert build_freshness({"databases": {"state_dir": "/x", "steps": []}})["checks"] == []


@pytest.mark.parametrize(
    "block, words",
    [
        ({"state_dir": "/x", "steps": ["mongodb"]}, "'mongodb' is not a database step"),
        ({"state_dir": "/x", "steps": "pg_archive"}, "steps must be a list"),
        ({"state_dir": "/x", "steps": ["pg_archive"], "pending": "unknown"}, "pending: 'unknown' is not one of"),
        ({"state_dir": "x", "steps": ["pg_archive"]}, "databases.state_dir: 'x' is not an absolute path"),
        ({"state_dir": "/x", "steps": ["pg_archive"], "extra": 1}, "unknown key(s) extra"),
    ],
)
def test_bad_settings_are_refused_by_name(block, words):
    with pytest.raises(FreshnessError) as err:
        build_freshness({"databases": block})
    assert words in str(err.value)


def test_no_state_and_no_run_of_the_step_are_the_missing_severity(tmp_path):
    entries, alerts = run(config(tmp_path))
    assert entries["pg_archive"]["status"] == "warning"
    assert "the nightly run never reported" in alerts[0]["message"]
    write_runs(tmp_path / "state", [step("backup", "success", NOW - H)])
    entries, alerts = run(config(tmp_path, missing="critical"))
    assert entries["pg_archive"]["status"] == "critical" and entries["pg_archive"]["last_status"] is None
    assert alerts[0]["message"].endswith("records no run of pg_archive yet")


def test_a_successful_run_with_nothing_pending_is_ok(tmp_path):
    write_runs(
        tmp_path / "state",
        [step("pg_archive", "success", NOW - H, {"files_archived": 2, "bytes_archived": 5 << 20, "files_pending": 0})],
    )
    entries, alerts = run(config(tmp_path, steps=["pg_archive"]))
    entry = entries["pg_archive"]
    assert (entry["status"], entry["age_seconds"], entry["pending"], entry["last_status"]) == (
        "ok",
        H,
        0,
        "success",
    )
    assert alerts == []


@pytest.mark.parametrize(
    "severity, status, alerted", [("warning", "warning", True), ("critical", "critical", True), ("ok", "ok", False)]
)
def test_partitions_left_pending_are_the_pending_severity(tmp_path, severity, status, alerted):
    write_runs(tmp_path / "state", [step("pg_archive", "success", NOW - H, {"files_archived": 1, "files_pending": 3})])
    entries, alerts = run(config(tmp_path, steps=["pg_archive"], pending=severity))
    assert entries["pg_archive"]["status"] == status and entries["pg_archive"]["pending"] == 3
    assert [a["message"] for a in alerts] == (
        ["3 partition(s) past their retention still attached after the last pg_archive run"] if alerted else []
    )


def test_a_failed_night_is_a_warning_with_its_reason_and_two_are_critical(tmp_path):
    good = [step("pg_archive", "success", NOW - 30 * H)]
    bad = [step("pg_archive", "failed", NOW - 2 * H, {"files_pending": 1}, reason="pg_dump: connection refused")]
    write_runs(tmp_path / "state", good, bad)
    entries, alerts = run(config(tmp_path, steps=["pg_archive"]))
    assert entries["pg_archive"]["status"] == "warning" and entries["pg_archive"]["last_status"] == "failed"
    messages = [a["message"] for a in alerts]
    assert "newest successful pg_archive run is 1d 6h old, warning at 26h" in messages
    assert "the last pg_archive run failed: pg_dump: connection refused" in messages
    # the same state two days later: critical by the age of the last success
    entries, alerts = run(config(tmp_path, steps=["pg_archive"]), now=NOW + 24 * H)
    assert entries["pg_archive"]["status"] == "critical"


def test_a_step_that_never_succeeded_says_so(tmp_path):
    write_runs(tmp_path / "state", [step("clickhouse_tiering", "skipped", NOW - H, reason="/mnt/nas is not mounted")])
    entries, alerts = run(config(tmp_path, steps=["clickhouse_tiering"]))
    assert entries["clickhouse_tiering"]["status"] == "warning"
    assert [a["message"] for a in alerts] == [
        "no successful clickhouse_tiering run: %s records no successful run of clickhouse_tiering yet"
        % (tmp_path / "state" / "last-run.json"),
        "the last clickhouse_tiering run skipped: /mnt/nas is not mounted",
    ]


def test_a_symlink_planted_as_the_state_is_unknown(tmp_path):
    real = write_runs(tmp_path / "real", [step("pg_archive", "success", NOW - H)])
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "last-run.json").symlink_to(real)
    entries, _alerts = run(config(tmp_path, steps=["pg_archive"]))
    assert entries["pg_archive"]["status"] == "unknown"


def test_report_perfdata_and_textfile_show_the_steps_and_clickhouse_disks(tmp_path):
    write_runs(
        tmp_path / "state",
        [
            step(
                "pg_archive", "success", NOW - H, {"files_archived": 2, "bytes_archived": 5 << 20, "files_pending": 0}
            ),
            step(
                "clickhouse_tiering",
                "success",
                NOW - H,
                {"files_moved": 4, "bytes_moved": GIB, "files_pending": 2, "files_failed": 0},
                CH_GAUGES,
            ),
        ],
    )
    checker = HealthChecker(
        build_config(
            {
                "tiers": [{"name": "warm", "paths": [str(tmp_path)]}],
                "freshness": {
                    "databases": {"state_dir": str(tmp_path / "state"), "steps": ["pg_archive", "clickhouse_tiering"]}
                },
            }
        ),
        runner=lambda argv, timeout: pytest.fail("no command expected"),
        which=lambda name: None,
        read_file=lambda path: "/dev/sda1 %s ext4 rw 0 0\n" % tmp_path if "mounts" in path else "",
        statvfs=lambda path, timeout: {"f_frsize": 4096, "f_blocks": 100, "f_bfree": 90, "f_bavail": 90},
        probe=lambda host, port, timeout: (True, ""),
        now=lambda: NOW,
    )
    result = checker.run()
    assert result["status"] == "warning"
    report = render_report(result, "db1")
    assert "  database pg_archive         2026-11-23T01:13:20Z 1h 00m 26h/50h   OK" in report
    assert "  pg_archive: last run SUCCESS; 0 pending; archived 2 (5.0 MiB)" in report
    assert (
        "  clickhouse_tiering: last run SUCCESS; 2 pending; moved 4 (1.0 GiB); ch1: cold 12.0 GiB in 120 parts,"
        " default 3.0 GiB in 40 parts, oldest part on hot 29d 0h old" in report
    )
    assert "2 part(s) past their rule still before their target volume" in report
    perf = _health_sinks.perfdata(result)
    assert "'pg_archive last success age'=3600s;93600;180000;0;" in perf
    assert "'clickhouse_tiering pending'=2;;;0;" in perf
    text = _health_sinks.render_textfile(result)
    assert 'jts_storage_database_step_last_success_age_seconds{step="pg_archive"} 3600' in text
    assert 'jts_storage_database_step_last_success_timestamp_seconds{step="clickhouse_tiering"} %d' % (NOW - H) in text
    assert 'jts_storage_database_step_pending{step="clickhouse_tiering"} 2' in text
    assert 'jts_storage_freshness_status{kind="database",name="clickhouse_tiering"} 1' in text


def test_the_report_line_names_failures_only_when_there_are_some():
    entry = {"kind": "database", "name": "pg_archive", "last_status": "failed", "pending": 1, "gauges": []}
    figures = {"files_archived": 0, "bytes_archived": 0, "files_pending": 1, "files_failed": 0}
    assert database_line(dict(entry, figures=figures), NOW) == "pg_archive: last run FAILED; 1 pending; archived 0"
    figures["files_failed"] = 1
    assert database_line(dict(entry, figures=figures), NOW) == (
        "pg_archive: last run FAILED; 1 pending; archived 0, failed 1"
    )
    assert database_line(dict(entry, last_status=None), NOW) == "pg_archive: no run recorded"


def test_a_step_that_failed_every_night_since_it_was_set_up_says_why(tmp_path):
    bad = [step("pg_archive", "failed", NOW - 2 * H, reason="pg_dump: connection refused")]
    write_runs(tmp_path / "state", bad, bad, bad)
    entries, alerts = run(config(tmp_path, steps=["pg_archive"]))
    assert entries["pg_archive"]["status"] == "warning"
    messages = [a["message"] for a in alerts]
    assert "the last pg_archive run failed: pg_dump: connection refused" in messages
    assert any(m.endswith("records no successful run of pg_archive yet") for m in messages)
    # critical when the inventory says a step that never succeeded is
    entries, _alerts = run(config(tmp_path, steps=["pg_archive"], missing="critical"))
    assert entries["pg_archive"]["status"] == "critical"


def hand_written(tmp_path, entry):
    """A state whose pg_archive entry was edited by hand (or written by something else)."""
    state_dir = tmp_path / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "last-run.json"
    path.write_text(json.dumps({"version": 1, "run": {"last_success": NOW - H}, "steps": {"pg_archive": entry}}))
    os.chmod(path, 0o600)


GOOD = {"status": "success", "last_success": NOW - H, "ended": NOW - H, "message": "", "figures": {}, "gauges": []}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"status": "FAILED"}, "steps.pg_archive.status 'FAILED' is not one of success, failed, skipped"),
        ({"status": ["failed"]}, "is not one of"),
        ({"figures": {"files_pending": "n/a"}}, "files_pending: 'n/a' is not a number"),
        ({"figures": {"files_pending": -5}}, "is not a finite number of zero or more"),
        ({"figures": {"files_pending": float("inf")}}, "is not a finite number of zero or more"),
        ({"figures": ["x"]}, "figures is not a dict"),
        ({"last_success": 1e300}, "steps.pg_archive.last_success 1e+300 is not a Unix time"),
    ],
)
def test_a_state_with_odd_values_makes_that_check_unknown_not_the_whole_run(tmp_path, change, words):
    hand_written(tmp_path, dict(GOOD, **change))
    cfg = build_freshness(
        {
            "databases": {"state_dir": str(tmp_path / "state"), "steps": ["pg_archive"]},
            "last_run": {"state_dir": str(tmp_path / "state")},
        }
    )
    entries, alerts = check_freshness(cfg, call_with_timeout, lambda: 5.0, NOW)
    by_kind = {e["kind"]: e for e in entries}
    assert by_kind["database"]["status"] == "unknown" and words in alerts[0]["message"], alerts
    assert by_kind["last_run"]["status"] == "ok"
    assert database_line(by_kind["database"], NOW).startswith("pg_archive: not read: ")


def test_gauges_that_do_not_check_out_are_left_out_of_the_report(tmp_path):
    junk = [
        {"metric": "clickhouse_disk_bytes", "labels": ["ch1"], "value": 1},
        {"metric": "clickhouse_disk_bytes", "labels": {"server": "ch1", "disk": "d"}, "value": "big"},
        "x",
        CH_GAUGES[0],
    ]
    hand_written(tmp_path, dict(GOOD, gauges=junk))
    entries, alerts = run(config(tmp_path, steps=["pg_archive"]))
    assert entries["pg_archive"]["status"] == "ok" and alerts == []
    assert entries["pg_archive"]["gauges"] == [CH_GAUGES[0]]


def test_a_server_name_with_a_newline_stays_on_one_report_line(tmp_path):
    gauges = [dict(CH_GAUGES[0], labels={"server": "ch1\nFAKE OK", "disk": "default"})]
    write_runs(tmp_path / "state", [step("clickhouse_tiering", "failed", NOW - H, gauges=gauges, reason="a\nb")])
    entries, alerts = run(config(tmp_path, steps=["clickhouse_tiering"]))
    line = database_line(entries["clickhouse_tiering"], NOW)
    assert "\n" not in line and "ch1?FAKE OK: default 3.0 GiB" in line
    assert "\n" not in alerts[-1]["message"] and alerts[-1]["message"].endswith("failed: a?b")
