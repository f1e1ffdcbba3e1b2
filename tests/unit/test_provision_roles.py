"""The provisioning roles' defaults, argument specs and inventories agree with each other."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.jts.tiered_storage.plugins.filter.lvm_plan import lvm_plan, vg_extents_for_device

ROOT = Path(__file__).resolve().parents[2]
ROLES = ["hot_tier", "warm_tier", "cold_tier", "tuning"]
MIB = 1024**2
EXTENT = 4 * MIB


def _yaml(path):
    return yaml.safe_load(path.read_text()) or {}


def _spec(role):
    return _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_specified_described_and_equal(role):
    defaults = _yaml(ROOT / "roles" / role / "defaults" / "main.yml")
    spec = _spec(role)
    assert set(defaults) == set(spec), "defaults and argument_specs differ"
    for name, option in spec.items():
        assert name.startswith(role + "_"), name
        assert option.get("description"), name
        if "default" in option:
            assert option["default"] == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("inventory", ["lab", "production"])
def test_inventory_variables_exist_in_the_spec(role, inventory):
    path = ROOT / "inventories" / inventory / "group_vars" / "storage_hosts" / ("%s.yml" % role)
    if not path.exists():
        pytest.skip("no %s settings in %s" % (role, inventory))
    unknown = set(_yaml(path)) - set(_spec(role))
    assert not unknown


def _volumes(inventory):
    path = ROOT / "inventories" / inventory / "group_vars" / "storage_hosts" / "hot_tier.yml"
    return (_yaml(path).get("hot_tier_volumes") if path.exists() else None) or _yaml(
        ROOT / "roles" / "hot_tier" / "defaults" / "main.yml"
    )["hot_tier_volumes"]


def test_lab_plan_fits_8_gib_and_leaves_room_for_the_lifecycle_snapshots():
    extents = vg_extents_for_device(8 * 1024**3, EXTENT, EXTENT)
    plan = lvm_plan(_volumes("lab"), extents, EXTENT, "5%")
    assert plan["errors"] == []
    free = plan["summary"]["vg_bytes"] - plan["summary"]["planned_bytes"]
    assert free >= plan["summary"]["reserve_bytes"] + 1200 * MIB
    kafka = next(v for v in plan["volumes"] if v["fstype"] == "xfs")
    # agcount=32 with a 128 MiB internal log needs 32 AGs larger than the log
    assert "agcount=32" in kafka["mkfs_opts"] and "size=128m" in kafka["mkfs_opts"]
    assert kafka["size_bytes"] >= 4112 * MIB


def test_production_plan_fits_a_4_tb_disk_with_its_reserve():
    extents = vg_extents_for_device(4000787030016, EXTENT, EXTENT)
    assert lvm_plan(_volumes("production"), extents, EXTENT, "5%")["errors"] == []


def test_specification_sizes_do_not_fit_a_4_tb_disk_with_a_reserve():
    """Why the production inventory uses percentages: the spec's 4000G fill the disk."""
    extents = vg_extents_for_device(4000787030016, EXTENT, EXTENT)
    spec = _yaml(ROOT / "roles" / "hot_tier" / "defaults" / "main.yml")["hot_tier_volumes"]
    (error,) = lvm_plan(spec, extents, EXTENT, "5%")["errors"]
    assert "missing" in error


@pytest.mark.parametrize("inventory", ["defaults", "lab", "production"])
def test_services_sit_where_debian_keeps_their_data(inventory):
    """PostgreSQL in /var/lib/postgresql (Debian's and the specification's), not /var/lib/postgres."""
    volumes = _volumes(inventory) if inventory != "defaults" else _volumes("none")
    mounts = {v["name"]: v["mount"] for v in volumes}
    assert mounts == {
        "postgres": "/var/lib/postgresql",
        "clickhouse": "/var/lib/clickhouse",
        "kafka": "/var/lib/kafka",
        "mongodb": "/var/lib/mongodb",
        "redis": "/var/lib/redis",
        "docker": "/var/lib/docker-jts",
        "local_backup": "/data/local-backup",
    }
    # the nightly backup's snapshots are said on the LVs themselves (the layout, said once)
    assert [v["name"] for v in volumes if v.get("snapshot_size")] == ["postgres", "clickhouse", "mongodb"]
