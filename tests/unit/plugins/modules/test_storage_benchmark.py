"""storage_benchmark with fio replaced by a recorder: test files, check mode, refusals, interruption,
leftovers, saved runs and the baseline. Directories are real (tmp_path); mounts are faked by the
probe unless a test uses the real one."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _benchmark_run as sb
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import is_test_file
from ansible_collections.jts.tiered_storage.plugins.modules import storage_benchmark

FIO_OUT = json.dumps(
    {
        "jobs": [
            {
                "error": 0,
                "read": {
                    "io_bytes": 8 << 20,
                    "bw_bytes": 400_000_000,
                    "iops": 97_656.25,
                    "runtime": 20,
                    "clat_ns": {"mean": 1e5, "percentile": {"50.000000": 80000, "99.000000": 200000}},
                },
                "write": {
                    "io_bytes": 8 << 20,
                    "bw_bytes": 200_000_000,
                    "iops": 190.7,
                    "runtime": 40,
                    "clat_ns": {"mean": 5e6, "percentile": {"50.000000": 5000000, "99.000000": 9000000}},
                },
            }
        ]
    }
)


class Recorder:
    """Stands in for run_tool: records argv, checks the descriptor is the test file, answers like fio."""

    def __init__(self, tmp_path, answer=None):
        self.calls = []
        self.tmp_path = tmp_path
        self.answer = answer

    def __call__(self, argv, fd, timeout):
        assert "--filename=/proc/self/fd/%d" % fd in argv
        target = os.readlink("/proc/self/fd/%d" % fd)
        assert is_test_file(os.path.basename(target)), target
        self.calls.append({"argv": argv, "file": target, "timeout": timeout})
        if self.answer is not None:
            return self.answer(argv, fd)
        return 0, FIO_OUT, "", False


def fake_probe(tmp_path, used_percent=10.0, is_mount=True):
    def probe(mount, directory):
        sb.open_dir_from_root(directory)  # the real walk: a symlink fails here
        total = 1 << 20
        used = int(total * used_percent / 100)
        return {
            "is_mount": is_mount,
            "fstype": "ext4",
            "same_device": True,
            "vfs": {
                "f_bsize": 4096,
                "f_frsize": 4096,
                "f_blocks": total,
                "f_bfree": total - used,
                "f_bavail": total - used,
            },
        }

    return probe


@pytest.fixture
def setup(tmp_path, monkeypatch):
    for name in ("pg", "nas"):
        (tmp_path / name).mkdir()
    recorder = Recorder(tmp_path)
    monkeypatch.setattr(sb, "run_tool", recorder)
    monkeypatch.setattr(sb, "probe_target", fake_probe(tmp_path))
    args = {
        "targets": [
            {"tier": "hot", "name": "postgres", "mount": str(tmp_path / "pg"), "tests": ["rand_read"]},
            {"tier": "cold", "name": "nas", "mount": str(tmp_path / "nas"), "tests": ["seq_write", "seq_read"]},
        ],
        "tool": "fio",
        "seq_size": "8M",
        "rand_size": "8M",
        "runtime": 2,
        "state_dir": str(tmp_path / "state"),
        "textfile": str(tmp_path / "jts_benchmark.prom"),
        "lock_dir": str(tmp_path / "lock"),
    }
    return tmp_path, recorder, args


def files_in(path):
    return sorted(p.name for p in path.iterdir())


def test_check_mode_lists_commands_and_runs_nothing(setup, run_module):
    tmp_path, recorder, args = setup
    result = run_module(storage_benchmark, args, check_mode=True)
    assert recorder.calls == []
    assert files_in(tmp_path / "pg") == [] and files_in(tmp_path / "nas") == []
    assert not (tmp_path / "state").exists() and not (tmp_path / "lock").exists()
    assert not (tmp_path / "jts_benchmark.prom").exists()
    assert [p["test"] for p in result["plan"]] == ["seq_write", "rand_read", "seq_write", "seq_read"]
    shown = " ".join(result["plan"][1]["command"])
    assert "--filename=%s/pg/.jts-benchmark-" % tmp_path in shown and "--rw=randread" in shown
    assert {r["status"] for r in result["results"]} == {"planned"}
    assert "nothing was run" in result["msg"]


def test_a_read_gets_its_write_first_and_reads_what_was_written(setup, run_module):
    _tmp_path, recorder, args = setup
    result = run_module(storage_benchmark, args)
    assert result["problems"] == []
    tests = [(c["file"].rsplit("/", 2)[1], c["argv"][1]) for c in recorder.calls]
    assert tests == [
        ("pg", "--name=jts-seq-write"),
        ("pg", "--name=jts-rand-read"),
        ("nas", "--name=jts-seq-write"),
        ("nas", "--name=jts-seq-read"),
    ]
    assert "--size=%d" % (8 << 20) in recorder.calls[1]["argv"]


def test_test_files_are_gone_and_the_run_is_saved(setup, run_module):
    tmp_path, _recorder, args = setup
    result = run_module(storage_benchmark, args)
    assert files_in(tmp_path / "pg") == [] and files_in(tmp_path / "nas") == []
    [saved] = list((tmp_path / "state").iterdir())
    assert saved.name == result["run_id"] + ".json" and result["result_file"] == str(saved)
    assert (saved.stat().st_mode & 0o777) == 0o600
    run = json.loads(saved.read_text())
    assert [r["status"] for r in run["results"]] == ["ok"] * 4
    assert run["results"][1]["figures"]["iops"] == 97_656.25
    assert result["textfile"] == {"path": str(tmp_path / "jts_benchmark.prom"), "written": True}
    assert "jts_benchmark_iops{" in (tmp_path / "jts_benchmark.prom").read_text()
    assert "this run is the baseline" in result["changes"]


def test_second_run_is_compared_with_the_first(setup, run_module, monkeypatch):
    _tmp_path, recorder, args = setup
    first = run_module(storage_benchmark, args)
    slower = FIO_OUT.replace("400000000", "100000000")
    recorder.answer = lambda argv, fd: (0, slower, "", False)
    second = run_module(storage_benchmark, args)
    comparison = second["comparisons"]["hot/postgres/rand_read"]
    assert comparison["baseline_run"] == first["run_id"]
    [bw] = [c for c in comparison["changes"] if c["figure"] == "bandwidth_bytes_per_second"]
    assert bw["verdict"] == "worse" and bw["change_percent"] == -75.0
    assert any(w.startswith("hot/postgres/rand_read MB/s -75.0 %") for w in second["worse"])
    # Another block size: not comparable, a new baseline.
    third = run_module(storage_benchmark, dict(args, rand_block_size="8k"))
    assert third["comparisons"]["hot/postgres/rand_read"]["baseline_run"] is None
    assert third["comparisons"]["cold/nas/seq_write"]["baseline_run"] == first["run_id"]


def test_a_stop_signal_mid_test_removes_the_file_and_saves_nothing(setup, run_module):
    tmp_path, recorder, args = setup

    def interrupted(argv, fd):
        assert files_in(tmp_path / "pg") != []  # the file exists while fio runs
        raise sb.Interrupted(15)

    recorder.answer = interrupted
    result = run_module(storage_benchmark, args)
    assert result["failed"] and "interrupted by signal 15" in result["msg"]
    assert files_in(tmp_path / "pg") == [] and files_in(tmp_path / "nas") == []
    assert not (tmp_path / "state").exists() or files_in(tmp_path / "state") == []


def test_a_failing_tool_is_reported_and_the_rest_runs(setup, run_module):
    _tmp_path, recorder, args = setup
    recorder.answer = lambda argv, fd: (
        (1, "", "fio: pid=0, err=22/file:filesetup.c:805", False)
        if "--rw=randread" in argv
        else (0, FIO_OUT, "", False)
    )
    result = run_module(storage_benchmark, args)
    assert result["failed"]
    assert result["problems"] == ["hot/postgres rand_read: fio exited 1: fio: pid=0, err=22/file:filesetup.c:805"]
    assert [r["status"] for r in result["results"]] == ["ok", "failed", "ok", "ok"]
    assert "tier  target" in result["table"]


def test_a_timed_out_test_is_reported(setup, run_module):
    _tmp_path, recorder, args = setup
    recorder.answer = lambda argv, fd: (-9, "", "", True)
    result = run_module(storage_benchmark, dict(args, timeout=5))
    assert "killed after timeout=5s" in result["msg"]
    assert recorder.calls[0]["timeout"] == 5


def test_mount_above_warning_is_refused_and_untouched(setup, run_module, monkeypatch):
    tmp_path, recorder, args = setup
    monkeypatch.setattr(sb, "probe_target", fake_probe(tmp_path, used_percent=85.0))
    result = run_module(storage_benchmark, args)
    assert result["failed"] and recorder.calls == []
    assert "%s (hot tier, postgres) is 85.0 %% used" % (tmp_path / "pg") in result["msg"]
    assert "benchmark_warning" in result["msg"]
    assert {r["status"] for r in result["results"]} == {"refused"}
    assert not (tmp_path / "state").exists() or files_in(tmp_path / "state") == []


def test_not_mounted_is_refused(setup, run_module, monkeypatch):
    tmp_path, recorder, args = setup
    monkeypatch.setattr(sb, "probe_target", fake_probe(tmp_path, is_mount=False))
    result = run_module(storage_benchmark, args)
    assert "is not a mount point" in result["msg"] and recorder.calls == []


def test_a_symlinked_directory_is_refused_and_its_target_untouched(setup, run_module):
    tmp_path, recorder, args = setup
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (tmp_path / "nas").rmdir()
    (tmp_path / "nas").symlink_to(elsewhere)
    result = run_module(storage_benchmark, args)
    assert "symlink" in result["msg"] and "(cold tier, nas)" in result["msg"]
    assert files_in(elsewhere) == []
    assert all(not c["file"].startswith(str(elsewhere)) for c in recorder.calls)


def test_leftovers_removed_foreign_names_left_alone(setup, run_module):
    tmp_path, _recorder, args = setup
    stale = tmp_path / "pg" / ".jts-benchmark-20200101T000000Z-dead00.tmp"
    stale.write_text("x")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "nas" / ".jts-benchmark-20200101T000000Z-link00.tmp"
    link.symlink_to(victim)
    other = tmp_path / "pg" / "data.tmp"
    other.write_text("not ours")
    result = run_module(storage_benchmark, args)
    assert result["cleaned"] == [str(stale)] and not stale.exists()
    assert result["left_alone"] == [str(link)] and victim.read_text() == "keep"
    assert other.exists()


def test_cleaned_state_in_check_mode_removes_nothing(setup, run_module):
    tmp_path, _recorder, args = setup
    stale = tmp_path / "pg" / ".jts-benchmark-20200101T000000Z-dead00.tmp"
    stale.write_text("x")
    result = run_module(storage_benchmark, dict(args, state="cleaned"), check_mode=True)
    assert result["cleaned"] == [str(stale)] and stale.exists()
    result = run_module(storage_benchmark, dict(args, state="cleaned"))
    assert result["changed"] and not stale.exists()


def test_a_running_benchmark_holds_the_others_off(setup, run_module):
    tmp_path, recorder, args = setup
    with sb.TreeLock([str(tmp_path / "pg")], "a move", str(tmp_path / "lock")):
        result = run_module(storage_benchmark, args)
    assert result["failed"] and "in use by another run" in result["msg"]
    assert recorder.calls == []


def test_dd_without_fio_skips_random_reads(setup, run_module, monkeypatch):
    _tmp_path, _recorder, args = setup
    dd_out = "8+0 records in\n8+0 records out\n8388608 bytes (8.4 MB, 8.0 MiB) copied, 0.05 s, 168 MB/s\n"

    def dd(argv, fd, timeout):
        assert "/proc/self/fd/%d" % fd in " ".join(argv)
        return 0, "", dd_out, False

    monkeypatch.setattr(sb, "run_tool", dd)
    result = run_module(storage_benchmark, dict(args, tool="dd"))
    statuses = {(r["name"], r["test"]): (r["status"], r["tool"]) for r in result["results"]}
    assert statuses[("postgres", "rand_read")] == ("skipped", "dd")
    assert statuses[("nas", "seq_read")] == ("ok", "dd")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"seq_size": "1x"}, "seq_size"),
        ({"rand_block_size": "1000"}, "multiple of 512"),
        ({"warning": 0}, "warning"),
        ({"textfile": "/tmp/x.txt"}, ".prom"),
        ({"runtime": 0}, "runtime"),
    ],
)
def test_bad_settings(setup, run_module, args, message):
    _tmp, _rec, base = setup
    result = run_module(storage_benchmark, dict(base, **args))
    assert result["failed"] and message in result["msg"]


def test_directory_must_be_below_its_mount(setup, run_module):
    tmp_path, _rec, args = setup
    args["targets"][1]["directory"] = str(tmp_path / "pg")
    result = run_module(storage_benchmark, args)
    assert result["failed"] and "is not below mount" in result["msg"]
