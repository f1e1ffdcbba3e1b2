#!/usr/bin/env python3
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark tier_migrate against rsync, cp + rm, find and gzip, between two loop-mounted filesystems.

Run as root: ``.venv/bin/python benchmarks/bench_tier_migrate.py [--quick] [--workdir DIR]``.

Builds an ext4 image (source) and an XFS image (destination), mounts them on loop devices,
builds the data sets and times every contender on the same data, then prints a table of
times, ratios and peak memory. Everything is unmounted and detached at the end, also on
Ctrl-C. ``--quick`` uses small data (a smoke run for the functional tests).

Data sets (full / quick):
  A  20,000 small files of 4-64 KiB + 10 files of 256 MiB  /  1,000 small + 2 x 8 MiB
  B  1,000,000 empty entries, 1% older than 7 days          /  20,000 entries
  C  logs: 16 files of 16 MiB of log lines                  /  4 files of 1 MiB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.path.join(ROOT, "plugins", "modules", "tier_migrate.py")
COLLECTIONS = os.path.join(ROOT, ".collections")
DAY = 86400
ZSTD_TOOL_ARGS = "-3 --zstd=mml=6"  # what tier_migrate's compression=zstd runs by default, for the tool's own row
ZSTD_TOOL = "zstd %s tool (in place, info)" % ZSTD_TOOL_ARGS
CAREFUL = "rsync --fsync + -c verify + rm -r (info)"
# -i itemizes every difference the checksum pass finds: the removal only runs when it finds none.
CAREFUL_CMD = (
    "rsync -a --fsync '{w}/' '{d}/' && out=$(rsync -a -c -n -i '{w}/' '{d}/') && [ -z \"$out\" ] && rm -r '{w}'"
)


FLOOR = "cp -a && sync && read back && rm -r (floor, info)"
# The physical floor of tier_migrate's guarantee, without its checks: the copy, one flush, every
# copied byte read back from the device (each file's cached pages dropped first, as tier_migrate
# does), then the removal. Nothing is compared or journalled.
READ_BACK = (
    "import os, sys\n"
    "buf = bytearray(1 << 20)\n"
    "for top, _dirs, files in os.walk(sys.argv[1]):\n"
    "    for name in files:\n"
    "        fd = os.open(os.path.join(top, name), os.O_RDONLY)\n"
    "        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\n"
    "        while os.readv(fd, [buf]):\n"
    "            pass\n"
    "        os.close(fd)\n"
)
FLOOR_CMD = "cp -a '{w}' '{d}' && sync && %s -c %s '{d}' && rm -r '{w}'" % (
    sys.executable,
    "'%s'" % READ_BACK.replace("'", "'\\''"),
)


