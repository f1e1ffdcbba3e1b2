"""The roles' computed variables (vars/main.yml) rendered with their defaults.

The read-once pattern builds lists of wanted directories in Jinja; a mistake there (a dict
item stringified into a path) only showed on the lab VM, so it is pinned here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

trust = pytest.importorskip("ansible.template").trust_as_template  # ansible-core >= 2.19

ROOT = Path(__file__).resolve().parents[2]


def render(role, expression, **overrides):
    variables = {}
    for part in ("defaults", "vars"):
        variables.update(yaml.safe_load((ROOT / "roles" / role / part / "main.yml").read_text()) or {})
    variables.update(overrides)
    variables = {k: trust(v) if isinstance(v, str) else v for k, v in variables.items()}
    return Templar(loader=DataLoader(), variables=variables).template(trust(expression))


def test_cold_tier_dirs_are_the_nas_tree_parents_first():
    dirs = render(
        "cold_tier",
        "{{ __cold_tier_dirs }}",
        cold_tier_tree={"archives": ["database", "configs"], "models": ["training"]},
    )
    paths = [d["path"] for d in dirs]
    assert paths == [
        "/mnt/synology/jts",
        "/mnt/synology/jts/archives",
        "/mnt/synology/jts/models",
        "/mnt/synology/jts/archives/database",
        "/mnt/synology/jts/archives/configs",
        "/mnt/synology/jts/models/training",
    ]
    assert {(d["owner"], d["group"], d["mode"]) for d in dirs} == {("root", "root", "0755")}


def test_warm_tier_dirs_are_the_mount_point_and_its_directories():
    dirs = render("warm_tier", "{{ __warm_tier_dirs }}")
    assert [d["path"] for d in dirs] == ["/data/warm-storage"] + [
        "/data/warm-storage/" + d["name"]
        for d in yaml.safe_load((ROOT / "roles/warm_tier/defaults/main.yml").read_text())["warm_tier_directories"]
    ]
    assert all(set(d) == {"path", "owner", "group", "mode"} for d in dirs)


def test_hot_tier_dirs_are_mount_points_and_sub_directories_with_the_volume_owner():
    plan = {
        "volumes": [
            {
                "name": "postgres",
                "mount": "/var/lib/postgres",
                "owner": "postgres",
                "group": "postgres",
                "mode": "0750",
            },
            {"name": "docker", "mount": "/var/lib/docker-jts", "group": "docker", "subdirs": ["volumes", "containers"]},
        ]
    }
    dirs = render("hot_tier", "{{ __hot_tier_dirs }}", __hot_tier_plan=plan)
    assert dirs == [
        {"path": "/var/lib/postgres", "owner": "postgres", "group": "postgres", "mode": "0750"},
        {"path": "/var/lib/docker-jts", "owner": "root", "group": "docker", "mode": "0750"},
        {"path": "/var/lib/docker-jts/volumes", "owner": "root", "group": "docker", "mode": "0750"},
        {"path": "/var/lib/docker-jts/containers", "owner": "root", "group": "docker", "mode": "0750"},
    ]


def trust_all(value):
    """Trust nested strings too, as Ansible trusts everything a role's defaults file holds."""
    if isinstance(value, str):
        return trust(value)
    if isinstance(value, list):
        return [trust_all(v) for v in value]
    if isinstance(value, dict):
        return {k: trust_all(v) for k, v in value.items()}
    return value


def render_lifecycle(expression, **overrides):
    variables = {}
    for path in sorted((ROOT / "roles" / "lifecycle" / "defaults" / "main").glob("*.yml")):
        variables.update(yaml.safe_load(path.read_text()) or {})
    variables.update(yaml.safe_load((ROOT / "roles" / "lifecycle" / "vars" / "main.yml").read_text()))
    variables.update(overrides)
    return Templar(loader=DataLoader(), variables=trust_all(variables)).template(trust(expression))


OTHER_HOST = {
    "hot_tier_vg": "vg_data",
    "hot_tier_volumes": [
        {
            "name": "pg",
            "fstype": "ext4",
            "mount": "/srv/pg",
            "mount_opts": "noatime",
            "subdirs": ["logs"],
            "snapshot_size": "128M",
        },
    ],
    "warm_tier_mount": "/srv/warm",
    "cold_tier_server": "nas2.internal",
    "cold_tier_mount": "/mnt/nas",
}


def test_the_nightly_run_derives_from_the_tier_variables_only():
    got = render_lifecycle(
        "{{ [lifecycle_backup_vg, lifecycle_backup_volumes, lifecycle_backup_dir, lifecycle_steps,"
        " lifecycle_health_tiers | map(attribute='name') | list, lifecycle_health_tiers[0].mounts[0].path,"
        " lifecycle_migrate_moves | map(attribute='source') | list, lifecycle_archive_nas_host,"
        " lifecycle_archive_destination_mount, lifecycle_archive_mirrors[0].destination,"
        " lifecycle_cleanup_temp_paths[0].path] }}",
        **OTHER_HOST,
    )
    assert got == [
        "vg_data",
        [{"lv": "pg", "size": "128M"}],
        "/srv/warm/daily-backups",
        ["health", "backup", "migrate", "archive", "cleanup"],
        ["hot", "warm", "cold"],
        "/srv/pg",
        ["/var/log", "/srv/pg/logs", "/srv/warm/daily-backups"],
        "nas2.internal",
        "/mnt/nas",
        "/mnt/nas/jts/development/datasets",
        "/srv/warm/temp-processing",
    ]


def test_directory_mode_has_no_backup_step():
    steps = render_lifecycle("{{ lifecycle_steps }}", hot_tier_mode="directory")
    assert steps == ["health", "migrate", "archive", "cleanup"]


def test_an_explicit_lifecycle_variable_still_wins():
    assert render_lifecycle("{{ lifecycle_backup_vg }}", lifecycle_backup_vg="vg_other", **OTHER_HOST) == "vg_other"


def test_tuning_trims_the_hot_mounts_of_the_layout():
    assert render("tuning", "{{ tuning_fstrim_mounts }}", **OTHER_HOST) == ["/srv/pg"]
    assert render("tuning", "{{ tuning_fstrim_mounts }}", hot_tier_mode="directory") == []
