# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's logic: policy, preflight, selection, the verified transfer and its undo.

Standard library only, Python 3.8. Paths are handled as bytes throughout, so names that are
not UTF-8 work; they are shown to people with ``display()``.

The transfer protocol for a batch of files (see docs/tier_migrate.md):

1. copy each source to ``.jts-migrate-<run>-<n>.tmp`` in its destination directory (in the
   kernel when uncompressed: ``copy_file_range``/``sendfile``, the source's holes kept; the
   ``zstd`` tool reading the source itself when compressed) and take the source's SHA-256 from
   the page cache (kept in the journal for undo); owner, group, mode and times kept; a source
   whose size, mtime or ctime moved during the copy is left alone and reported;
2. ``syncfs`` the destination filesystem (one flush per batch instead of one per file);
3. drop the temporary file's pages from the page cache, read it back from the disk
   (decompressing a compressed copy) and compare it byte for byte with the source; an undo's
   copy, decompressed from the tier, was hashed while written and its read-back must give the
   journal's hash;
4. check the source once more, then hard-link the temporary file to its final name (never
   overwriting anything) and remove the temporary name; the next ``syncfs`` (that of the next
   batch, or one more after the last) makes the names durable;
5. append the batch to the journal and fsync it;
6. only then remove the sources (move mode), each after checking it is still the file copied.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import operator
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import DEFAULT_LOCK_DIR, LockBusy, TreeLock
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_copy import (
    CODECS,
    SUFFIXES,
    CodecError,
    CopyError,
    compare_back,
    copy_content,
    copy_metadata,
    prefetch,
    read_back,
    same_stat,
    syncfs,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_journal import (
    Journal,
    JournalError,
    decode_path,
    encode_path,
    pending_undo,
    runs,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import (
    fstype_matches,
    mount_of,  # re-export for _backup_retention.py and _nas_archive_probe.py; the lead redirects it
    parse_mountinfo,
    read_mounts,  # re-export for _backup_retention.py and _nas_archive_probe.py; the lead redirects it
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    stat_with_timeout,
    statvfs_with_timeout,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    Tree,
    UnsafePath,
    append_private,
    read_private,
    rename_noreplace_at,
    split,
    truncate_private,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    parse_age,
    parse_size,
    parse_size_or_percent,
)

TMP_PREFIX = b".jts-migrate-"
TMP_SUFFIX = b".tmp"
STATE_DIR = b".jts-migrate"
REPORT_LIMIT = 1000
ALREADY_COMPRESSED = (b".gz", b".zst", b".xz", b".bz2", b".lz4", b".7z", b".zip", b".tgz")
ZSTD_LEVELS = (1, 22)
GZIP_LEVELS = (1, 9)
SWITCH_INTERVAL = 0.0005  # seconds; see Transfer.run_all


class MigrateError(Exception):
    """A run-level refusal or failure; nothing (more) was moved. The message says why."""


class DestinationFull(MigrateError):
    """The destination ran out of space mid-run."""


def display(path):
    """A printable form of a bytes path (bytes that are not UTF-8 shown as \\xNN)."""
    if isinstance(path, str):
        path = os.fsencode(path)
    return path.decode("utf-8", "backslashreplace")


# --------------------------------------------------------------------------- policy


class Policy:
    """The validated parameters of one run."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _abs(value, name):
    if not value:
        raise MigrateError("%s is required" % name)
    if not os.path.isabs(value):
        raise MigrateError("%s: %r is not an absolute path" % (name, value))
    return os.path.normpath(os.fsencode(value))


def build_policy(params):
    """Validate module parameters into a Policy; raise MigrateError naming the bad value."""
    p = params
    try:
        source = _abs(p.get("source"), "source")
        dest = _abs(p.get("destination"), "destination")
        older_than = parse_age(p.get("older_than", "7d"), "older_than")
        settle = parse_age(p.get("settle_time", "10m") or 0, "settle_time")
        min_size = parse_size(p["min_size"], "min_size") if p.get("min_size") not in (None, "") else None
        max_size = parse_size(p["max_size"], "max_size") if p.get("max_size") not in (None, "") else None
        max_bytes = parse_size(p["max_bytes"], "max_bytes") if p.get("max_bytes") not in (None, "") else None
        min_free = parse_size_or_percent(p.get("min_free") or "0", "min_free")
        batch_bytes = parse_size(p.get("batch_bytes") or "256M", "batch_bytes")
    except UnitError as exc:
        raise MigrateError(str(exc)) from exc
    codec = p.get("compression") or "none"
    if codec not in CODECS:
        raise MigrateError("compression: %r is not one of %s" % (codec, ", ".join(CODECS)))
    level = p.get("compression_level")
    if level is not None and codec != "none":
        low, high = ZSTD_LEVELS if codec == "zstd" else GZIP_LEVELS
        if not low <= int(level) <= high:
            raise MigrateError("compression_level: %r is outside %d..%d for %s" % (level, low, high, codec))
    if min_size is not None and max_size is not None and min_size > max_size:
        raise MigrateError("min_size %r is larger than max_size %r" % (p.get("min_size"), p.get("max_size")))
    max_files = p.get("max_files")
    if max_files is not None and int(max_files) < 0:
        raise MigrateError("max_files: %r is negative" % (max_files,))
    age_stamp = p.get("age_stamp") or "mtime"
    if age_stamp not in ("mtime", "atime", "ctime"):
        raise MigrateError("age_stamp: %r is not one of mtime, atime, ctime" % (age_stamp,))
    mode = p.get("mode") or "move"
    if mode not in ("move", "copy"):
        raise MigrateError("mode: %r is not one of move, copy" % (mode,))
    journal = p.get("journal")
    journal_default = not journal
    journal = _abs(journal, "journal") if journal else os.path.join(dest, STATE_DIR, b"journal.jsonl")
    return Policy(
        source=source,
        dest=dest,
        older_than=older_than,
        age_stamp=age_stamp,
        settle=settle,
        include=[os.fsencode(x) for x in (p.get("include") or [])],
        exclude=[os.fsencode(x) for x in (p.get("exclude") or [])],
        min_size=min_size,
        max_size=max_size,
        max_files=int(max_files) if max_files else None,
        max_bytes=max_bytes or None,
        codec=codec,
        level=int(level) if level is not None else None,
        mode=mode,
        require_mounted=bool(p.get("require_mounted", True)),
        source_mount=_abs(p["source_mount"], "source_mount") if p.get("source_mount") else None,
        dest_mount=_abs(p["destination_mount"], "destination_mount") if p.get("destination_mount") else None,
        source_fstype=p.get("source_fstype") or None,
        dest_fstype=p.get("destination_fstype") or None,
        min_free=min_free,
        check_space=bool(p.get("check_space", True)),
        journal=journal,
        journal_default=journal_default,
        run_id=p.get("run_id") or None,
        one_filesystem=bool(p.get("one_filesystem", True)),
        probe_timeout=float(p.get("probe_timeout") or 10),
        lock_dir=os.fsdecode(p.get("lock_dir") or DEFAULT_LOCK_DIR),
        drop_metadata=bool(p.get("drop_unsupported_metadata", False)),
        batch_files=int(p.get("batch_files") or 1000),
        batch_bytes=batch_bytes,
    )


# --------------------------------------------------------------------------- preflight


def _probe(path, name, timeout, probe_fn):
    """``probe_fn(path, timeout)`` with its failures turned into refusals that name the end."""
    try:
        return probe_fn(path, timeout)
    except ProbeTimeout as exc:
        raise MigrateError(
            "%s %s does not answer within %.0fs (a stalled NFS mount?); nothing was moved"
            % (name, display(path), timeout)
        ) from exc
    except FileNotFoundError as exc:
        raise MigrateError("%s %s does not exist; nothing was moved" % (name, display(path))) from exc
    except OSError as exc:
        raise MigrateError("%s %s: %s; nothing was moved" % (name, display(path), exc.strerror or exc)) from exc


def _probe_dir(path, name, timeout, stat_fn):
    st = _probe(path, name, timeout, stat_fn)
    if not stat.S_ISDIR(st["st_mode"]):
        raise MigrateError("%s %s is not a directory; nothing was moved" % (name, display(path)))
    return st


def _ancestors(path):
    """``path`` and each parent up to ``/`` (bytes, real path)."""
    out = [path]
    while path != b"/":
        path = os.path.dirname(path)
        out.append(path)
    return out


def check_overlap(source, dest):
    """Raise MigrateError when one tree contains the other, by path or by device and inode.

    Device/inode comparison catches symlinked parents and bind mounts of the same tree.
    """
    rs, rd = os.path.realpath(source), os.path.realpath(dest)
    if rs == rd:
        raise MigrateError("source and destination are the same directory (%s); refusing" % display(rs))
    if rd.startswith(rs.rstrip(b"/") + b"/"):
        raise MigrateError("destination %s is inside source %s; refusing" % (display(dest), display(source)))
    if rs.startswith(rd.rstrip(b"/") + b"/"):
        raise MigrateError("source %s is inside destination %s; refusing" % (display(source), display(dest)))
    s_st, d_st = os.stat(rs), os.stat(rd)
    s_id, d_id = (s_st.st_dev, s_st.st_ino), (d_st.st_dev, d_st.st_ino)
    for anc in _ancestors(rd):
        st = os.stat(anc)
        if (st.st_dev, st.st_ino) == s_id:
            raise MigrateError(
                "destination %s is inside source %s (same directory seen through a bind mount or link); refusing"
                % (display(dest), display(source))
            )
    for anc in _ancestors(rs):
        st = os.stat(anc)
        if (st.st_dev, st.st_ino) == d_id:
            raise MigrateError(
                "source %s is inside destination %s (same directory seen through a bind mount or link); refusing"
                % (display(source), display(dest))
            )
    return rs, rd


def _fs_path(real, mount):
    """Where ``real`` lies inside its filesystem: the mount's root plus the path below the mount point."""
    mp = mount["mount_point"]
    below = real[len(mp) :] if mp != b"/" else real
    return (mount.get("root", b"/").rstrip(b"/") + b"/" + below.lstrip(b"/")).rstrip(b"/") or b"/"


def check_bind_overlap(policy, rs, rd, s_mount, d_mount):
    """Refuse trees that overlap inside one filesystem reached through two mounts (bind mounts)."""
    if not s_mount or not d_mount or s_mount.get("dev") is None or s_mount.get("dev") != d_mount.get("dev"):
        return
    fs_s, fs_d = _fs_path(rs, s_mount), _fs_path(rd, d_mount)
    for inner, outer, what in (
        (fs_d, fs_s, "destination %s is inside source %s"),
        (fs_s, fs_d, "source %s is inside destination %s"),
    ):
        if inner == outer or inner.startswith(outer.rstrip(b"/") + b"/"):
            names = (policy.dest, policy.source) if inner is fs_d else (policy.source, policy.dest)
            raise MigrateError(
                (what + " (the same filesystem %s seen through a bind mount or link); refusing")
                % (display(names[0]), display(names[1]), d_mount["dev"])
            )


def preflight(policy, mounts=None, stat_fn=stat_with_timeout, root_dev=None, statfs_fn=statvfs_with_timeout):
    """Check both ends; return (info dict, warnings). Raise MigrateError when a run must not start."""
    warnings = []
    _probe_dir(policy.source, "source", policy.probe_timeout, stat_fn)
    d_st = _probe_dir(policy.dest, "destination", policy.probe_timeout, stat_fn)
    # The NFS client answers stat from its attribute cache for up to acdirmax seconds after the
    # last access; statfs always asks the server, so a NAS that just went away is found here,
    # not in the run's first uncached call.
    _probe(policy.dest, "destination", policy.probe_timeout, statfs_fn)
    rs, rd = check_overlap(policy.source, policy.dest)
    if mounts is None:
        mounts = read_mounts()
    s_mount, d_mount = mount_of(rs, mounts), mount_of(rd, mounts)
    check_bind_overlap(policy, rs, rd, s_mount, d_mount)
    if root_dev is None:
        root_dev = os.stat(b"/").st_dev
    if policy.require_mounted and d_st["st_dev"] == root_dev:
        raise MigrateError(
            "destination %s is on the root filesystem, not on a mounted filesystem (is it mounted?); "
            "nothing was moved (set require_mounted: false to allow this)" % display(policy.dest)
        )
    for name, want, have in (
        ("source_mount", policy.source_mount, s_mount),
        ("destination_mount", policy.dest_mount, d_mount),
    ):
        if want is None:
            continue
        real_want = os.path.realpath(want)
        if have is None or have["mount_point"] != real_want:
            raise MigrateError(
                "%s: %s is expected to be a mount point holding the tree, but the tree is on %s; nothing was moved"
                % (name, display(want), display(have["mount_point"]) if have else "no known mount")
            )
    for name, want, have in (
        ("source_fstype", policy.source_fstype, s_mount),
        ("destination_fstype", policy.dest_fstype, d_mount),
    ):
        if want and (have is None or not fstype_matches(have["fstype"], want)):
            raise MigrateError(
                "%s: expected %s but %s is %s; nothing was moved"
                % (name, want, display(have["mount_point"]) if have else "?", have["fstype"] if have else "unknown")
            )
    if policy.age_stamp == "atime" and s_mount and ("noatime" in s_mount["options"]):
        warnings.append(
            "age_stamp atime asked for, but %s is mounted noatime: access times are not kept there, "
            "so ages by atime are really ages since creation or the last write" % display(s_mount["mount_point"])
        )
    return {"source_real": rs, "dest_real": rd, "source_mount": s_mount, "dest_mount": d_mount}, warnings


def free_bytes(path, stat_fn=None):
    st = os.statvfs(path) if stat_fn is None else stat_fn(path)
    if isinstance(st, dict):
        return st["f_bavail"] * st["f_frsize"], st["f_blocks"] * st["f_frsize"]
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def check_space(policy, needed, free, total):
    """Raise MigrateError unless ``free`` covers ``needed`` plus the ``min_free`` margin."""
    kind, value = policy.min_free
    margin = int(total * value / 100.0) if kind == "percent" else int(value)
    if needed + margin > free:
        raise MigrateError(
            "destination %s has %d bytes free; the %d selected bytes plus the min_free margin of %d bytes "
            "do not fit; nothing was moved" % (display(policy.dest), free, needed, margin)
        )
    return margin


# --------------------------------------------------------------------------- selection


class Selection:
    def __init__(self):
        self.items = []  # (rel bytes, stat_result)
        self.scanned = 0
        self.skipped = {}
        self.skipped_files = []

    def skip(self, reason, rel=None, size=0):
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if rel is not None and len(self.skipped_files) < REPORT_LIMIT:
            self.skipped_files.append({"path": display(rel), "reason": reason, "size": size})


def _match_any(rel, name, patterns):
    return any(fnmatch.fnmatchcase(rel if b"/" in pat else name, pat) for pat in patterns)


class _Rules:
    """The per-entry selection rules, shared by the find-based and the walking selector.

    Regular files are judged by age first (the cheap test ``find`` can do for us), then by
    include/exclude, settle time and size; other entries by include/exclude, then reported by type.
    """

    def __init__(self, policy, now):
        self.cutoff = now - policy.older_than
        self.settle_cutoff = now - policy.settle
        self.get_stamp = operator.attrgetter("st_" + policy.age_stamp)
        self.include, self.exclude = policy.include, policy.exclude
        self.min_size, self.max_size = policy.min_size, policy.max_size

    def filtered(self, sel, rel, name):
        """True when include/exclude leave the entry out (counted, not listed: there can be many)."""
        if self.include and not _match_any(rel, name, self.include):
            sel.skipped["not included"] = sel.skipped.get("not included", 0) + 1
            return True
        if self.exclude and _match_any(rel, name, self.exclude):
            sel.skipped["excluded"] = sel.skipped.get("excluded", 0) + 1
            return True
        return False

    def judge(self, sel, rel, name, st):
        """Add a non-directory entry to the selection or record why it stays."""
        if stat.S_ISREG(st.st_mode):
            if self.get_stamp(st) > self.cutoff:
                sel.skipped["too young"] = sel.skipped.get("too young", 0) + 1
                return
            if self.filtered(sel, rel, name):
                return
            if st.st_mtime > self.settle_cutoff:
                sel.skip("changed within settle_time", rel, st.st_size)
            elif self.min_size is not None and st.st_size < self.min_size:
                sel.skipped["smaller than min_size"] = sel.skipped.get("smaller than min_size", 0) + 1
            elif self.max_size is not None and st.st_size > self.max_size:
                sel.skip("larger than max_size", rel, st.st_size)
            else:
                sel.items.append((rel, st))
            return
        if self.filtered(sel, rel, name):
            return
        sel.skip("symlink (not followed)" if stat.S_ISLNK(st.st_mode) else "not a regular file", rel)


def select_files(policy, now=None, dest_id=None, dest_path=None, find_bin=None):
    """Return the Selection for ``policy``: files old enough under the source, oldest first, capped.

    Symlinks are never followed. With GNU ``find`` at hand (``find_bin``) the walk runs in
    ``find`` and only what it cannot rule out by age comes back to be ``lstat``-ed here (about
    the speed of ``find -mtime`` itself on a million entries); without it, or when ``find``
    reports any error, a walk in Python gives the same selection with a reason per entry.
    """
    now = time.time() if now is None else now
    rules = _Rules(policy, now)
    sel = None
    if find_bin and _find_can_prune(policy):
        sel = _select_with_find(policy, rules, find_bin, dest_path)
    if sel is None:
        sel = _select_with_walk(policy, rules, dest_id)
    sel.items.sort(key=lambda item: (rules.get_stamp(item[1]), item[0]))
    if policy.max_files is not None or policy.max_bytes is not None:
        kept, total = [], 0
        for rel, st in sel.items:
            if (policy.max_files is not None and len(kept) >= policy.max_files) or (
                policy.max_bytes is not None and total + st.st_size > policy.max_bytes
            ):
                sel.skipped["over the per-run cap"] = sel.skipped.get("over the per-run cap", 0) + 1
                continue
            kept.append((rel, st))
            total += st.st_size
        sel.items = kept
    return sel


_GLOB_SPECIAL = re.compile(rb"[][*?\\]")


def _find_can_prune(policy):
    """find's -name/-path globs agree with fnmatch for plain * and ? patterns, not for [] or \\."""
    if any(re.search(rb"[][\\]", pat) for pat in policy.exclude):
        return False
    return not (any(b"/" in pat for pat in policy.exclude) and _GLOB_SPECIAL.search(policy.source))


def _find_argv(policy, find_bin, young_path, dest_path, cutoff):
    """find's argument list: prune our own state, excluded and destination directories; print
    directories, symlinks, other entries and every regular file not certainly too young; count
    the certainly-too-young ones as one byte each in ``young_path``."""
    root = policy.source
    newer = "-newer%st" % policy.age_stamp[0]  # -newermt / -newerat / -newerct
    argv = [find_bin, "-P", root, "-mindepth", "1"]
    if policy.one_filesystem:
        argv.append("-xdev")
    argv += ["(", "-name", TMP_PREFIX + b"*", "-o", "-name", STATE_DIR, ")", "-prune", "-o"]
    if policy.exclude:
        tests = []
        for pat in policy.exclude:
            tests += ["-o", "-path", root.rstrip(b"/") + b"/" + pat] if b"/" in pat else ["-o", "-name", pat]
        argv += ["-type", "d", "(", *tests[1:], ")", "-printf", "e%P\\0", "-prune", "-o"]
    if dest_path is not None:
        argv += ["-type", "d", "-samefile", dest_path, "-printf", "x%P\\0", "-prune", "-o"]
    argv += [
        "-type", "d", "-printf", "d%D %P\\0",
        "-o", "-type", "f", newer, "@%d" % (int(cutoff) + 2), "-fprintf", young_path, "y",
        "-o", "-printf", "f%P\\0",
    ]  # fmt: skip
    return argv


def _select_with_find(policy, rules, find_bin, dest_path):
    """Selection from one ``find`` run; None when find did not run cleanly (the walk takes over)."""
    sel = Selection()
    root = policy.source
    root_dev = os.lstat(root).st_dev
    # An unnamed file (find writes it through /dev/fd): a kill -9 leaves nothing behind.
    with tempfile.TemporaryFile(prefix="jts-migrate-young-") as young:
        fd = young.fileno()
        argv = _find_argv(policy, find_bin, b"/dev/fd/%d" % fd, dest_path, rules.cutoff)
        try:
            proc = subprocess.run(
                argv, capture_output=True, env=dict(os.environ, LC_ALL="C"), check=False, pass_fds=(fd,)
            )
        except OSError:
            return None
        if proc.returncode != 0 or proc.stderr:
            return None
        young_count = os.fstat(young.fileno()).st_size
    records = proc.stdout.split(b"\0")
    records.pop()  # after the last NUL
    scanned = young_count
    if young_count:
        sel.skipped["too young"] = young_count
    for record in records:
        kind, rel = record[:1], record[1:]
        scanned += 1
        if kind == b"f":
            try:
                st = os.lstat(os.path.join(root, rel))
            except OSError as exc:
                sel.skip("cannot stat: %s" % (exc.strerror or exc), rel)
                continue
            rules.judge(sel, rel, rel.rpartition(b"/")[2], st)
        elif kind == b"d":
            dev, _sep, rel = rel.partition(b" ")
            if policy.one_filesystem and int(dev) != root_dev:
                sel.skip("another filesystem", rel)
        elif kind == b"x":
            sel.skip("is the destination", rel)
        elif kind != b"e":  # an excluded directory is counted like the walk counts it, nothing more
            return None
    sel.scanned = scanned
    return sel


def _select_with_walk(policy, rules, dest_id):
    """Walk the source in Python (never following symlinks); the fallback of the find selector."""
    sel = Selection()
    root = policy.source
    root_dev = os.lstat(root).st_dev
    exclude = policy.exclude
    one_fs = policy.one_filesystem
    scanned = 0
    stack = [b""]
    while stack:
        rel_dir = stack.pop()
        path = os.path.join(root, rel_dir) if rel_dir else root
        prefix = rel_dir + b"/" if rel_dir else b""
        try:
            it = os.scandir(path)
        except OSError as exc:
            sel.skip("directory not readable: %s" % (exc.strerror or exc), rel_dir or b".")
            continue
        with it:
            for entry in it:
                name = entry.name
                if name[:1] == b"." and (name.startswith(TMP_PREFIX) or name == STATE_DIR):
                    continue
                scanned += 1
                rel = prefix + name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if exclude and _match_any(rel, name, exclude):
                            continue
                        if one_fs or dest_id is not None:
                            dst = entry.stat(follow_symlinks=False)
                            if dest_id is not None and (dst.st_dev, dst.st_ino) == dest_id:
                                sel.skip("is the destination", rel)
                                continue
                            if one_fs and dst.st_dev != root_dev:
                                sel.skip("another filesystem", rel)
                                continue
                        stack.append(rel)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    sel.skip("cannot stat: %s" % (exc.strerror or exc), rel)
                    continue
                rules.judge(sel, rel, name, st)
    sel.scanned = scanned
    return sel


def dest_codec_for(rel, codec):
    """The codec used for this file: none for names that are already compressed."""
    if codec != "none" and rel.lower().endswith(ALREADY_COMPRESSED):
        return "none"
    return codec


# --------------------------------------------------------------------------- transfer


class Job:
    """One file to transfer: ``src_rel`` below the source tree -> ``dst_rel`` below the destination
    tree (bytes), content codecs on each side. ``links`` are other names of the same file (hard
    links) that follow it; ``src``/``dst`` are the full paths, for reports and the journal."""

    __slots__ = (
        "compare",
        "digest",
        "dst",
        "dst_codec",
        "dst_dir",
        "dst_rel",
        "expect",
        "length",
        "level",
        "links",
        "prefetched",
        "record",
        "rel",
        "sel_st",
        "size",
        "src",
        "src_codec",
        "src_dir",
        "src_rel",
        "st",
        "tmp",
        "tmp_ino",
    )

    def __init__(self, rel, src, dst, src_codec="none", dst_codec="none", level=None, sel_st=None, expect=None):
        self.rel = rel
        self.src = src
        self.dst = dst
        self.src_rel = None
        self.dst_rel = None
        self.src_codec = src_codec
        self.dst_codec = dst_codec
        self.level = level
        self.sel_st = sel_st
        self.expect = expect
        self.size = sel_st.st_size if sel_st is not None else 0
        self.compare = False
        self.st = None
        self.tmp = None
        self.tmp_ino = None
        self.digest = None
        self.length = None
        self.record = None
        self.prefetched = False
        self.src_dir = None
        self.dst_dir = None
        self.links = []

    def at(self, src_tree, dst_tree):
        """Set the paths relative to the two trees (from the full paths)."""
        self.src_rel = _rel_below(self.src, src_tree.root)
        self.dst_rel = _rel_below(self.dst, dst_tree.root)
        return self


def _rel_below(path, root):
    rel = os.path.relpath(path, root)
    if rel == b"." or rel.startswith(b"../") or rel == b"..":
        raise MigrateError("%s is not below %s" % (display(path), display(root)))
    return rel


class TempRegistry:
    """Remembers (durably) the directories where temporary files were made, to clean them later.

    One JSON line per directory (a tree root and the directory below it), so any name works; a
    directory is walked to again without following links before anything in it is removed.
    """

    def __init__(self, path):
        self.path = path
        self.known = set()

    def add(self, root, rel_dir):
        self.add_many(root, (rel_dir,))

    def add_many(self, root, rel_dirs):
        """Record the directories not recorded yet with one append (one flush)."""
        lines = []
        for rel_dir in rel_dirs:
            key = (root, rel_dir)
            if key in self.known:
                continue
            self.known.add(key)
            lines.append(json.dumps({"root": encode_path(root), "dir": encode_path(rel_dir)}, ensure_ascii=True))
        if lines:
            append_private(self.path, ("\n".join(lines) + "\n").encode("ascii"))

    def entries(self):
        found = set(self.known)
        try:
            data = read_private(self.path)
        except FileNotFoundError:
            data = b""
        for raw in data.split(b"\n"):
            try:
                rec = json.loads(raw.decode("ascii"))
                found.add((decode_path(rec["root"]), decode_path(rec["dir"])))
            except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                continue  # a torn line: that directory is found by the next add
        return found

    def clean(self):
        """Remove our temporary files from every registered directory; return how many."""
        removed = 0
        by_root = {}
        for root, rel_dir in self.entries():
            by_root.setdefault(root, set()).add(rel_dir)
        for root, dirs in by_root.items():
            try:
                tree = Tree(root)
            except OSError:
                continue
            with tree:
                for rel_dir in dirs:
                    try:
                        handle = tree.acquire(rel_dir)
                    except (OSError, UnsafePath):
                        continue
                    try:
                        for name in os.listdir(handle.fd):
                            name = os.fsencode(name)
                            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                                try:
                                    os.unlink(name, dir_fd=handle.fd)
                                    removed += 1
                                except FileNotFoundError:
                                    pass
                    finally:
                        tree.release(handle)
        truncate_private(self.path)
        self.known = set()
        return removed


class Outcome:
    """Counts and capped lists for the module result."""

    def __init__(self):
        self.done = []
        self.done_count = 0
        self.done_bytes = 0
        self.skipped = {}
        self.skipped_count = 0
        self.skipped_bytes = 0
        self.skipped_files = []
        self.failed_files = []
        self.failed_count = 0
        self.failed_bytes = 0
        self.links_split = 0
        self.warnings = []
        self._lock = threading.Lock()  # the staging and the finishing thread both report

    def ok(self, job):
        with self._lock:
            self.done_count += 1
            self.done_bytes += job.size
            if len(self.done) < REPORT_LIMIT:
                self.done.append({"src": display(job.src), "dst": display(job.dst), "size": job.size})

    def skip(self, job, reason):
        with self._lock:
            self.skipped_count += 1
            self.skipped_bytes += job.size
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            if len(self.skipped_files) < REPORT_LIMIT:
                self.skipped_files.append({"path": display(job.src), "reason": reason, "size": job.size})

    def fail(self, job, reason):
        with self._lock:
            self.failed_count += 1
            self.failed_bytes += job.size
            if len(self.failed_files) < REPORT_LIMIT:
                self.failed_files.append({"path": display(job.src), "reason": reason, "size": job.size})

    def warn(self, message):
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(message)


class _Skip(Exception):
    pass


_NOT_THE_JOURNALS = "content does not match the journal's checksum"
_UNSAFE_SRC = "a parent directory at the source is a symlink or not a directory; not followed"
_UNSAFE_DST = "a directory on the way at the destination is a symlink or not a directory; left alone"


class Transfer:
    """Runs batches of Jobs through the verified-copy protocol.

    ``op`` is ``move``, ``copy`` or ``undo``; ``src``/``dst`` are the two Trees: every file is
    reached from their roots without following symlinks and every operation is made relative
    to a directory descriptor, so nothing a user plants below a root can send a write or an
    unlink elsewhere. Directories made at the destination take the owner and mode of the same
    directory at the source.
    """

    # Where the SHA-256 of an uncompressed source is taken: by the copying thread right after its
    # copy (reading the source again from the page cache), or by the finishing thread while it
    # compares the read-back with the source. Both give the same digest.
    HASH_WHILE_COPYING = True

    def __init__(self, op, src, dst, journal, run_id, registry, outcome, zstd_bin=None, drop_metadata=False):
        self.op = op
        self.src = src
        self.dst = dst
        self.journal = journal
        self.run_id = run_id
        self.registry = registry
        self.outcome = outcome
        self.zstd_bin = zstd_bin
        self.keep_owner = dst.keep_owner
        self.drop_metadata = drop_metadata
        self._counter = 0
        self._tag = run_id.encode("ascii", "replace")[-8:].replace(b"/", b"_")

    # -- directory handles held by a job from its staging to its end
    def _open_dirs(self, job):
        src_parent, _name = split(job.src_rel)
        try:
            job.src_dir = self.src.acquire(src_parent)
        except UnsafePath as exc:
            raise _Skip(_UNSAFE_SRC) from exc
        except FileNotFoundError as exc:
            raise _Skip("vanished before the copy") from exc
        dst_parent, _name = split(job.dst_rel)
        try:
            job.dst_dir = self.dst.acquire(dst_parent, create=True)
        except UnsafePath as exc:
            raise _Skip(_UNSAFE_DST) from exc

    def _close_dirs(self, job):
        for each in (job, *job.links):
            self._close_dirs_of(each)

    def _drop_tmp(self, job):
        if job.tmp is not None and job.dst_dir is not None:
            _unlink_quiet(job.tmp, job.dst_dir.fd)
        job.tmp = None

    # -- step 1
    def stage(self, job):
        self._open_dirs(job)
        self._open_links(job)
        name = split(job.src_rel)[1]
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise _Skip("vanished before the copy") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Skip("symlink (not followed)") from exc
            raise CopyError("cannot open: %s" % (exc.strerror or exc), exc.errno) from exc
        tfd = None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _Skip("not a regular file")
            if job.sel_st is not None and not same_stat(st, job.sel_st):
                raise _Skip("changed since it was selected")
            job.st = st
            self.registry.add(self.dst.root, split(job.dst_rel)[0])
            self._counter += 1
            job.tmp = TMP_PREFIX + self._tag + b"-%d" % self._counter + TMP_SUFFIX
            tfd = os.open(
                job.tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=job.dst_dir.fd,
            )
            try:
                job.digest, job.length = copy_content(
                    fd, tfd, st.st_size, job.src_codec, job.dst_codec, job.level, self.zstd_bin, self.HASH_WHILE_COPYING
                )
                job.compare = job.src_codec == "none"
            except CodecError:
                raise
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                if exc.filename is None and exc.errno in (errno.EIO, errno.EACCES, errno.EISDIR):
                    raise CopyError("cannot read: %s" % (exc.strerror or exc), exc.errno) from exc
                raise
            after = os.fstat(fd)
            if not same_stat(st, after) or (job.src_codec == "none" and job.length != st.st_size):
                raise _Skip("changed during the copy (left at the source)")
            if job.expect is not None and job.digest is not None and job.digest != job.expect:
                raise CopyError(_NOT_THE_JOURNALS)
            warning = copy_metadata(tfd, st, self.keep_owner, src_fd=fd, drop_unsupported=self.drop_metadata)
            if warning:
                self.outcome.warn(warning)
            job.tmp_ino = os.fstat(tfd).st_ino
        except BaseException:
            if tfd is not None:
                os.close(tfd)
                tfd = None
            self._drop_tmp(job)
            raise
        finally:
            if tfd is not None:
                os.close(tfd)
            os.close(fd)

    def _open_links(self, job):
        """Directory handles for the other names of a hard-linked file. The names go together or
        not at all: one that cannot be reached safely keeps every name at the source."""
        for link in job.links:
            try:
                self._open_dirs(link)
            except _Skip as exc:
                raise _Skip("hard link %s: %s; all its names left at the source" % (display(link.rel), exc)) from exc

    def _close_dirs_of(self, link):
        for attr, tree in (("src_dir", self.src), ("dst_dir", self.dst)):
            handle = getattr(link, attr)
            if handle is not None:
                tree.release(handle)
                setattr(link, attr, None)

    # -- steps 3 and 4
    def _open_tmp(self, job):
        return os.open(job.tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=job.dst_dir.fd)

    def prefetch(self, job):
        """Drop the flushed copy's cached pages and queue its read from the disk (no wait)."""
        try:
            fd = self._open_tmp(job)
        except OSError:
            return  # verify() reports it
        try:
            job.prefetched = prefetch(fd)
        finally:
            os.close(fd)

    def verify(self, job):
        """Step 3: the flushed copy, read back from the disk, against the source.

        A copy made from an uncompressed source is compared byte for byte with the source (which
        is hashed on the way when the copying step did not hash it); a copy decompressed from a
        tier copy (an undo) was hashed while it was written and its read-back is hashed again.
        """
        fd = self._open_tmp(job)
        try:
            if job.compare:
                digest, job.length = self._compare(job, fd, hashing=job.digest is None)
                job.digest = job.digest or digest
                if job.expect is not None and job.digest != job.expect:
                    raise CopyError(_NOT_THE_JOURNALS)
                return
            digest, length = read_back(fd, job.dst_codec, self.zstd_bin, prefetched=job.prefetched)
        finally:
            os.close(fd)
        if digest != job.digest or length != job.length:
            raise CopyError("verification failed: the copy read back from the disk differs")

    def _compare(self, job, fd, hashing):
        name = split(job.src_rel)[1]
        try:
            sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise _Skip("vanished during the copy") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Skip("changed during the copy (left at the source)") from exc
            raise
        changed = _Skip("changed during the copy (left at the source)")
        try:
            if not same_stat(os.fstat(sfd), job.st):
                raise changed
            try:
                result = compare_back(fd, sfd, job.dst_codec, self.zstd_bin, job.prefetched, hashing)
            except CopyError:
                if not same_stat(os.fstat(sfd), job.st):
                    raise changed from None
                raise
            if not same_stat(os.fstat(sfd), job.st):
                raise changed
            return result
        finally:
            os.close(sfd)

    def _still_same(self, job):
        try:
            now = os.lstat(split(job.src_rel)[1], dir_fd=job.src_dir.fd)
        except FileNotFoundError as exc:
            raise _Skip("vanished during the copy") from exc
        if not same_stat(now, job.st):
            raise _Skip("changed during the copy (left at the source)")

    def place(self, job):
        """Link the verified temporary file to its final name, never over anything."""
        self._still_same(job)
        name = split(job.dst_rel)[1]
        fd = job.dst_dir.fd
        try:
            rename_noreplace_at(fd, job.tmp, fd, name)
        except FileExistsError:
            self._existing(job)
            self._place_links(job, placed_here=False)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links here (some FUSE/SMB filesystems): check, then a plain rename.
            try:
                os.lstat(name, dir_fd=fd)
                self._existing(job)
                return
            except FileNotFoundError:
                os.rename(job.tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        job.tmp = None
        self._place_links(job, placed_here=True)

    def _place_links(self, job, placed_here):
        """Give the placed copy the other names the source file has (hard links), all or none:
        when one cannot be made, the names made so far and the copy placed by this run go again
        (nothing is journalled yet) and every name stays at the source."""
        made = []
        leader_name = split(job.dst_rel)[1]
        for link in job.links:
            link.st, link.digest, link.length = job.st, job.digest, job.length
            name = split(link.dst_rel)[1]
            try:
                os.link(leader_name, name, src_dir_fd=job.dst_dir.fd, dst_dir_fd=link.dst_dir.fd, follow_symlinks=False)
                made.append(link)
                continue
            except FileExistsError:
                have = os.lstat(name, dir_fd=link.dst_dir.fd)
                mine = os.lstat(leader_name, dir_fd=job.dst_dir.fd)
                if (have.st_dev, have.st_ino) == (mine.st_dev, mine.st_ino):
                    continue  # linked by an earlier run that stopped half-way
                reason = "destination exists"
            except OSError as exc:
                reason = exc.strerror or str(exc)
            for done in made:
                _unlink_quiet(split(done.dst_rel)[1], done.dst_dir.fd)
            if placed_here:
                mine = os.lstat(leader_name, dir_fd=job.dst_dir.fd)
                if mine.st_ino == job.tmp_ino:
                    os.unlink(leader_name, dir_fd=job.dst_dir.fd)
            raise _Skip(
                "hard link %s not made at the destination (%s); all its names left at the source"
                % (display(link.rel), reason)
            )

    def _existing(self, job):
        self._drop_tmp(job)
        name = split(job.dst_rel)[1]
        try:
            have = os.lstat(name, dir_fd=job.dst_dir.fd)
            if stat.S_ISLNK(have.st_mode):
                raise _Skip("destination exists (a symlink); left alone")
            if (have.st_dev, have.st_ino) == (job.st.st_dev, job.st.st_ino):
                raise CopyError("the destination is the source file itself (reached through a link); nothing removed")
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=job.dst_dir.fd)
            try:
                digest, length = read_back(fd, job.dst_codec, self.zstd_bin)
            finally:
                os.close(fd)
        except (OSError, CodecError) as exc:
            raise _Skip("destination exists and cannot be compared: %s" % exc) from exc
        if digest != job.digest or length != job.length:
            raise _Skip("destination exists with different content; left alone")
        # Same content already there (an earlier run stopped after placing it): finish the job.

    # -- step 6
    def remove_source(self, job):
        """Remove the source (every name of it), each checked to be the file copied; False if kept."""
        names = [job, *job.links]
        for each in names:
            try:
                now = os.lstat(split(each.src_rel)[1], dir_fd=each.src_dir.fd)
            except FileNotFoundError:
                continue
            if not same_stat(now, job.st):
                self.outcome.warn(
                    "%s changed after it was copied; both copies kept, the destination holds the earlier content"
                    % display(each.src)
                )
                return False
        for each in names:
            try:
                os.unlink(split(each.src_rel)[1], dir_fd=each.src_dir.fd)
            except FileNotFoundError:
                pass
        return True

    def run_batch(self, jobs):
        """Transfer ``jobs``; raise DestinationFull when the destination filled up."""
        staged, full = self.stage_batch(jobs)
        self.finish_batch(staged)
        self._raise_full(full)

    def run_all(self, batch_iter):
        """Transfer every batch, staging the next one while the previous one is finished.

        Step 1 (copy) of batch N+1 runs in this thread while steps 2-6 of batch N (flush, read
        back and compare, place, journal, remove the sources) run in a second one; at most two
        batches are in flight. One flush serves two batches: the flush that makes batch N+1's
        data durable also makes batch N's new names durable, and only after it are batch N's
        records journalled and its sources removed (a last flush commits the last batch). The
        per-file protocol is unchanged: nothing is journalled or removed before the flush that
        follows its placing.
        """
        full = None
        pending = None
        carry = []
        pool = ThreadPoolExecutor(max_workers=1)
        # Both threads spend most of their time in system calls: hand the GIL over sooner than
        # the default 5 ms, so neither waits on the other's bookkeeping.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            for batch in batch_iter:
                staged, full = self.stage_batch(batch)
                if pending is not None:
                    carry, pending = pending.result(), None
                if staged or carry:
                    pending = pool.submit(self.finish_batch, staged, carry, False)
                    carry = []
                if full is not None:
                    break
            if pending is not None:
                carry, pending = pending.result(), None
            if carry:
                done, carry = carry, []
                self.finish_batch([], done)
        finally:
            # After an error in this thread the batch in flight still finishes and what it placed
            # is committed; an error of that work is not raised over the one that stopped the run.
            if pending is not None:
                try:
                    carry = pending.result()
                except BaseException:
                    carry = []
            if carry:
                try:
                    self.finish_batch([], carry)
                except Exception as exc:  # reported, not raised over the first error
                    self.outcome.warn("placed files not committed after the run stopped (the next run does): %s" % exc)
            pool.shutdown(wait=True)
            sys.setswitchinterval(interval)
        self._raise_full(full)

    def stage_batch(self, jobs):
        """Step 1 for each job; return the staged jobs and the ENOSPC error that stopped it, if any."""
        staged = []
        # Every directory that gets a temporary file is recorded before it gets one: the whole
        # batch's with one flush (stage() checks each again), not one flush per directory.
        self.registry.add_many(self.dst.root, sorted({split(job.dst_rel)[0] for job in jobs}))
        for i, job in enumerate(jobs):
            try:
                self.stage(job)
                staged.append(job)
                continue
            except _Skip as exc:
                self._skip_all(job, str(exc))
            except (CopyError, CodecError) as exc:
                self._fail_all(job, exc.reason)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    for left in jobs[i:]:
                        self._close_dirs(left)
                    return staged, exc
                self._fail_all(job, "%s" % (exc.strerror or exc))
            self._close_dirs(job)
        return staged, None

    def finish_batch(self, staged, carry=(), flush=True):
        """Steps 2 to 6 for the staged jobs of one batch.

        ``carry``: jobs of the previous batch placed but not committed yet; the first flush here
        makes their names durable, then they are committed (journal, sources). With ``flush``
        the jobs placed here are flushed and committed before returning; without it they are
        returned, to be the ``carry`` of the next batch. Returns the jobs not committed yet.
        """
        carried = []
        try:
            if staged or carry:
                syncfs(self.dst.root)
            if carry:
                self.commit(carry)
            for job in staged:
                self.prefetch(job)
            placed = []
            for job in staged:
                try:
                    self.verify(job)
                    self.place(job)
                    placed.append(job)
                except _Skip as exc:
                    self._skip_all(job, str(exc))
                except (CopyError, CodecError) as exc:
                    self._fail_all(job, exc.reason)
                except OSError as exc:
                    self._fail_all(job, "%s" % (exc.strerror or exc))
                finally:
                    self._drop_tmp(job)
            if placed and flush:
                syncfs(self.dst.root)
                self.commit(placed)
            elif placed:
                carried = placed
            return carried
        finally:
            keep = set(map(id, carried))
            for job in (*carry, *staged):
                if id(job) not in keep:
                    self._close_dirs(job)

    def _skip_all(self, job, reason):
        for each in (job, *job.links):
            self.outcome.skip(each, reason)

    def _fail_all(self, job, reason):
        for each in (job, *job.links):
            self.outcome.fail(each, reason)

    def _raise_full(self, full):
        if full is not None:
            raise DestinationFull(
                "destination %s is full (%s); the run stopped, files not yet moved stay at the source"
                % (display(self.dst.root), full.strerror or full)
            )

    def commit(self, placed):
        if self.op == "undo":
            # The originals are back and flushed; the tier copies go, each checked to be unchanged.
            undone = []
            for job in placed:
                names = (job, *job.links)
                if not self.remove_source(job):
                    for each in names:
                        self.outcome.skip(each, "the tier copy changed after it was read back (both kept)")
                    continue
                undone.extend(names)
                for each in names:
                    self.outcome.ok(each)
            self.journal.append([{"op": "undo", "run": self.run_id, "dst": encode_path(j.src)} for j in undone])
            return
        self.journal.append([self.record(each) for job in placed for each in (job, *job.links)])
        for job in placed:
            if job.st.st_nlink > 1 + len(job.links):
                self.outcome.links_split += 1
            if self.op == "move" and not self.remove_source(job):
                for each in (job, *job.links):
                    self.outcome.skip(each, "changed after the copy (both kept)")
                continue
            for each in (job, *job.links):
                self.outcome.ok(each)

    def record(self, job):
        return {
            "op": self.op,
            "run": self.run_id,
            "src": encode_path(job.src),
            "dst": encode_path(job.dst),
            "size": job.length,
            "sha256": job.digest,
            "codec": job.dst_codec,
        }


def _unlink_quiet(name, dir_fd):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def group_links(jobs, left=None):
    """Fold the other names of a hard-linked file into the first job's ``links``.

    Names that would need different codecs (``a.log`` and ``b.gz`` of one file, with compression)
    cannot arrive as one file: the whole group is handed to ``left(job, reason)`` and stays.
    """
    groups = {}
    for job in jobs:
        st = job.sel_st
        if st is not None and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(job)
    out = []
    for job in jobs:
        st = job.sel_st
        group = groups.get((st.st_dev, st.st_ino)) if st is not None and st.st_nlink > 1 else None
        if group is None or len(group) == 1:
            out.append(job)
            continue
        if job is not group[0]:
            continue
        if len(set(each.dst_codec for each in group)) > 1:
            for each in group:
                if left is not None:
                    left(each, "hard links that would need different compression; all names left at the source")
            continue
        for link in group[1:]:
            link.size = 0  # the bytes travel once
        job.links = group[1:]
        out.append(job)
    return out


SPLIT_IN = 4  # a run smaller than this many full batches is cut in about this many ...
SPLIT_FLOOR = 16 << 20  # ... of at least this many bytes


def batch_limit(jobs, batch_bytes):
    """Bytes per batch: ``batch_bytes``, or less for a run smaller than ``SPLIT_IN`` batches of it,
    so that flushing and checking one batch overlaps copying the next (one batch does not)."""
    total = sum(job.size for job in jobs)
    return min(batch_bytes, max(SPLIT_FLOOR, -(-total // SPLIT_IN)))


def batches(jobs, max_files, max_bytes):
    batch, size = [], 0
    for job in jobs:
        if batch and (len(batch) >= max_files or size + job.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(job)
        size += job.size
    if batch:
        yield batch


# --------------------------------------------------------------------------- runs


def new_run_id():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def _lock(policy, real_source, real_dest):
    """One lock per tree: a run conflicts with every run whose source or destination contains,
    equals or lies inside either of this run's trees, whichever role each plays."""
    return TreeLock(
        [real_source, real_dest],
        "tier_migrate %s -> %s" % (display(policy.source), display(policy.dest)),
        lock_dir=policy.lock_dir,
    )


def _registry(policy):
    return TempRegistry(policy.journal + b".tmpdirs")


def _resolve(policy, real_source, real_dest, warnings=None):
    """Work on the real paths of the two roots from here on (resolved once, the same way for the
    selection and the transfer); the journal's default place follows the real destination."""
    for name, given, real in (("source", policy.source, real_source), ("destination", policy.dest, real_dest)):
        if given != real and warnings is not None:
            warnings.append("%s %s is reached through a symlink; %s was used" % (name, display(given), display(real)))
    policy.source, policy.dest = real_source, real_dest
    if policy.journal_default:
        policy.journal = os.path.join(real_dest, STATE_DIR, b"journal.jsonl")


def migrate(policy, check_mode=False, zstd_bin=None, now=None, mounts=None, stat_fn=stat_with_timeout, find_bin=None):
    """Run one migration; return a result dict. Raises MigrateError / LockBusy / JournalError."""
    info, warnings = preflight(policy, mounts=mounts, stat_fn=stat_fn)
    _resolve(policy, info["source_real"], info["dest_real"], warnings)
    d_st = os.stat(policy.dest)
    with _lock(policy, policy.source, policy.dest):
        registry = _registry(policy)
        cleaned = 0 if check_mode else registry.clean()
        sel = select_files(
            policy, now=now, dest_id=(d_st.st_dev, d_st.st_ino), dest_path=policy.dest, find_bin=find_bin
        )
        with Tree(policy.source) as src_tree, Tree(policy.dest, mirror=src_tree) as dst_tree:
            jobs = []
            for rel, st in sel.items:
                codec = dest_codec_for(rel, policy.codec)
                dst_rel = rel + SUFFIXES[codec]
                if policy.mode == "copy" and _already_copied(dst_tree, dst_rel, st, codec):
                    sel.skipped["already at the destination"] = sel.skipped.get("already at the destination", 0) + 1
                    continue
                job = Job(rel, src_tree.path(rel), dst_tree.path(dst_rel), "none", codec, policy.level, st)
                job.src_rel, job.dst_rel = rel, dst_rel
                jobs.append(job)
            jobs = group_links(jobs, lambda job, reason: sel.skip(reason, job.rel, job.size))
            selected_bytes = sum(job.size for job in jobs)
            free, total = free_bytes(
                policy.dest, lambda path: _probe(path, "destination", policy.probe_timeout, statvfs_with_timeout)
            )
            margin = check_space(policy, selected_bytes, free, total) if policy.check_space else 0
            outcome = Outcome()
            outcome.warnings.extend(warnings)
            result = {
                "run_id": None,
                "journal": display(policy.journal),
                "scanned": sel.scanned,
                "selected": sum(1 + len(job.links) for job in jobs),
                "selected_bytes": selected_bytes,
                "free_bytes": free,
                "margin_bytes": margin,
                "cleaned_temp_files": cleaned,
                "selection_skipped": sel.skipped,
                "selection_skipped_files": sel.skipped_files,
            }
            if check_mode:
                every = [each for job in jobs for each in (job, *job.links)]
                outcome.done = [
                    {"src": display(j.src), "dst": display(j.dst), "size": j.size} for j in every[:REPORT_LIMIT]
                ]
                outcome.done_count = len(every)
                outcome.done_bytes = selected_bytes
                result.update(_summary(outcome, policy.mode))
                return result
            run_id = policy.run_id or new_run_id()
            result["run_id"] = run_id
            transfer = Transfer(
                policy.mode,
                src_tree,
                dst_tree,
                Journal(policy.journal),
                run_id,
                registry,
                outcome,
                zstd_bin,
                drop_metadata=policy.drop_metadata,
            )
            error = _run_transfer(transfer, jobs, policy, registry)
        result.update(_summary(outcome, policy.mode))
        if error:
            result["error"] = error
        return result


def _run_transfer(transfer, jobs, policy, registry):
    """Run the jobs in batches; return the message of a run-level stop (full, journal), if any.
    Temporary files are removed whatever happens."""
    try:
        transfer.run_all(batches(jobs, policy.batch_files, batch_limit(jobs, policy.batch_bytes)))
    except (DestinationFull, JournalError) as exc:
        return str(exc)
    finally:
        registry.clean()
    return None


def _already_copied(tree, rel, st, codec):
    """Copy mode: the destination already holds this version (same mtime; same size unless compressed)."""
    try:
        have = tree.lstat(rel)
    except (OSError, UnsafePath):
        return False
    if not stat.S_ISREG(have.st_mode) or have.st_mtime_ns != st.st_mtime_ns:
        return False
    return codec != "none" or have.st_size == st.st_size


def _summary(outcome, mode):
    return {
        "changed": outcome.done_count > 0,
        "mode": mode,
        "moved": outcome.done_count,
        "moved_bytes": outcome.done_bytes,
        "files": outcome.done,
        "skipped_count": outcome.skipped_count,
        "skipped_bytes": outcome.skipped_bytes,
        "skipped_reasons": outcome.skipped,
        "skipped_files": outcome.skipped_files,
        "failed_count": outcome.failed_count,
        "failed_bytes": outcome.failed_bytes,
        "failed_files": outcome.failed_files,
        "hard_links_split": outcome.links_split,
        "warnings": outcome.warnings,
    }


def _rel_under(path, roots):
    """``path`` relative to the first of ``roots`` it lies below, or None."""
    for root in roots:
        if path.startswith(root.rstrip(b"/") + b"/"):
            return path[len(root.rstrip(b"/")) + 1 :]
    return None


def _hash_at(tree, rel, codec, zstd_bin):
    """(sha256, length, stat) of a file below ``tree``, opened without following links."""
    fd = tree.open_file(rel, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CopyError("not a regular file")
        digest, length = read_back(fd, codec, zstd_bin)
        return digest, length, st
    finally:
        os.close(fd)


def rollback(policy, check_mode=False, zstd_bin=None):
    """Put the files of one journalled run back where they were, with the same checks."""
    given = (policy.source, policy.dest)
    _resolve(policy, os.path.realpath(policy.source), os.path.realpath(policy.dest))
    with _lock(policy, policy.source, policy.dest):
        journal = Journal(policy.journal)
        records, damaged = journal.read()
        all_runs = runs(records)
        if not all_runs:
            raise MigrateError("journal %s records no moves; nothing to undo" % display(policy.journal))
        run_id = policy.run_id or all_runs[-1]
        if run_id not in all_runs:
            raise MigrateError("run %s is not in journal %s" % (run_id, display(policy.journal)))
        registry = _registry(policy)
        cleaned = 0 if check_mode else registry.clean()
        outcome = Outcome()
        if damaged:
            outcome.warnings.append("%d damaged line(s) in the journal were ignored" % damaged)
        with Tree(policy.dest) as tier, Tree(policy.source, mirror=tier) as home:
            jobs = []
            for rec in pending_undo(records, run_id):
                orig, copy = decode_path(rec["src"]), decode_path(rec["dst"])
                orig_rel = _rel_under(orig, (given[0], policy.source))
                copy_rel = _rel_under(copy, (given[1], policy.dest))
                if orig_rel is None or copy_rel is None:
                    raise MigrateError(
                        "journal record %s -> %s is not under source %s and destination %s; refusing"
                        % (display(orig), display(copy), display(given[0]), display(given[1]))
                    )
                job = Job(orig_rel, tier.path(copy_rel), home.path(orig_rel), rec.get("codec", "none"), "none")
                job.src_rel, job.dst_rel = copy_rel, orig_rel
                job.expect = rec["sha256"]
                job.size = int(rec.get("size", 0))
                jobs.append(job)
            result = {"run_id": run_id, "journal": display(policy.journal), "cleaned_temp_files": cleaned}
            todo, done_now = [], []
            for job in jobs:
                try:
                    state = _undo_state(job, tier, home, zstd_bin)
                except _Skip as exc:
                    outcome.skip(job, str(exc))
                    continue
                except (OSError, CopyError, CodecError, UnsafePath) as exc:
                    outcome.fail(job, "%s" % (getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc))
                    continue
                if state == "todo":
                    job.sel_st = tier.lstat(job.src_rel)  # so that hard links travel back as links
                    todo.append(job)
                elif state == "back":
                    done_now.append(job)
                else:
                    outcome.fail(job, "neither the original nor the tier copy exists")
            if check_mode:
                for job in todo + done_now:
                    outcome.ok(job)
                result.update(_summary(outcome, "undo"))
                result["restored"] = outcome.done_count
                return result
            transfer = Transfer("undo", tier, home, journal, run_id, registry, outcome, zstd_bin)
            todo = group_links(todo)
            if done_now:
                finished = []
                for job in done_now:
                    if _remove_checked(tier, job):
                        finished.append(job)
                        outcome.ok(job)
                    else:
                        outcome.skip(job, "the tier copy changed while it was checked (both kept)")
                journal.append([{"op": "undo", "run": run_id, "dst": encode_path(j.src)} for j in finished])
            error = _run_transfer(transfer, todo, policy, registry)
        result.update(_summary(outcome, "undo"))
        result["restored"] = outcome.done_count
        if error:
            result["error"] = error
        return result


def _undo_state(job, tier, home, zstd_bin):
    """``todo`` (only the tier copy is there), ``back`` (the original is back: the tier copy, if
    any, is the journal's content and can go) or ``lost``; raise _Skip to keep both."""
    try:
        have_orig = home.exists(job.dst_rel)
    except UnsafePath as exc:
        raise _Skip("a directory on the way to the original is a symlink or not a directory; not followed") from exc
    have_copy = tier.exists(job.src_rel)
    if not have_orig:
        return "todo" if have_copy else "lost"
    digest, _n, _st = _hash_at(home, job.dst_rel, "none", zstd_bin)
    if digest != job.expect:
        raise _Skip("the original path holds a different file; left alone")
    if have_copy:
        digest, _n, job.st = _hash_at(tier, job.src_rel, job.src_codec, zstd_bin)
        if digest != job.expect:
            raise _Skip("the tier copy was changed since the move; both kept")
    return "back"


def _remove_checked(tree, job):
    """Remove the tier copy of an undone job if it is still the file that was hashed."""
    if job.st is None:
        return True  # it was already gone
    parent, name = split(job.src_rel)
    handle = tree.acquire(parent)
    try:
        try:
            now = os.lstat(name, dir_fd=handle.fd)
        except FileNotFoundError:
            return True
        if not same_stat(now, job.st):
            return False
        os.unlink(name, dir_fd=handle.fd)
        return True
    finally:
        tree.release(handle)


__all__ = [
    "DestinationFull",
    "LockBusy",
    "MigrateError",
    "build_policy",
    "check_overlap",
    "migrate",
    "parse_mountinfo",
    "rollback",
    "select_files",
]
