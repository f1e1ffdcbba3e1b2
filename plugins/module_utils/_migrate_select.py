# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's selection: which files under the source are old enough to move.

Two engines give the same selection: GNU ``find`` (fast on big trees; only what it cannot rule
out by age is ``lstat``-ed here) and a walk in Python (the fallback, with a reason per entry).
Symlinks are never followed. Used by ``_migrate.migrate``.
"""

from __future__ import annotations

import fnmatch
import operator
import os
import re
import stat
import subprocess
import tempfile
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import (
    REPORT_LIMIT,
    STATE_DIR,
    TMP_PREFIX,
)


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
