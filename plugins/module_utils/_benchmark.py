# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The storage benchmark's pure parts: tool command lines, output parsers, space checks,
baseline comparison, the table and the node_exporter textfile.

Used by the storage_benchmark module, which does the I/O. Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._textfile import render

# Test files: ``<directory>/.jts-benchmark-<run id>.tmp``. A run removes the ones it finds
# (root's regular files only) before it starts, so a run killed with SIGKILL leaves nothing
# behind after the next one.
FILE_PREFIX = ".jts-benchmark-"
FILE_SUFFIX = ".tmp"
_FILE_RE = re.compile(r"^\.jts-benchmark-[0-9A-Za-z_-]{1,64}\.tmp$")

# test -> (direction, fio --rw, what it measures)
TESTS = {
    "seq_write": ("write", "write", "sequential write"),
    "rand_read": ("read", "randread", "random read"),
    "seq_read": ("read", "read", "sequential read"),
}
PERCENTILES = ("50", "95", "99", "99.9")
# Figures compared with the baseline, and whether a higher value is better.
FIGURES = (
    ("bandwidth_bytes_per_second", "MB/s", True),
    ("iops", "IOPS", True),
    ("latency_p50_seconds", "latency p50", False),
    ("latency_p99_seconds", "latency p99", False),
)
METRIC_PREFIX = "jts_benchmark_"


class BenchmarkError(Exception):
    """A tool's output that does not parse, or a setting that makes no sense."""


def is_test_file(name):
    """True for a name this module gives its test files (a leftover of an earlier run)."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return bool(_FILE_RE.match(name))


def test_file_name(run_id):
    name = "%s%s%s" % (FILE_PREFIX, run_id, FILE_SUFFIX)
    if not is_test_file(name):
        raise BenchmarkError("run id %r makes an invalid test file name" % (run_id,))
    return name


# ----------------------------------------------------------------------------------------------
# Command lines
# ----------------------------------------------------------------------------------------------


def job_size(test, settings, written=None):
    """Bytes a test reads or writes: a read never goes past what the write wrote (no holes)."""
    size = settings["rand_size"] if test == "rand_read" else settings["seq_size"]
    if TESTS[test][0] == "read" and written is not None:
        size = min(size, written)
    block = settings["rand_block_size"] if test == "rand_read" else settings["seq_block_size"]
    return size - size % block


def signature(test, tool, settings):
    """What must match for two results to be compared (same tool, sizes, blocks, queue)."""
    sig = {"tool": tool, "test": test, "direct": True}
    if test == "rand_read":
        sig.update(size=settings["rand_size"], block_size=settings["rand_block_size"], iodepth=settings["iodepth"])
    else:
        sig.update(size=settings["seq_size"], block_size=settings["seq_block_size"], iodepth=1)
    if tool == "fio":
        sig["runtime"] = settings["runtime"]
    return sig


def fio_argv(fio, test, fd, settings, size):
    """fio on the open test file ``fd`` (as /proc/self/fd/N: fio cannot be steered by a name)."""
    rw = TESTS[test][1]
    if test == "rand_read":
        block, depth = settings["rand_block_size"], settings["iodepth"]
    else:
        block, depth = settings["seq_block_size"], 1
    argv = [
        fio,
        "--name=jts-%s" % test.replace("_", "-"),
        "--filename=/proc/self/fd/%d" % fd,
        "--rw=%s" % rw,
        "--bs=%d" % block,
        "--size=%d" % size,
        "--ioengine=libaio",
        "--iodepth=%d" % depth,
        "--direct=1",
        "--runtime=%d" % settings["runtime"],
        "--output-format=json",
        "--percentile_list=%s" % ":".join(PERCENTILES),
        # Jobs as threads of the one fio process: a forked job would start its own session and
        # outlive a kill of fio (and of this module).
        "--thread",
    ]
    if test == "seq_write":
        argv += ["--fallocate=none", "--end_fsync=1"]
    return argv


def dd_argv(dd, test, fd, settings, size):
    """dd for the sequential tests (None for random reads: dd cannot do them)."""
    if test == "rand_read":
        return None
    block = settings["seq_block_size"]
    count = size // block
    target = "/proc/self/fd/%d" % fd
    if test == "seq_write":
        return [
            dd,
            "if=/dev/zero",
            "of=" + target,
            "bs=%d" % block,
            "count=%d" % count,
            "oflag=direct",
            "conv=notrunc,fsync",
        ]
    return [dd, "if=" + target, "of=/dev/null", "bs=%d" % block, "count=%d" % count, "iflag=direct"]


def shown_argv(argv, fd, path):
    """The command as a person would type it: the test file's path instead of /proc/self/fd/N."""
    proc = "/proc/self/fd/%d" % fd
    return [a.replace(proc, path) for a in argv]


# ----------------------------------------------------------------------------------------------
# Output parsers
# ----------------------------------------------------------------------------------------------


