"""Randomised crash test for tier_migrate (issue 14): kill -9 at a random moment, run again, check.

Per seed (``random.Random(seed)``): a small source tree with odd names (spaces, newlines, bytes that
are not UTF-8, leading dashes, 240-255 byte names, names already ending in ``.gz``/``.zst``, name
pairs that collide once a suffix is added), empty, small, 1-8 MiB and sparse files, hard-link
groups, and symlinks (to files inside, outside the roots, dangling, to directories inside and
outside); everything older than ``older_than``. The run's options are drawn from the seed too:
``mode`` move/copy, ``compression`` none/gzip/zstd, batch sizes, destination on the source's
filesystem or on another one (two tmpfs mounted under ``tmp_path``), and, for some seeds, symlinks
planted inside the destination that point outside both roots (a directory and a file).

Each seed builds the same world twice. The first is migrated without interruption, which times
the run and is checked on its own (a failure there is not about crashes). The second is run as a
real separate process (``python tier_migrate.py args.json``, as Ansible runs it) in its own
session and its whole process group (the module, ``find``, ``zstd``) gets SIGKILL after a seeded
fraction of that time, as systemd kills a unit's cgroup; the state is checked (each original at
the source or complete at the destination, nothing partial under a final name, nothing written
outside); then the module
runs again to completion and the final state is checked against a snapshot taken before the first
run:

- every original regular file's content is present exactly once (move) or still at the source
  (copy): at the source under its relative path, or at the destination under its relative path
  plus the codec's suffix (decoded); never damaged at either place, nothing else at the
  destination; a file not at its destination after the second run is reported by that run;
- hard-link groups: content counted per name; all names moved or all kept, never split;
- source symlinks untouched; nothing written outside the two roots (every path in the worlds'
  parent directories, including the symlink targets, a TMPDIR given to the module and the targets
  of the planted destination symlinks, is compared before and after);
- no ``.jts-migrate-*.tmp`` file left in either root; every journal line parses, every record
  matches the file it names, and (move) every file at the destination is recorded.

Bounds: ``JTS_CRASH_SEEDS`` is a count (seeds 0..N-1, default 40) or a list such as ``17,`` or
``3,8-12``; ``JTS_CRASH_SECONDS`` (default 90) stops starting new seeds after that many seconds, but
at least 10 seeds (or all listed, if fewer) must run. ``JTS_CRASH_KILL_AT`` (seconds) overrides the
kill delay when replaying one seed. Select with ``-k crash``. Every failure names its seed and
the line to replay it. At least half of the seeds must be killed before their run finished, or
the test says it tested nothing. The default 40 seeds take 32-39 s on the 2-core build machine
(three module runs per seed, about 0.15-0.4 s each).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "modules" / "tier_migrate.py"
DAY = 86400
MIB = 1 << 20
TMP_PREFIX = b".jts-migrate-"
TMP_SUFFIX = b".tmp"
STATE_DIR = b".jts-migrate"
SUFFIXES = {"none": b"", "gzip": b".gz", "zstd": b".zst"}
COMPRESSED = (b".gz", b".zst")  # the only "already compressed" suffixes the generator makes
DEFAULT_SEEDS = 40
DEFAULT_SECONDS = 90.0
MIN_SEEDS = 10
SHOW = 6  # violations shown per check and seed

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount tmpfs"),
    pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd tool"),
]


# --------------------------------------------------------------------------- seeds and bounds


def parse_seeds(text):
    """``"40"`` -> seeds 0..39; ``"17,"`` -> [17]; ``"3,8-10"`` -> [3, 8, 9, 10]."""
    text = (text or "").strip()
    if not text:
        return list(range(DEFAULT_SEEDS))
    if text.isdigit():
        return list(range(int(text)))
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _sep, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def test_crash_seed_list_syntax():
    assert parse_seeds("") == list(range(DEFAULT_SEEDS))
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("17,") == [17]
    assert parse_seeds("3, 8-10") == [3, 8, 9, 10]


# --------------------------------------------------------------------------- filesystems


@pytest.fixture
def tmpfs_pair(tmp_path):
    """Two small tmpfs: the source (and a same-filesystem destination) on one, the other for cross-fs runs."""
    mounted = []
    for name in ("fs-a", "fs-b"):
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", str(path)], check=True)
        mounted.append(path)
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


# --------------------------------------------------------------------------- the random tree


def _names(rng, serial):
    """Candidate names of every awkward kind (bytes)."""
    n = b"%d" % serial
    long_len = rng.randint(240, 255)
    utf8_long = ("\u00e9" * 127).encode()[: long_len - len(n)]  # may cut a character: not UTF-8 then
    return [
        b"f" + n + b".log",
        b"with space " + n + b".txt",
        b" leading and trailing space " + n + b" ",
        b"new\nline" + n,
        b"tab\tand\rcr" + n,
        b"caf\xe9-latin1-" + n + b".log",
        b"\xff\xfe" + n,
        b"bad\x80\x81utf8" + n,
        b"-" + n,
        b"-rf" + n,
        b"--help" + n + b".log",
        b"L" * (long_len - len(n)) + n,
        utf8_long + n,
        ("\u540d\u524d" + str(serial) + ".log").encode(),
        b"star*[x]?" + n,
        b".hidden" + n,
        b"name" + n + b".tmp",
        b"back\\slash" + n,
        b"quote'\"" + n,
        b"arch" + n + b".gz",
        b"arch" + n + b".ZST",
    ]


class Tree:
    """What the generator made under the source (relative bytes paths)."""

    def __init__(self):
        self.dirs = [b""]
        self.files = []  # regular file names (every hard-link name too)
        self.groups = []  # hard-link groups: lists of names of one inode
        self.links = []  # symlinks
        self.taken = set()
        self.serial = 0

    def new_name(self, rng, parent, names=None):
        while True:
            self.serial += 1
            name = rng.choice(names or _names(rng, self.serial))
            rel = os.path.join(parent, name) if parent else name
            if rel not in self.taken and len(name) <= 255:
                self.taken.add(rel)
                return rel


def _pattern(rng, size):
    """``size`` bytes that compress well and fast but differ in every 4 KiB block."""
    block = bytearray(rng.getrandbits(8 * 4096).to_bytes(4096, "little"))
    block[8:] = block[8:2056] * 2  # half of each block repeats: compressible
    out = bytearray()
    for i in range(size // 4096 + 1):
        block[:8] = struct.pack("<Q", i)
        out += block
    return bytes(out[:size])


def _content(rng, kind):
    if kind == "empty":
        return b""
    if kind == "random":
        size = rng.randint(1, 64 << 10)
        return rng.getrandbits(8 * size).to_bytes(size, "little")
    if kind == "text":
        return b"".join(b"%d line %d of a log\n" % (rng.randint(0, 9999), i) for i in range(rng.randint(1, 2000)))
    if kind == "tiny":
        return bytes([rng.randint(0, 255)])
    raise ValueError(kind)


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def build_tree(rng, src, outside):
    """Fill ``src`` (bytes) from ``rng``; return the Tree."""
    tree = Tree()
    for _ in range(rng.randint(2, 6)):
        rel = tree.new_name(rng, rng.choice(tree.dirs))
        os.mkdir(os.path.join(src, rel))
        tree.dirs.append(rel)
    kinds = ["empty", "random", "text", "tiny", "random", "text"]
    for _ in range(rng.randint(8, 20)):
        rel = tree.new_name(rng, rng.choice(tree.dirs))
        _write(os.path.join(src, rel), _content(rng, rng.choice(kinds)))
        tree.files.append(rel)
    for _ in range(rng.randint(1, 2)):  # a few large files
        rel = tree.new_name(rng, rng.choice(tree.dirs), [b"big%d.bin" % tree.serial, b"big %d\n.dat" % tree.serial])
        _write(os.path.join(src, rel), _pattern(rng, rng.randint(1, 8) * MIB - rng.randint(0, 4095)))
        tree.files.append(rel)
    if rng.random() < 0.8:  # a sparse file: holes with a few islands of data
        rel = tree.new_name(rng, rng.choice(tree.dirs), [b"sparse%d.img" % tree.serial])
        size = rng.randint(1, 6) * MIB
        with open(os.path.join(src, rel), "wb") as handle:
            handle.truncate(size)
            for _ in range(rng.randint(0, 4)):
                handle.seek(rng.randint(0, size - 1))
                handle.write(b"island %d" % rng.randint(0, 999))
            handle.truncate(size)
        tree.files.append(rel)
    if rng.random() < 0.5:  # names that collide once a suffix is added: x, x.gz, x.zst
        parent = rng.choice(tree.dirs)
        base = b"collide%d" % tree.serial
        for suffix in (b"", b".gz", b".zst"):
            rel = os.path.join(parent, base + suffix) if parent else base + suffix
            if rel not in tree.taken:
                tree.taken.add(rel)
                _write(os.path.join(src, rel), _content(rng, "random"))
                tree.files.append(rel)
    for _ in range(rng.randint(1, 2)):  # hard-link groups of 2 or 3 names, across directories too
        lead = rng.choice(tree.files)
        if any(lead in group for group in tree.groups):
            continue
        group = [lead]
        for _ in range(rng.choice((1, 1, 2))):
            rel = tree.new_name(rng, rng.choice(tree.dirs))
            os.link(os.path.join(src, lead), os.path.join(src, rel))
            group.append(rel)
            tree.files.append(rel)
        tree.groups.append(group)
    targets = [
        lambda d: os.path.relpath(rng.choice(tree.files), d or b"."),  # a file inside, relative
        lambda d: os.path.join(src, rng.choice(tree.files)),  # a file inside, absolute
        lambda d: os.path.join(outside, b"secret.txt"),  # a file outside
        lambda d: os.path.join(outside, b"dir"),  # a directory outside
        lambda d: os.path.relpath(rng.choice(tree.dirs) or b".", d or b"."),  # a directory inside
        lambda d: b"does-not-exist/nowhere",  # dangling
        lambda d: os.path.join(outside, b"missing"),  # dangling, outside
    ]
    for _ in range(rng.randint(3, 7)):
        parent = rng.choice(tree.dirs)
        rel = tree.new_name(rng, parent)
        os.symlink(rng.choice(targets)(parent), os.path.join(src, rel))
        tree.links.append(rel)
    now = time.time()
    for rel in tree.files:
        when = now - rng.uniform(2, 60) * DAY
        os.utime(os.path.join(src, rel), (when, when))  # a hard link's last name sets its inode
    for rel in tree.links:
        when = now - rng.uniform(2, 60) * DAY
        os.utime(os.path.join(src, rel), (when, when), follow_symlinks=False)
    return tree


def codec_for(rel, codec):
    """The codec the module uses for ``rel``: none for names that are already compressed."""
    return "none" if rel.lower().endswith(COMPRESSED) else codec


def dst_name(rel, codec):
    """Where the module puts ``rel``: plus the codec's suffix unless the name is already compressed."""
    return rel + SUFFIXES[codec_for(rel, codec)]


