# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Archives of a directory tree (a mounted snapshot): ``tar | zstd`` with a SHA-256 file.

Standard library only, Python 3.8. ``tar`` and ``zstd`` run as a pipeline of argument lists
(``subprocess.Popen``, never a shell); Python reads zstd's output, hashes it while writing it
to a temporary file in the archive's directory, flushes it, reads it back from the disk and checks
the hash, lists the archive (``zstd -dc | tar -t``) and only then gives it its final name and
writes ``<archive>.sha256`` in ``sha256sum`` format. A failure at any point removes the temporary
file and leaves every earlier archive as it was.

The temporary file has no name at all where the filesystem allows it (``O_TMPFILE``: ext4, XFS,
btrfs, tmpfs): it is linked in under the archive's name once verified (``linkat``, which never
replaces a file), and a run killed with SIGKILL leaves nothing behind, so the lifecycle's move of
``daily-backups`` to the NAS never meets a half archive. Elsewhere (NFS) it is
``.<archive>.<8 characters>.partial``, ``flock``-ed while it lives; each later run in the
directory removes those whose lock is free (``clean_stale``), and so the checksum file's
``.<archive>.<8 characters>.sha256.partial``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile

CHUNK = 1 << 20
SUFFIX = ".tar.zst"
# GNU tar options that keep what a database's files need: numeric owners, permissions, ACLs,
# extended attributes (SELinux labels too), sparse files; one filesystem only.
TAR_CREATE = ["--create", "--file=-", "--numeric-owner", "--acls", "--xattrs", "--xattrs-include=*", "--sparse"]
TAR_EXTRACT = [
    "--extract",
    "--file=-",
    "--numeric-owner",
    "--acls",
    "--xattrs",
    "--xattrs-include=*",
    "--same-permissions",
    "--same-owner",
]
_SHA_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
# A temporary file of ours: the names this module gives (and gave: tempfile.mkstemp's 8 characters).
_TEMPORARY = re.compile(r"^\..+\.tar\.zst\.[a-z0-9_]{8}(?:\.sha256)?\.partial$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# The archive's manifest, a member at its root: how consistent the tree is and what a restore needs.
MANIFEST = ".jts-backup-manifest.json"
NO_METHOD = "no consistency method configured"
_WAL_NAME = re.compile(r"^[0-9A-F]{24}$")


class ArchiveError(Exception):
    """A user-facing failure; the message names the paths involved."""


def checksum_path(archive):
    return archive + ".sha256"


def _drain_stderr(handle):
    handle.seek(0)
    return handle.read().decode("utf-8", "replace").strip()


def run_pipeline(commands, sink, stdin=None):
    """Run ``commands`` (argument lists) as a pipeline; feed the last one's stdout to ``sink(chunk)``.

    ``stdin`` is a file object for the first command (default: nothing). Returns a list of
    ``(rc, stderr)`` per command. Never raises for a failing command; raises ArchiveError when
    a command cannot be started.
    """
    procs, errs = [], []
    previous = stdin if stdin is not None else subprocess.DEVNULL
    try:
        for cmd in commands:
            err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below, with the processes
            errs.append(err)
            try:
                proc = subprocess.Popen(cmd, stdin=previous, stdout=subprocess.PIPE, stderr=err)
            except OSError as exc:
                raise ArchiveError("cannot run %s: %s" % (cmd[0], exc.strerror or exc)) from None
            if procs:
                procs[-1].stdout.close()  # the next process holds it now; SIGPIPE reaches the writer
            procs.append(proc)
            previous = proc.stdout
        last = procs[-1].stdout
        while True:
            chunk = last.read(CHUNK)
            if not chunk:
                break
            sink(chunk)
        last.close()
        return [(proc.wait(), _drain_stderr(err)) for proc, err in zip(procs, errs)]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for err in errs:
            err.close()


def _check(results, commands, what):
    for (rc, err), cmd in zip(results, commands):
        if rc != 0:
            raise ArchiveError("%s: %s exited with %d: %s" % (what, os.path.basename(cmd[0]), rc, err or "no message"))


def file_sha256(path):
    """SHA-256 of a file as it is on the disk (its cached pages dropped first where possible)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return fd_sha256(fd)
    finally:
        os.close(fd)


def fd_sha256(fd):
    """SHA-256 of an open file from its start, as it is on the disk (cached pages dropped first)."""
    digest = hashlib.sha256()
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    offset = 0
    while True:
        chunk = os.pread(fd, CHUNK, offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def read_checksum(archive):
    """The hex digest recorded in ``<archive>.sha256`` (``sha256sum`` format, for this file's name)."""
    path = checksum_path(archive)
    try:
        with open(path) as handle:
            line = handle.readline().strip()
    except OSError as exc:
        raise ArchiveError("cannot read the checksum file %s: %s" % (path, exc.strerror or exc)) from None
    match = _SHA_LINE.match(line)
    if not match or match.group(2) != os.path.basename(archive):
        raise ArchiveError("%s is not a sha256sum line for %s: %r" % (path, os.path.basename(archive), line))
    return match.group(1)


def is_temporary(name):
    """True for a temporary file this module writes (or wrote) next to an archive."""
    return bool(_TEMPORARY.match(name))


def _open_unnamed(dir_fd):
    """An unnamed file in the directory (``O_TMPFILE``), or None where the filesystem or kernel has none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(".", flag | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        # EISDIR: a kernel without O_TMPFILE; EOPNOTSUPP: a filesystem without it (NFS).
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def _open_named(dir_fd, archive_name, suffix):
    """``.<archive>.<8 characters><suffix>``, created (never reused) and locked; returns (fd, name)."""
    for _attempt in range(100):
        name = ".%s.%s%s" % (archive_name, os.urandom(4).hex(), suffix)
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours alone: just created
        return fd, name
    raise ArchiveError("could not create a temporary file for %s" % archive_name)  # pragma: no cover


def clean_stale(directory, check_mode=False, dir_fd=None):
    """Remove the temporary files that killed runs left in ``directory``; return their names.

    Only names of ours (``is_temporary``), only regular files (opened without following a
    symlink), only when no live run holds their lock, and only when the name still refers to the
    file we locked. In check mode, the names that would be removed.
    """
    own = dir_fd is None
    if own:
        dir_fd = os.open(directory, _DIR_FLAGS)
    cleaned = []
    try:
        for name in sorted(os.listdir(dir_fd)):
            if not is_temporary(name):
                continue
            try:
                fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                continue  # a symlink (ELOOP), gone meanwhile: not ours to remove
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        continue  # a run is writing it
                    raise
                if not check_mode:
                    now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                        continue
                    os.unlink(name, dir_fd=dir_fd)
                cleaned.append(name)
            finally:
                os.close(fd)
    finally:
        if own:
            os.close(dir_fd)
    return cleaned


def _write_checksum(dir_fd, archive_name, digest):
    fd, tmp = _open_named(dir_fd, archive_name, ".sha256.partial")
    try:
        os.write(fd, ("%s  %s\n" % (digest, archive_name)).encode())
        os.fchmod(fd, 0o640)
        os.fsync(fd)
        os.rename(tmp, archive_name + ".sha256", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
    finally:
        os.close(fd)
        if tmp is not None:
            os.unlink(tmp, dir_fd=dir_fd)


def list_archive(archive, zstd_bin, tar_bin, fd=None, last_entry=None):
    """Decompress and list the archive (checks zstd's frame checksums and tar's structure); entries.

    With ``fd``, the archive is read from that open file (from its start), ``archive`` names it.
    With ``last_entry`` (a list), the name of the archive's last member is appended to it.
    """
    entries = [0]
    pending = [b"", b""]  # the unfinished line, the last whole line

    def count(chunk):
        entries[0] += chunk.count(b"\n")
        lines = (pending[0] + chunk).split(b"\n")
        pending[0] = lines[-1][-4096:]
        if len(lines) > 1:
            pending[1] = lines[-2][-4096:]

    if fd is None:
        commands = [[zstd_bin, "-q", "-d", "-c", archive], [tar_bin, "--list", "--file=-"]]
        results = run_pipeline(commands, count)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        commands = [[zstd_bin, "-q", "-d", "-c"], [tar_bin, "--list", "--file=-"]]
        results = run_pipeline(commands, count, stdin=fd)
    _check(results, commands, "listing %s" % archive)
    if last_entry is not None:
        last_entry.append((pending[0] or pending[1]).decode("utf-8", "surrogateescape"))
    return entries[0]


def verify(archive, zstd_bin, tar_bin, expected=None, last_entry=None):
    """Check the archive against its checksum file (or ``expected``) and list it; return details.

    ``last_entry``: see ``list_archive`` (the manifest this module writes is always the last member).
    """
    if not os.path.isfile(archive):
        raise ArchiveError("archive %s does not exist" % archive)
    expected = expected or read_checksum(archive)
    actual = file_sha256(archive)
    if actual != expected:
        raise ArchiveError(
            "archive %s does not match its checksum: sha256 %s, expected %s" % (archive, actual, expected)
        )
    entries = list_archive(archive, zstd_bin, tar_bin, last_entry=last_entry)
    return {"archive": archive, "sha256": actual, "size_bytes": os.path.getsize(archive), "entries": entries}


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
        raise ArchiveError(
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
                        raise ArchiveError("WAL copy %s/%s is not a regular file" % (wal_dest, name))
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
    ArchiveError when the manifest is not a small JSON object or a member it names is missing.
    """
    if not has_manifest:
        return None
    root = os.open(destination, _DIR_FLAGS)
    try:
        try:
            fd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=root)
        except OSError as exc:
            raise ArchiveError("%s/%s: %s" % (destination, MANIFEST, exc.strerror)) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > (1 << 20):
            os.close(fd)
            raise ArchiveError(
                "%s/%s is not a manifest (not a regular file of at most 1 MiB)" % (destination, MANIFEST)
            )
        with os.fdopen(fd, "rb") as handle:
            try:
                manifest = json.loads(handle.read(1 << 20).decode("utf-8"))
            except ValueError as exc:
                raise ArchiveError("%s/%s is not valid JSON: %s" % (destination, MANIFEST, exc)) from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("wal_files") or [], list):
            raise ArchiveError("%s/%s is not a manifest (not a JSON object)" % (destination, MANIFEST))
        # read, returned and kept in the archive: the restored tree is the LV's, nothing added at its root
        os.unlink(MANIFEST, dir_fd=root)
        if not (manifest.get("mode") == "application" and manifest.get("method") == "postgresql"):
            return manifest
        if not manifest.get("backup_label"):
            raise ArchiveError("the manifest of %s says application without a backup_label" % result["archive"])
        relative = manifest.get("data_directory") or "."
        try:
            data_fd = _open_below(root, relative)
        except OSError as exc:
            raise ArchiveError("restored data directory %s/%s: %s" % (destination, relative, exc.strerror)) from None
        try:
            needed = ["backup_label"] + (["tablespace_map"] if manifest.get("tablespace_map") else [])
            bad = [name for name in manifest.get("wal_files") or [] if not _WAL_NAME.match(str(name))]
            if bad:
                raise ArchiveError(
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
                raise ArchiveError(
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


def create(
    source, archive, zstd_bin, tar_bin, level=3, threads=0, one_file_system=True, check_mode=False, consistency=None
):
    """Archive ``source`` into ``archive`` (``.tar.zst``) with ``archive.sha256``, verified.

    An archive that exists with a matching checksum is left alone (``changed`` False); one that
    exists without a checksum file, or that does not match it, is an error (never overwritten).
    Temporary files left in the directory by killed runs are removed first (``cleaned_incomplete``).
    ``consistency`` (lvm_snapshot's for the origin) decides the members added by ``stage``.
    """
    if not archive.endswith(SUFFIX):
        raise ArchiveError("archive %s must end in %s" % (archive, SUFFIX))
    if not os.path.isdir(source):
        raise ArchiveError("source %s is not a directory" % source)
    directory = os.path.dirname(archive)
    if not os.path.isdir(directory):
        raise ArchiveError("the directory of the archive, %s, does not exist" % directory)
    dir_fd = os.open(directory, _DIR_FLAGS)
    try:
        cleaned = clean_stale(directory, check_mode, dir_fd=dir_fd)
        if os.path.lexists(archive):
            if not os.path.exists(checksum_path(archive)):
                raise ArchiveError(
                    "archive %s exists without its checksum file %s: refusing to overwrite it"
                    % (archive, checksum_path(archive))
                )
            result = verify(archive, zstd_bin, tar_bin)
            result.update(
                changed=bool(cleaned), cleaned_incomplete=cleaned, msg="archive %s exists and verifies" % archive
            )
            return result
        if check_mode:
            return {
                "archive": archive,
                "changed": True,
                "cleaned_incomplete": cleaned,
                "msg": "would archive %s into %s" % (source, archive),
            }
        stage_dir, members, excludes, manifest = stage(source, consistency)
        try:
            extra = (stage_dir, members, excludes)
            result = _write(source, archive, dir_fd, zstd_bin, tar_bin, level, threads, one_file_system, extra)
        finally:
            shutil.rmtree(stage_dir, ignore_errors=True)
    finally:
        os.close(dir_fd)
    result["consistency"] = manifest
    result["msg"] += "; %s-consistent (%s)" % (manifest["mode"], manifest["method"])
    result["cleaned_incomplete"] = cleaned
    return result


def _write(source, archive, dir_fd, zstd_bin, tar_bin, level, threads, one_file_system, extra=None):
    name = os.path.basename(archive)
    tar_cmd = [tar_bin] + TAR_CREATE + (["--one-file-system"] if one_file_system else [])
    stage_dir, members, excludes = extra or (None, [], [])
    # Anchored literal patterns: they match only the tree's "./<member>" names, never the staged "<member>".
    tar_cmd += ["--anchored", "--no-wildcards"] + ["--exclude=" + pattern for pattern in excludes]
    tar_cmd += ["--directory", source, "."]
    if members:
        tar_cmd += ["--directory", stage_dir] + ["--add-file=" + member for member in members]
    zstd_cmd = [zstd_bin, "-q", "-%d" % level, "-T%d" % threads, "-c"]
    if level > 19:
        zstd_cmd.insert(1, "--ultra")
    commands = [tar_cmd, zstd_cmd]
    tmp = None
    fd = _open_unnamed(dir_fd)
    if fd is None:
        fd, tmp = _open_named(dir_fd, name, ".partial")
    digest = hashlib.sha256()
    try:

        def sink(chunk):
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]

        results = run_pipeline(commands, sink)
        _check(results, commands, "archiving %s" % source)
        os.fchmod(fd, 0o640)
        os.fsync(fd)
        written = digest.hexdigest()
        actual = fd_sha256(fd)
        if actual != written:
            raise ArchiveError(
                "archive %s read back from the disk does not match what was written: sha256 %s, expected %s"
                % (archive, actual, written)
            )
        entries = list_archive(archive, zstd_bin, tar_bin, fd=fd)
        size = os.fstat(fd).st_size
        try:
            if tmp is None:
                # linkat gives the unnamed file its name, and never replaces an existing file
                os.link("/proc/self/fd/%d" % fd, name, dst_dir_fd=dir_fd, follow_symlinks=True)
            else:
                if os.path.lexists(archive):  # pragma: no cover - a concurrent writer; never overwrite
                    raise FileExistsError(errno.EEXIST, "exists", archive)
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                tmp = None
        except FileExistsError:
            raise ArchiveError("archive %s appeared while it was being written: left alone" % archive) from None
    except BaseException:
        if tmp is not None:
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    finally:
        os.close(fd)
    _write_checksum(dir_fd, name, written)
    os.fsync(dir_fd)
    return {
        "archive": archive,
        "checksum_file": checksum_path(archive),
        "sha256": written,
        "size_bytes": size,
        "entries": entries,
        "changed": True,
        "msg": "archived %s into %s (%d entries, sha256 %s, verified)" % (source, archive, entries, written),
    }


def restore(archive, destination, zstd_bin, tar_bin, force=False, check_mode=False):
    """Verify the archive, then extract it into ``destination`` (which must be empty unless ``force``)."""
    last = []
    result = verify(archive, zstd_bin, tar_bin, last_entry=last)
    if not os.path.isdir(destination):
        raise ArchiveError("restore destination %s is not a directory" % destination)
    if os.listdir(destination) and not force:
        raise ArchiveError(
            "restore destination %s is not empty: restore into an empty directory, or set force to overwrite"
            % destination
        )
    result["destination"] = destination
    if check_mode:
        result.update(changed=True, msg="would restore %s into %s" % (archive, destination))
        return result
    with open(archive, "rb") as handle:
        commands = [[zstd_bin, "-q", "-d", "-c"], [tar_bin, *TAR_EXTRACT, "--directory", destination]]
        _check(run_pipeline(commands, lambda chunk: None, stdin=handle), commands, "restoring %s" % archive)
    # this module adds its manifest last, as the bare name; the tree's members are all "./<name>"
    manifest = finish_restore(destination, result, has_manifest=last == [MANIFEST])
    result["consistency"] = manifest
    mode = manifest["mode"] if manifest else "unknown (an archive without a manifest)"
    result.update(
        changed=True,
        msg="restored %s into %s (%d entries); %s-consistent%s"
        % (
            archive,
            destination,
            result["entries"],
            mode,
            " (%s: backup_label and WAL in %s)" % (manifest["method"], manifest["data_directory"])
            if manifest and manifest["backup_label"]
            else "",
        ),
    )
    return result
