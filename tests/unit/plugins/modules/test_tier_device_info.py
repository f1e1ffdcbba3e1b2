"""Tests for the tier_device_info module shell: the tools it runs, its result, check mode, failure."""

from __future__ import annotations

from lvm_fake import vg_not_found

from ansible_collections.jts.tiered_storage.plugins.modules import tier_device_info


def test_without_a_vg_only_wipefs_runs_and_check_mode_reads_the_same(run_module, tmp_path):
    device = tmp_path / "sata"
    device.write_bytes(b"\0" * 4096)
    result = run_module(
        tier_device_info, {"device": str(device)}, commands=lambda cmd, **kw: (0, "", ""), check_mode=True
    )
    assert result["changed"] is False
    assert result.commands == [["/usr/bin/wipefs", "--json", str(device)]]
    assert result["device"]["size"] == 4096 and result["nonzero"] == {}


def test_with_a_vg_the_lvm_reports_run_in_the_c_locale(run_module, tmp_path):
    device = tmp_path / "nvme"
    device.write_bytes(b"\0" * 4096)
    seen = []

    def tools(cmd, **kw):
        seen.append(kw.get("environ_update"))
        if cmd[0].endswith("wipefs"):
            return 0, "", ""
        return (5, "", "  Failed to find physical volume.\n") if cmd[0].endswith("pvs") else vg_not_found("vg_jts")

    result = run_module(tier_device_info, {"device": str(device), "vg": "vg_jts", "volumes": ["pg"]}, commands=tools)
    assert [c[0] for c in result.commands] == ["/usr/bin/wipefs", "/usr/bin/pvs", "/usr/bin/vgs"]  # no VG: no lvs
    assert all(env == {"LC_ALL": "C", "LANG": "C"} for env in seen)
    assert result["vg"] is None and result["lvs"] == {}
    assert result["device"]["pvs_error"] == "Failed to find physical volume."


def test_a_vgs_that_fails_otherwise_fails_the_task(run_module, tmp_path):
    device = tmp_path / "nvme"
    device.write_bytes(b"\0" * 4096)
    answers = [(0, "", ""), (5, "", ""), (5, "", "  Unable to obtain global lock.\n")]
    result = run_module(tier_device_info, {"device": str(device), "vg": "vg_jts"}, commands=answers)
    assert result["failed"] is True and "vgs failed (rc 5): Unable to obtain global lock." in result["msg"]


def test_a_failed_read_fails_the_task(run_module, tmp_path):
    device = tmp_path / "nvme"
    device.write_bytes(b"\0")
    result = run_module(tier_device_info, {"device": str(device)}, commands=[(2, "", "wipefs: boom")])
    assert result["failed"] is True and "wipefs failed (rc 2): wipefs: boom" in result["msg"]


def test_mount_points_are_read_even_for_a_missing_device(run_module, tmp_path):
    point = tmp_path / "pg"
    point.mkdir()
    (point / "PG_VERSION").write_text("15")
    params = {"device": str(tmp_path / "nvme"), "mount_points": [{"path": str(point), "device": "/dev/vg/pg"}]}
    result = run_module(tier_device_info, params, commands=[])
    assert result["device"]["exists"] is False
    state = result["mount_points"][str(point)]
    assert state["mounted"] is False and state["entries"] == 1 and state["names"] == ["PG_VERSION"]
