# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consistency of a snapshot set: what each database is brought to before the snapshots, and released after.

Users: lvm_snapshot (``consistency`` option). Methods, per group of origins:

* ``postgresql``: a non-exclusive base backup held open on one connection across the snapshots
  (``_pg_backup``), stopped after them; the WAL from the start to the stop segment is copied to
  ``wal_dest``; the result carries ``backup_label`` and ``tablespace_map`` for the archive.
* ``fsfreeze``: every mount of the group frozen across the snapshots (``_freeze``), thawed after,
  and by a detached watchdog after ``freeze_timeout`` seconds whatever happens to the module.
* ``none``: explicitly crash-consistent.

An origin in no group is ``crash`` with the reason "no consistency method configured".

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import re
import signal
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._freeze import FreezeError, Freezer, validate_mounts
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup import (
    PgBackupSession,
    PgError,
    validate_label,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup_wal import copy_wal

METHODS = ("postgresql", "fsfreeze", "none")
NO_METHOD = "no consistency method configured"
# fsfreeze held across lvcreate: lvcreate suspends the origin with device-mapper, which freezes the
# filesystem itself; a kernel before 6.8 refuses to freeze one that is frozen already (6.6 and 6.7
# freeze a block device as the same holder as the FIFREEZE ioctl: EBUSY too; 6.8 let them nest).
# Seen on the lab VM (Debian 12, 6.1): "device-mapper: suspend ioctl ... failed: Device or resource
# busy", lvcreate "Aborting. Manual intervention required.", a half-made LV left behind.
FSFREEZE_MIN_KERNEL = (6, 8)
_KERNEL_RE = re.compile(r"^(\d+)\.(\d+)(?!\d)")
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ConsistencyError(JtsError):
    """A group could not be brought to a consistent state (nothing of it is left held)."""


class Interrupted(JtsError):
    """A signal arrived while databases were held or filesystems frozen."""

    def __init__(self, signum):
        super().__init__("interrupted by signal %d" % signum)
        self.signum = signum


def kernel_version(release):
    """``(6, 1)`` from ``6.1.0-50-amd64``; ``None`` when it does not start with two numbers."""
    match = _KERNEL_RE.match(release)
    return (int(match.group(1)), int(match.group(2))) if match else None


def running_kernel():
    return os.uname().release


def fsfreeze_refusal(where, release):
    """Why ``fsfreeze`` cannot be held across lvcreate on the kernel ``release``, or None."""
    version = kernel_version(release)
    if version is not None and version >= FSFREEZE_MIN_KERNEL:
        return None
    return (
        "%s: method fsfreeze cannot be held across lvcreate on Linux %s: lvcreate freezes each origin's "
        "filesystem itself while it suspends the device, and a kernel before %d.%d refuses to freeze a frozen "
        "filesystem (the suspend fails with 'Device or resource busy' and LVM leaves a half-made LV that needs "
        "manual repair). Each snapshot is already filesystem-consistent on its own; for one service on several "
        "LVs use method postgresql (PostgreSQL), a pre_hook/post_hook that quiesces the service, or method none "
        "with a reason" % (where, release, *FSFREEZE_MIN_KERNEL)
    )


def parse_consistency(entries, set_origins, kernel_release=None):
    """Check the ``consistency`` option against the set's origins; return normalised groups.

    The cross-field rules only: ``entries`` are as the argument_spec gives them (``method`` one
    of METHODS, ``freeze_timeout`` present). ``kernel_release`` (the running kernel's when not
    given) decides whether ``fsfreeze`` can work at all (``fsfreeze_refusal``).
    """
    groups = []
    seen = {}
    for index, entry in enumerate(entries or []):
        where = "consistency[%d]" % index
        origins = list(entry.get("origins") or [])
        if not origins:
            raise ConsistencyError("%s.origins must list at least one LV of the set" % where)
        for lv in origins:
            if lv not in set_origins:
                raise ConsistencyError("%s: %s is not one of the origins of this set" % (where, lv))
            if lv in seen:
                raise ConsistencyError("%s: %s is already in consistency[%d]" % (where, lv, seen[lv]))
            seen[lv] = index
        # method (its choices) and freeze_timeout (its default) come checked from the argument_spec
        method = entry["method"]
        mounts = list(entry.get("mounts") or [])
        timeout = entry["freeze_timeout"]
        if timeout <= 0:
            raise ConsistencyError("%s.freeze_timeout must be more than zero" % where)
        for mount in mounts:
            if not os.path.isabs(mount) or os.path.normpath(mount) != mount:
                raise ConsistencyError("%s.mounts: %r must be an absolute, normalised path" % (where, mount))
        if method == "fsfreeze" and not mounts:
            raise ConsistencyError("%s: method fsfreeze needs mounts (the mount point of each LV of the group)" % where)
        if method == "fsfreeze":
            refusal = fsfreeze_refusal(where, kernel_release or running_kernel())
            if refusal:
                raise ConsistencyError(refusal)
        if method == "postgresql":
            try:
                validate_label(entry.get("label") or "jts_lvm_snapshot")
            except PgError as exc:
                raise ConsistencyError("%s.label: %s" % (where, exc)) from None
            wal_dest = entry.get("wal_dest")
            if wal_dest and (not os.path.isabs(wal_dest) or os.path.normpath(wal_dest) != wal_dest):
                raise ConsistencyError("%s.wal_dest: %r must be an absolute, normalised path" % (where, wal_dest))
            if not wal_dest and not entry.get("wal_from_archive"):
                raise ConsistencyError(
                    "%s: method postgresql needs wal_dest, the directory the backup's WAL is copied to (a "
                    "backup_label without that WAL makes the restored cluster refuse to start); set "
                    "wal_from_archive: true only when the server archives its WAL (archive_mode) and a "
                    "restore can fetch it" % where
                )
        groups.append(dict(entry, origins=origins, method=method, mounts=mounts, freeze_timeout=timeout))
    return groups


def relative_data_directory(data_directory, mounts):
    """``data_directory`` relative to the mount point (of ``mounts``) that holds it, or None."""
    best = None
    for mount in mounts:
        try:
            if os.path.commonpath([mount, data_directory]) == mount and (best is None or len(mount) > len(best)):
                best = mount
        except ValueError:
            continue
    if best is None:
        return None
    return os.path.relpath(data_directory, best)


def per_origin(state, origins, device_of):
    """Each origin's share of a group's released ``state``: the PostgreSQL label and WAL go to one LV only.

    A backup_label and its WAL belong to the LV that holds the server's data directory; given to
    another LV of the group (a tablespace, a second cluster) they would make its archive restore
    the wrong cluster. With one origin that is the group's word; with several, the origin whose
    block device (``device_of(lv)``, e.g. ``/dev/<vg>/<lv>``) is the data directory's ``st_dev``.
    The others, or all when it cannot be told, are crash-consistent and say why.
    """
    origins = list(origins)
    shared = dict(state, origins=origins)
    if not state.get("backup_label") or len(origins) == 1:
        return dict((lv, dict(shared)) for lv in origins)
    holder = None
    try:
        wanted = os.stat(state.get("data_directory_absolute") or "").st_dev
        for lv in origins:
            st = os.stat(device_of(lv))
            if stat.S_ISBLK(st.st_mode) and st.st_rdev == wanted:
                holder = lv
                break
    except OSError:
        holder = None
    states = {}
    for lv in origins:
        if lv == holder:
            states[lv] = dict(shared)
            continue
        why = (
            "the PostgreSQL data directory %s is on %s, not on this LV" % (state.get("data_directory_absolute"), holder)
            if holder
            else "could not tell which LV of %s holds the PostgreSQL data directory %s"
            % (", ".join(origins), state.get("data_directory_absolute"))
        )
        states[lv] = dict(
            shared,
            mode="crash",
            reason="%s; snapshot taken while the backup was held, archived without its label" % why,
            backup_label=None,
            tablespace_map=None,
            data_directory=None,
            wal_files=[],
        )
    return states


def empty_state(method, mode, reason):
    return {
        "mode": mode,
        "method": method,
        "reason": reason,
        "backup_label": None,
        "tablespace_map": None,
        "start_lsn": None,
        "stop_lsn": None,
        "data_directory": None,
    }


def planned(groups, origins):
    """What check mode reports: per origin, the mode a real run would aim at and how."""
    states = {lv: empty_state("none", "crash", NO_METHOD) for lv in origins}
    for group in groups:
        if group["method"] == "postgresql":
            state = empty_state(
                "postgresql",
                "application",
                "would hold a non-exclusive PostgreSQL backup on %s across the snapshots%s"
                % (_describe_pg(group), ", freezing nothing" if not group["mounts"] else ""),
            )
        elif group["method"] == "fsfreeze":
            state = empty_state(
                "fsfreeze",
                "application",
                "would freeze %s across the snapshots (thawed after %ds at the latest)"
                % (", ".join(group["mounts"]), group["freeze_timeout"]),
            )
        else:
            state = empty_state("none", "crash", group.get("reason") or "method none: crash-consistent by choice")
        for lv in group["origins"]:
            states[lv] = dict(state, origins=list(group["origins"]))
    return states


def _describe_pg(group):
    return "database %s on %s:%s" % (
        group.get("database") or "postgres",
        group.get("host") or "the local socket",
        group.get("port") or 5432,
    )


class PgHolder:
    """Holds a PostgreSQL backup for one group. Raises ConsistencyError for an unknown ``os_user``."""

    def __init__(self, group, psql, popen=None):
        self.group = group
        try:
            self.session = self._session(group, psql, popen)
        except PgError as exc:
            raise ConsistencyError("consistency of %s: %s" % (", ".join(group["origins"]), exc)) from None

    @staticmethod
    def _session(group, psql, popen):
        return PgBackupSession(
            psql,
            dbname=group.get("database") or "postgres",
            host=group.get("host"),
            port=group.get("port") or 5432,
            user=group.get("user"),
            password=group.get("password"),
            passfile=group.get("passfile"),
            os_user=group.get("os_user"),
            connect_timeout=group.get("connect_timeout") or 10,
            statement_timeout=group.get("statement_timeout") or 300,
            popen=popen,
        )

    def acquire(self):
        wal_dest = self.group.get("wal_dest")
        if wal_dest:
            # checked before the backup starts, so that a wrong path costs no snapshot set
            try:
                fd = os.open(wal_dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError as exc:
                raise ConsistencyError(
                    "wal_dest %s: %s (an existing directory is needed)" % (wal_dest, exc.strerror)
                ) from None
            try:
                if os.listdir(fd):
                    raise ConsistencyError("wal_dest %s is not empty: use an empty directory per run" % wal_dest)
            finally:
                os.close(fd)
        try:
            self.session.start(self.group.get("label") or "jts_lvm_snapshot")
        except PgError as exc:
            self.session.close()
            raise ConsistencyError("PostgreSQL backup start failed: %s" % exc) from None
        except BaseException:
            # a signal while the backup was starting: end the session, the server aborts the backup
            self.session.close()
            raise

    def release(self, success):
        """Stop (after a complete set) or abort the backup; return (state, finding or None). Never raises."""
        group = self.group
        if not success:
            held = self.session.abort()
            state = empty_state(
                "postgresql",
                "crash",
                "backup %s: the snapshot set was not completed"
                % ("aborted (session closed)" if held else "not started"),
            )
            return state, None
        try:
            stopped = self.session.stop()
        except PgError as exc:
            self.session.abort()
            reason = "%s failed, so the snapshot has no backup label: %s" % (self.session.stop_function, exc)
            return empty_state("postgresql", "crash", reason), reason
        data_directory = self.session.data_directory
        state = empty_state("postgresql", "application", "")
        state.update(stopped)
        state["data_directory"] = relative_data_directory(data_directory, group["mounts"])
        state["data_directory_absolute"] = data_directory
        state["wal_dest"] = group.get("wal_dest")
        state["wal_files"] = []
        finding = None
        if group.get("wal_dest"):
            try:
                state["wal_files"] = copy_wal(
                    data_directory, stopped["start_wal"], stopped["stop_wal"], group["wal_dest"]
                )
            except (PgError, OSError) as exc:
                state["mode"] = "crash"
                state["reason"] = "the backup's WAL could not be copied (%s); without it the label cannot be used" % exc
                return state, state["reason"]
            where = "copied to %s" % group["wal_dest"]
        else:
            where = "to be fetched from the WAL archive (wal_from_archive)"
        state["reason"] = (
            "non-exclusive backup held on one connection across the snapshots (%s to %s); restore: put "
            "backup_label%s in the data directory and the WAL %s to %s (%s) in pg_wal"
            % (
                stopped["start_lsn"],
                stopped["stop_lsn"],
                " and tablespace_map" if stopped["tablespace_map"] else "",
                stopped["start_wal"],
                stopped["stop_wal"],
                where,
            )
        )
        if state["data_directory"] is None and group["mounts"]:
            finding = "data_directory %s is under none of the mounts %s" % (data_directory, ", ".join(group["mounts"]))
        return state, finding


class FreezeHolder:
    """Freezes the mounts of one group."""

    def __init__(self, group, run, fsfreeze, popen=None, clock=None):
        self.group = group
        kw = {"popen": popen}
        if clock is not None:
            kw["clock"] = clock
        self.freezer = Freezer(run, fsfreeze, group["mounts"], group["freeze_timeout"], **kw)

    def acquire(self):
        try:
            validate_mounts(self.group["mounts"])
            self.freezer.freeze()
        except FreezeError as exc:
            raise ConsistencyError(str(exc)) from None

    def release(self, success):
        elapsed = self.freezer.elapsed()
        errors = self.freezer.thaw()
        mounts = ", ".join(self.group["mounts"])
        state = empty_state("fsfreeze", "application", "")
        state["mounts"] = list(self.group["mounts"])
        state["frozen_seconds"] = None if elapsed is None else round(elapsed, 3)
        finding = None
        if not success:
            state["mode"] = "crash"
            state["reason"] = "thawed %s: the snapshot set was not completed" % mounts
        elif elapsed is not None and elapsed >= self.group["freeze_timeout"]:
            state["mode"] = "crash"
            state["reason"] = (
                "the set took %.1fs, more than freeze_timeout %ds: the watchdog may have thawed %s first"
                % (
                    elapsed,
                    self.group["freeze_timeout"],
                    mounts,
                )
            )
            finding = state["reason"]
        else:
            state["reason"] = "%s frozen across the snapshots (%.1fs)" % (mounts, elapsed or 0)
        if errors:
            finding = "; ".join(errors)
            state["reason"] += "; thaw errors: " + finding
        return state, finding


class SignalGuard:
    """While active, SIGTERM/SIGINT/SIGHUP raise Interrupted; ``mask()`` defers them during a release."""

    def __enter__(self):
        self._old = {}
        self.pending = None
        for signum in _SIGNALS:
            self._old[signum] = signal.signal(signum, self._handler)
        return self

    def _handler(self, signum, frame):
        self.pending = signum
        raise Interrupted(signum)

    def block(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)

    def __exit__(self, *exc):
        for signum in self._old:
            signal.signal(signum, self._ignore_once)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        for signum, old in self._old.items():
            signal.signal(signum, old)
        return False

    def _ignore_once(self, signum, frame):
        # a signal that arrived during the release: the release is done; the failure reports it
        self.pending = signum


__all__ = [
    "METHODS",
    "NO_METHOD",
    "ConsistencyError",
    "FreezeHolder",
    "Interrupted",
    "PgHolder",
    "SignalGuard",
    "empty_state",
    "parse_consistency",
    "per_origin",
    "planned",
    "relative_data_directory",
]
