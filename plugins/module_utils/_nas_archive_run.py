# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's run: the ``Archiver``, one run under the destination's lock.

rsync is called through ``runner(argv, timeout) -> (rc, out, err)`` (``run_timed`` by default), so
the logic is tested with it mocked; every call on the destination that could block on a dead hard
NFS mount runs in a forked child with a time-out (``_fs``, the functions of ``_nas_archive_fs``).

``Archiver`` holds the run's state and its shared steps (timed calls, rsync passes, the record of
changes, verification); its parts live beside it, one idea each: ``_nas_archive_probe``
(``ProbeSteps``), ``_nas_archive_mirror`` (``MirrorMode``), ``_nas_archive_snapshot``
(``SnapshotMode``), ``_nas_archive_snapshot_guard`` (``SnapshotGuardStep``) and
``_nas_archive_retention`` (``RetentionStep``). ``summary``: the result in one line. Used by the
module nas_archive.
"""

from __future__ import annotations

import os
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import FileLock, lock_path_for
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import REPORT_LIMIT, NasArchiveError, num
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_mirror import MirrorMode
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_probe import ProbeSteps
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_retention import RetentionStep
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_rsync import (
    RC_MAX_DELETE,
    RC_VANISHED,
    RsyncTimeout,  # noqa: F401 - part of the run's interface (a NasArchiveError); tests catch it here
    is_change,
    is_content_difference,
    parse_rsync_output,
    rsync_argv,
    run_timed,
    source_args,
    tail,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_snapshot import SnapshotMode
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_snapshot_guard import SnapshotGuardStep
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import format_bytes


class Archiver(ProbeSteps, MirrorMode, SnapshotMode, SnapshotGuardStep, RetentionStep):
    """One run of nas_archive. ``run()`` returns the result dict or raises NasArchiveError / Skipped."""

    def __init__(self, policy, rsync_bin="rsync", check_mode=False, runner=None, now=None, mounts=None, tcp_fn=None):
        self.p = policy
        self.rsync_bin = rsync_bin
        self.check_mode = check_mode
        self.runner = runner
        self.now = now
        self.mounts = mounts
        self.tcp_fn = tcp_fn
        self.clock = None
        self.guard_probe = None
        self.present = []
        self.lock_fds = ()
        self.dirs = set()
        self.warnings = []
        self.result = {
            "mode": policy.mode,
            "sources": list(policy.sources),
            "destination": policy.dest,
            "changed": False,
            "skipped": False,
            "files_transferred": 0,
            "bytes_transferred": 0,
            "files_deleted": 0,
            "changes_count": 0,
            "changes": [],
            "deleted": [],
            "snapshot": None,
            "latest": None,
            "previous": None,
            "retention_kept": [],
            "retention_removed": [],
            "cleaned_incomplete": [],
            "verified": None,
            "verify_differences": [],
            "guard": None,
            "missing_sources": [],
            "rsync_seconds": 0.0,
        }

    # ---------------------------------------------------------------- timed filesystem calls

    def _fs(self, func, *args, **kw):
        """``func(*args)`` on the destination in a timed child; a stalled NAS becomes an NasArchiveError."""
        timeout = kw.get("timeout", self.p.probe_timeout)
        try:
            return call_with_timeout(func, args, timeout)
        except ProbeTimeout as exc:
            raise NasArchiveError(
                "%s on %s did not return within %ss (the NAS stopped answering?)"
                % (func.__name__.lstrip("_"), args[0], num(timeout)),
                **self.result,
            ) from exc
        except (OSError, RuntimeError) as exc:
            raise NasArchiveError(
                "%s on %s failed: %s" % (func.__name__.lstrip("_"), args[0], getattr(exc, "strerror", None) or exc),
                **self.result,
            ) from exc

    def rsync(self, extra, dest, dry_run=False):
        srcs = [s for s, _has in self.present]
        argv = rsync_argv(self.p, self.rsync_bin, source_args(self.p.relative, srcs, self.dirs), dest, extra, dry_run)
        started = time.monotonic()
        rc, out, err = (self.runner or run_timed)(argv, self.p.rsync_timeout, self.lock_fds)
        self.result["rsync_seconds"] = round(self.result["rsync_seconds"] + time.monotonic() - started, 3)
        parsed = parse_rsync_output(out)
        if rc == RC_VANISHED:
            self.warnings.append("rsync: some source files vanished during the transfer (rc 24): %s" % tail(err))
        elif rc != 0:
            what = (
                "rsync stopped at the --max-delete limit checked by the delete guard"
                if rc == RC_MAX_DELETE
                else "rsync failed"
            )
            hint = ""
            low = (err or "").lower()
            if "xattr" in low or "acl" in low:
                hint = " (the destination may not support ACLs or extended attributes: NFSv3 does not; set acls/xattrs false)"
            elif "chown" in low or "operation not permitted" in low:
                hint = " (a root_squash NFS export cannot take ownership: set preserve_owner false or export no_root_squash)"
            raise NasArchiveError(
                "%s (rc %d)%s: %s" % (what, rc, hint, tail(err) or tail(out)),
                rc=rc,
                stdout=tail(out, 40),
                stderr=tail(err, 40),
                cmd=argv,
                **self.result,
            )
        return parsed

    def _transfer_args(self, delay_updates):
        p = self.p
        args = ["--delay-updates"] if delay_updates else []
        if p.bwlimit:
            args.append("--bwlimit=%s" % p.bwlimit)
        return args

    def _record(self, parsed):
        stats = parsed["stats"]
        r = self.result
        r["files_transferred"] = stats.get("files_transferred", 0)
        r["bytes_transferred"] = stats.get("bytes_transferred", 0)
        r["files_deleted"] = len(parsed["deleted"])
        changes = [{"item": i, "size": s, "path": n} for i, s, n in parsed["items"] if is_change(i)]
        r["changes_count"] = len(changes)
        r["changes"] = changes[:REPORT_LIMIT]
        r["deleted"] = parsed["deleted"][:REPORT_LIMIT]
        return bool(changes) or bool(parsed["deleted"])

    def _verify(self, dest, with_delete):
        extra = ["--checksum"] + (["--delete"] if with_delete else [])
        parsed = self.rsync(extra, dest, dry_run=True)
        diffs = [n for i, _s, n in parsed["items"] if is_content_difference(i)] + parsed["deleted"]
        self.result["verified"] = not diffs
        self.result["verify_differences"] = diffs[:REPORT_LIMIT]
        if diffs:
            raise NasArchiveError(
                "verification failed: %d entr%s differ between the source and %s after the copy (first: %s)"
                % (len(diffs), "y" if len(diffs) == 1 else "ies", dest, ", ".join(diffs[:5])),
                **self.result,
            )

    # ---------------------------------------------------------------- entry

    def run(self):
        self.probe()
        p = self.p
        target = os.path.join(p.dest, p.name) if p.mode == "snapshot" else p.dest
        lock = FileLock(lock_path_for("nas_archive", target, lock_dir=p.lock_dir), "nas_archive to " + target)
        with lock:
            self.lock_fds = (lock._fd,)
            if p.mode == "mirror":
                self.mirror()
            else:
                self.snapshot()
        self.result["warnings"] = self.warnings
        return self.result


def summary(result, check_mode):
    """The run's result in one line (the module's ``msg``)."""
    verb = "would transfer" if check_mode else "transferred"
    text = "%s: %d file(s), %s %s, %d deleted" % (
        result["mode"],
        result["files_transferred"],
        format_bytes(result["bytes_transferred"]),
        verb,
        result["files_deleted"],
    )
    if result.get("snapshot"):
        text += "; snapshot %s" % result["snapshot"]
    elif result.get("unchanged"):
        text += "; nothing changed since %s, no new snapshot" % result.get("previous")
    if result.get("retention_removed"):
        text += "; retention %s %d" % ("would remove" if check_mode else "removed", len(result["retention_removed"]))
    if result.get("verified") is not None:
        text += "; verified" if result["verified"] else "; verification FAILED"
    return text
