# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's run: preflight, selection, jobs and the verified transfer, in that order.

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

Each stage has its own file: ``_migrate_policy`` (the parameters), ``_migrate_preflight``,
``_migrate_select``, ``_migrate_jobs``, ``_migrate_registry``, ``_migrate_transfer`` (and the
step files it names), ``_migrate_runs`` (what a run and an undo share), ``_migrate_undo``. This
file holds ``migrate`` (used by the tier_migrate module) and the names other files import here.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import Journal
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_codec import SUFFIXES
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    DestinationFull,
    MigrateError,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_gate import gate
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_jobs import Job, Outcome, group_links
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import (
    REPORT_LIMIT,
    build_policy,
    dest_codec_for,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_preflight import (
    check_overlap,
    check_space,
    free_bytes,
    preflight,
    probe,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_runs import (
    already_copied,
    lock,
    new_run_id,
    registry_of,
    resolve,
    run_transfer,
    summary,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_select import select_files
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_transfer import Transfer
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_undo import undo
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import (
    parse_mountinfo,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import stat_with_timeout, statvfs_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import Tree


def migrate(policy, check_mode=False, zstd_bin=None, now=None, mounts=None, stat_fn=stat_with_timeout, find_bin=None):
    """Run one migration; return a result dict. Raises MigrateError / LockBusy / JournalError, and
    ``Missing`` (a Skipped) when ``missing: skip`` finds an end missing."""
    gated = gate(policy, check_mode, mounts=mounts, stat_fn=stat_fn)
    if gated is not None and check_mode:
        return gated
    created = gated is not None
    info, warnings = preflight(policy, mounts=mounts, stat_fn=stat_fn)
    resolve(policy, info["source_real"], info["dest_real"], warnings)
    d_st = os.stat(policy.dest)
    with lock(policy, policy.source, policy.dest):
        registry = registry_of(policy)
        cleaned = 0 if check_mode else registry.clean()
        sel = select_files(
            policy, now=now, dest_id=(d_st.st_dev, d_st.st_ino), dest_path=policy.dest, find_bin=find_bin
        )
        with Tree(policy.source) as src_tree, Tree(policy.dest, mirror=src_tree) as dst_tree:
            jobs = []
            for rel, st in sel.items:
                codec = dest_codec_for(rel, policy.codec)
                dst_rel = rel + SUFFIXES[codec]
                if policy.mode == "copy" and already_copied(dst_tree, dst_rel, st, codec):
                    sel.skipped["already at the destination"] = sel.skipped.get("already at the destination", 0) + 1
                    continue
                job = Job(rel, src_tree.path(rel), dst_tree.path(dst_rel), "none", codec, policy.level, st)
                job.src_rel, job.dst_rel = rel, dst_rel
                jobs.append(job)
            jobs = group_links(jobs, lambda job, reason: sel.skip(reason, job.rel, job.size))
            selected_bytes = sum(job.size for job in jobs)
            free, total = free_bytes(
                policy.dest, lambda path: probe(path, "destination", policy.probe_timeout, statvfs_with_timeout)
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
                "destination_created": created,
            }
            if check_mode:
                every = [each for job in jobs for each in (job, *job.links)]
                outcome.done = [
                    {"src": display(j.src), "dst": display(j.dst), "size": j.size} for j in every[:REPORT_LIMIT]
                ]
                outcome.done_count = len(every)
                outcome.done_bytes = selected_bytes
                result.update(summary(outcome, policy.mode))
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
            error = run_transfer(transfer, jobs, policy, registry)
        result.update(summary(outcome, policy.mode))
        result["changed"] = result["changed"] or created
        if error:
            result["error"] = error
        return result


__all__ = [
    "DestinationFull",
    "LockBusy",
    "MigrateError",
    "build_policy",
    "check_overlap",
    "display",
    "migrate",
    "parse_mountinfo",
    "select_files",
    "undo",
]
