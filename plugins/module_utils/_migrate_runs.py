# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every tier_migrate run shares, whichever its direction: its id, the tree lock, the
temporary-file registry's place, the real roots, running the transfer and the result summary.
Used by ``_migrate.migrate`` and ``_migrate_undo.undo``.
"""

from __future__ import annotations

import os
import stat
import time
import uuid

from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import JournalError
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import TreeLock
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    DestinationFull,
    display,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_jobs import (
    batch_limit,
    batches,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import (
    STATE_DIR,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_registry import TempRegistry
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    UnsafePath,
)


def new_run_id():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def lock(policy, real_source, real_dest):
    """One lock per tree: a run conflicts with every run whose source or destination contains,
    equals or lies inside either of this run's trees, whichever role each plays."""
    return TreeLock(
        [real_source, real_dest],
        "tier_migrate %s -> %s" % (display(policy.source), display(policy.dest)),
        lock_dir=policy.lock_dir,
    )


def registry_of(policy):
    return TempRegistry(policy.journal + b".tmpdirs")


def resolve(policy, real_source, real_dest, warnings=None):
    """Work on the real paths of the two roots from here on (resolved once, the same way for the
    selection and the transfer); the journal's default place follows the real destination."""
    for name, given, real in (("source", policy.source, real_source), ("destination", policy.dest, real_dest)):
        if given != real and warnings is not None:
            warnings.append("%s %s is reached through a symlink; %s was used" % (name, display(given), display(real)))
    policy.source, policy.dest = real_source, real_dest
    if policy.journal_default:
        policy.journal = os.path.join(real_dest, STATE_DIR, b"journal.jsonl")


def run_transfer(transfer, jobs, policy, registry):
    """Run the jobs in batches; return the message of a run-level stop (full, journal), if any.
    Temporary files are removed whatever happens."""
    try:
        transfer.run_all(batches(jobs, policy.batch_files, batch_limit(jobs, policy.batch_bytes)))
    except (DestinationFull, JournalError) as exc:
        return str(exc)
    finally:
        registry.clean()
    return None


def already_copied(tree, rel, st, codec):
    """Copy mode: the destination already holds this version (same mtime; same size unless compressed)."""
    try:
        have = tree.lstat(rel)
    except (OSError, UnsafePath):
        return False
    if not stat.S_ISREG(have.st_mode) or have.st_mtime_ns != st.st_mtime_ns:
        return False
    return codec != "none" or have.st_size == st.st_size


def summary(outcome, mode):
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
