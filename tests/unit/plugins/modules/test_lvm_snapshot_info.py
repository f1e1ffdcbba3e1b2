"""Tests for jts.tiered_storage.lvm_snapshot_info with LVM mocked (fixtures shared with test_lvm_snapshot)."""

from __future__ import annotations

import types

import pytest
from ansible.module_utils.basic import AnsibleModule
from lvm_fake import NOW, FakeLvm, report

from ansible_collections.jts.tiered_storage.plugins.modules import lvm_snapshot_info


@pytest.fixture
def lvm(monkeypatch, run_module):
    monkeypatch.setattr(lvm_snapshot_info, "time", types.SimpleNamespace(time=lambda: NOW))

    def call(args, fake=None, check_mode=False):
        fake = fake or FakeLvm()
        result = run_module(lvm_snapshot_info, dict({"vg": "vg_jts"}, **args), commands=fake, check_mode=check_mode)
        return result, fake

    return call


def test_list_returns_every_snapshot_with_times_fill_and_validity(lvm):
    result, fake = lvm({})
    assert result["changed"] is False and fake.issued("lvcreate") == []
    snaps = {s["name"]: s for s in result["snapshots"]}
    assert len(snaps) == 8
    pg = snaps["jts_snap_postgres_20261120T013000Z"]
    assert pg == {
        "name": "jts_snap_postgres_20261120T013000Z",
        "vg": "vg_jts",
        "path": "/dev/vg_jts/jts_snap_postgres_20261120T013000Z",
        "origin": "postgres",
        "lv_attr": "swi-a-s---",
        "size_bytes": 5368709120,
        "origin_size_bytes": 858993459200,
        "data_percent": 41.2,
        "valid": True,
        "merging": False,
        "created": "2026-11-20T01:30:00Z",
        "created_epoch": 1795138200,
        "lv_time": "2026-11-20 01:30:00 +0000",
        "age_seconds": 262800,
        "managed": True,
    }
    assert snaps["manual_postgres_before_upgrade"]["managed"] is False
    assert snaps["jts_snap_mongodb_20261122T013000Z"]["valid"] is False
    assert snaps["jts_snap_mongodb_20261122T013000Z"]["data_percent"] == 100.0
    assert [f["lv"] for f in result["findings"]] == ["jts_snap_mongodb_20261122T013000Z"]
    origins = [s["origin"] for s in result["snapshots"]]
    assert origins == sorted(origins)


def test_list_scoped_to_origins(lvm):
    result, _ = lvm({"origins": ["clickhouse"]})
    # sorted by real creation time: the one named 23 Nov was created on 10 Nov
    assert [s["name"] for s in result["snapshots"]] == [
        "jts_snap_clickhouse_20261123T000000Z",
        "jts_snap_clickhouse_20261122T013000Z",
    ]


def test_list_of_a_vg_without_snapshots(lvm):
    result, _ = lvm({}, fake=FakeLvm(lvs="lvs_vg_jts_plain.json"))
    assert result["snapshots"] == [] and result["findings"] == []


def test_lvs_failure_names_the_vg(lvm):
    result, _ = lvm({}, fake=FakeLvm(lvs=(5, "", "  Reading VG vg_jts failed.\n")))
    assert result["failed"] is True and result["msg"] == "lvs for VG vg_jts failed (rc 5): Reading VG vg_jts failed."
    assert result["cmd"][0] == "/usr/bin/lvs"


def test_other_vgs_failure_is_reported(lvm):
    result, _ = lvm({}, fake=FakeLvm(vgs=(3, "", "  Locking failed\n")))
    assert result["msg"] == "vgs for VG vg_jts failed (rc 3): Locking failed"


def test_report_that_does_not_parse(lvm):
    result, _ = lvm({}, fake=FakeLvm(vgs=(0, "garbage", "")))
    assert result["failed"] is True and result["msg"].startswith("cannot parse LVM's JSON report")


def test_report_without_the_vg(lvm):
    result, _ = lvm({}, fake=FakeLvm(vgs=report("vg", [])))
    assert result["msg"] == "VG vg_jts not found"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"origins": ["bad/name"]}, "origins: 'bad/name' is not a valid LVM name"),
        ({"prefix": "pvmove_x"}, "prefix: 'pvmove_x' starts with 'pvmove', which LVM reserves"),
        ({"vg": ".."}, "vg: '..' is not a valid LVM name"),
    ],
)
def test_bad_input(lvm, args, message):
    result, fake = lvm(args)
    assert result["failed"] is True and result["msg"].startswith(message) and fake.calls == []


def test_check_mode_lists_too_and_warns_about_invalid_ones(lvm, monkeypatch):
    warnings = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, text: warnings.append(text))
    result, _ = lvm({}, check_mode=True)
    assert len(result["snapshots"]) == 8
    assert warnings == ["snapshot vg_jts/jts_snap_mongodb_20261122T013000Z of mongodb is invalid (filled up)"]
