"""layout_benchmark_targets: the benchmark's targets from the layout, said once."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.benchmark import layout_benchmark_targets
from ansible_collections.jts.tiered_storage.plugins.filter.layout import storage_layout


def test_default_layout_every_lv_the_warm_mount_and_the_nas():
    targets = layout_benchmark_targets(storage_layout({}))
    hot = [t for t in targets if t["tier"] == "hot"]
    assert {t["name"] for t in hot} >= {"postgres", "clickhouse", "kafka"}
    assert all(t["tests"] == ["seq_write", "rand_read"] and t["require_mount"] for t in hot)
    assert all(t["directory"] == t["mount"] for t in hot)
    warm = [t for t in targets if t["tier"] == "warm"]
    assert warm == [
        {
            "tier": "warm",
            "name": "warm",
            "mount": "/data/warm-storage",
            "directory": "/data/warm-storage",
            "tests": ["seq_write"],
            "require_mount": True,
        }
    ]
    [cold] = [t for t in targets if t["tier"] == "cold"]
    assert cold["mount"] == "/mnt/synology" and cold["directory"] == "/mnt/synology/jts"
    assert cold["tests"] == ["seq_write", "seq_read"]


def test_inventory_values_are_used():
    layout = storage_layout(
        {
            "hot_tier_volumes": [{"name": "pg", "mount": "/srv/pg", "fstype": "ext4"}],
            "warm_tier_mount": "/srv/warm",
            "cold_tier_mount": "/srv/nas",
            "cold_tier_root": "",
        }
    )
    targets = layout_benchmark_targets(layout)
    assert [(t["tier"], t["name"], t["directory"]) for t in targets] == [
        ("hot", "pg", "/srv/pg"),
        ("warm", "warm", "/srv/warm"),
        ("cold", "nas", "/srv/nas"),
    ]


def test_directory_mode_root_need_not_be_a_mount():
    [hot] = layout_benchmark_targets(storage_layout({"hot_tier_mode": "directory"}), ["hot"])
    assert hot["mount"] == "/data/jts/hot" and hot["require_mount"] is False


def test_tiers_chosen_and_unknown_refused():
    assert {t["tier"] for t in layout_benchmark_targets(storage_layout({}), "cold")} == {"cold"}
    with pytest.raises(AnsibleFilterError, match="unknown tier"):
        layout_benchmark_targets(storage_layout({}), ["nvme"])
    with pytest.raises(AnsibleFilterError):
        layout_benchmark_targets({"hot": {}})
