# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's run: probes, the lock, rsync under a time-out, mirror, snapshot and retention.

rsync is called through ``runner(argv, timeout) -> (rc, out, err)`` (``run_timed`` by default), so
the logic is tested with it mocked; every call on the destination that could block on a dead hard
NFS mount (stat, listdir, mkdir, rename, symlink, removal) runs in a forked child with a time-out
(``_timeout.call_with_timeout``).

Snapshot protocol (docs/nas_archive.md): the new snapshot's name must be after the newest one's and
not far ahead of it (``next_stamp``: a wrong clock is refused, not obeyed); the sources must not be
empty nor far smaller than the newest snapshot that held data (``snapshot_guard``, after a dry run
against it). ``<dest>/<name>/<stamp>.partial`` is written by rsync with ``--link-dest`` to that
snapshot, verified when asked, renamed to ``<stamp>``; only then is ``latest`` replaced (a symlink
made under a temporary name and renamed over it). Retention never removes the newest snapshot that
held data. What a killed run leaves (``*.partial``, ``*.deleting``, ``.latest.tmp*``) is no
snapshot, is never linked from nor pointed to, and is removed by the next run under the same lock.
"""

from __future__ import annotations

import datetime
import errno
import os
import shutil
import signal
import stat
import subprocess
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import FileLock, lock_path_for
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate import mount_of, read_mounts
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import (
    DELETING_SUFFIX,
    LATEST,
    LATEST_TMP,
    PARTIAL_SUFFIX,
    RC_MAX_DELETE,
    RC_VANISHED,
    REPORT_LIMIT,
    ArchiveError,
    ClockError,
    Skipped,
    _num,
    delete_guard,
    dest_entries_from_stats,
    format_stamp,
    is_change,
    is_content_difference,
    is_leftover,
    next_stamp,
    parse_rsync_output,
    parse_stamp,
    rsync_argv,
    select_retention,
    snapshot_guard,
    source_args,
    source_entries_from_stats,
    tail,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    call_with_timeout,
    tcp_probe,
)


class RsyncTimeout(ArchiveError):
    """rsync did not finish within rsync_timeout and was killed."""


# --------------------------------------------------------------------------- rsync under a time-out


def _die_with_parent():
    """In the child before exec: SIGKILL when the module dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:  # noqa: S110 - not Linux, or no libc: the inherited lock still guards the destination
        pass


def run_timed(argv, timeout, keep_fds=()):
    """Run ``argv`` (C locale) in its own process group; return (rc, stdout, stderr).

    After ``timeout`` seconds the whole group gets SIGKILL (NFS waits are killable) and RsyncTimeout
    is raised; we wait at most a few seconds more for the pipes, never for the mount. rsync dies with
    the module (a killed module must not leave it writing), and ``keep_fds`` (the run's lock) are
    inherited, so while any rsync process lives no other run can take the destination.
    """
    env = dict(os.environ, LC_ALL="C", LANG="C")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        pass_fds=tuple(keep_fds),
        preexec_fn=_die_with_parent,  # the module is single-threaded, so preexec_fn is safe
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out = err = b""
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        raise RsyncTimeout(
            "rsync did not finish within rsync_timeout %ss and was killed (a NAS that stopped answering, or a "
            "transfer larger than the time allows): %s" % (_num(timeout), tail(err.decode("utf-8", "replace"))),
            timed_out=True,
        ) from None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# --------------------------------------------------------------------------- calls in a timed child


def _locate(dest, dest_mount):
    """The destination's nearest existing ancestor, its real path and device, the root's device."""
    probe = dest
    while not os.path.lexists(probe) and probe != "/":
        probe = os.path.dirname(probe)
    os.statvfs(probe)
    st = os.stat(probe)
    rest = os.path.relpath(dest, probe)
    real = os.path.realpath(probe)
    return {
        "probe": probe,
        "exists": probe == dest,
        "is_dir": stat.S_ISDIR(st.st_mode),
        "real": os.path.normpath(os.path.join(real, rest)) if rest != "." else real,
        "st_dev": st.st_dev,
        "root_dev": os.stat("/").st_dev,
        "mount_real": os.path.realpath(dest_mount) if dest_mount else None,
    }


