# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The members an archive adds to a snapshot's tree, and their checks after a restore.

Standard library only, Python 3.8. Used by ``_snapshot_archive`` (create and restore):

* ``MANIFEST`` (``.jts-backup-manifest.json``, the archive's last member, at its root) and
  ``manifest_of``: how consistent the tree is and what a restore needs;
* ``check_postgresql`` and ``stage``: for an application-consistent PostgreSQL origin, the
  ``backup_label``, ``tablespace_map`` and WAL segments staged beside the tree (owned as the data
  directory), and the tree's members they replace; otherwise the manifest says crash;
* ``finish_restore``: after an extraction, the manifest read and removed, the label and WAL
  checked, ``postmaster.pid`` removed.

Paths below a root are opened one component at a time without following a symlink (``_open_below``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile

from ansible_collections.jts.tiered_storage.plugins.module_utils._snapshot_archive_files import (
    _DIR_FLAGS,
    SnapshotArchiveError,
)

# The archive's manifest, a member at its root: how consistent the tree is and what a restore needs.
MANIFEST = ".jts-backup-manifest.json"
NO_METHOD = "no consistency method configured"
_WAL_NAME = re.compile(r"^[0-9A-F]{24}$")


def _open_below(root_fd, relative):
    """Open the directory ``relative`` below ``root_fd`` one component at a time, never following a symlink."""
    fd = os.dup(root_fd)
    try:
        for part in relative.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                raise OSError(errno.EPERM, "'..' refused", relative)
            below = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = below
        return fd
    except BaseException:
        os.close(fd)
        raise


def manifest_of(consistency):
    """The manifest of an archive, from the ``consistency`` lvm_snapshot returned for its origin (or None).

    Says what the archive carries: ``backup_label``/``tablespace_map`` (True when they are members)
    and ``wal_files`` (the segments that are members) are filled in by ``stage``.
    """
    given = consistency or {}
    return {
        "format": 1,
        "mode": given.get("mode") or "crash",
        "method": given.get("method") or "none",
        "reason": given.get("reason") or NO_METHOD,
        "start_lsn": given.get("start_lsn"),
        "stop_lsn": given.get("stop_lsn"),
        "start_wal": given.get("start_wal"),
        "stop_wal": given.get("stop_wal"),
        "data_directory": given.get("data_directory"),
        "backup_label": False,
        "tablespace_map": False,
        "wal_files": [],
    }


def _crash(manifest, why):
    manifest.update(
        mode="crash",
        reason="%s; the archive is crash-consistent (no backup_label in it)" % why,
        backup_label=False,
        tablespace_map=False,
        wal_files=[],
    )


def check_postgresql(source, consistency):
    """Can the snapshot at ``source`` carry this PostgreSQL backup? Return (problem, None) or (None, plan).

    The plan is ``(data_directory, uid, gid)``: the data directory relative to ``source`` (opened
    without following a symlink; it must hold PG_VERSION and a real ``pg_wal`` directory, since the
    WAL members are written into it on restore) and its owner, given to the members.
    """
    relative = consistency.get("data_directory")
    if relative is None:
        return "the data directory is on none of the group's mounts", None
    relative = os.path.normpath(relative)
    if os.path.isabs(relative) or relative.split("/")[0] == "..":
        return "data_directory %r is not below the LV" % relative, None
    if not consistency.get("backup_label"):
        return "the backup returned no backup_label", None
    wal_files = consistency.get("wal_files") or []
    if not wal_files or not consistency.get("wal_dest"):
        return "the backup's WAL was not copied (no wal_dest)", None
    bad = [name for name in wal_files if not _WAL_NAME.match(name)]
    if bad:
        return "not WAL segment names: %s" % ", ".join(bad), None
    root = os.open(source, _DIR_FLAGS)
    try:
        try:
            data_fd = _open_below(root, relative)
        except OSError as exc:
            return "the data directory %s is not a directory of this snapshot (%s)" % (relative, exc.strerror), None
        try:
            for name, kind, what in (("PG_VERSION", stat.S_ISREG, "a file"), ("pg_wal", stat.S_ISDIR, "a directory")):
                try:
                    mode = os.stat(name, dir_fd=data_fd, follow_symlinks=False).st_mode
                except OSError:
                    mode = 0
                if not kind(mode):
                    return (
                        "%s/%s is not %s in this snapshot (pg_wal on another volume is not carried)"
                        % (relative, name, what),
                        None,
                    )
            st = os.fstat(data_fd)
        finally:
            os.close(data_fd)
    finally:
        os.close(root)
    return None, (relative, st.st_uid, st.st_gid)


def _write_member(path, content, uid, gid, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.write(fd, content.encode("utf-8"))
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def stage(source, consistency):
    """Stage the members an archive adds to the tree of ``source``; return (stage_dir, members, excludes, manifest).

    Always the manifest (``MANIFEST``, at the root). For an application-consistent PostgreSQL
    origin whose snapshot can carry it (``check_postgresql``), also ``<data_directory>/backup_label``,
    ``tablespace_map`` when not empty and ``pg_wal/<segment>`` for each WAL file of the backup,
    owned as the data directory; the segments are hard links to the copies in ``wal_dest`` (the
    staging directory is made beside it, on the same filesystem). ``excludes`` are the members of
    the tree that these replace (the snapshot's own, incomplete, segments) and its
    ``postmaster.pid``. Otherwise the manifest says crash, and no backup_label is ever staged.
    The caller removes ``stage_dir``.
    """
    consistency = consistency or {}
    manifest = manifest_of(consistency)
    try:
        os.lstat(os.path.join(source, MANIFEST))
    except FileNotFoundError:
        pass
    else:
        raise SnapshotArchiveError(
            "%s holds %s, the name of the collection's archive manifest: rename it (it would be left out of "
            "the archive and replaced by the manifest on restore)" % (source, MANIFEST)
        )
    plan = None
    if manifest["mode"] == "application" and manifest["method"] == "postgresql":
        problem, plan = check_postgresql(source, consistency)
        if problem:
            _crash(manifest, problem)
    elif manifest["mode"] != "application":
        manifest["mode"] = "crash"
    if plan:
        wal_dest = os.path.normpath(consistency["wal_dest"])
        stage_dir = tempfile.mkdtemp(prefix=".jts-archive-", dir=os.path.dirname(wal_dest))
    else:
        stage_dir = tempfile.mkdtemp(prefix="jts-archive-")
    members, excludes = [], []
    try:
        if plan:
            relative, uid, gid = plan
            data = os.path.join(stage_dir, relative)
            os.makedirs(os.path.join(data, "pg_wal"), 0o700)

            def member(name):
                return os.path.normpath(os.path.join(relative, name))

            _write_member(os.path.join(data, "backup_label"), consistency["backup_label"], uid, gid, 0o600)
            members.append(member("backup_label"))
            manifest["backup_label"] = True
            if consistency.get("tablespace_map"):
                _write_member(os.path.join(data, "tablespace_map"), consistency["tablespace_map"], uid, gid, 0o600)
                members.append(member("tablespace_map"))
                manifest["tablespace_map"] = True
            wal_fd = os.open(wal_dest, _DIR_FLAGS | os.O_NOFOLLOW)
            try:
                for name in consistency["wal_files"]:
                    if not stat.S_ISREG(os.stat(name, dir_fd=wal_fd, follow_symlinks=False).st_mode):
                        raise SnapshotArchiveError("WAL copy %s/%s is not a regular file" % (wal_dest, name))
                    target = os.path.join(data, "pg_wal", name)
                    os.link(name, target, src_dir_fd=wal_fd, follow_symlinks=False)
                    os.chown(target, uid, gid, follow_symlinks=False)
                    members.append(member(os.path.join("pg_wal", name)))
            finally:
                os.close(wal_fd)
            manifest["wal_files"] = list(consistency["wal_files"])
            excludes.append(member("postmaster.pid"))
            if not manifest["tablespace_map"]:
                # a stale map of the tree would be read with this backup's label
                excludes.append(member("tablespace_map"))
        _write_member(
            os.path.join(stage_dir, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True) + "\n", 0, 0, 0o640
        )
        members.append(MANIFEST)
    except BaseException:
        shutil.rmtree(stage_dir, ignore_errors=True)
        raise
    excludes = ["./" + name for name in members + excludes]
    return stage_dir, members, excludes, manifest


def finish_restore(destination, result, has_manifest=True):
    """After an extraction: read (and remove) the manifest; for PostgreSQL, check the label and WAL, remove postmaster.pid.

    Returns the manifest (None for an archive without one: ``has_manifest`` False, the archive's
    last member is not this module's manifest, so a file of that name came from the LV and is
    left alone). Paths below ``destination`` are opened without following symlinks. Raises
    SnapshotArchiveError when the manifest is not a small JSON object or a member it names is missing.
    """
    if not has_manifest:
        return None
    root = os.open(destination, _DIR_FLAGS)
    try:
        try:
            fd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=root)
        except OSError as exc:
            raise SnapshotArchiveError("%s/%s: %s" % (destination, MANIFEST, exc.strerror)) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > (1 << 20):
            os.close(fd)
            raise SnapshotArchiveError(
                "%s/%s is not a manifest (not a regular file of at most 1 MiB)" % (destination, MANIFEST)
            )
        with os.fdopen(fd, "rb") as handle:
            try:
                manifest = json.loads(handle.read(1 << 20).decode("utf-8"))
            except ValueError as exc:
                raise SnapshotArchiveError("%s/%s is not valid JSON: %s" % (destination, MANIFEST, exc)) from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("wal_files") or [], list):
            raise SnapshotArchiveError("%s/%s is not a manifest (not a JSON object)" % (destination, MANIFEST))
        # read, returned and kept in the archive: the restored tree is the LV's, nothing added at its root
        os.unlink(MANIFEST, dir_fd=root)
        if not (manifest.get("mode") == "application" and manifest.get("method") == "postgresql"):
            return manifest
        if not manifest.get("backup_label"):
            raise SnapshotArchiveError("the manifest of %s says application without a backup_label" % result["archive"])
        relative = manifest.get("data_directory") or "."
        try:
            data_fd = _open_below(root, relative)
        except OSError as exc:
            raise SnapshotArchiveError(
                "restored data directory %s/%s: %s" % (destination, relative, exc.strerror)
            ) from None
        try:
            needed = ["backup_label"] + (["tablespace_map"] if manifest.get("tablespace_map") else [])
            bad = [name for name in manifest.get("wal_files") or [] if not _WAL_NAME.match(str(name))]
            if bad:
                raise SnapshotArchiveError(
                    "the manifest of %s names WAL files that are not segment names: %r" % (result["archive"], bad)
                )
            needed += ["pg_wal/" + name for name in manifest.get("wal_files") or []]
            wal_fd = _open_below(data_fd, "pg_wal")
            try:
                missing = []
                for name in needed:
                    where, base = (wal_fd, name[7:]) if name.startswith("pg_wal/") else (data_fd, name)
                    try:
                        ok = stat.S_ISREG(os.stat(base, dir_fd=where, follow_symlinks=False).st_mode)
                    except OSError:
                        ok = False
                    if not ok:
                        missing.append(name)
            finally:
                os.close(wal_fd)
            if missing:
                raise SnapshotArchiveError(
                    "restored %s lacks %s in %s: it would not start" % (result["archive"], ", ".join(missing), relative)
                )
            try:
                os.unlink("postmaster.pid", dir_fd=data_fd)
                manifest["postmaster_pid_removed"] = True
            except FileNotFoundError:
                manifest["postmaster_pid_removed"] = False
        finally:
            os.close(data_fd)
        return manifest
    finally:
        os.close(root)
