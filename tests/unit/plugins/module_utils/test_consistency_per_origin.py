"""_consistency.per_origin: a PostgreSQL backup_label and its WAL go to the LV that holds the data directory only."""

from __future__ import annotations

import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency

STATE = {
    "mode": "application",
    "method": "postgresql",
    "reason": "held",
    "backup_label": "START WAL LOCATION: 0/5000028\n",
    "tablespace_map": "",
    "data_directory": "15/main",
    "data_directory_absolute": "/var/lib/postgresql/15/main",
    "wal_files": ["000000010000000000000005"],
}


class FakeStat:
    def __init__(self, mode=0, dev=0, rdev=0):
        self.st_mode, self.st_dev, self.st_rdev = mode, dev, rdev


@pytest.fixture
def devices(monkeypatch):
    """/var/lib/postgresql/15/main on device 0x0fd01; /dev/vg/pg_a is 0x0fd01, /dev/vg/pg_b 0x0fd02."""
    table = {
        "/var/lib/postgresql/15/main": FakeStat(0o040700, dev=0xFD01),
        "/dev/vg/pg_a": FakeStat(0o060660, rdev=0xFD01),
        "/dev/vg/pg_b": FakeStat(0o060660, rdev=0xFD02),
    }

    def fake_stat(path, *args, **kwargs):
        if path not in table:
            raise FileNotFoundError(2, "No such file", path)
        return table[path]

    monkeypatch.setattr(_consistency.os, "stat", fake_stat)
    return table


def device_of(lv):
    return os.path.join("/dev/vg", lv)


def test_one_origin_keeps_the_label_on_the_groups_word():
    states = _consistency.per_origin(STATE, ["postgres"], lambda lv: "/nonexistent/%s" % lv)
    assert states["postgres"]["backup_label"] == STATE["backup_label"]
    assert states["postgres"]["mode"] == "application" and states["postgres"]["origins"] == ["postgres"]


@pytest.mark.parametrize("order", [["pg_a", "pg_b"], ["pg_b", "pg_a"]])
def test_only_the_lv_holding_the_data_directory_gets_label_and_wal(devices, order):
    states = _consistency.per_origin(STATE, order, device_of)
    assert states["pg_a"]["mode"] == "application"
    assert states["pg_a"]["backup_label"] and states["pg_a"]["wal_files"] == STATE["wal_files"]
    other = states["pg_b"]
    assert other["mode"] == "crash" and other["backup_label"] is None and other["wal_files"] == []
    assert other["data_directory"] is None and other["tablespace_map"] is None
    assert "is on pg_a, not on this LV" in other["reason"]


def test_no_lv_matching_makes_every_origin_crash(devices):
    devices["/var/lib/postgresql/15/main"] = FakeStat(0o040700, dev=0xFD09)
    states = _consistency.per_origin(STATE, ["pg_a", "pg_b"], device_of)
    assert all(s["mode"] == "crash" and s["backup_label"] is None for s in states.values())
    assert "could not tell which LV" in states["pg_a"]["reason"]


def test_a_regular_file_with_the_devices_number_is_not_a_match(devices):
    devices["/dev/vg/pg_a"] = FakeStat(0o100644, rdev=0xFD01)
    states = _consistency.per_origin(STATE, ["pg_a", "pg_b"], device_of)
    assert states["pg_a"]["mode"] == "crash" and states["pg_b"]["mode"] == "crash"


def test_a_state_without_label_is_shared_as_it_is(devices):
    frozen = {"mode": "application", "method": "fsfreeze", "reason": "frozen", "backup_label": None}
    states = _consistency.per_origin(frozen, ["pg_a", "pg_b"], device_of)
    assert states["pg_a"] == dict(frozen, origins=["pg_a", "pg_b"]) == states["pg_b"]
