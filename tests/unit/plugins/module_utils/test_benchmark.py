"""The storage benchmark's pure parts: command lines, parsers, space, baseline, table, metrics."""

from __future__ import annotations

import json

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _benchmark as b

SETTINGS = {
    "seq_size": 1 << 30,
    "seq_block_size": 1 << 20,
    "rand_size": 500 << 20,
    "rand_block_size": 4096,
    "iodepth": 32,
    "runtime": 30,
}


def fio_json(direction="read", bw=480_000_000, iops=117_187.5):
    side = {
        "io_bytes": 524288000,
        "bw_bytes": bw,
        "iops": iops,
        "runtime": 1092,
        "clat_ns": {
            "mean": 250000.0,
            "percentile": {"50.000000": 79360, "95.000000": 1105920, "99.000000": 2244608, "99.900000": 2801664},
        },
    }
    other = {"io_bytes": 0, "bw_bytes": 0, "iops": 0.0, "runtime": 0, "clat_ns": {"mean": 0.0}}
    job = {"jobname": "jts", "error": 0, "read": other, "write": other}
    job[direction] = side
    return json.dumps({"fio version": "fio-3.33", "jobs": [job]})


def test_fio_command_is_the_specifications_random_read_on_the_open_file():
    argv = b.fio_argv("/usr/bin/fio", "rand_read", 7, SETTINGS, 500 << 20)
    assert argv[:3] == ["/usr/bin/fio", "--name=jts-rand-read", "--filename=/proc/self/fd/7"]
    for arg in ("--rw=randread", "--bs=4096", "--ioengine=libaio", "--iodepth=32", "--direct=1", "--size=524288000"):
        assert arg in argv
    assert "--runtime=30" in argv and "--output-format=json" in argv
    assert "--thread" in argv, "a forked fio job would outlive a kill of fio"


def test_sequential_write_does_not_preallocate_and_flushes():
    argv = b.fio_argv("fio", "seq_write", 3, SETTINGS, 1 << 30)
    assert "--rw=write" in argv and "--bs=1048576" in argv and "--iodepth=1" in argv
    assert "--fallocate=none" in argv and "--end_fsync=1" in argv


def test_dd_does_the_sequential_tests_only():
    assert b.dd_argv("dd", "rand_read", 3, SETTINGS, 1 << 20) is None
    write = b.dd_argv("/bin/dd", "seq_write", 3, SETTINGS, 8 << 20)
    assert write == [
        "/bin/dd",
        "if=/dev/zero",
        "of=/proc/self/fd/3",
        "bs=1048576",
        "count=8",
        "oflag=direct",
        "conv=notrunc,fsync",
    ]
    assert "iflag=direct" in b.dd_argv("/bin/dd", "seq_read", 3, SETTINGS, 8 << 20)


def test_shown_command_names_the_file():
    argv = b.fio_argv("fio", "seq_read", 12, SETTINGS, 1 << 20)
    assert "--filename=/mnt/nas/jts/.jts-benchmark-x.tmp" in b.shown_argv(argv, 12, "/mnt/nas/jts/.jts-benchmark-x.tmp")


@pytest.mark.parametrize(
    ("test", "written", "expected"),
    [
        ("seq_write", None, 1 << 30),
        ("rand_read", None, 500 << 20),
        ("rand_read", 100 << 20, 100 << 20),  # never read holes past what was written
        ("seq_read", (8 << 20) + 5, 8 << 20),  # whole blocks
        ("rand_read", 0, 0),
    ],
)
def test_job_size(test, written, expected):
    assert b.job_size(test, SETTINGS, written) == expected


def test_parse_fio_skips_text_before_the_json():
    figures = b.parse_fio("fio: some warning\n" + fio_json("read"), "read")
    assert figures["bandwidth_bytes_per_second"] == 480_000_000
    assert figures["iops"] == 117_187.5
    assert figures["bytes"] == 524288000
    assert figures["latency_p50_seconds"] == pytest.approx(79.36e-6)
    assert figures["latency_p99_9_seconds"] == pytest.approx(2.801664e-3)
    assert figures["latency_mean_seconds"] == pytest.approx(250e-6)


