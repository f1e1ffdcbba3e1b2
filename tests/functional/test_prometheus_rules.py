"""The shipped Prometheus rules and the textfiles they read, checked with promtool.

- ``promtool check rules`` on extensions/prometheus/jts_tiered_storage.rules.yml;
- ``promtool test rules`` on tests/prometheus/*.test.yml, which must give every alert a case that
  fires and one that stays silent, and name no alert the rules file lacks;
- the rules read only metrics that storage_health and lifecycle_report export;
- ``promtool check metrics`` on a textfile rendered by storage_health's ``render_textfile`` from a
  real health check (the lab's LVM, mounts and btrfs answers, this host's statvfs, a NAS that
  refuses, freshness checks on real backup directories);
- those real textfiles (health and run report) fed to the rules through promtool: the alerts
  that fire are the ones the results call for, with the labels the exporters write.

promtool comes from Debian's ``prometheus`` package (``make deps``). Without it the module is
skipped with a reason on a workstation, and fails when ``CI`` is set.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.jts.tiered_storage.plugins.module_utils import _health_sinks, _run_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._health import HealthChecker, build_config
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import statvfs_with_timeout

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "extensions" / "prometheus" / "jts_tiered_storage.rules.yml"
RULE_TESTS = sorted((ROOT / "tests" / "prometheus").glob("*.test.yml"))
FIXTURES = ROOT / "tests" / "unit" / "plugins" / "modules" / "fixtures"
# the sections of docs/operations.md the alerts point to
RUNBOOK_ANCHORS = {
    "nightly-run-failed",
    "tier-full",
    "nas-away",
    "backup-stale",
    "snapshot-full",
    "database-archival-behind",
}
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        message = "promtool (Debian's prometheus package) is not installed; `make deps` installs it"
        if IN_CI:
            pytest.fail(message + " (CI is set: the alert rules must be tested here)")
        pytest.skip(message)
    return path


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, **kwargs)
    return proc.returncode, proc.stdout + proc.stderr


def load_rules():
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


# ------------------------------------------------------------------------------ the rules file


def test_rules_file_passes_promtool_check_rules(promtool):
    rc, out = run([promtool, "check", "rules", str(RULES)])
    assert rc == 0, out
    assert "SUCCESS: %d rules found" % len(load_rules()) in out, out


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    assert len(RULE_TESTS) >= 2, RULE_TESTS
    rc, out = run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert rc == 0, out
    assert out.count("SUCCESS") == len(RULE_TESTS), out


def test_every_alert_has_a_case_that_fires_and_one_that_stays_silent():
    alerts = {rule["alert"] for rule in load_rules() if "alert" in rule}
    fires, silent, named = set(), set(), set()
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert [str(RULES.relative_to(ROOT))] == [
            str((path.parent / f).resolve().relative_to(ROOT)) for f in doc["rule_files"]
        ], path
        for case in doc["tests"]:
            for check in case.get("alert_rule_test") or []:
                named.add(check["alertname"])
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert named <= alerts, "tests name alerts the rules file does not have: %s" % sorted(named - alerts)
    assert alerts - fires == set(), "alerts without a case that fires"
    assert alerts - silent == set(), "alerts without a case that stays silent"


def test_every_alert_has_severity_summary_description():
    for rule in load_rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        runbook = rule["annotations"].get("runbook")
        if runbook is not None:
            # a literal anchor, or a template choosing among literal anchors
            first, *anchors = [part for part in re.split(r"\{\{.*?\}\}", runbook) if part]
            if not anchors:
                first, _hash, anchor = first.partition("#")
                first, anchors = first + "#", [anchor]
            assert first == "docs/operations.md#", (rule["alert"], runbook)
            assert set(anchors) <= RUNBOOK_ANCHORS, (rule["alert"], runbook)


def test_runbook_anchors_exist_in_operations_md():
    text = (ROOT / "docs" / "operations.md").read_text()
    ids = set(re.findall(r'<a id="([^"]+)"', text))
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens
    ids |= {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.M)
    }
    assert RUNBOOK_ANCHORS - ids == set()


def exported_metric_names():
    names = {_health_sinks.METRIC_PREFIX + name for name, _t, _h in _health_sinks.METRICS}
    names |= {_run_report.METRIC_PREFIX + name for name, _t, _h in _run_report.METRICS}
    return names


def test_rules_read_only_metrics_the_collection_exports():
    recorded = {rule["record"] for rule in load_rules() if "record" in rule}
    used = set()
    for rule in load_rules():
        # names outside string literals ("jts_storage.prom" is a label value)
        used |= set(re.findall(r"\b(jts_[a-zA-Z0-9_:]+)", re.sub(r'"[^"]*"', '""', rule["expr"])))
    unknown = used - exported_metric_names() - recorded
    assert unknown == set(), "the rules read metrics nothing exports: %s" % sorted(unknown)
    assert {"jts_storage_tier_status", "jts_lifecycle_run_success", "jts_lifecycle_step_skipped"} <= used


# ------------------------------------------------------------------------------ real textfiles

LAB_TIERS = [
    {
        "name": "hot",
        "vg": "vg_jts",
        "mounts": [{"path": "/var/lib/postgres", "fstype": "ext4", "options": ["noatime", "commit=60"]}],
    },
    {
        "name": "warm",
        # nodatacow: an option the live mount lacks (drift)
        "mounts": [{"path": "/data/warm-storage", "fstype": "btrfs", "options": "compress=zstd:3,noatime,nodatacow"}],
        # a path whose label value needs escaping in the exposition format
        "paths": ['/data/warm-storage/odd "name" \\ dir'],
    },
    {
        "name": "cold",
        "nas_server": "127.0.0.1",
        "mounts": [{"path": "/mnt/synology", "fstype": "nfs", "options": ["hard"]}],
    },
]


def health_result(tmp_path):
    """A real health check over the lab's layout: the LVM, btrfs and mount answers the lab VM
    gave (fixtures), statvfs of this host's temporary directory, and a NAS that refuses; its
    freshness checks look at real backup directories: postgres's newest archive 30 h old
    (warning), none for mongodb (critical), and the NAS snapshots cannot be looked at (unknown)."""
    backups = tmp_path / "daily-backups"
    stamp = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=30)).strftime("%Y%m%dT%H%M%SZ")
    (backups / "postgres").mkdir(parents=True)
    (backups / "postgres" / ("postgres_%s.tar.zst" % stamp)).write_bytes(b"archive")
    (backups / "postgres" / ("postgres_%s.tar.zst.sha256" % stamp)).write_text("checksum\n")
    freshness = {
        "nas_server": "127.0.0.1",
        "backups": {"directory": str(backups), "volumes": ["postgres", "mongodb"]},
        "nas_snapshots": {"archives": {"configs": "/mnt/synology/archives/configs"}, "mount": "/mnt/synology"},
    }
    answers = {
        "lvs": (0, (FIXTURES / "lvm_snapshot" / "lvs_vg_jts_lab.json").read_text(), ""),
        "vgs": (0, (FIXTURES / "lvm_snapshot" / "vgs_vg_jts_lab.json").read_text(), ""),
        "btrfs": (0, (FIXTURES / "storage_health" / "btrfs_stats_errors.txt").read_text(), ""),
    }
    files = {
        "/proc/self/mounts": (FIXTURES / "storage_health" / "mounts_lab.txt").read_text(),
        "/proc/diskstats": (FIXTURES / "storage_health" / "diskstats.txt").read_text(),
    }

    def runner(argv, timeout):
        return answers[os.path.basename(argv[0])]

    def which(name):
        return "/usr/sbin/" + name if name in ("lvs", "vgs", "btrfs") else None

    checker = HealthChecker(
        build_config({"tiers": LAB_TIERS, "freshness": freshness}),
        runner,
        which,
        read_file=files.__getitem__,
        statvfs=lambda path, timeout: statvfs_with_timeout(str(tmp_path), timeout),
        probe=lambda host, port, timeout: (False, "connection refused"),
    )
    return checker.run()


def run_state():
    """A run report: the backup failed, the archive was skipped (NAS away), the rest succeeded;
    the run before succeeded at t=100 s (promtool's clock starts at 0)."""

    def step(name, status, started, figures=None):
        return _run_report.normalise_step(
            {"name": name, "status": status, "started": started, "ended": started + 10, "figures": figures}
        )

    before = _run_report.merge_run(
        _run_report.empty_state(),
        [step(n, "success", 50) for n in ("health", "backup", "migrate", "archive", "cleanup")],
        "run-0",
        "inv-0",
        40.0,
        100.0,
    )
    return _run_report.merge_run(
        before,
        [
            step("health", "success", 150),
            step("backup", "failed", 160, {"files_archived": 0, "bytes_archived": 0}),
            step("migrate", "success", 170, {"files_moved": 12, "bytes_moved": 4096, "files_failed": 0}),
            step("archive", "skipped", 180),
            step("cleanup", "success", 190, {"files_pruned": 3, "bytes_pruned": 77}),
        ],
        "run-1",
        "inv-1",
        140.0,
        200.0,
    )


def test_health_textfile_passes_promtool_check_metrics(promtool, tmp_path):
    result = health_result(tmp_path)
    text = _health_sinks.render_textfile(result)
    # every family the rules read is in it, so the lint covers them
    for family in (
        "tier_status",
        "used_ratio",
        "nas_up",
        "mount_ok",
        "vg_free_ratio",
        "snapshot_fill_ratio",
        "snapshot_valid",
        "btrfs_device_errors",
        "last_run_timestamp_seconds",
        "freshness_status",
        "backup_age_seconds",
    ):
        assert "\n# TYPE jts_storage_%s gauge\n" % family in text, family
    assert '\\"name\\" \\\\ dir' in text
    rc, out = run([promtool, "check", "metrics"], input=text)
    assert rc == 0 and out.strip() == "", out


def test_promtool_check_metrics_catches_a_bad_textfile(promtool):
    # the check above can fail: a family without HELP is reported
    rc, out = run([promtool, "check", "metrics"], input="# TYPE jts_storage_x gauge\njts_storage_x 1\n")
    assert rc != 0 and "no help text" in out, out


def input_series(text, instance):
    """promtool input_series for a textfile's samples, as node_exporter serves them for 30 min."""
    series = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        metric, value = line.rsplit(" ", 1)
        extra = 'instance="%s",job="node"' % instance
        metric = metric[:-1] + "," + extra + "}" if metric.endswith("}") else metric + "{" + extra + "}"
        series.append({"series": metric, "values": "%sx30" % value})
    return series


def test_real_textfiles_raise_the_alerts_their_results_call_for(promtool, tmp_path):
    health = health_result(tmp_path)
    # what the fixtures hold, as the health check judged them
    assert health["tiers"]["cold"]["status"] == "critical" and health["tiers"]["cold"]["nas"]["up"] is False
    assert health["tiers"]["warm"]["status"] == "warning"  # btrfs errors, mount option drift
    assert [(m["mounted"], bool(m["drift"])) for m in health["tiers"]["warm"]["mounts"]] == [(True, True)]
    assert [s["valid"] for s in health["tiers"]["hot"]["lvm"]["snapshots"]] == [False, True]
    series = input_series(_health_sinks.render_textfile(health), "db1:9100")
    series += input_series(_run_report.render_textfile(run_state()), "db1:9100")
    assert [(c["kind"], c["name"], c["status"]) for c in health["freshness"]["checks"]] == [
        ("backup", "postgres", "warning"),
        ("backup", "mongodb", "critical"),
        ("nas_snapshot", "configs", "unknown"),
    ]
    query = "count by (alertname, tier, server, lv, step, kind, name) (ALERTS{alertstate='firing'})"
    expected = [
        {"alertname": "JtsTierCritical", "tier": "hot"},  # the invalid snapshot
        {"alertname": "JtsTierCritical", "tier": "cold"},
        {"alertname": "JtsTierWarning", "tier": "warm"},
        {"alertname": "JtsNasDown", "tier": "cold", "server": "127.0.0.1"},
        {"alertname": "JtsSnapshotInvalid", "tier": "hot", "lv": "cap_mongodb_20261123T000000Z"},
        {"alertname": "JtsMountNotOk", "tier": "warm"},
        {"alertname": "JtsFreshnessWarning", "kind": "backup", "name": "postgres"},
        {"alertname": "JtsFreshnessCritical", "kind": "backup", "name": "mongodb"},
        {"alertname": "JtsFreshnessWarning", "kind": "nas_snapshot", "name": "configs"},
        {"alertname": "JtsNightlyRunFailed"},
        {"alertname": "JtsStepFailed", "step": "backup"},
    ]
    test_file = tmp_path / "real.test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES)],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": series,
                        "promql_expr_test": [
                            {
                                "expr": query,
                                "eval_time": "20m",
                                "exp_samples": [{"labels": labels_text(e), "value": 1} for e in expected],
                            }
                        ],
                    }
                ],
            }
        )
    )
    rc, out = run([promtool, "test", "rules", str(test_file)])
    assert rc == 0, out


def labels_text(labels):
    return "{%s}" % ",".join('%s="%s"' % item for item in sorted(labels.items()))
