"""One snapshot row described (module_utils/_lvm_snapshot_rows.py), on rows and a report captured on the lab VM."""

from __future__ import annotations

from pathlib import Path

from lvm_fake import SNAPSHOT_ROW as ROW

from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import is_invalid, is_snapshot, parse_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_rows import iso8601, snapshot_info


def test_iso8601():
    assert iso8601(1795311000) == "2026-11-22T01:30:00Z"
    assert iso8601(None) is None


def test_info_of_a_row_with_missing_values():
    info = snapshot_info(dict(ROW, lv_size="", data_percent="", lv_time=""))
    assert (info["size_bytes"], info["data_percent"], info["created"], info["created_epoch"]) == (0, None, None, None)
    assert "age_seconds" not in info and "managed" not in info


def _lab_fixture(name):

    return (Path(__file__).parents[1] / "modules" / "fixtures" / "lvm_snapshot" / name).read_text()


def test_report_captured_on_the_lab_vm():
    """lvs and vgs output of LVM 2.03.16 on the lab VM: an 8 MiB snapshot of mongodb filled until invalid
    (attr swi-I-s---, lv_snapshot_invalid 'snapshot invalid'), a valid one of postgres, plain LVs
    ('unknown')."""
    rows = parse_report(_lab_fixture("lvs_vg_jts_lab.json"), "lv")
    snaps = {r["lv_name"]: snapshot_info(r, prefix="cap_") for r in rows if is_snapshot(r)}
    assert sorted(snaps) == ["cap_mongodb_20261123T000000Z", "cap_postgres_20261123T000000Z"]
    bad, good = snaps["cap_mongodb_20261123T000000Z"], snaps["cap_postgres_20261123T000000Z"]
    assert bad["valid"] is False and bad["data_percent"] == 100.0 and bad["origin"] == "mongodb"
    assert good["valid"] is True and good["data_percent"] == 0.02 and good["size_bytes"] == 64 * 1024**2
    assert good["created"] == "2026-11-23T06:38:38Z" and good["created_epoch"] == 1795415918
    assert good["origin_size_bytes"] == 512 * 1024**2
    plain = [r for r in rows if not is_snapshot(r)]
    assert len(plain) == 7 and not any(is_invalid(r) for r in plain)
    # the invalid one is recognised by its report field alone, too
    assert is_invalid(dict(next(r for r in rows if r["lv_name"].startswith("cap_mongodb")), lv_attr="swi-a-s---"))
    (vg,) = parse_report(_lab_fixture("vgs_vg_jts_lab.json"), "vg")
    assert vg["vg_free_count"] == "470" and vg["vg_extent_size"] == "4194304"
