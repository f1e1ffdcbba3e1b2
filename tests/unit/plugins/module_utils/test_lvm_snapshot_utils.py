"""Pure functions of module_utils/_lvm_snapshot.py (parsers and planners), no LVM needed."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _lvm_snapshot as ls

ROW = {
    "lv_name": "jts_snap_postgres_20261122T013000Z",
    "vg_name": "vg_jts",
    "lv_attr": "swi-a-s---",
    "lv_size": "5368709120",
    "origin": "postgres",
    "origin_size": "858993459200",
    "data_percent": "0.52",
    "lv_time": "2026-11-22 01:30:00 +0000",
    "lv_snapshot_invalid": "",
}


def test_parse_report_of_several_sections_and_empty_ones():
    text = '{"report": [{"lv": [{"lv_name": "a"}]}, {"lv": []}, {"vg": []}, {"lv": [{"lv_name": "b"}]}]}'
    assert [r["lv_name"] for r in ls.parse_report(text, "lv")] == ["a", "b"]
    assert ls.parse_report('{"report": []}', "lv") == []
    assert ls.parse_report("{}", "vg") == []


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2026-11-22 01:30:00 +0000", 1795311000.0),
        ("2026-11-22 02:30:00 +0100", 1795311000.0),
        ("", None),
        (None, None),
        ("22/11/2026", None),
    ],
)
def test_parse_lv_time(value, epoch):
    assert ls.parse_lv_time(value) == epoch


def test_iso8601():
    assert ls.iso8601(1795311000) == "2026-11-22T01:30:00Z"
    assert ls.iso8601(None) is None


@pytest.mark.parametrize(
    ("changes", "invalid"),
    [
        ({}, False),
        ({"lv_attr": "swi-I-s---"}, True),
        ({"lv_attr": "swi-S-s---"}, True),  # invalid suspended snapshot
        ({"lv_snapshot_invalid": "invalid"}, True),  # lv_attr not (yet) saying so
        ({"lv_snapshot_invalid": "1"}, True),  # report/binary_values_as_numeric=1
        ({"lv_attr": "swi"}, False),  # short attr from an odd LVM
    ],
)
def test_is_invalid(changes, invalid):
    assert ls.is_invalid(dict(ROW, **changes)) is invalid


def test_info_of_a_row_with_missing_values():
    info = ls.snapshot_info(dict(ROW, lv_size="", data_percent="", lv_time=""))
    assert (info["size_bytes"], info["data_percent"], info["created"], info["created_epoch"]) == (0, None, None, None)
    assert "age_seconds" not in info and "managed" not in info


@pytest.mark.parametrize(
    ("changes", "prefix", "origins", "ours"),
    [
        ({}, "jts_snap_", None, True),
        ({}, "jts_snap_", {"postgres"}, True),
        ({}, "jts_snap_", {"mongodb"}, False),
        ({}, "jts_", None, False),  # the name would have to be jts_<origin>_<stamp>
        ({"origin": ""}, "jts_snap_", None, False),
        ({"lv_attr": "owi-aos---"}, "jts_snap_", None, False),
        ({"lv_name": "jts_snap_postgres_20261122T013000Z.old"}, "jts_snap_", None, False),
        ({"lv_name": "jts_snap_postgres_2026112T013000Z"}, "jts_snap_", None, False),
        ({"origin": "postgres.x", "lv_name": "jts_snap_postgresXx_20261122T013000Z"}, "jts_snap_", None, False),
    ],
)
def test_owned(changes, prefix, origins, ours):
    assert ls.owned(dict(ROW, **changes), prefix, origins) is ours


def test_snapshot_name_is_utc():
    assert ls.snapshot_name("p_", "lv", 1795311000) == "p_lv_20261122T013000Z"


def test_merge_deferred_from_output_or_open_origin():
    assert ls.merge_deferred("  Merging of snapshot x will occur on next activation of y.\n", None) is True
    assert ls.merge_deferred("", {"lv_attr": "owi-aos---"}) is True
    assert ls.merge_deferred("", {"lv_attr": "owi-a-s---"}) is False
    assert ls.merge_deferred("", None) is False


def test_parse_max_age():
    assert ls.parse_max_age(None) is None and ls.parse_max_age("") is None
    assert ls.parse_max_age("36h") == 36 * 3600


def _lab_fixture(name):
    from pathlib import Path

    return (Path(__file__).parents[1] / "modules" / "fixtures" / "lvm_snapshot" / name).read_text()


def test_report_captured_on_the_lab_vm():
    """lvs and vgs output of LVM 2.03.16 on the lab VM: an 8 MiB snapshot of mongodb filled until invalid
    (attr swi-I-s---, lv_snapshot_invalid 'snapshot invalid'), a valid one of postgres, plain LVs
    ('unknown')."""
    rows = ls.parse_report(_lab_fixture("lvs_vg_jts_lab.json"), "lv")
    snaps = {r["lv_name"]: ls.snapshot_info(r, prefix="cap_") for r in rows if ls.is_snapshot(r)}
    assert sorted(snaps) == ["cap_mongodb_20261123T000000Z", "cap_postgres_20261123T000000Z"]
    bad, good = snaps["cap_mongodb_20261123T000000Z"], snaps["cap_postgres_20261123T000000Z"]
    assert bad["valid"] is False and bad["data_percent"] == 100.0 and bad["origin"] == "mongodb"
    assert good["valid"] is True and good["data_percent"] == 0.02 and good["size_bytes"] == 64 * 1024**2
    assert good["created"] == "2026-11-23T06:38:38Z" and good["created_epoch"] == 1795415918
    assert good["origin_size_bytes"] == 512 * 1024**2
    plain = [r for r in rows if not ls.is_snapshot(r)]
    assert len(plain) == 7 and not any(ls.is_invalid(r) for r in plain)
    # the invalid one is recognised by its report field alone, too
    assert ls.is_invalid(dict(next(r for r in rows if r["lv_name"].startswith("cap_mongodb")), lv_attr="swi-a-s---"))
    (vg,) = ls.parse_report(_lab_fixture("vgs_vg_jts_lab.json"), "vg")
    assert vg["vg_free_count"] == "470" and vg["vg_extent_size"] == "4194304"