def parse_fio(stdout, direction):
    """Figures of one fio job from ``--output-format=json`` (text before the JSON is skipped)."""
    start = stdout.find("{")
    if start < 0:
        raise BenchmarkError("fio printed no JSON: %r" % stdout[:200])
    try:
        data = json.loads(stdout[start:])
        job = data["jobs"][0]
        side = job[direction]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BenchmarkError("fio's JSON lacks jobs[0].%s: %s" % (direction, exc)) from exc
    if job.get("error"):
        raise BenchmarkError("fio reported error %s" % job["error"])
    runtime_ms = side.get("runtime") or 0
    clat = side.get("clat_ns") or {}
    percentiles = clat.get("percentile") or {}
    figures = {
        "bytes": int(side.get("io_bytes", 0)),
        "seconds": runtime_ms / 1000.0,
        "bandwidth_bytes_per_second": float(side.get("bw_bytes", 0)),
        "iops": float(side.get("iops", 0.0)),
        "latency_mean_seconds": (clat.get("mean") or 0.0) / 1e9 if clat else None,
    }
    for pct in PERCENTILES:
        value = None
        for key, ns in percentiles.items():
            if abs(float(key) - float(pct)) < 1e-6:
                value = ns / 1e9
        figures["latency_p%s_seconds" % pct.replace(".", "_")] = value
    if figures["bytes"] <= 0:
        raise BenchmarkError("fio moved no data")
    return figures


_DD_RE = re.compile(r"^(\d+) bytes.* copied, ([0-9.]+(?:e-?\d+)?) s,", re.MULTILINE)


def parse_dd(stderr, block_size):
    """Figures from dd's summary line (LC_ALL=C): bytes, seconds, bandwidth; IOPS of ``block_size``."""
    match = _DD_RE.search(stderr)
    if not match:
        raise BenchmarkError("no dd summary in %r" % stderr[-200:])
    count, seconds = int(match.group(1)), float(match.group(2))
    if count <= 0 or seconds <= 0:
        raise BenchmarkError("dd moved no data")
    figures = {
        "bytes": count,
        "seconds": seconds,
        "bandwidth_bytes_per_second": count / seconds,
        "iops": count / float(block_size) / seconds,
        "latency_mean_seconds": None,
    }
    for pct in PERCENTILES:
        figures["latency_p%s_seconds" % pct.replace(".", "_")] = None
    return figures


# ----------------------------------------------------------------------------------------------
# Space
# ----------------------------------------------------------------------------------------------


def space_refusal(target, vfs, need, warning, reserve=0):
    """Why ``target`` must not get a test file of ``need`` bytes (None when it may).

    ``vfs`` is statvfs as a dict. Refused: a mount already above ``warning`` percent used, or one
    whose free space (for root too: f_bavail, less ``reserve``) cannot hold the file without
    going above ``warning``.
    """
    frsize = vfs["f_frsize"] or vfs["f_bsize"]
    total = vfs["f_blocks"] * frsize
    avail = vfs["f_bavail"] * frsize
    used = (vfs["f_blocks"] - vfs["f_bfree"]) * frsize
    where = "%s (%s tier, %s)" % (target["mount"], target["tier"], target["name"])
    if total <= 0:
        return "%s reports no size; not benchmarked" % where
    # df's use%: used / (used + available to users)
    denominator = used + avail
    now = 100.0 * used / denominator if denominator else 100.0
    if now > warning:
        return (
            "%s is %.1f %% used, above its warning threshold of %g %% (option warning, variable "
            "benchmark_warning): not benchmarked; free space there first" % (where, now, warning)
        )
    after = 100.0 * (used + need) / denominator if denominator else 100.0
    if need + reserve > avail or after > warning:
        return (
            "%s has %s free: no room for the %s test file without going to %.1f %%, above its warning "
            "threshold of %g %% (variables benchmark_seq_size, benchmark_rand_size, benchmark_warning): "
            "not benchmarked" % (where, _mib(avail), _mib(need), after, warning)
        )
    return None


def _mib(count):
    return "%.1f MiB" % (count / 1048576.0)


# ----------------------------------------------------------------------------------------------
# Baseline
# ----------------------------------------------------------------------------------------------


def result_key(result):
    return "%s/%s/%s" % (result["tier"], result["name"], result["test"])


def find_baselines(history, results):
    """For each measured result, the first earlier run's result with the same key and signature.

    ``history`` is the saved runs, oldest first (each ``{"run_id", "started", "results"}``).
    Returns ``{key: (run, result)}``; a key without one has no baseline yet (this run is it).
    """
    found = {}
    for result in results:
        if result.get("status") != "ok":
            continue
        key = result_key(result)
        for run in history:
            match = next(
                (
                    old
                    for old in run.get("results") or []
                    if old.get("status") == "ok"
                    and result_key(old) == key
                    and old.get("signature") == result["signature"]
                ),
                None,
            )
            if match is not None:
                found[key] = (run, match)
                break
    return found