@pytest.mark.parametrize(
    "text",
    ["", "not json {", json.dumps({"jobs": []}), json.dumps({"jobs": [{"error": 5, "read": {}}]})],
)
def test_parse_fio_refuses_what_is_not_a_result(text):
    with pytest.raises(b.BenchmarkError):
        b.parse_fio(text, "read")


def test_parse_fio_refuses_a_job_that_moved_nothing():
    with pytest.raises(b.BenchmarkError, match="no data"):
        b.parse_fio(fio_json("read"), "write")


@pytest.mark.parametrize(
    ("stderr", "count", "seconds"),
    [
        ("8+0 records in\n8+0 records out\n8388608 bytes (8.4 MB, 8.0 MiB) copied, 0.5 s, 16.8 MB/s\n", 8388608, 0.5),
        ("1+0 records in\n1+0 records out\n512 bytes copied, 2.5e-05 s, 20.5 MB/s\n", 512, 2.5e-05),
    ],
)
def test_parse_dd(stderr, count, seconds):
    figures = b.parse_dd(stderr, 1 << 20)
    assert figures["bytes"] == count and figures["seconds"] == seconds
    assert figures["bandwidth_bytes_per_second"] == pytest.approx(count / seconds)
    assert figures["latency_p99_seconds"] is None


def test_parse_dd_without_summary():
    with pytest.raises(b.BenchmarkError):
        b.parse_dd("dd: failed to open '/proc/self/fd/3': Invalid argument\n", 1 << 20)


TARGET = {"tier": "hot", "name": "postgres", "mount": "/var/lib/postgresql"}


def vfs(total_blocks, free_blocks, avail_blocks, frsize=4096):
    return {
        "f_bsize": frsize,
        "f_frsize": frsize,
        "f_blocks": total_blocks,
        "f_bfree": free_blocks,
        "f_bavail": avail_blocks,
    }


def test_space_refusal_above_warning_names_mount_and_variable():
    reason = b.space_refusal(TARGET, vfs(1000, 150, 150), 4096, 80)
    assert reason.startswith("/var/lib/postgresql (hot tier, postgres) is 85.0 % used")
    assert "benchmark_warning" in reason


def test_space_refusal_when_the_file_would_cross_the_threshold():
    # 50 % used; a file of 40 % of the filesystem takes it to 90 %
    reason = b.space_refusal(TARGET, vfs(1000, 500, 500), 400 * 4096, 80)
    assert "no room for the 1.6 MiB test file" in reason and "90.0 %" in reason
    assert "benchmark_seq_size" in reason


def test_space_refusal_when_the_file_does_not_fit_at_all():
    reason = b.space_refusal(TARGET, vfs(1000, 500, 10), 20 * 4096, 100)
    assert "no room" in reason


def test_space_allows_a_file_that_fits():
    assert b.space_refusal(TARGET, vfs(1000, 500, 500), 100 * 4096, 80) is None


def result(status="ok", bw=100e6, iops=1000.0, p50=1e-3, p99=2e-3, sig=None, name="postgres"):
    return {
        "tier": "hot",
        "name": name,
        "test": "rand_read",
        "status": status,
        "signature": sig or {"tool": "fio", "size": 1},
        "figures": {
            "bandwidth_bytes_per_second": bw,
            "iops": iops,
            "latency_p50_seconds": p50,
            "latency_p99_seconds": p99,
        },
    }


def test_baseline_is_the_first_run_with_the_same_settings():
    history = [
        {"run_id": "r1", "results": [result(sig={"tool": "dd", "size": 1})]},
        {"run_id": "r2", "results": [result(status="failed")]},
        {"run_id": "r3", "results": [result()]},
        {"run_id": "r4", "results": [result(bw=1.0)]},
    ]
    found = b.find_baselines(history, [result(), result(name="redis")])
    assert found["hot/postgres/rand_read"][0]["run_id"] == "r3"
    assert "hot/redis/rand_read" not in found


def test_compare_says_which_direction_is_worse():
    changes = {c["figure"]: c for c in b.compare(result(bw=70e6, iops=1300.0, p50=1.1e-3, p99=3e-3), result(), 20)}
    assert changes["bandwidth_bytes_per_second"]["verdict"] == "worse"  # -30 %, higher is better
    assert changes["iops"]["verdict"] == "better"  # +30 %
    assert changes["latency_p50_seconds"]["verdict"] == ""  # +10 %: within the threshold
    assert changes["latency_p99_seconds"]["verdict"] == "worse"  # +50 %, lower is better
    assert changes["latency_p99_seconds"]["higher_is_better"] is False
    assert changes["bandwidth_bytes_per_second"]["change_percent"] == -30.0