def _source_info(path):
    """(kind, has_entries, real path) of a source: kind is dir, file or other."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        with os.scandir(path) as entries:
            has = next(iter(entries), None) is not None
        return ["dir", has, os.path.realpath(path)]
    return ["file" if stat.S_ISREG(st.st_mode) else "other", True, os.path.realpath(path)]


def _list_root(root):
    """[[name, is_real_dir]] of the snapshot root, or None when it does not exist."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return None
    out = []
    for name in sorted(names):
        path = os.path.join(root, name)
        out.append([name, os.path.isdir(path) and not os.path.islink(path)])
    return out


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _has_entries(path):
    """True when the snapshot directory ``path`` holds any entry (opened without following a symlink)."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        with os.scandir(fd) as entries:
            return next(iter(entries), None) is not None
    finally:
        os.close(fd)


def _tree_size(path):
    """[entries, bytes] below the directory ``path``: regular files and symlinks by their size.

    Walked with directory descriptors (``openat`` with ``O_NOFOLLOW``): a symlink is counted, never
    followed, and a directory swapped for a link while we walk is not entered.
    """
    entries = size = 0
    fd = os.open(path, _DIR_FLAGS)
    stack = [(fd, os.scandir(fd))]
    try:
        while stack:
            dfd, listing = stack[-1]
            entry = next(listing, None)
            if entry is None:
                listing.close()
                os.close(dfd)
                stack.pop()
                continue
            entries += 1
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=dfd)
                except (NotADirectoryError, FileNotFoundError):
                    continue
                except OSError as exc:
                    if exc.errno == errno.ELOOP:  # became a symlink meanwhile
                        continue
                    raise
                stack.append((child, os.scandir(child)))
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                size += st.st_size
    finally:
        for dfd, listing in stack:
            listing.close()
            os.close(dfd)
    return [entries, size]


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _makedirs(path):
    os.makedirs(path, 0o755, exist_ok=True)
    return True


def _remove(path):
    """Remove a file, a symlink or a tree; read-only directories (kept from the source) are opened first."""
    if not os.path.lexists(path):
        return False
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return True
    try:
        shutil.rmtree(path)
    except OSError:
        for dirpath, _dirs, _files in os.walk(path):
            try:
                os.chmod(dirpath, stat.S_IRWXU)
            except OSError:
                pass
        shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        raise OSError(39, "could not remove %s completely" % path)
    return True


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rename(src, dst):
    os.rename(src, dst)
    _fsync_dir(os.path.dirname(dst))
    return True


def _point_latest(root, name):
    """Replace ``root/latest`` by a symlink to ``name`` atomically (made aside, renamed over it)."""
    tmp = os.path.join(root, LATEST_TMP)
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(name, tmp)
    os.rename(tmp, os.path.join(root, LATEST))
    _fsync_dir(root)
    return True


# --------------------------------------------------------------------------- the run


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Archiver:
    """One run of nas_archive. ``run()`` returns the result dict or raises ArchiveError / Skipped."""

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
        """``func(*args)`` on the destination in a timed child; a stalled NAS becomes an ArchiveError."""
        timeout = kw.get("timeout", self.p.probe_timeout)
        try:
            return call_with_timeout(func, args, timeout)
        except ProbeTimeout as exc:
            raise ArchiveError(
                "%s on %s did not return within %ss (the NAS stopped answering?)"
                % (func.__name__.lstrip("_"), args[0], _num(timeout)),
                **self.result,
            ) from exc
        except (OSError, RuntimeError) as exc:
            raise ArchiveError(
                "%s on %s failed: %s" % (func.__name__.lstrip("_"), args[0], getattr(exc, "strerror", None) or exc),
                **self.result,
            ) from exc

    def _mounts(self):
        if self.mounts is None:
            self.mounts = read_mounts()
        return self.mounts

    # ---------------------------------------------------------------- probes

    def probe(self):
        """NAS reachable, destination mounted and answering, else Skipped; sources present, else ArchiveError."""
        p = self.p
        if p.nas_host:
            ok, reason = (self.tcp_fn or tcp_probe)(p.nas_host, p.nas_port, p.probe_timeout)
            if not ok:
                raise Skipped("NAS %s is not reachable (%s); nothing was done" % (p.nas_host, reason))
        entry = None
        if p.dest_mount:
            # The kernel's mount table: reading it never touches the (maybe dead) NFS server.
            want = os.fsencode(p.dest_mount)
            for m in self._mounts():
                if m["mount_point"] == want:
                    entry = m
            if entry is None:
                raise Skipped("%s is not mounted (the NAS is away?); nothing was done" % p.dest_mount)
            if p.dest_fstype and not entry["fstype"].startswith(p.dest_fstype):
                raise ArchiveError(
                    "destination_fstype: %s is %s, expected %s; nothing was done"
                    % (p.dest_mount, entry["fstype"], p.dest_fstype)
                )
        try:
            where = call_with_timeout(_locate, (p.dest, p.dest_mount), p.probe_timeout)
        except ProbeTimeout as exc:
            raise Skipped(
                "%s did not answer within %ss (a stalled NFS mount?); nothing was done"
                % (p.dest_mount or p.dest, _num(p.probe_timeout))
            ) from exc
        except (OSError, RuntimeError) as exc:
            raise Skipped(
                "%s: %s; nothing was done" % (p.dest_mount or p.dest, getattr(exc, "strerror", None) or exc)
            ) from exc
        if where["exists"] and not where["is_dir"]:
            raise ArchiveError("destination %s exists and is not a directory; nothing was done" % p.dest)
        if p.dest_mount:
            holder = mount_of(os.fsencode(where["real"]), self._mounts())
            if holder is None or holder["mount_point"] != os.fsencode(where["mount_real"]):
                raise ArchiveError(
                    "destination %s is not on the filesystem mounted at %s (destination_mount); nothing was done"
                    % (p.dest, p.dest_mount)
                )
        elif p.require_mounted and where["st_dev"] == where["root_dev"]:
            raise Skipped(
                "destination %s is on the root filesystem, not on a mounted NAS (not mounted?); nothing was done "
                "(set destination_mount, or require_mounted: false to allow a local destination)" % p.dest
            )
        self.dest_exists = where["exists"]
        self._probe_sources()

    def _probe_sources(self):
        p = self.p
        for src in p.sources:
            try:
                kind, has_entries, real = call_with_timeout(_source_info, (src,), p.probe_timeout)
            except ProbeTimeout as exc:
                raise ArchiveError(
                    "source %s did not answer within %ss; nothing was done" % (src, _num(p.probe_timeout))
                ) from exc
            except FileNotFoundError as exc:
                if p.ignore_missing_sources and p.mode == "snapshot":
                    self.result["missing_sources"].append(src)
                    continue
                raise ArchiveError("source %s does not exist (not mounted?); nothing was done" % src) from exc
            except (OSError, RuntimeError) as exc:
                raise ArchiveError(
                    "source %s: %s; nothing was done" % (src, getattr(exc, "strerror", None) or exc)
                ) from exc
            if kind == "other":
                raise ArchiveError("source %s is neither a directory nor a regular file; nothing was done" % src)
            if p.source_mount:
                holder = mount_of(os.fsencode(real), self._mounts())
                if holder is None or holder["mount_point"] != os.fsencode(os.path.realpath(p.source_mount)):
                    raise ArchiveError(
                        "source %s is not on the filesystem mounted at %s (source_mount): the source looks "
                        "unmounted; nothing was done" % (src, p.source_mount)
                    )
            if kind == "dir":
                self.dirs.add(src)
            self.present.append((src, has_entries))
        if not self.present:
            raise ArchiveError("none of the sources exists (%s); nothing was done" % ", ".join(p.sources))
        if self.result["missing_sources"]:
            self.warnings.append("sources not found and left out: %s" % ", ".join(self.result["missing_sources"]))

    # ---------------------------------------------------------------- rsync

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
            raise ArchiveError(
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
            raise ArchiveError(
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

    # ---------------------------------------------------------------- mirror

    def mirror(self):
        p, r = self.p, self.result
        src, has_entries = self.present[0]
        if p.delete:
            if not has_entries:
                # Refused before rsync even looks: an empty (unmounted, wiped) source never drives --delete.
                verdict = delete_guard(0, None, p.max_delete_percent, p.delete_grace_count, source_entries=0, label=src)
                r["guard"] = verdict
                raise ArchiveError(verdict["reason"], **r)
            dry = self.rsync(["--delete"], p.dest, dry_run=True)
            deletions = len(dry["deleted"])
            verdict = delete_guard(
                deletions,
                dest_entries_from_stats(dry["stats"]),
                p.max_delete_percent,
                p.delete_grace_count,
                source_entries=source_entries_from_stats(dry["stats"]),
                force=p.force_delete,
                label=src,
            )
            r["guard"] = verdict
            if not verdict["ok"]:
                self._record(dry)
                raise ArchiveError(verdict["reason"], **r)
            if verdict["forced"]:
                self.warnings.append("delete guard overridden by force_delete: %d deletion(s)" % deletions)
            if self.check_mode:
                r["changed"] = self._record(dry)
                return
            # --max-delete makes rsync itself stop at the number the guard allowed, should the source
            # shrink meanwhile; with nothing to delete --delete is left out (an old rsync reads
            # --max-delete=0 as "no limit").
            extra = ["--delete", "--delete-delay", "--max-delete=%d" % deletions] if deletions else []
        else:
            if self.check_mode:
                r["changed"] = self._record(self.rsync([], p.dest, dry_run=True))
                return
            extra = []
        if not self.dest_exists:
            self._fs(_makedirs, p.dest)
        done = self.rsync(extra + self._transfer_args(p.delay_updates), p.dest)
        r["changed"] = self._record(done) or not self.dest_exists
        if p.verify:
            self._verify(p.dest, p.delete)

    # ---------------------------------------------------------------- snapshot

    def _scan(self, root):
        """(complete {datetime: name}, leftovers [name], unknown [name]) in the snapshot root."""
        complete, leftovers, unknown = {}, [], []
        for name, is_dir in self._fs(_list_root, root) or []:
            if is_leftover(name):
                leftovers.append(name)
            elif name == LATEST:
                continue
            elif is_dir and parse_stamp(name) is not None:
                complete[parse_stamp(name)] = name
            else:
                unknown.append(name)
        return complete, leftovers, unknown

    def snapshot(self):
        p, r = self.p, self.result
        root = os.path.join(p.dest, p.name)
        complete, leftovers, unknown = self._scan(root)
        if unknown:
            r["unknown_entries"] = unknown
            self.warnings.append(
                "%s holds entries that are not snapshots (left alone): %s" % (root, ", ".join(unknown))
            )
        r["cleaned_incomplete"] = leftovers
        if leftovers and not self.check_mode:
            for name in leftovers:
                self._fs(_remove, os.path.join(root, name), timeout=p.rsync_timeout)
            r["changed"] = True
        previous = complete[max(complete)] if complete else None
        r["previous"] = os.path.join(root, previous) if previous else None
        r["latest"] = self._latest(root)
        self.clock = _utc_now() if self.now is None else self.now
        try:
            stamp = next_stamp(self.clock, complete, p.max_clock_jump_days)
        except ClockError as exc:
            raise ClockError(str(exc), **dict(r, **exc.details)) from None
        name = format_stamp(stamp)
        final = os.path.join(root, name)
        work = final + PARTIAL_SUFFIX
        reference = self._guard(root, complete)
        link_args = ["--link-dest=" + os.path.join(root, reference)] if reference else []

        if p.skip_unchanged and previous and reference == previous:
            probe = self.guard_probe
            if not any(is_change(i) for i, _s, _n in probe["items"]) and not probe["deleted"]:
                r["unchanged"] = True
                if r["latest"] != os.path.join(root, previous) and not self.check_mode:
                    self._fs(_point_latest, root, previous)
                    r["changed"] = True
                r["latest"] = os.path.join(root, previous)
                self._retention(root, complete, None, reference)
                return
        r["unchanged"] = False
        if self.check_mode:
            self._record(self.rsync(link_args, work, dry_run=True))
            r["snapshot"] = final
            r["changed"] = True
            self._retention(root, complete, stamp, reference)
            return
        self._fs(_makedirs, root)
        r["changed"] = True
        self._record(self.rsync(link_args + self._transfer_args(False), work))
        if p.verify:
            self._verify(work, True)
        self._fs(_rename, work, final)
        r["snapshot"] = final
        self._fs(_point_latest, root, name)
        r["latest"] = final
        complete[stamp] = name
        self._retention(root, complete, stamp, reference)

    def _guard(self, root, complete):
        """Refuse an empty source, or one far smaller than the newest snapshot that held data.

        Returns that snapshot's name (the reference: compared with, hard-linked to, never removed by
        retention), or None when no snapshot holds anything. Raises ArchiveError when refused.
        """
        p, r = self.p, self.result
        label = ", ".join(s for s, _has in self.present)
        self.guard_probe = None
        if not any(has for _s, has in self.present):
            # Refused before rsync even looks: an empty (unmounted, wiped) source is never snapshotted.
            reference = self._reference(root, complete, warn=False)
            ref_path = os.path.join(root, reference) if reference else ""
            verdict = snapshot_guard(0, 0, 0, 0, 0, p.max_delete_percent, reference=ref_path, label=label)
            r["guard"] = verdict
            raise ArchiveError(verdict["reason"], **r)
        reference = self._reference(root, complete)
        if reference is None:
            return None
        ref_path = os.path.join(root, reference)
        probe = self.rsync(["--delete"], ref_path, dry_run=True)
        ref_entries, ref_bytes = self._fs(_tree_size, ref_path, timeout=p.rsync_timeout)
        stats = probe["stats"]
        verdict = snapshot_guard(
            len(probe["deleted"]),
            dest_entries_from_stats(stats),
            ref_bytes,
            source_entries_from_stats(stats),
            stats.get("total_bytes", 0),
            p.max_delete_percent,
            p.delete_grace_count,
            force=p.force_delete,
            reference=ref_path,
            label=label,
        )
        verdict["reference_entries"] = ref_entries
        r["guard"] = verdict
        if not verdict["ok"]:
            raise ArchiveError(verdict["reason"], **r)
        if verdict["forced"]:
            self.warnings.append(
                "snapshot guard overridden by force_delete: the new snapshot is smaller than %s (%d of %d entries "
                "gone, %.1f%% fewer bytes)"
                % (ref_path, verdict["deletions"], verdict["dest_entries"], verdict["bytes_percent"])
            )
        self.guard_probe = probe
        return reference

    def _reference(self, root, complete, warn=True):
        """The newest complete snapshot that holds any entry; warns about newer empty ones."""
        empty = []
        for when in sorted(complete, reverse=True):
            name = complete[when]
            if self._fs(_has_entries, os.path.join(root, name)):
                break
            empty.append(name)
        else:
            name = None
        if empty and warn:
            self.warnings.append(
                "%s: the newest snapshot%s %s %s empty (made while the source was empty?); compared with and "
                "keeping %s instead"
                % (
                    root,
                    "s" if len(empty) > 1 else "",
                    ", ".join(empty),
                    "are" if len(empty) > 1 else "is",
                    name or "nothing (no snapshot holds data)",
                )
            )
        return name

    def _latest(self, root):
        target = self._fs(_readlink, os.path.join(root, LATEST))
        if not target:
            return None
        return os.path.join(root, os.path.basename(target.rstrip("/")))

    def _retention(self, root, complete, new_stamp, reference=None):
        p, r = self.p, self.result
        stamps = set(complete)
        if new_stamp is not None:
            stamps.add(new_stamp)
        protect = set()
        if r["latest"]:
            latest = parse_stamp(os.path.basename(r["latest"]))
            if latest is not None:
                protect.add(latest)
        if new_stamp is not None:
            protect.add(new_stamp)
        if reference is not None:
            # The newest snapshot that held data is never removed, whatever the counts say.
            protect.add(parse_stamp(reference))
        keep = select_retention(
            stamps, p.keep_last, p.keep_daily, p.keep_weekly, p.keep_monthly, protect, now=self.clock
        )
        remove = sorted(stamps - keep)
        r["retention_kept"] = [format_stamp(s) for s in sorted(keep)]
        r["retention_removed"] = [format_stamp(s) for s in remove]
        if not remove:
            return
        r["changed"] = True
        if self.check_mode:
            return
        for when in remove:
            name = complete[when]
            doomed = os.path.join(root, name + DELETING_SUFFIX)
            # Renamed first: a removal cut short leaves a .deleting leftover, never a half snapshot.
            self._fs(_rename, os.path.join(root, name), doomed)
            self._fs(_remove, doomed, timeout=p.rsync_timeout)
