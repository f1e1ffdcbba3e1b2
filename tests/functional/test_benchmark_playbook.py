"""playbooks/benchmark.yml run for real against localhost: the tier variables point at small
loop-mounted filesystems (ext4 for two hot LVs, btrfs for warm) and a tmpfs for the NAS, with tiny
sizes and runtimes.

fio is the distribution's (/usr/bin/fio), reached through a wrapper first in PATH that logs each
call (so a check-mode run can be shown to run nothing) and, for the interruption tests, adds
``--time_based`` so that fio is still running when the test kills the run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
FIO = shutil.which("fio")
WRAPPER = """#!/bin/sh
echo "$*" >> "{log}"
exec {fio} $JTS_TEST_FIO_EXTRA "$@"
"""

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, mounts)"),
    pytest.mark.skipif(FIO is None, reason="fio is not installed (apt-get install fio)"),
    pytest.mark.skipif(shutil.which("mkfs.btrfs") is None, reason="btrfs-progs is not installed"),
]


def _mount_image(image, size, mkfs, mountpoint):
    with open(image, "wb") as handle:
        handle.truncate(size)
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    mountpoint.mkdir(parents=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)


@pytest.fixture
def tiers(tmp_path):
    """Two ext4 hot mounts, a btrfs warm mount, a tmpfs NAS with the jts/ tree; unmounted after."""
    mnt = tmp_path / "mnt"
    mounts = []
    try:
        for name in ("pg", "redis"):
            _mount_image(tmp_path / (name + ".img"), 64 << 20, ["mkfs.ext4", "-q", "-F"], mnt / name)
            mounts.append(mnt / name)
        _mount_image(tmp_path / "warm.img", 160 << 20, ["mkfs.btrfs", "-q", "-f"], mnt / "warm")
        mounts.append(mnt / "warm")
        (mnt / "nas").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt / "nas")], check=True)
        mounts.append(mnt / "nas")
        (mnt / "nas" / "jts").mkdir()
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "fio").write_text(WRAPPER.format(log=tmp_path / "fio.log", fio=FIO))
        (bindir / "fio").chmod(0o755)
        yield tmp_path
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)


def variables(tmp, **extra):
    mnt = tmp / "mnt"
    values = {
        "benchmark_hosts": "localhost",
        "ansible_python_interpreter": str(BIN / "python"),
        "hot_tier_volumes": [
            {"name": "postgres", "mount": str(mnt / "pg"), "fstype": "ext4"},
            {"name": "redis", "mount": str(mnt / "redis"), "fstype": "ext4"},
        ],
        "warm_tier_mount": str(mnt / "warm"),
        "cold_tier_mount": str(mnt / "nas"),
        "benchmark_seq_size": "8M",
        "benchmark_rand_size": "8M",
        "benchmark_runtime": 2,
        "benchmark_timeout": 60,
        "benchmark_state_dir": str(tmp / "state"),
        "benchmark_textfile": str(tmp / "prom" / "jts_benchmark.prom"),
        "benchmark_lock_dir": str(tmp / "lock"),
    }
    (tmp / "prom").mkdir(exist_ok=True)
    values.update(extra)
    return values


def command(tmp, extra_vars, check=False):
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(extra_vars)]
    cmd.append(str(ROOT / "playbooks" / "benchmark.yml"))
    if check:
        cmd.append("--check")
    return cmd


def environment(tmp, fio_extra=""):
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH="%s:%s" % (tmp / "bin", os.environ["PATH"]),
        JTS_TEST_FIO_EXTRA=fio_extra,
    )


def run(tmp, check=False, **extra):
    return subprocess.run(
        command(tmp, variables(tmp, **extra), check),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(tmp),
        timeout=600,
    )


def bench_files(tmp):
    """Every test file (ours or a leftover) in the mounts."""
    return sorted(str(p) for p in (tmp / "mnt").rglob(".jts-benchmark-*"))


def saved(tmp):
    return sorted((tmp / "state").glob("*.json")) if (tmp / "state").exists() else []


def fio_calls(tmp):
    log = tmp / "fio.log"
    return log.read_text().splitlines() if log.exists() else []


def test_two_runs_table_json_metrics_baseline(tiers):
    first = run(tiers)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "tier  target    mount" in out
    for line in ("hot   postgres", "hot   redis", "warm  warm", "cold  nas"):
        assert line in out
    assert out.count(" ok\n") + out.count(" ok\r\n") >= 7 or out.count("  ok") >= 7, out
    assert "this run is the baseline" in out
    assert bench_files(tiers) == []
    assert len(fio_calls(tiers)) == 7  # 2 x (write, random read) + write + NAS write and read

    [result_file] = saved(tiers)
    run1 = json.loads(result_file.read_text())
    by_test = {(r["name"], r["test"]): r for r in run1["results"]}
    assert {r["status"] for r in run1["results"]} == {"ok"}
    rand = by_test[("postgres", "rand_read")]
    assert rand["tool"] == "fio" and rand["fstype"] == "ext4"
    assert rand["figures"]["iops"] > 0 and rand["figures"]["latency_p99_seconds"] > 0
    assert by_test[("warm", "seq_write")]["fstype"] == "btrfs"
    assert by_test[("nas", "seq_read")]["directory"] == str(tiers / "mnt" / "nas" / "jts")

    metrics = (tiers / "prom" / "jts_benchmark.prom").read_text()
    assert 'jts_benchmark_throughput_bytes_per_second{tier="hot",target="postgres"' in metrics
    assert 'jts_benchmark_latency_seconds{tier="hot",target="postgres",' in metrics
    assert 'percentile="99.9"' in metrics
    assert list((tiers / "prom").iterdir()) == [tiers / "prom" / "jts_benchmark.prom"], "no temporary file left"
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    second = run(tiers)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "this run is the baseline" not in second.stdout
    assert "baseline %s" % run1["run_id"] in second.stdout
    assert len(saved(tiers)) == 2
    run2 = json.loads(saved(tiers)[-1].read_text())
    assert {c["baseline_run"] for c in run2["comparisons"].values()} == {run1["run_id"]}
    assert "jts_benchmark_baseline_change_ratio{" in (tiers / "prom" / "jts_benchmark.prom").read_text()
    assert bench_files(tiers) == []

    # Other settings: not compared with the first run, a new baseline for them.
    third = run(tiers, benchmark_seq_size="4M", benchmark_rand_size="4M")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "this run is the baseline" in third.stdout


def test_check_mode_runs_nothing(tiers):
    result = run(tiers, check=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--rw=randread --bs=4096 --size=8388608 --ioengine=libaio --iodepth=32 --direct=1" in result.stdout
    assert str(tiers / "mnt" / "pg" / ".jts-benchmark-") in result.stdout
    assert "planned" in result.stdout
    assert fio_calls(tiers) == []
    assert bench_files(tiers) == []
    assert saved(tiers) == []
    assert not (tiers / "prom" / "jts_benchmark.prom").exists()


def test_refuses_a_full_mount_and_an_unmounted_nas(tiers):
    pg = tiers / "mnt" / "pg"
    subprocess.run(["fallocate", "-l", "50M", str(pg / "ballast")], check=True)
    subprocess.run(["umount", str(tiers / "mnt" / "nas")], check=True)
    (tiers / "mnt" / "nas" / "jts").mkdir()  # the bare directory under the mount point
    result = run(tiers)
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "%s (hot tier, postgres) is" % pg in text
    assert "above its warning threshold of 80 %" in text and "benchmark_warning" in text
    assert "%s (cold tier, nas) is not a mount point" % (tiers / "mnt" / "nas") in text
    # The others are still measured (redis: write and random read, warm: write) and saved.
    assert len(fio_calls(tiers)) == 3, fio_calls(tiers)
    [result_file] = saved(tiers)
    status = {(r["name"], r["test"]): r["status"] for r in json.loads(result_file.read_text())["results"]}
    assert status == {
        ("postgres", "seq_write"): "refused",
        ("postgres", "rand_read"): "refused",
        ("redis", "seq_write"): "ok",
        ("redis", "rand_read"): "ok",
        ("warm", "seq_write"): "ok",
        ("nas", "seq_write"): "refused",
        ("nas", "seq_read"): "refused",
    }
    assert "tier  target" in result.stdout, "the table is shown before the play fails"
    assert bench_files(tiers) == [] and list((tiers / "mnt" / "nas" / "jts").iterdir()) == []

    # No room for the test file on a mount that is below the threshold now.
    (pg / "ballast").unlink()
    result = run(tiers, benchmark_seq_size="50M", benchmark_tiers=["hot"])
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "no room for the 50.0 MiB test file" in text and "benchmark_seq_size" in text


@pytest.fixture
def started():
    """Start a playbook run in its own process group; the group is killed if the test leaves it running."""
    procs = []

    def start(tmp, fio_extra, **extra):
        proc = _start(tmp, fio_extra, **extra)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            # SIGTERM: ansible-playbook stops its workers (they run in sessions of their own).
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _start(tmp, fio_extra, **extra):
    return subprocess.Popen(
        command(tmp, variables(tmp, **extra)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=environment(tmp, fio_extra),
        start_new_session=True,
    )


def _fio_of(tmp):
    """The fio processes that hold a file below ``tmp`` (this test's, not another run's)."""
    found = []
    for pid in subprocess.run(["pgrep", "-x", "fio"], capture_output=True, text=True).stdout.split():
        try:
            links = [os.readlink(entry) for entry in Path("/proc/%s/fd" % pid).iterdir()]
        except OSError:
            continue
        if any(link.startswith(str(tmp)) for link in links):
            found.append(int(pid))
    return found


def _wait_for_fio(tmp, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _fio_of(tmp)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("fio did not start")


def _module_pid(fio_pid):
    """The python process of the module that started fio (its parent)."""
    return int(Path("/proc/%d/stat" % fio_pid).read_text().rsplit(")", 1)[1].split()[1])


def _gone(pids, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path("/proc/%d" % pid).exists() for pid in pids):
            return True
        time.sleep(0.2)
    return False


def test_sigterm_mid_fio_removes_the_test_file_then_a_rerun_works(tiers, started):
    proc = started(tiers, "--time_based", benchmark_runtime=30)
    fio = _wait_for_fio(tiers)
    module = _module_pid(fio[0])
    os.kill(proc.pid, signal.SIGTERM)  # ansible-playbook
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert _gone(fio), "fio must not outlive the run"
    # ansible-playbook passes the signal to its worker and exits; the module, given the signal by
    # the worker, may still be removing its test file after fio is gone
    assert _gone([module]), "the module must end after its clean-up"
    assert bench_files(tiers) == [], out
    assert saved(tiers) == [], "an interrupted run saves nothing"

    rerun = run(tiers)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "this run is the baseline" in rerun.stdout
    assert bench_files(tiers) == []


def test_killed_module_takes_fio_along_and_the_file_goes(tiers, started):
    proc = started(tiers, "--time_based", benchmark_runtime=30)
    fio = _wait_for_fio(tiers)
    module = _module_pid(fio[0])
    assert "AnsiballZ_storage_benchmark" in Path("/proc/%d/cmdline" % module).read_text()
    leftover = bench_files(tiers)
    assert leftover
    os.kill(module, signal.SIGKILL)  # no clean-up of its own: fio dies with it, the file stays
    assert _gone(fio), "fio must die with the module (PR_SET_PDEATHSIG)"
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0  # the task failed; the block's always removed the file
    assert "Remove test files that a failed or killed run left" in out
    assert bench_files(tiers) == [], out


def test_next_run_removes_leftovers_and_leaves_foreign_names_alone(tiers):
    warm = tiers / "mnt" / "warm"
    stale = warm / ".jts-benchmark-20200101T000000Z-dead00.tmp"
    stale.write_bytes(b"x" * 4096)
    victim = tiers / "victim"
    victim.write_text("keep me")
    planted = tiers / "mnt" / "redis" / ".jts-benchmark-20200101T000000Z-link00.tmp"
    planted.symlink_to(victim)
    nobody = tiers / "mnt" / "pg" / ".jts-benchmark-20200101T000000Z-user00.tmp"
    nobody.write_text("a user's file")
    os.chown(nobody, 65534, 65534)

    result = run(tiers, benchmark_tiers=["hot", "warm"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert not stale.exists()
    assert planted.is_symlink() and victim.read_text() == "keep me"
    assert nobody.read_text() == "a user's file"
    assert bench_files(tiers) == sorted([str(planted), str(nobody)])


def test_dd_where_fio_is_not_used(tiers):
    result = run(tiers, benchmark_tool="dd", benchmark_tiers=["hot", "cold"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert fio_calls(tiers) == []
    [result_file] = saved(tiers)
    rows = {(r["name"], r["test"]): r for r in json.loads(result_file.read_text())["results"]}
    assert rows[("postgres", "seq_write")]["status"] == "ok" and rows[("postgres", "seq_write")]["tool"] == "dd"
    assert rows[("postgres", "seq_write")]["figures"]["bandwidth_bytes_per_second"] > 0
    assert rows[("postgres", "rand_read")]["status"] == "skipped"
    assert rows[("nas", "seq_read")]["status"] == "ok"
    assert "oflag=direct" in " ".join(rows[("postgres", "seq_write")]["command"])
    assert bench_files(tiers) == []