def test_compare_skips_figures_dd_does_not_have():
    now = result(p50=None, p99=None)
    assert [c["figure"] for c in b.compare(now, result(), 20)] == ["bandwidth_bytes_per_second", "iops"]


def test_changes_text():
    comparisons = {
        "hot/postgres/rand_read": {"baseline_run": "r1", "changes": b.compare(result(bw=50e6), result(), 20)},
        "warm/warm/seq_write": {"baseline_run": None, "changes": []},
        "hot/redis/rand_read": {"baseline_run": "r1", "changes": b.compare(result(), result(), 20)},
    }
    text = b.render_changes(comparisons, 20)
    assert (
        "hot/postgres/rand_read MB/s: WORSE than the baseline r1: 100.0 MB/s -> 50.0 MB/s (-50.0 %; higher is better)"
        in text
    )
    assert "warm/warm/seq_write: no earlier run with these settings; this run is the baseline" in text
    assert "hot/redis/rand_read: within 20 % of the baseline r1" in text


def test_table_has_no_trailing_spaces_and_shows_dashes_for_missing_figures():
    rows = [dict(result(), mount="/m", tool="fio"), dict(result(status="refused"), mount="/m", tool="fio", figures={})]
    table = b.render_table(rows)
    assert table.splitlines()[0].startswith("tier  target")
    assert all(line == line.rstrip() for line in table.splitlines())
    assert "100.0" in table.splitlines()[1] and "1.000" in table.splitlines()[1]
    assert table.splitlines()[2].split()[-1] == "refused" and " - " in table.splitlines()[2]


def test_metrics_base_units_labels_escaped_and_worse_flag():
    now = dict(result(bw=50e6), mount='/mnt/we"ird', tool="fio")
    now["figures"]["latency_p99_9_seconds"] = 4e-3
    refused = dict(result(status="refused", name="redis"), mount="/r", tool="fio", figures={})
    comparisons = {"hot/postgres/rand_read": {"baseline_run": "r1", "changes": b.compare(now, result(), 20)}}
    text = b.render_metrics(
        {"results": [now, refused], "started_ts": 1700000000.5, "duration_seconds": 3.25}, comparisons
    )
    labels = 'tier="hot",target="postgres",mount="/mnt/we\\"ird",test="rand_read"'
    assert "jts_benchmark_throughput_bytes_per_second{%s} 50000000.0" % labels in text
    assert 'jts_benchmark_latency_seconds{%s,percentile="99.9"} 0.004' % labels in text
    assert 'jts_benchmark_baseline_worse{%s,figure="bandwidth_bytes_per_second"} 1' % labels in text
    assert 'jts_benchmark_baseline_change_ratio{%s,figure="bandwidth_bytes_per_second"} 0.5' % labels in text
    assert 'jts_benchmark_test_ok{tier="hot",target="redis",mount="/r",test="rand_read"} 0' in text
    assert "jts_benchmark_last_run_timestamp_seconds 1700000000" in text
    assert text.count("# TYPE jts_benchmark_iops gauge") == 1
    assert "quantile" not in text  # promtool: only summaries may carry it


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        (".jts-benchmark-20261123T023000Z-3f9a0c.tmp", True),
        (b".jts-benchmark-20261123T023000Z-3f9a0c.tmp", True),
        (".jts-benchmark-.tmp", False),
        (".jts-benchmark-../../etc.tmp", False),
        ("jts-benchmark-x.tmp", False),
        (".jts-benchmark-x.tmp.keep", False),
    ],
)
def test_is_test_file(name, ours):
    assert b.is_test_file(name) is ours


def test_test_file_name_refuses_a_bad_run_id():
    assert b.test_file_name("20261123T023000Z-3f9a0c") == ".jts-benchmark-20261123T023000Z-3f9a0c.tmp"
    with pytest.raises(b.BenchmarkError):
        b.test_file_name("../x")
