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