# --------------------------------------------------------------------------- one world


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def decoded_sha(path, codec):
    """SHA-256 of the content of ``path`` decoded with ``codec``; None when it does not decode."""
    try:
        if codec == "none":
            return file_sha(path)
        if codec == "gzip":
            with open(path, "rb") as handle:
                return sha(gzip.decompress(handle.read()))
        proc = subprocess.run(["zstd", "-q", "-d", "-c", path], capture_output=True, check=False)
        return sha(proc.stdout) if proc.returncode == 0 else None
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def walk(root):
    """Every entry under ``root`` (bytes), never following a symlink: {rel: lstat}."""
    out = {}
    stack = [b""]
    while stack:
        rel_dir = stack.pop()
        for entry in os.scandir(os.path.join(root, rel_dir) if rel_dir else root):
            rel = os.path.join(rel_dir, entry.name) if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            out[rel] = st
            if stat.S_ISDIR(st.st_mode):
                stack.append(rel)
    return out


def outside_listing(paths, skip, volatile=()):
    """Every entry under ``paths`` but the roots in ``skip``, with type, mode, size, times and content."""
    out = {}
    for base in paths:
        for rel, st in walk(base).items():
            path = os.path.join(base, rel)
            if any(path == s or path.startswith(s + b"/") for s in skip):
                continue
            entry = (stat.S_IFMT(st.st_mode), st.st_mode, st.st_uid, st.st_gid)
            if path not in volatile:  # a directory whose entries may come and go (TMPDIR)
                entry += (st.st_mtime_ns,)
            if stat.S_ISREG(st.st_mode):
                entry += (st.st_size, file_sha(path))
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(path),)
            out[path] = entry
    return out


