"""The layout said once: the tier variables -> what the nightly run and the tuning derive."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.layout import (
    layout_health_tiers,
    layout_migrate_moves,
    storage_layout,
    tier_defaults,
)

ROOT = Path(__file__).resolve().parents[4]

# Another host: another VG, other LV names and mount points, another warm and NAS mount point,
# another service list (no kafka, no mongodb).
OTHER = {
    "hot_tier_vg": "vg_data",
    "hot_tier_volumes": [
        {
            "name": "pg",
            "size": "1G",
            "fstype": "ext4",
            "mount": "/srv/pg",
            "mount_opts": "noatime",
            "subdirs": ["logs"],
            "snapshot_size": "128M",
        },
        {"name": "ch", "size": "1G", "fstype": "xfs", "mount": "/srv/ch", "mount_opts": "noatime,largeio"},
    ],
    "warm_tier_mount": "/srv/warm",
    "cold_tier_server": "nas2.internal",
    "cold_tier_export": "/export/x",
    "cold_tier_mount": "/mnt/nas",
    "cold_tier_root": "trading",
    "unrelated_variable": "ignored",
}


def test_defaults_come_from_the_tier_roles_files():
    values = tier_defaults()
    for role in ("hot_tier", "warm_tier", "cold_tier"):
        for name, value in yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()).items():
            assert values[name] == value


def test_the_default_layout_is_the_specifications():
    layout = storage_layout({})
    hot = layout["hot"]
    assert hot["mode"] == "lvm" and hot["vg"] == "vg_jts"
    assert [m["path"] for m in hot["mounts"]][:2] == ["/var/lib/postgresql", "/var/lib/clickhouse"]
    assert hot["snapshots"] == [
        {"lv": "postgres", "size": "5G"},
        {"lv": "clickhouse", "size": "10G"},
        {"lv": "mongodb", "size": "2G"},
    ]
    assert [item["name"] for item in hot["logs"]] == ["postgres", "clickhouse", "mongodb", "redis"]
    assert layout["warm"]["mount"] == "/data/warm-storage"
    assert layout["warm"]["backups"] == "/data/warm-storage/daily-backups"
    cold = layout["cold"]
    assert (cold["server"], cold["mount"], cold["root"], cold["port"]) == (
        "nas.example.internal",
        "/mnt/synology",
        "/mnt/synology/jts",
        2049,
    )
    assert "vers=3" in cold["options"] and "hard" in cold["options"] and "nofail" in cold["options"]


def test_another_host_is_described_by_its_tier_variables_only():
    layout = storage_layout(OTHER)
    assert layout["hot"]["vg"] == "vg_data"
    assert layout["hot"]["mounts"] == [
        {"name": "pg", "path": "/srv/pg", "fstype": "ext4", "options": ["noatime"]},
        {"name": "ch", "path": "/srv/ch", "fstype": "xfs", "options": ["noatime", "largeio"]},
    ]
    assert layout["hot"]["snapshots"] == [{"lv": "pg", "size": "128M"}]
    assert layout["hot"]["logs"] == [{"name": "pg", "path": "/srv/pg/logs"}]
    assert layout["cold"]["root"] == "/mnt/nas/trading"

    tiers = layout_health_tiers(layout)
    assert [t["name"] for t in tiers] == ["hot", "warm", "cold"]
    assert tiers[0]["vg"] == "vg_data" and [m["path"] for m in tiers[0]["mounts"]] == ["/srv/pg", "/srv/ch"]
    assert tiers[1]["mounts"][0]["path"] == "/srv/warm"
    assert tiers[2]["nas_server"] == "nas2.internal"
    assert tiers[2]["mounts"][0]["source"] == "nas2.internal:/export/x"
    assert tiers[2]["mounts"][0]["path"] == "/mnt/nas"

    moves = layout_migrate_moves(layout, "3d", "14d", "/srv/log")
    assert moves[0] == {
        "name": "system logs",
        "source": "/srv/log",
        "destination": "/srv/warm/logs/system",
        "destination_mount": "/srv/warm",
        "older_than": "3d",
        "compression": "zstd",
        "include": [
            "*.[0-9]",
            "*.[0-9].gz",
            "*.[0-9][0-9]",
            "*.[0-9][0-9].gz",
            "*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*",
        ],
        "exclude": ["journal", "*.journal", "*.journal~"],
    }
    assert layout_migrate_moves(layout, "3d", "14d", "")[0]["name"] == "pg logs"
    with pytest.raises(AnsibleFilterError, match="lifecycle_migrate_system_log_dir"):
        layout_migrate_moves(layout, "3d", "14d", "var/log")
    moves = moves[1:]
    assert moves == [
        {
            "name": "pg logs",
            "source": "/srv/pg/logs",
            "destination": "/srv/warm/logs/pg",
            "destination_mount": "/srv/warm",
            "older_than": "3d",
            "compression": "zstd",
        },
        {
            "name": "daily backups",
            "source": "/srv/warm/daily-backups",
            "destination": "/mnt/nas/trading/archives/database",
            "destination_mount": "/mnt/nas",
            "older_than": "14d",
            "compression": "none",
            "exclude": [".*.partial"],
        },
    ]


def test_directory_mode_has_no_vg_no_snapshots_and_checks_the_root():
    layout = storage_layout({"hot_tier_mode": "directory", "hot_tier_directory_root": "/data/hot/"})
    hot = layout["hot"]
    assert hot["vg"] is None and hot["mounts"] == [] and hot["snapshots"] == []
    assert hot["root"] == "/data/hot"
    assert {"name": "postgresql", "path": "/data/hot/postgresql/logs"} in hot["logs"]
    tiers = layout_health_tiers(layout, 70, 85)
    assert tiers[0] == {"name": "hot", "paths": ["/data/hot"], "warning": 70, "critical": 85}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"hot_tier_mode": "zfs"}, "hot_tier_mode must be lvm or directory"),
        ({"warm_tier_mount": "data/warm"}, "warm_tier_mount must be an absolute path"),
        ({"hot_tier_volumes": [{"name": "x", "fstype": "ext4"}]}, "hot_tier_volumes[0] lacks mount"),
        ({"hot_tier_volumes": "postgres"}, "hot_tier_volumes must be a list"),
        (
            {"hot_tier_volumes": [{"name": "x", "fstype": "ext4", "mount": "/x", "mount_opts": 3}]},
            "hot_tier_volumes[x].mount_opts",
        ),
        (
            {"hot_tier_mode": "directory", "hot_tier_directories": [{"owner": "x"}]},
            "hot_tier_directories[0] lacks name",
        ),
    ],
)
def test_bad_tier_variables_are_refused_by_name(override, message):
    with pytest.raises(AnsibleFilterError, match=None) as info:
        storage_layout(override)
    assert message in str(info.value)


def test_the_input_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="expects a dict"):
        storage_layout(["hot_tier_vg"])


def test_missing_defaults_file_is_reported(tmp_path):
    with pytest.raises(AnsibleFilterError, match="cannot read the defaults of hot_tier"):
        storage_layout({}, roles_dir=str(tmp_path))
