"""LVM reports (module_utils/_lvm.py): argument lists, JSON parsing, row predicates; no LVM needed."""

from __future__ import annotations

import pytest
from lvm_fake import SNAPSHOT_ROW as ROW

from ansible_collections.jts.tiered_storage.plugins.module_utils import _lvm as ls


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


def test_report_argument_lists_are_json_in_bytes_with_a_fixed_time_format():
    fields = "lv_name,vg_name,lv_attr,lv_size,origin,origin_size,data_percent,lv_time,lv_snapshot_invalid"
    head = ["/sbin/lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "--config"]
    tail = ['report {time_format="%Y-%m-%d %T %z"}', "-o", fields, "vg_jts"]
    assert ls.lvs_argv("/sbin/lvs", "vg_jts") == [*head, *tail]
    vgs = ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_free", "vg_jts"]
    assert ls.vgs_argv("vgs", "vg_jts", ("vg_name", "vg_free")) == vgs
    assert ls.pvs_argv("pvs")[-2:] == ["-o", "pv_name,vg_name,pv_size,pv_free"]
    assert ls.pvs_argv("pvs", "/dev/nvme0n1")[-1] == "/dev/nvme0n1"


def test_read_report_raises_with_the_command_and_its_words():
    argv = ls.lvs_argv("lvs", "vg_jts")
    with pytest.raises(ls.LvmError, match=r"^lvs for VG vg_jts failed \(rc 5\): no such VG$") as caught:
        ls.read_report(lambda cmd: (5, "", "  no such VG\n"), argv, "lv", "lvs for VG vg_jts", vg="vg_jts")
    assert caught.value.details == {"rc": 5, "stdout": "", "stderr": "  no such VG\n", "cmd": argv, "vg": "vg_jts"}
    rows = ls.read_report(lambda cmd: (0, '{"report": [{"lv": [{"lv_name": "a"}]}]}', ""), argv, "lv", "lvs")
    assert rows == [{"lv_name": "a"}]


def test_snapshot_error_is_the_lvm_error_and_a_jts_error():
    from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
    from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot import SnapshotError

    assert SnapshotError is ls.LvmError and issubclass(SnapshotError, JtsError)
    with pytest.raises(SnapshotError, match="cannot parse LVM's JSON report"):
        ls.parse_report("not json", "lv")