def temp_files(root):
    return [rel for rel in walk(root) if os.path.basename(rel).startswith(TMP_PREFIX) and rel.endswith(TMP_SUFFIX)]


class World:
    """One source/destination pair with its surroundings, built from a seed."""

    def __init__(self, seed, tag, base_a, base_b, lock_dir):
        rng = random.Random(seed)
        self.seed = seed
        self.cfg = {
            "mode": rng.choice(("move", "move", "move", "copy")),
            "compression": rng.choice(("none", "gzip", "zstd")),
            "batch_files": rng.choice((1, 2, 3, 5, 8, 1000)),
            "batch_bytes": rng.choice(("1M", "4M", "256M")),
            "cross_fs": rng.random() < 0.5,
            "escape_dir": rng.random() < 0.35,
            "escape_file": rng.random() < 0.35,
        }
        self.fraction = rng.random()
        self.home = os.path.join(os.fsencode(str(base_a)), b"%s-%d" % (tag, seed))
        self.dst_home = os.path.join(os.fsencode(str(base_b)), b"%s-%d" % (tag, seed)) if self.cfg["cross_fs"] else None
        self.src = os.path.join(self.home, b"src")
        self.dst = os.path.join(self.dst_home or self.home, b"dst")
        self.outside = os.path.join(self.home, b"outside")
        self.tmpdir = os.path.join(self.home, b"tmp")
        for path in (self.home, self.dst_home, self.src, self.dst, self.outside, self.tmpdir):
            if path:
                os.mkdir(path)
        os.mkdir(os.path.join(self.outside, b"dir"))
        os.mkdir(os.path.join(self.outside, b"escape-dir"))
        _write(os.path.join(self.outside, b"secret.txt"), b"not ours\n")
        _write(os.path.join(self.outside, b"dir", b"inner.txt"), b"not ours either\n")
        _write(os.path.join(self.outside, b"escape-dir", b"sentinel"), b"sentinel\n")
        _write(os.path.join(self.outside, b"escape-file"), b"must not be overwritten\n")
        self.tree = build_tree(rng, self.src, self.outside)
        self.codec = self.cfg["compression"]
        self.planted = self._plant(rng)
        self.args = {
            "source": os.fsdecode(self.src),
            "destination": os.fsdecode(self.dst),
            "mode": self.cfg["mode"],
            "compression": self.codec,
            "batch_files": self.cfg["batch_files"],
            "batch_bytes": self.cfg["batch_bytes"],
            "older_than": "1d",
            "settle_time": "0",
            "lock_dir": str(lock_dir),
        }
        self.args_path = os.path.join(self.home, b"args.json")
        _write(self.args_path, json.dumps({"ANSIBLE_MODULE_ARGS": self.args}).encode())
        self.snapshot()

    def _plant(self, rng):
        """Symlinks inside the destination pointing outside both roots; {rel: target}."""
        planted = {}
        dirs = [d for d in self.tree.dirs if d and any(os.path.dirname(f) == d for f in self.tree.files)]
        if self.cfg["escape_dir"] and dirs:
            rel = rng.choice(dirs)
            planted[rel] = os.path.join(self.outside, b"escape-dir")
        files = [f for f in self.tree.files if not any(f.startswith(d + b"/") for d in planted)]
        if self.cfg["escape_file"] and files:
            rel = dst_name(rng.choice(files), self.codec)
            planted[rel] = os.path.join(self.outside, b"escape-file")
        for rel, target in planted.items():
            parent = os.path.dirname(rel)
            if parent:
                os.makedirs(os.path.join(self.dst, parent), exist_ok=True)
            os.symlink(target, os.path.join(self.dst, rel))
        return planted

    def snapshot(self):
        entries = walk(self.src)
        self.files = {}  # rel -> sha256 of the content
        self.inode_of = {}
        for rel, st in entries.items():
            if stat.S_ISREG(st.st_mode):
                self.files[rel] = file_sha(os.path.join(self.src, rel))
                self.inode_of[rel] = (st.st_dev, st.st_ino)
        self.links = {
            rel: os.readlink(os.path.join(self.src, rel)) for rel, st in entries.items() if stat.S_ISLNK(st.st_mode)
        }
        by_inode = {}
        for rel, ino in self.inode_of.items():
            by_inode.setdefault(ino, []).append(rel)
        self.groups = [sorted(names) for names in by_inode.values() if len(names) > 1]
        self.grouped = {rel for group in self.groups for rel in group}
        self.outside_before = self.listing()

    def listing(self):
        parents = [self.home] + ([self.dst_home] if self.dst_home else [])
        return outside_listing(parents, [self.src, self.dst], volatile=[self.tmpdir])

    def remove(self):
        for path in (self.home, self.dst_home):
            if path:
                shutil.rmtree(path, ignore_errors=True)

    def describe(self):
        cfg = dict(self.cfg)
        cfg["files"] = len(self.files)
        cfg["hard-link groups"] = len(self.groups)
        cfg["symlinks"] = len(self.links)
        return ", ".join("%s=%s" % item for item in cfg.items())

    # -- running the module
    def env(self):
        return dict(os.environ, PYTHONPATH=str(ROOT / ".collections"), TMPDIR=os.fsdecode(self.tmpdir))

    def run(self, timeout=120):
        """Run to completion; return (result dict or None, seconds, error text)."""
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(MODULE), os.fsdecode(self.args_path)],
            capture_output=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        took = time.monotonic() - start
        try:
            return json.loads(proc.stdout), took, None
        except ValueError:
            return None, took, "no JSON (rc=%d): %r %r" % (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])

    def run_killed(self, delay):
        """Start the module in its own session; SIGKILL the whole group after ``delay``. True if killed mid-run."""
        proc = subprocess.Popen(
            [sys.executable, str(MODULE), os.fsdecode(self.args_path)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            killed = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # also a zstd or find child left behind
        except ProcessLookupError:
            pass  # it finished before the delay and nothing of it is left
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        return killed


# --------------------------------------------------------------------------- the invariants


class Report:
    def __init__(self):
        self.items = {}

    def add(self, check, detail):
        self.items.setdefault(check, []).append(detail)

    def lines(self, phase):
        out = []
        for check, details in self.items.items():
            shown = "; ".join(details[:SHOW]) + ("; ... %d more" % (len(details) - SHOW) if len(details) > SHOW else "")
            out.append("  [%s] %s (%d): %s" % (phase, check, len(details), shown))
        return out


def display(path):
    """The module's printable form of a bytes path (bytes that are not UTF-8 as \\xNN)."""
    return path.decode("utf-8", "backslashreplace")


def _reported(result, world, rel):
    """True when the run said it left ``rel`` where it was (skipped or failed, at selection or later)."""
    full = display(os.path.join(world.src, rel))
    for key in ("skipped_files", "failed_files"):
        if any(item.get("path") == full for item in result.get(key) or []):
            return True
    return any(item.get("path") == display(rel) for item in result.get("selection_skipped_files") or [])


def _display_rel(rel):
    text = repr(rel)[1:]
    return text if len(text) <= 90 else text[:40] + "..." + text[-40:]


def check_world(world, final, result=None):
    """Check the state of ``world``; ``final`` after a run that finished (``result`` its output)."""
    rep = Report()
    move = world.cfg["mode"] == "move"
    codec = world.codec
    src_now = walk(world.src)
    dst_now = walk(world.dst)
    # Expected destination names and what each may hold (collisions: two originals, one name).
    claims = {}
    for rel, digest in world.files.items():
        claims.setdefault(dst_name(rel, codec), []).append((rel, digest))
    decoded = {}
    for name, st in dst_now.items():
        if name.split(b"/", 1)[0] == STATE_DIR or os.path.basename(name).startswith(TMP_PREFIX):
            continue
        if name in world.planted:
            target = os.readlink(os.path.join(world.dst, name)) if stat.S_ISLNK(st.st_mode) else None
            if target != world.planted[name]:
                rep.add("planted destination symlink replaced", _display_rel(name))
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        if not stat.S_ISREG(st.st_mode):
            rep.add("unexpected non-file at the destination", _display_rel(name))
            continue
        path = os.path.join(world.dst, name)
        decoded[name] = {c: decoded_sha(path, c) for c in {codec_for(rel, codec) for rel, _d in claims.get(name, [])}}
        if not any(decoded[name][codec_for(rel, codec)] == digest for rel, digest in claims.get(name, [])):
            rep.add("file at the destination that is no original's (partial, stray or damaged)", _display_rel(name))
    at_dst = {}
    for rel, digest in world.files.items():
        st = src_now.get(rel)
        here = st is not None and stat.S_ISREG(st.st_mode)
        if here and file_sha(os.path.join(world.src, rel)) != digest:
            rep.add("source file damaged", _display_rel(rel))
            here = False
        there = decoded.get(dst_name(rel, codec), {}).get(codec_for(rel, codec)) == digest
        at_dst[rel] = there
        if not final:
            if not (here or there):
                rep.add("content lost (neither at the source nor complete at the destination)", _display_rel(rel))
            continue
        if move and here + there != 1:
            what = "lost" if not (here or there) else "present twice (source and destination)"
            rep.add("content not present exactly once", "%s %s" % (_display_rel(rel), what))
        if not move and not here:
            rep.add("copy mode lost the source", _display_rel(rel))
        if not there and rel not in world.grouped and result is not None and not _reported(result, world, rel):
            rep.add("left behind without being reported by the second run", _display_rel(rel))
    if final and move:
        for group in world.groups:
            states = {at_dst[rel] for rel in group}
            if len(states) > 1:
                rep.add(
                    "hard-link group split",
                    "moved %s, kept %s (the run's hard_links_split: %s)"
                    % (
                        [_display_rel(r) for r in group if at_dst[r]],
                        [_display_rel(r) for r in group if not at_dst[r]],
                        (result or {}).get("hard_links_split"),
                    ),
                )
    for rel, target in world.links.items():
        st = src_now.get(rel)
        if st is None or not stat.S_ISLNK(st.st_mode) or os.readlink(os.path.join(world.src, rel)) != target:
            rep.add("source symlink changed", _display_rel(rel))
    after = world.listing()
    before = world.outside_before
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path):
            what = "created" if path not in before else "removed" if path not in after else "changed"
            rep.add("written outside the roots", "%s %s" % (what, _display_rel(path)))
    if final:
        for root in (world.src, world.dst):
            for rel in temp_files(root):
                rep.add("temporary file left", _display_rel(os.path.join(root, rel)))
        check_journal(world, rep, decoded, move)
    return rep


def check_journal(world, rep, decoded, move):
    path = os.path.join(world.dst, STATE_DIR, b"journal.jsonl")
    try:
        with open(path, "rb") as handle:
            lines = handle.read().split(b"\n")
    except FileNotFoundError:
        lines = []
        if decoded:
            rep.add("no journal although files are at the destination", _display_rel(path))
    if lines and lines[-1] == b"":
        lines.pop()
    recorded = {}
    for number, line in enumerate(lines, 1):
        try:
            rec = json.loads(line.decode("ascii"))
            assert isinstance(rec, dict) and "op" in rec
        except (ValueError, UnicodeDecodeError, AssertionError):
            rep.add("journal line does not parse", "line %d: %r" % (number, line[:120]))
            continue
        if rec["op"] in ("move", "copy"):
            recorded[os.fsencode(rec["dst"])] = rec
    for dst, rec in recorded.items():
        name = os.path.relpath(dst, world.dst)
        if name in decoded and decoded_sha(dst, rec.get("codec", "none")) != rec.get("sha256"):
            rep.add("journal record does not match the file it names", _display_rel(name))
    if move:
        for name in decoded:
            if os.path.join(world.dst, name) not in recorded:
                rep.add("file at the destination not in the journal (undo cannot restore it)", _display_rel(name))


# --------------------------------------------------------------------------- the test


def run_seed(seed, bases, lock_dir):
    """Return (failure text or None, stats dict) for one seed."""
    stats = {"killed": False, "mid_transfer": False}
    lines = []
    clean = World(seed, b"unkilled", *bases, lock_dir)
    try:
        head = "seed %d: %s" % (seed, clean.describe())
        result, duration, error = clean.run()
        if error:
            lines.append("  [unkilled run] module failed: %s" % error)
        elif result.get("failed"):
            lines.append("  [unkilled run] module failed: %s" % result.get("msg"))
        lines += check_world(clean, final=True, result=result or {}).lines("unkilled run")
    finally:
        clean.remove()
    world = World(seed, b"killed", *bases, lock_dir)
    try:
        override = os.environ.get("JTS_CRASH_KILL_AT")
        delay = float(override) if override else world.fraction * duration
        head += ", kill at %.3fs (%.2f of %.3fs)" % (delay, world.fraction, duration)
        stats["killed"] = world.run_killed(delay)
        # Did the kill land after the transfer began (anything but the planted links at the destination)?
        stats["mid_transfer"] = stats["killed"] and any(
            rel not in world.planted and os.path.dirname(rel) not in world.planted for rel in walk(world.dst)
        )
        if not stats["killed"]:
            head += ", finished before the kill"
        elif stats["mid_transfer"]:
            head += ", killed after the transfer began"
        lines += check_world(world, final=False).lines("after the kill")
        result, _took, error = world.run()
        if error:
            lines.append("  [second run] module failed: %s" % error)
        elif result.get("failed"):
            lines.append("  [second run] module failed: %s" % result.get("msg"))
        lines += check_world(world, final=True, result=result or {}).lines("after the second run")
    finally:
        world.remove()
    if not lines:
        return None, stats
    replay = "  replay: JTS_CRASH_SEEDS=%d, pytest -q %s -k crash" % (seed, Path(__file__).relative_to(ROOT))
    return "\n".join([head, *lines, replay]), stats


def test_tier_migrate_crash_kill9_then_rerun_loses_nothing(tmp_path, tmpfs_pair):
    seeds = parse_seeds(os.environ.get("JTS_CRASH_SEEDS", ""))
    bound = float(os.environ.get("JTS_CRASH_SECONDS") or DEFAULT_SECONDS)
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    start = time.monotonic()
    ran, killed, mid_transfer, failures = [], 0, 0, []
    for seed in seeds:
        if time.monotonic() - start > bound:
            break
        failure, stats = run_seed(seed, tmpfs_pair, lock_dir)
        ran.append(seed)
        killed += stats["killed"]
        mid_transfer += stats["mid_transfer"]
        if failure:
            failures.append(failure)
            print(failure, flush=True)
    elapsed = time.monotonic() - start
    summary = (
        "%d of %d seeds ran in %.1fs (bound %.0fs), %d killed mid-run (%d after the transfer began), %d failed: %s"
        % (
            len(ran),
            len(seeds),
            elapsed,
            bound,
            killed,
            mid_transfer,
            len(failures),
            ",".join(str(s) for s in ran),
        )
    )
    print(summary)
    assert len(ran) >= min(MIN_SEEDS, len(seeds)), "too few seeds in the time bound: " + summary
    assert killed * 2 >= len(ran), "most runs finished before the kill, nothing was tested: " + summary
    assert not failures, summary + "\n" + "\n".join(failures)
