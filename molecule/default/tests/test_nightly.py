"""What the nightly run, started from its systemd unit (side_effects/nightly.yml), left behind."""

from __future__ import annotations


def test_the_aged_log_moved_to_the_warm_tier(host):
    assert not host.file("/var/lib/postgresql/logs/postgresql-old.log").exists
    moved = host.file("/data/warm-storage/logs/postgres/postgresql-old.log.zst")
    assert moved.exists and moved.size > 0


def test_the_unit_ended_well_and_left_no_lock_or_snapshot(host):
    assert host.run("systemctl show -p Result --value jts-lifecycle.service").stdout.strip() == "success"
    assert not host.file("/run/jts/lifecycle.lock.d").exists
    snapshots = host.run("lvs --noheadings -o lv_name -S 'lv_name=~^jts_backup_' vg_jts")
    assert snapshots.rc == 0 and snapshots.stdout.strip() == ""
