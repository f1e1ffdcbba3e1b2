"""Tests for _device_info: what a tier's device holds, with the tools' output given and files for devices."""

from __future__ import annotations

import json

import pytest
from lvm_fake import report, vg_not_found

from ansible_collections.jts.tiered_storage.plugins.module_utils import _device_info as di

MIB = 1 << 20
TOOLS = {"wipefs": "/sbin/wipefs", "pvs": "/sbin/pvs", "vgs": "/sbin/vgs", "lvs": "/sbin/lvs"}


def wipefs_json(*sigs):
    return json.dumps({"signatures": [dict(zip(("device", "type", "label"), s), offset="0x0", uuid="u") for s in sigs]})


def blank(path, size):
    with open(path, "wb") as handle:
        handle.truncate(size)
    return str(path)


class Tools:
    """Answers each tool by name; records the argument lists."""

    def __init__(self, **answers):
        self.answers = {"wipefs": (0, "", ""), "pvs": (5, "", "  Failed to find physical volume\n")}
        self.answers.update({"vgs": vg_not_found("vg_jts"), "lvs": (5, "", "")})
        self.answers.update(answers)
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        answer = self.answers[argv[0].rsplit("/", 1)[1]]
        return answer(argv) if callable(answer) else answer


def test_sample_offsets_are_inside_the_device_and_spread():
    size = 1024 * MIB
    offsets = di.sample_offsets(size)
    assert offsets[0] == 0 and offsets[-1] == size - MIB
    assert 64 * MIB in offsets and len(offsets) == 10
    assert all(off % 4096 == 0 for off in offsets)
    assert di.sample_offsets(0) == []
    small = di.sample_offsets(512 * 1024)  # smaller than a MiB: one sample of the whole device
    assert small == [0]


def test_nonzero_offsets_finds_data_where_wipefs_sees_nothing(tmp_path):
    path = blank(tmp_path / "disk", 256 * MIB)
    assert di.nonzero_offsets(path, 256 * MIB) == []
    with open(path, "r+b") as handle:
        handle.seek(64 * MIB + 4000)
        handle.write(b"\x01")
        handle.seek(256 * MIB - 1)
        handle.write(b"\xff")
    assert di.nonzero_offsets(path, 256 * MIB) == [64 * MIB, 255 * MIB]


def test_a_device_shorter_than_its_size_is_an_error(tmp_path):
    path = blank(tmp_path / "disk", 2 * MIB)
    with pytest.raises(di.DeviceInfoError, match="ended at"):
        di.nonzero_offsets(path, 128 * MIB)


def test_parse_wipefs_and_types_by_device():
    assert di.parse_wipefs("") == []
    sigs = di.parse_wipefs(wipefs_json(("pg", "ext4", None), ("kafka", "xfs", None), ("kafka", "dos", None)))
    assert di.types_by_device(sigs) == {"pg": ["ext4"], "kafka": ["xfs", "dos"]}
    assert di.types_by_device([{"device": "a"}]) == {"a": ["unknown"]}
    with pytest.raises(di.DeviceInfoError, match="JSON"):
        di.parse_wipefs("wipefs: error")


def test_a_missing_device_is_reported_and_nothing_is_run(tmp_path):
    tools = Tools()
    info = di.DeviceReader(tools, TOOLS).read(str(tmp_path / "nope"), "vg_jts", ["pg"])
    assert info == {"device": {"path": str(tmp_path / "nope"), "exists": False}}
    assert tools.calls == []


def test_a_device_without_lvm_is_sampled_only_when_wipefs_finds_nothing(tmp_path):
    path = blank(tmp_path / "sata", 128 * MIB)
    with open(path, "r+b") as handle:
        handle.write(b"data")
    info = di.DeviceReader(Tools(), TOOLS).read(path)
    assert info["device"]["signatures"] == [] and info["device"]["size"] == 128 * MIB
    assert info["nonzero"] == {path: [0]}
    assert info["vg"] is None and info["lvs"] == {}
    signed = di.DeviceReader(Tools(wipefs=(0, wipefs_json(("sata", "btrfs", "jts-warm")), "")), TOOLS).read(path)
    assert signed["nonzero"] == {} and signed["device"]["signatures"][0]["label"] == "jts-warm"


def test_a_failing_wipefs_is_an_error(tmp_path):
    path = blank(tmp_path / "sata", MIB)
    with pytest.raises(di.DeviceInfoError, match=r"wipefs failed \(rc 1\): no access") as caught:
        di.DeviceReader(Tools(wipefs=(1, "", "no access\n")), TOOLS).read(path)
    assert caught.value.details["rc"] == 1


def lvm_tools(vg="vg_jts", lvs=None, pv_vg="vg_jts", lv_sigs=""):
    lvs = lvs if lvs is not None else {}
    rows = [{"lv_name": n, "lv_size": str(s), "lv_attr": "-wi-ao----", "origin": ""} for n, s in lvs.items()]
    rows.append({"lv_name": "jts_snap_pg_1", "lv_size": str(MIB), "lv_attr": "swi-a-s---", "origin": "pg"})
    vg_row = {"vg_name": vg, "vg_extent_size": str(4 * MIB), "vg_extent_count": "60", "vg_free_count": "20"}

    def wipefs(argv):
        return (
            (0, lv_sigs, "")
            if len(argv) > 3 or "/lv/" in argv[-1]
            else (0, wipefs_json(("nvme", "LVM2_member", None)), "")
        )

    return Tools(
        wipefs=wipefs,
        pvs=report("pv", [{"pv_name": "/dev/x", "vg_name": pv_vg}]),
        vgs=report("vg", [vg_row]),
        lvs=report("lv", rows),
    )