def compare(result, baseline, threshold):
    """Changes of each figure against the baseline; ``verdict`` is worse/better beyond ``threshold`` %."""
    changes = []
    for figure, label, higher_better in FIGURES:
        now, then = result["figures"].get(figure), baseline["figures"].get(figure)
        if now is None or not then:
            continue
        change = 100.0 * (now - then) / then
        verdict = ""
        if abs(change) > threshold:
            verdict = "better" if (change > 0) == higher_better else "worse"
        changes.append(
            {
                "figure": figure,
                "label": label,
                "higher_is_better": higher_better,
                "baseline": then,
                "now": now,
                "change_percent": round(change, 2),
                "verdict": verdict,
            }
        )
    return changes


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


def _fmt(value, scale, digits):
    return "-" if value is None else "%.*f" % (digits, value * scale)


def render_table(results):
    """The results as a fixed-width table (one string, no trailing spaces)."""
    head = (
        "tier",
        "target",
        "mount",
        "test",
        "tool",
        "MB/s",
        "IOPS",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99.9 ms",
        "status",
    )
    rows = [head]
    for r in results:
        f = r.get("figures") or {}
        rows.append(
            (
                r["tier"],
                r["name"],
                r["mount"],
                r["test"],
                r.get("tool") or "-",
                _fmt(f.get("bandwidth_bytes_per_second"), 1e-6, 1),
                _fmt(f.get("iops"), 1, 0),
                _fmt(f.get("latency_p50_seconds"), 1e3, 3),
                _fmt(f.get("latency_p95_seconds"), 1e3, 3),
                _fmt(f.get("latency_p99_seconds"), 1e3, 3),
                _fmt(f.get("latency_p99_9_seconds"), 1e3, 3),
                r["status"],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    numeric = set(range(5, 11))
    lines = []
    for row in rows:
        cells = [str(c).rjust(w) if i in numeric else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_changes(comparisons, threshold):
    """The baseline comparison as lines: the figures beyond ``threshold`` %, worse or better."""
    lines = []
    for key, entry in comparisons.items():
        if entry.get("baseline_run") is None:
            lines.append("%s: no earlier run with these settings; this run is the baseline" % key)
            continue
        moved = [c for c in entry["changes"] if c["verdict"]]
        if not moved:
            lines.append(
                "%s: within %g %% of the baseline %s (%s)"
                % (key, threshold, entry["baseline_run"], ", ".join(c["label"] for c in entry["changes"]))
            )
        for c in moved:
            lines.append(
                "%s %s: %s than the baseline %s: %s -> %s (%+.1f %%; %s is better)"
                % (
                    key,
                    c["label"],
                    c["verdict"].upper(),
                    entry["baseline_run"],
                    _figure(c["figure"], c["baseline"]),
                    _figure(c["figure"], c["now"]),
                    c["change_percent"],
                    "higher" if c["higher_is_better"] else "lower",
                )
            )
    return "\n".join(lines)


def _figure(figure, value):
    if figure == "bandwidth_bytes_per_second":
        return "%.1f MB/s" % (value / 1e6)
    if figure.startswith("latency"):
        return "%.3f ms" % (value * 1e3)
    return "%.0f" % value


METRICS = (
    ("throughput_bytes_per_second", "gauge", "Bytes per second of the test (fio bw_bytes or dd)."),
    ("iops", "gauge", "I/O operations per second of the test (its block size)."),
    ("latency_seconds", "gauge", "Completion latency at a percentile of the test (fio clat), label percentile."),
    ("test_ok", "gauge", "1 when the test ran and its output parsed, 0 when it failed, was refused or skipped."),
    ("baseline_change_ratio", "gauge", "A figure of this run divided by the same figure of the baseline run."),
    ("baseline_worse", "gauge", "1 when the figure is worse than the baseline beyond the threshold."),
    ("last_run_timestamp_seconds", "gauge", "When the last benchmark run started (Unix time)."),
    ("duration_seconds", "gauge", "How long the last benchmark run took."),
)


def render_metrics(run, comparisons):
    """The node_exporter textfile of a run: HELP and TYPE once per family, base units."""
    samples = {name: [] for name, _k, _h in METRICS}
    for r in run["results"]:
        labels = (("tier", r["tier"]), ("target", r["name"]), ("mount", r["mount"]), ("test", r["test"]))
        samples["test_ok"].append((labels, r["status"] == "ok"))
        if r["status"] != "ok":
            continue
        f = r["figures"]
        samples["throughput_bytes_per_second"].append((labels, f["bandwidth_bytes_per_second"]))
        samples["iops"].append((labels, f["iops"]))
        for pct in PERCENTILES:
            value = f.get("latency_p%s_seconds" % pct.replace(".", "_"))
            if value is not None:
                samples["latency_seconds"].append(((*labels, ("percentile", pct)), value))
        entry = comparisons.get(result_key(r)) or {}
        for c in entry.get("changes") or []:
            figure_labels = (*labels, ("figure", c["figure"]))
            samples["baseline_change_ratio"].append((figure_labels, round(c["now"] / c["baseline"], 6)))
            samples["baseline_worse"].append((figure_labels, c["verdict"] == "worse"))
    samples["last_run_timestamp_seconds"].append(((), int(run["started_ts"])))
    samples["duration_seconds"].append(((), round(float(run["duration_seconds"]), 3)))
    return render(METRIC_PREFIX, METRICS, samples)
