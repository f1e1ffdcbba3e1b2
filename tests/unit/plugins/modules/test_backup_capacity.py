"""Tests for jts.tiered_storage.backup_capacity and its estimate (_backup_capacity): real trees on temp dirs."""

from __future__ import annotations

import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _backup_capacity as bc
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.modules import backup_capacity

# --------------------------------------------------------------------------- capacity


def test_estimate_counts_the_tar_stream_without_following_symlinks(tmp_path):
    src = tmp_path / "snap"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a").write_bytes(b"x" * 1000)
    (src / "b").write_bytes(b"")
    os.symlink("/usr", src / "link")
    with open(src / "sparse", "wb") as handle:
        handle.truncate(64 << 20)
    estimate, tar_bytes, entries = bc.estimate_bytes(str(src))
    sparse_blocks = os.stat(src / "sparse").st_blocks * 512
    assert entries == 5
    assert tar_bytes == bc.TAR_END + 5 * 512 + 1024 + sparse_blocks
    assert estimate == tar_bytes + tar_bytes // 256 + bc.ZSTD_FRAME
    half, _, _ = bc.estimate_bytes(str(src), 0.5)
    assert half == int(tar_bytes * 0.5) + tar_bytes // 256 + bc.ZSTD_FRAME


def test_estimate_is_above_what_tar_and_zstd_write(tmp_path):
    import shutil
    import subprocess

    if not (shutil.which("tar") and shutil.which("zstd")):
        pytest.skip("needs tar and zstd")
    src = tmp_path / "snap"
    src.mkdir()
    for i in range(20):
        (src / ("f%d" % i)).write_bytes(os.urandom(3000 + i * 777))
    out = tmp_path / "a.tar.zst"
    with open(out, "wb") as sink:
        tar = subprocess.Popen(["tar", "--create", "--file=-", "--sparse", "-C", str(src), "."], stdout=subprocess.PIPE)
        subprocess.run(["zstd", "-q", "-3", "-c"], stdin=tar.stdout, stdout=sink, check=True)
        tar.stdout.close()
        assert tar.wait() == 0
    assert bc.estimate_bytes(str(src))[0] >= out.stat().st_size


def usage(total_blocks, free_blocks, avail_blocks=None, frsize=1024):
    return {
        "f_frsize": frsize,
        "f_blocks": total_blocks,
        "f_bfree": free_blocks,
        "f_bavail": free_blocks if avail_blocks is None else avail_blocks,
    }


def test_capacity_adds_the_accepted_estimates_in_order():
    # 100 MiB usable, 80 MiB used; 90 % critical leaves < 10 MiB
    checks = bc.capacity(usage(102400, 20480), [("a", 6 << 20), ("b", 5 << 20), ("c", 3 << 20)], 90)
    assert [c["fits"] for c in checks] == [True, False, True]
    assert checks[1]["used_bytes"] == (80 << 20) + (6 << 20) and checks[1]["percent_after"] == 91.0
    assert checks[2]["percent_after"] == 89.0


def test_capacity_counts_as_df_and_at_the_threshold_refuses():
    # reserved blocks: used / (used + avail)
    checks = bc.capacity(usage(1000, 200, 100), [("a", 0), ("b", 1)], 88.89)
    assert checks[0]["fits"] and checks[0]["percent_after"] == pytest.approx(88.89, abs=0.01)
    assert not bc.capacity(usage(100, 10), [("a", 0)], 90)[0]["fits"]
    assert not bc.capacity(usage(0, 0), [("a", 0)], 90)[0]["fits"]


def test_capacity_module_refuses_naming_the_lv_figures_and_variable(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(backup_capacity, "statvfs_with_timeout", lambda path, timeout: usage(102400, 20480))
    monkeypatch.setattr(
        backup_capacity,
        "estimate_bytes",
        lambda path, ratio: ({"/run/s/postgres": 6 << 20, "/run/s/mongodb": 20 << 20}[path], 1, 1),
    )
    result = run_module(
        backup_capacity,
        {
            "path": str(tmp_path),
            "source_dir": "/run/s",
            "names": ["postgres", "mongodb"],
            "critical": 90,
            "threshold_name": "lifecycle_backup_warm_critical",
        },
    )
    assert result["fits"] == ["postgres"] and not result["changed"]
    (refused,) = result["refused"]
    assert refused["name"] == "mongodb" and refused["estimate_bytes"] == 20 << 20
    assert refused["msg"].startswith("mongodb: archive refused, nothing written")
    assert "86.0 MiB of 100.0 MiB usable" in refused["msg"] and "20.0 MiB" in refused["msg"]
    assert "106.0%" in refused["msg"] and "90% (lifecycle_backup_warm_critical)" in refused["msg"]


def test_capacity_module_measures_for_real(run_module, tmp_path):
    src = tmp_path / "snap"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 4096)
    result = run_module(
        backup_capacity, {"path": str(tmp_path), "source_dir": str(tmp_path), "names": ["snap"], "critical": 100}
    )
    assert result["checks"][0]["tar_bytes"] == bc.TAR_END + 512 + 4096 and result["checks"][0]["entries"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        ({"critical": 0}, "critical must lie in 0..100"),
        ({"critical": 101}, "critical must lie in 0..100"),
        ({"estimate_ratio": 0}, "estimate_ratio must lie in 0..2"),
        ({"path": "/nonexistent/jts"}, "/nonexistent/jts: No such file or directory; no archive checked"),
        ({"source_dir": "/nonexistent", "names": ["pg"]}, "pg: cannot measure /nonexistent/pg"),
        ({"names": ["../etc"]}, "names: '../etc' is not one directory name"),
    ],
)
def test_capacity_module_errors(run_module, tmp_path, args, message):
    params = {"path": str(tmp_path), "source_dir": str(tmp_path), "names": [], "critical": 90}
    params.update(args)
    result = run_module(backup_capacity, params)
    assert result["failed"] and message in result["msg"]


def test_capacity_module_with_a_tier_that_does_not_answer(run_module, monkeypatch, tmp_path):
    def stalled(path, timeout):
        raise ProbeTimeout("x")

    monkeypatch.setattr(backup_capacity, "statvfs_with_timeout", stalled)
    result = run_module(
        backup_capacity, {"path": str(tmp_path), "source_dir": str(tmp_path), "names": [], "critical": 90}
    )
    assert result["failed"] and "did not answer within 10s; no archive checked" in result["msg"]
