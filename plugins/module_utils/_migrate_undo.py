# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's undo: the files of one journalled run put back where they were, with the same
checks as a move (the journal's checksum stands in for the source). The module calls it for
``state: rolled_back``. Used by the tier_migrate module.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import Journal, decode_path
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_commit import ROLLED_BACK, undo_record
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_durable import same_stat
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    CodecError,
    CopyError,
    MigrateError,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_jobs import (
    BACK,
    Job,
    Outcome,
    Skip,
    group_links,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_journal import pending_undo, runs
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_readback import read_back
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_runs import (
    lock,
    registry_of,
    resolve,
    run_transfer,
    summary,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_transfer import Transfer
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    Tree,
    UnsafePath,
    split,
)


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


def undo(policy, check_mode=False, zstd_bin=None):
    """Put the files of one journalled run back where they were, with the same checks."""
    given = (policy.source, policy.dest)
    resolve(policy, os.path.realpath(policy.source), os.path.realpath(policy.dest))
    with lock(policy, policy.source, policy.dest):
        journal = Journal(policy.journal)
        records, damaged = journal.read()
        all_runs = runs(records)
        if not all_runs:
            raise MigrateError("journal %s records no moves; nothing to undo" % display(policy.journal))
        run_id = policy.run_id or all_runs[-1]
        if run_id not in all_runs:
            raise MigrateError("run %s is not in journal %s" % (run_id, display(policy.journal)))
        registry = registry_of(policy)
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
                job = Job(
                    orig_rel, home.path(orig_rel), tier.path(copy_rel), rec.get("codec", "none"), "none", direction=BACK
                )
                job.src_rel, job.dst_rel = copy_rel, orig_rel
                job.expect = rec["sha256"]
                job.size = int(rec.get("size", 0))
                jobs.append(job)
            result = {"run_id": run_id, "journal": display(policy.journal), "cleaned_temp_files": cleaned}
            todo, done_now = [], []
            for job in jobs:
                try:
                    state = _undo_state(job, tier, home, zstd_bin)
                except Skip as exc:
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
                result.update(_undo_summary(outcome))
                return result
            transfer = Transfer(ROLLED_BACK, tier, home, journal, run_id, registry, outcome, zstd_bin)
            todo = group_links(todo)
            if done_now:
                finished = []
                for job in done_now:
                    if _remove_checked(tier, job):
                        finished.append(job)
                        outcome.ok(job)
                    else:
                        outcome.skip(job, "the tier copy changed while it was checked (both kept)")
                journal.append([undo_record(run_id, job) for job in finished])
            error = run_transfer(transfer, todo, policy, registry)
        result.update(_undo_summary(outcome))
        if error:
            result["error"] = error
        return result


def _undo_summary(outcome):
    """The result of an undo: a run's summary (mode ``rolled_back``) and ``rolled_back``, the files put back."""
    return dict(summary(outcome, ROLLED_BACK), rolled_back=outcome.done_count)


def _undo_state(job, tier, home, zstd_bin):
    """``todo`` (only the tier copy is there), ``back`` (the original is back: the tier copy, if
    any, is the journal's content and can go) or ``lost``; raise Skip to keep both."""
    try:
        have_orig = home.exists(job.dst_rel)
    except UnsafePath as exc:
        raise Skip("a directory on the way to the original is a symlink or not a directory; not followed") from exc
    have_copy = tier.exists(job.src_rel)
    if not have_orig:
        return "todo" if have_copy else "lost"
    digest, _n, _st = _hash_at(home, job.dst_rel, "none", zstd_bin)
    if digest != job.expect:
        raise Skip("the original path holds a different file; left alone")
    if have_copy:
        digest, _n, job.st = _hash_at(tier, job.src_rel, job.src_codec, zstd_bin)
        if digest != job.expect:
            raise Skip("the tier copy was changed since the move; both kept")
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
