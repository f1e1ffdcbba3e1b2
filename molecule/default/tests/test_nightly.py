"""What the nightly run, started from its systemd unit (side_effects/nightly.yml), left behind."""

from __future__ import annotations

import re


def test_the_aged_log_moved_to_the_warm_tier(host):
    assert not host.file("/var/lib/postgresql/logs/postgresql-old.log").exists
    moved = host.file("/data/warm-storage/logs/postgres/postgresql-old.log.zst")
    assert moved.exists and moved.size > 0


def test_rotated_system_logs_moved_and_live_ones_stayed(host):
    assert not host.file("/var/log/jts-test/app.log.1").exists
    moved = host.file("/data/warm-storage/logs/system/jts-test/app.log.1.zst")
    assert moved.exists and moved.size > 0
    assert host.file("/var/log/jts-test/app.log").exists  # a live name is never moved


def test_the_unit_ended_well_and_left_no_lock_or_snapshot(host):
    assert host.run("systemctl show -p Result --value jts-lifecycle.service").stdout.strip() == "success"
    # the run's modules are piped to python, not written under ~/.ansible/tmp first
    assert "ANSIBLE_PIPELINING=1" in host.run("systemctl show -p Environment --value jts-lifecycle.service").stdout
    assert not host.file("/run/jts/lifecycle.lock.d").exists
    snapshots = host.run("lvs --noheadings -o lv_name -S 'lv_name=~^jts_backup_' vg_jts")
    assert snapshots.rc == 0 and snapshots.stdout.strip() == ""


def test_the_good_run_is_recorded_after_the_failed_and_killed_ones(host):
    """side_effects/run_report.yml left a failed and a killed run; the nightly run after them succeeded."""
    prom = host.file("/var/lib/prometheus/node-exporter/jts_lifecycle.prom").content_string
    assert "jts_lifecycle_run_success 1\n" in prom
    for step in ("health", "backup", "migrate", "archive", "cleanup"):
        assert 'jts_lifecycle_step_success{step="%s"} 1\n' % step in prom
        assert 'jts_lifecycle_step_skipped{step="%s"} 0\n' % step in prom
    # the aged postgres log and the rotated system log (and whatever aged rotated logs the VM has)
    moved = re.search(r'(?m)^jts_lifecycle_step_files\{step="migrate",action="moved"\} (\d+)$', prom)
    assert moved and int(moved.group(1)) >= 2, prom
    state = host.file("/var/lib/jts/lifecycle")
    assert state.is_directory and state.mode == 0o700 and state.user == "root"
    summary = host.run("/usr/local/bin/jts-lifecycle-report")
    assert summary.rc == 0 and summary.stdout.startswith("last run: SUCCESS"), summary.stdout


def test_freshness_after_the_nightly_run(host):
    """The backups, the configs snapshot and the run just made are fresh; a young host has no NAS backup yet."""
    check = host.run("/usr/local/bin/jts-storage-check --freshness")
    assert check.rc in (0, 1), check.stdout  # WARNING at most: no NAS backup on a young host
    assert check.stdout.startswith("FRESHNESS "), check.stdout
    for lv in ("postgres", "clickhouse", "mongodb"):
        assert re.search(r"(?m)^\s*backup\s+%s\s.*\sOK$" % lv, check.stdout), check.stdout
    assert re.search(r"(?m)^\s*last_run\s+\S+\s.*\sOK$", check.stdout), check.stdout
    assert re.search(r"(?m)^\s*nas_snapshot\s+configs\s.*\sOK$", check.stdout), check.stdout
    latest = host.run("timeout --signal=KILL 20 readlink /mnt/synology/jts/archives/configs/configs/latest")
    assert latest.rc == 0 and latest.stdout.strip(), latest.stderr