def test_a_pv_of_the_vg_with_lvs_reads_the_listed_ones_and_samples_those_without_a_signature(tmp_path):
    device = blank(tmp_path / "nvme", 256 * MIB)
    (tmp_path / "lv" / "vg_jts").mkdir(parents=True)
    blank(tmp_path / "lv" / "vg_jts" / "pg", 64 * MIB)
    kafka = blank(tmp_path / "lv" / "vg_jts" / "kafka", 64 * MIB)
    with open(kafka, "r+b") as handle:
        handle.write(b"raw")
    tools = lvm_tools(lvs={"pg": 64 * MIB, "kafka": 64 * MIB, "other": MIB}, lv_sigs=wipefs_json(("pg", "ext4", None)))
    info = di.DeviceReader(tools, TOOLS, dev_dir=str(tmp_path / "lv")).read(device, "vg_jts", ["pg", "kafka", "new"])

    assert info["device"]["vg"] == "vg_jts" and info["device"]["pvs_rc"] == 0 and info["device"]["pvs_error"] == ""
    assert info["vg"] == {"vg_extent_size": 4 * MIB, "vg_extent_count": 60, "vg_free_count": 20}
    assert info["lvs"] == {"pg": 64 * MIB, "kafka": 64 * MIB, "other": MIB}  # the snapshot is left out
    assert info["lv_signatures"] == {"pg": ["ext4"]}
    assert info["nonzero"] == {kafka: [0]}  # the PV of the VG is not sampled, "new" does not exist
    wipefs_lvs = [c for c in tools.calls if c[0].endswith("wipefs") and len(c) > 3]
    assert wipefs_lvs == [["/sbin/wipefs", "--json", str(tmp_path / "lv" / "vg_jts" / "pg"), kafka]]
    assert tools.calls[1][:3] == ["/sbin/pvs", "--reportformat", "json"] and tools.calls[1][-1] == device


def test_a_device_pvs_cannot_read_and_no_vg(tmp_path):
    device = blank(tmp_path / "nvme", 128 * MIB)
    tools = Tools(
        wipefs=(0, wipefs_json(("nvme", "LVM2_member", None)), ""),
        pvs=(5, "", "  Device /dev/x excluded by a filter.\n"),
    )
    info = di.DeviceReader(tools, TOOLS).read(device, "vg_jts", ["pg"])
    assert info["device"]["vg"] == "" and info["device"]["pvs_rc"] == 5
    assert info["device"]["pvs_error"] == "Device /dev/x excluded by a filter."
    assert info["vg"] is None and info["lvs"] == {} and info["nonzero"] == {}


def test_a_blank_device_that_is_no_pv_is_sampled(tmp_path):
    device = blank(tmp_path / "nvme", 128 * MIB)
    with open(device, "r+b") as handle:
        handle.seek(127 * MIB)
        handle.write(b"x")
    info = di.DeviceReader(Tools(), TOOLS).read(device, "vg_jts", [])
    assert info["nonzero"] == {device: [127 * MIB]}


def test_a_missing_vg_is_no_vg_and_its_lvs_are_not_listed(tmp_path):
    device = blank(tmp_path / "nvme", 128 * MIB)
    tools = Tools()
    info = di.DeviceReader(tools, TOOLS).read(device, "vg_jts", ["pg"])
    assert info["vg"] is None and info["lvs"] == {}
    assert not [c for c in tools.calls if c[0].endswith("/lvs")]


@pytest.mark.parametrize(
    "answers, tool",
    [
        ({"vgs": (5, "", "  Unable to obtain global lock.\n")}, "vgs"),
        ({"vgs": (5, "", '  Volume group "vg_other" not found\n')}, "vgs"),
        ({"vgs": (3, "", "")}, "vgs"),
        ({"lvs": (5, "", "  Couldn't read volume group metadata.\n")}, "lvs"),
        # the not-found line next to another one (a lock warning) is not a plain "absent"
        ({"vgs": (5, "", '  Unable to obtain global lock.\n  Volume group "vg_jts" not found\n')}, "vgs"),
    ],
)
def test_an_lvm_report_that_fails_for_another_reason_is_an_error_never_an_empty_vg(tmp_path, answers, tool):
    """A VG whose LVs cannot be listed must not read as a VG without LVs: those would go unchecked."""
    device = blank(tmp_path / "nvme", 128 * MIB)
    tools = lvm_tools(lvs={"pg": 64 * MIB})
    tools.answers.update(answers)
    with pytest.raises(
        di.DeviceInfoError, match=r"^%s failed \(rc \d\): .*the volume group's state is unknown" % tool
    ) as caught:
        di.DeviceReader(tools, TOOLS).read(device, "vg_jts", ["pg"])
    assert caught.value.details["rc"] == answers[tool][0]


@pytest.mark.parametrize(
    "answers, message",
    [
        ({"vgs": (0, "{}", "")}, "vgs reported no row for vg_jts"),
        ({"vgs": report("vg", [{"vg_name": "vg_other"}])}, "no row for vg_jts"),
        ({"lvs": report("lv", [{"lv_name": "pg", "lv_size": "64.00m"}])}, "cannot read"),
    ],
)
def test_an_lvm_report_that_succeeds_without_the_vg_or_with_odd_sizes_is_an_error(tmp_path, answers, message):
    """rc 0 says the VG is there: a report that does not show it is unknown, not absent (found by review)."""
    device = blank(tmp_path / "nvme", 128 * MIB)
    tools = lvm_tools(lvs={"pg": 64 * MIB})
    tools.answers.update(answers)
    with pytest.raises(di.DeviceInfoError, match=message):
        di.DeviceReader(tools, TOOLS).read(device, "vg_jts", ["pg"])
