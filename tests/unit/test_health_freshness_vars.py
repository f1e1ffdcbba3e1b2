"""lifecycle_health_freshness rendered with the role's defaults: the freshness checks look where
the nightly run writes (one source of truth), and a step left out is not checked."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import build_freshness

role_vars = pytest.importorskip("test_role_vars")


def checks(**overrides):
    raw = role_vars.render_lifecycle("{{ lifecycle_health_freshness }}", **overrides)
    return {(c["kind"], c["name"]): c for c in build_freshness(raw)["checks"]}, raw


def test_freshness_derives_from_the_nightly_run_variables():
    got, raw = checks(**role_vars.OTHER_HOST)
    assert (raw["nas_server"], int(raw["nas_port"])) == ("nas2.internal", 2049)
    assert {k: (c["path"], c["mount"], c["warning"], c["critical"], c["missing"]) for k, c in got.items()} == {
        ("backup", "pg"): ("/srv/warm/daily-backups/pg", "/srv/warm", 26 * 3600, 50 * 3600, "critical"),
        ("nas_backup", "pg"): ("/mnt/nas/jts/archives/database/pg", "/mnt/nas", 770 * 3600, 794 * 3600, "warning"),
        ("nas_snapshot", "configs"): (
            "/mnt/nas/jts/archives/configs/configs",
            "/mnt/nas",
            26 * 3600,
            50 * 3600,
            "critical",
        ),
        ("last_run", "nightly"): ("/var/lib/jts/lifecycle/last-run.json", None, 26 * 3600, 50 * 3600, "critical"),
    }


def test_same_paths_as_the_steps_when_they_are_moved():
    got, _raw = checks(
        lifecycle_backup_dir="/srv/b",
        lifecycle_migrate_backup_age="40d",
        lifecycle_report_state_dir="/srv/state",
        lifecycle_archive_snapshots=[{"name": "etc", "sources": ["/etc"], "destination": "/mnt/synology/x"}],
        lifecycle_health_freshness_backup_warning="30h",
    )
    assert got[("backup", "postgres")]["path"] == "/srv/b/postgres"
    assert got[("backup", "postgres")]["warning"] == 30 * 3600
    # no migrate move reads /srv/b (the moves come from the layout's daily-backups): nothing of it
    # goes to the NAS, so there is nothing there to check
    assert ("nas_backup", "postgres") not in got
    assert got[("nas_snapshot", "etc")]["path"] == "/mnt/synology/x/etc"
    assert got[("last_run", "nightly")]["path"] == "/srv/state/last-run.json"


def test_nas_backups_follow_the_migrate_move_of_the_backups():
    moves = [{"name": "daily backups", "source": "/data/warm-storage/daily-backups", "destination": "/mnt/synology/db"}]
    got, _raw = checks(lifecycle_migrate_moves=moves)
    assert got[("nas_backup", "postgres")]["path"] == "/mnt/synology/db/postgres"
    got, _raw = checks(lifecycle_migrate_moves=[])
    assert not any(kind == "nas_backup" for kind, _name in got)


def test_steps_left_out_are_not_checked():
    got, _raw = checks(hot_tier_mode="directory")  # no LV: no backup step
    assert sorted(got) == [("last_run", "nightly"), ("nas_snapshot", "configs")]
    got, _raw = checks(lifecycle_steps=["health", "backup"])
    assert sorted(got) == [
        ("backup", "clickhouse"),
        ("backup", "mongodb"),
        ("backup", "postgres"),
        ("last_run", "nightly"),
    ]


def test_empty_dict_checks_nothing():
    assert (
        role_vars.render_lifecycle(
            "{{ lifecycle_health_freshness | default({}, true) }}", lifecycle_health_freshness={}
        )
        == {}
    )