class Lab:
    """Two loop-mounted images under ``workdir``; ``close()`` undoes everything it did."""

    def __init__(self, workdir, size_src, size_dst, inodes):
        self.workdir = workdir
        self.loops = []
        self.mounts = []
        self.src = os.path.join(workdir, "src")
        self.dst = os.path.join(workdir, "dst")
        self._make(
            "src",
            size_src,
            ["mkfs.ext4", "-q", "-F", "-N", str(inodes), "-E", "lazy_itable_init=0,lazy_journal_init=0"],
            self.src,
        )
        self._make("dst", size_dst, ["mkfs.xfs", "-q", "-f"], self.dst)

    def _make(self, name, size, mkfs, mountpoint):
        image = os.path.join(self.workdir, name + ".img")
        with open(image, "wb") as handle:
            handle.truncate(size)
        loop = subprocess.run(
            ["losetup", "--find", "--show", image], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.loops.append(loop)
        subprocess.run([*mkfs, loop], check=True, capture_output=True)
        os.makedirs(mountpoint, exist_ok=True)
        subprocess.run(["mount", loop, mountpoint], check=True)
        self.mounts.append(mountpoint)

    def close(self):
        for mountpoint in reversed(self.mounts):
            subprocess.run(["umount", "-l", mountpoint], check=False)
        for loop in reversed(self.loops):
            subprocess.run(["losetup", "-d", loop], check=False)
        self.mounts, self.loops = [], []


def _rss_run(cmd, env=None, stdin=None, stdout=subprocess.DEVNULL):
    """Run ``cmd``; return (seconds, peak RSS MiB of that child, stdout bytes or None)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%d): %s" % (cmd[0], proc.returncode, err.decode(errors="replace")[-2000:]))
    return elapsed, usage.ru_maxrss / 1024.0, out


def _sh(cmd):
    return _rss_run(["sh", "-c", cmd])


def tier_migrate(workdir, args):
    path = os.path.join(workdir, "args.json")
    with open(path, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    seconds, rss, out = _rss_run([sys.executable, MODULE, path], env=env, stdout=subprocess.PIPE)
    result = json.loads(out)
    if result.get("failed"):
        raise RuntimeError("tier_migrate failed: %s" % result.get("msg"))
    return seconds, rss, result


def make_set_a(base, small, big, big_size, rng):
    pool = os.urandom(1 << 20)
    old = time.time() - 30 * DAY
    for i in range(small):
        d = os.path.join(base, "d%03d" % (i % 200))
        os.makedirs(d, exist_ok=True)
        size = rng.randint(4, 64) * 1024
        off = rng.randint(0, len(pool) - size)
        p = os.path.join(d, "f%06d.dat" % i)
        with open(p, "wb") as handle:
            handle.write(pool[off : off + size])
        os.utime(p, (old, old))
    os.makedirs(os.path.join(base, "big"), exist_ok=True)
    for i in range(big):
        p = os.path.join(base, "big", "big%02d.bin" % i)
        block = os.urandom(1 << 20)
        with open(p, "wb") as handle:
            for _ in range(big_size >> 20):
                handle.write(block)
        os.utime(p, (old, old))


def make_set_b(base, entries):
    old = time.time() - 10 * DAY
    for i in range(entries):
        d = os.path.join(base, "d%04d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "e%07d" % i)
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o644))
        if i % 100 == 0:
            os.utime(p, (old, old))


def make_set_c(base, files, size, rng):
    os.makedirs(base, exist_ok=True)
    old = time.time() - 10 * DAY
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    words = [
        "order",
        "fill",
        "cancel",
        "quote",
        "book",
        "trade",
        "risk",
        "limit",
        "venue",
        "session",
        "heartbeat",
        "latency",
    ]
    for i in range(files):
        p = os.path.join(base, "app-%02d.log" % i)
        t = 1_700_000_000.0
        with open(p, "w") as handle:
            written = 0
            while written < size:
                t += rng.random() / 50
                line = "%s.%06d %s [%s] %s id=%d px=%.4f qty=%d venue=%s\n" % (
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
                    int((t % 1) * 1e6),
                    rng.choice(levels),
                    rng.choice(words),
                    " ".join(rng.choice(words) for _ in range(rng.randint(2, 6))),
                    rng.randint(1, 10**9),
                    rng.random() * 1000,
                    rng.randint(1, 5000),
                    rng.choice(("XNAS", "XNYS", "BATS", "EDGX")),
                )
                handle.write(line)
                written += len(line)
        os.utime(p, (old, old))


def du(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def fresh_copy(master, work):
    if os.path.exists(work):
        shutil.rmtree(work)
    subprocess.run(["cp", "-a", master, work], check=True)
    os.sync()


def bench(quick, workdir, rounds=1):
    rng = random.Random(42)
    if quick:
        small, big, big_size, entries, logs, log_size = 1000, 2, 8 << 20, 20_000, 4, 1 << 20
        img_src, img_dst = 1 << 30, 1 << 30
    else:
        small, big, big_size, entries, logs, log_size = 20_000, 10, 256 << 20, 1_000_000, 16, 16 << 20
        img_src, img_dst = 12 << 30, 10 << 30
    rows = []
    figures = {}
    lab = Lab(workdir, img_src, img_dst, inodes=entries + 200_000)
    try:
        src, dst = lab.src, lab.dst
        t0 = time.perf_counter()
        make_set_a(os.path.join(src, "master-a"), small, big, big_size, rng)
        make_set_c(os.path.join(src, "master-c"), logs, log_size, rng)
        make_set_b(os.path.join(src, "set-b"), entries)
        os.sync()
        print("data sets built in %.1fs" % (time.perf_counter() - t0), flush=True)
        size_a = du(os.path.join(src, "master-a"))

        # --- A: move small + big files, fs to fs; the contenders take turns, `rounds` times
        work = os.path.join(src, "work-a")
        master = os.path.join(src, "master-a")
        contenders = [
            ("rsync -a --remove-source-files", "rsync", "rsync -a --remove-source-files '{w}/' '{d}/'"),
            ("cp -a && rm -r", "cp", "cp -a '{w}' '{d}' && rm -r '{w}'"),
            ("cp -a && sync && rm -r (info)", "cps", "cp -a '{w}' '{d}' && sync && rm -r '{w}'"),
            # What a careful operator runs for the same guarantees: flushed copies, a checksum
            # comparison of both trees that must list nothing, and only then the removal.
            (CAREFUL, "careful", CAREFUL_CMD),
            (FLOOR, "floor", FLOOR_CMD),
            ("tier_migrate (verified move)", "tm", None),
        ]
        times = {name: [] for name, _d, _c in contenders}
        peaks = {name: 0.0 for name, _d, _c in contenders}
        for _round in range(rounds):
            for name, sub, cmd in contenders:
                fresh_copy(master, work)
                target = os.path.join(dst, sub)
                if cmd is not None:
                    t, rss, _ = _sh(cmd.format(w=work, d=target))
                else:
                    os.makedirs(target)
                    t, rss, res = tier_migrate(
                        workdir,
                        {
                            "source": work,
                            "destination": target,
                            "older_than": "7d",
                            "settle_time": "0",
                            "destination_mount": dst,
                            "lock_dir": workdir,
                        },
                    )
                    assert res["moved"] == small + big, res
                    assert res["moved_bytes"] == size_a, (res["moved_bytes"], size_a)
                times[name].append(t)
                peaks[name] = max(peaks[name], rss)
                shutil.rmtree(target)
        a = {name: statistics.median(values) for name, values in times.items()}
        for name, _sub, _cmd in contenders:
            rows.append(("A", name, a[name], peaks[name]))
        figures["A_rounds"] = {name: [round(t, 2) for t in values] for name, values in times.items()}
        figures["A_vs_rsync"] = a["tier_migrate (verified move)"] / a["rsync -a --remove-source-files"]
        figures["A_vs_cp_rm"] = a["tier_migrate (verified move)"] / a["cp -a && rm -r"]
        figures["A_vs_cp_sync_rm"] = a["tier_migrate (verified move)"] / a["cp -a && sync && rm -r (info)"]
        figures["A_vs_careful_rsync"] = a["tier_migrate (verified move)"] / a[CAREFUL]
        figures["A_vs_floor"] = a["tier_migrate (verified move)"] / a[FLOOR]
        figures["A_floor_vs_rsync"] = a[FLOOR] / a["rsync -a --remove-source-files"]

        # --- B: selection among many entries (warm cache for both)
        setb = os.path.join(src, "set-b")
        _sh("find '%s' -mtime +7 > /dev/null" % setb)
        best_find = min(_sh("find '%s' -type f -mtime +7 > /dev/null" % setb)[0] for _ in range(3))
        rows.append(("B", "find -type f -mtime +7", best_find, 0.0))
        os.makedirs(os.path.join(dst, "sel"), exist_ok=True)
        runs = []
        for _ in range(3):
            env = dict(os.environ, PYTHONPATH=COLLECTIONS)
            path = os.path.join(workdir, "args-b.json")
            with open(path, "w") as handle:
                json.dump(
                    {
                        "ANSIBLE_MODULE_ARGS": {
                            "source": setb,
                            "destination": os.path.join(dst, "sel"),
                            "older_than": "7d",
                            "settle_time": "0",
                            "lock_dir": workdir,
                            "_ansible_check_mode": True,
                        }
                    },
                    handle,
                )
            t, rss, out = _rss_run([sys.executable, MODULE, path], env=env, stdout=subprocess.PIPE)
            res = json.loads(out)
            assert res["selected"] == (entries + 99) // 100, res["selected"]
            runs.append((t, rss))
        t_sel = min(r[0] for r in runs)
        rows.append(("B", "tier_migrate selection (check mode)", t_sel, max(r[1] for r in runs)))
        figures["B_vs_find"] = t_sel / best_find
        figures["B_peak_mib"] = max(r[1] for r in runs)

        # --- C: logs, zstd vs gzip -6; the contenders take turns, `rounds` times (medians)
        logs_master = os.path.join(src, "master-c")
        logs_bytes = du(logs_master)
        workc = os.path.join(src, "work-c")
        c_times, c_peaks, c_bytes = {}, {}, {}

        def c_run(name, run):
            fresh_copy(logs_master, workc)
            t, rss, size = run()
            c_times.setdefault(name, []).append(t)
            c_peaks[name] = max(c_peaks.get(name, 0.0), rss)
            c_bytes[name] = size

        def c_tool(cmd):
            def run():
                t, rss, _ = _sh(cmd % workc)
                return t, rss, du(workc)

            return run

        def c_module(codec):
            def run():
                target = os.path.join(dst, "logs-" + codec)
                os.makedirs(target)
                args = {"source": workc, "destination": target, "older_than": "7d", "settle_time": "0"}
                t, rss, res = tier_migrate(workdir, dict(args, compression=codec, lock_dir=workdir))
                assert res["moved"] == logs, res
                size = du(target) - du(os.path.join(target, ".jts-migrate"))
                shutil.rmtree(target)
                return t, rss, size

            return run

        c_contenders = [
            ("gzip -6 (in place)", c_tool("gzip -6 -r '%s'")),
            (ZSTD_TOOL, c_tool("zstd -q " + ZSTD_TOOL_ARGS + " --rm -r '%s'")),
            ("tier_migrate compression=zstd", c_module("zstd")),
            ("tier_migrate compression=gzip", c_module("gzip")),
        ]
        for _round in range(rounds):
            for name, run in c_contenders:
                c_run(name, run)
        c = {name: statistics.median(values) for name, values in c_times.items()}
        for name, _run in c_contenders:
            rows.append(("C", name, c[name], c_peaks[name]))
        figures["C_rounds"] = {name: [round(t, 2) for t in values] for name, values in c_times.items()}
        for codec in ("zstd", "gzip"):
            figures["C_%s_seconds" % codec] = c["tier_migrate compression=%s" % codec]
            figures["C_%s_bytes" % codec] = c_bytes["tier_migrate compression=%s" % codec]
        t_gzip, size_gzip = c["gzip -6 (in place)"], c_bytes["gzip -6 (in place)"]
        figures["C_gzip6_seconds"] = t_gzip
        figures["C_gzip6_bytes"] = size_gzip
        figures["C_speedup_vs_gzip6"] = t_gzip / figures["C_zstd_seconds"]
        figures["C_size_vs_gzip6"] = figures["C_zstd_bytes"] / float(size_gzip)
        figures["C_ratio_zstd"] = logs_bytes / float(figures["C_zstd_bytes"])
    finally:
        lab.close()
    return rows, figures, {"small": small, "big": big, "big_size": big_size, "entries": entries, "logs": logs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data: a smoke run")
    parser.add_argument("--workdir", default=None, help="where images go (default: a new dir in /var/tmp)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="sets A and C: the contenders take turns this often, medians shown (3; quick: 1)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_tier_migrate: needs root (loop devices and mounts)", file=sys.stderr)
        return 2
    for tool in ("rsync", "zstd", "gzip", "find", "mkfs.ext4", "mkfs.xfs", "losetup"):
        if shutil.which(tool) is None:
            print("bench_tier_migrate: %s is missing" % tool, file=sys.stderr)
            return 2
    workdir = tempfile.mkdtemp(prefix="bench-tier-migrate-", dir=args.workdir or "/var/tmp")

    def _interrupt(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rows, figures, sizes = bench(args.quick, workdir, args.rounds or (1 if args.quick else 3))
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("tier_migrate benchmark (%s): %s" % ("quick" if args.quick else "full", json.dumps(sizes)))
    print("%-3s %-40s %10s %10s" % ("set", "contender", "seconds", "peak MiB"))
    for row in rows:
        print("%-3s %-40s %10.2f %10.1f" % row)
    print("set A, every round (s): %s" % json.dumps(figures["A_rounds"]))
    print("set C, every round (s): %s" % json.dumps(figures.get("C_rounds", {})))
    print("set A, tier_migrate / (cp -a + sync + rm -r), info: %.2f" % figures["A_vs_cp_sync_rm"])
    print("set A, tier_migrate / (rsync --fsync + rsync -c verify + rm -r), info: %.2f" % figures["A_vs_careful_rsync"])
    print(
        "set A, tier_migrate / (cp -a && sync && read back && rm -r: the floor of its guarantee), info: %.2f"
        % figures["A_vs_floor"]
    )
    print("set A, that floor / rsync -a --remove-source-files, info: %.2f" % figures["A_floor_vs_rsync"])
    print()
    checks = [
        ("A: tier_migrate / rsync <= 1.0", figures["A_vs_rsync"], figures["A_vs_rsync"] <= 1.0),
        ("A: tier_migrate / (cp -a + rm -r) <= 1.5", figures["A_vs_cp_rm"], figures["A_vs_cp_rm"] <= 1.5),
        ("B: selection / find -mtime +7 <= 1.5", figures["B_vs_find"], figures["B_vs_find"] <= 1.5),
        ("B: selection peak RSS MiB < 100", figures["B_peak_mib"], figures["B_peak_mib"] < 100),
        ("C: gzip -6 / tier_migrate zstd >= 3", figures["C_speedup_vs_gzip6"], figures["C_speedup_vs_gzip6"] >= 3),
        ("C: zstd size / gzip -6 size <= 1.10", figures["C_size_vs_gzip6"], figures["C_size_vs_gzip6"] <= 1.10),
    ]
    for name, value, ok in checks:
        print("%-45s %8.3f  %s" % (name, value, "ok" if ok else "MISSED"))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows, "figures": figures, "checks": [(n, v, ok) for n, v, ok in checks]}, handle)
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    sys.exit(main())
