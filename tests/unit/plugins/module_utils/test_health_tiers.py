# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_health_tiers: a tier's data and the settings, validated (moved from tests/unit/plugins/modules/test_storage_health.py)."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import HealthError, build_config

GIB = 1024**3


def tier_cfg(**overrides):
    raw = {"name": "warm", "paths": ["/data/warm-storage"]}
    raw.update(overrides)
    return build_config({"tiers": [raw]})["tiers"][0]


# ------------------------------------------------------------------------------ configuration


def test_defaults_are_80_and_90():
    tier = tier_cfg()
    assert (tier["warning"], tier["critical"]) == (80.0, 90.0)
    assert (tier["inode_warning"], tier["inode_critical"]) == (80.0, 90.0)
    assert (tier["snapshot_warning"], tier["snapshot_critical"]) == (80.0, 90.0)
    assert tier["free_warning"] is None and tier["nas_port"] == 2049


def test_thresholds_accept_numbers_and_percent_strings():
    tier = tier_cfg(warning="70%", critical=85.5, free_warning="50G", free_critical="5%")
    assert tier["warning"] == 70.0 and tier["critical"] == 85.5
    assert tier["free_warning"] == ("bytes", 50 * GIB)
    assert tier["free_critical"] == ("percent", 5.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"warning": "eighty"}, "tier warm: warning: 'eighty' is not a percentage"),
        ({"critical": 120}, "tier warm: critical: 120 is outside 0..100"),
        ({"warning": True}, "tier warm: warning: True is not a percentage"),
        ({"warning": 95, "critical": 90}, "tier warm: warning (95.0%) must not be above critical (90.0%)"),
        ({"inode_warning": 95, "inode_critical": 90}, "inode_warning (95.0) must not be above inode_critical"),
        ({"snapshot_warning": 99}, "snapshot_warning (99.0) must not be above snapshot_critical (90.0)"),
        ({"free_warning": "1G", "free_critical": "2G"}, "free_warning (1073741824) must not be below free_critical"),
        ({"free_warning": "lots"}, "tier warm: free_warning: 'lots' is not a size"),
        ({"vg_free_warning": "-5%"}, "tier warm: vg_free_warning"),
        ({"nas_port": 70000}, "tier warm: nas_port: 70000 is not a TCP port"),
        ({"paths": ["relative/dir"]}, "tier warm: paths[0]: 'relative/dir' is not an absolute path"),
        ({"paths": "/data"}, "tier warm: paths must be a list"),
        ({"mounts": [{"path": "/x", "opts": "noatime"}]}, "tier warm: mounts[0]: unknown key(s) opts"),
        ({"colour": "red"}, "tier warm: unknown key(s) colour"),
        ({"vg": "vg jts"}, "tier warm: vg: 'vg jts' is not a volume group name"),
        ({"btrfs_error_severity": "fatal"}, "btrfs_error_severity: 'fatal' is not warning or critical"),
        ({"name": "hot tier"}, "tier name 'hot tier' must be letters"),
        ({"paths": []}, "tier warm: nothing to check"),
    ],
)
def test_bad_tier_input_is_rejected_with_a_clear_message(overrides, message):
    with pytest.raises(HealthError) as exc:
        tier_cfg(**overrides)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "tiers: give a non-empty list"),
        ({"tiers": []}, "tiers: give a non-empty list"),
        ({"tiers": [{"name": "a", "paths": ["/a"]}, {"name": "a", "paths": ["/b"]}]}, "duplicate tier name(s) a"),
        ({"tiers": [{"name": "a", "paths": ["/a"]}], "timeout": "soon"}, "timeout: 'soon' is not a number"),
        ({"tiers": [{"name": "a", "paths": ["/a"]}], "timeout": 0}, "timeout: 0 must be at least 0.1"),
        ({"tiers": [{"name": "a", "paths": ["/a"]}], "fail_on": "always"}, "fail_on: 'always' is not one of"),
        ({"tiers": ["hot"]}, "each tier must be a dict"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_settings_are_rejected(settings, message):
    with pytest.raises(HealthError) as exc:
        build_config(settings)
    assert message in str(exc.value)


def test_probe_timeout_never_exceeds_the_run_timeout():
    config = build_config({"tiers": [{"name": "a", "paths": ["/a"]}], "timeout": 2, "probe_timeout": 5})
    assert config["probe_timeout"] == 2.0


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("false", False), ("yes", True), (0, False), ("", False)]
)
def test_btrfs_stats_accepts_yaml_booleans(value, expected):
    assert tier_cfg(btrfs_stats=value)["btrfs_stats"] is expected


def test_btrfs_stats_refuses_non_booleans():
    with pytest.raises(HealthError, match="tier warm: btrfs_stats: 'maybe' is not a boolean"):
        tier_cfg(btrfs_stats="maybe")
