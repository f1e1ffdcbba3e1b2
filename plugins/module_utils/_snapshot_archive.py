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

This file holds the ``tar | zstd`` pipeline, create, verify and restore; the checksum and
temporary files are ``_snapshot_archive_files``'s, the members an archive adds (manifest,
backup_label, WAL) and their checks after a restore are ``_archive_members``'s. Used by the module
snapshot_archive.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import tempfile

from ansible_collections.jts.tiered_storage.plugins.module_utils._archive_members import (
    MANIFEST,
    finish_restore,
    stage,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._snapshot_archive_files import (
    _DIR_FLAGS,
    CHUNK,
    SnapshotArchiveError,
    _open_named,
    _open_unnamed,
    _write_checksum,
    checksum_path,
    clean_stale,
    fd_sha256,
    file_sha256,
    read_checksum,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import write_all

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


def _drain_stderr(handle):
    handle.seek(0)
    return handle.read().decode("utf-8", "replace").strip()


def run_pipeline(commands, sink, stdin=None):
    """Run ``commands`` (argument lists) as a pipeline; feed the last one's stdout to ``sink(chunk)``.

    ``stdin`` is a file object for the first command (default: nothing). Returns a list of
    ``(rc, stderr)`` per command. Never raises for a failing command; raises SnapshotArchiveError when
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
                raise SnapshotArchiveError("cannot run %s: %s" % (cmd[0], exc.strerror or exc)) from None
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
            raise SnapshotArchiveError(
                "%s: %s exited with %d: %s" % (what, os.path.basename(cmd[0]), rc, err or "no message")
            )


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
        raise SnapshotArchiveError("archive %s does not exist" % archive)
    expected = expected or read_checksum(archive)
    actual = file_sha256(archive)
    if actual != expected:
        raise SnapshotArchiveError(
            "archive %s does not match its checksum: sha256 %s, expected %s" % (archive, actual, expected)
        )
    entries = list_archive(archive, zstd_bin, tar_bin, last_entry=last_entry)
    return {"archive": archive, "sha256": actual, "size_bytes": os.path.getsize(archive), "entries": entries}


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
        raise SnapshotArchiveError("archive %s must end in %s" % (archive, SUFFIX))
    if not os.path.isdir(source):
        raise SnapshotArchiveError("source %s is not a directory" % source)
    directory = os.path.dirname(archive)
    if not os.path.isdir(directory):
        raise SnapshotArchiveError("the directory of the archive, %s, does not exist" % directory)
    dir_fd = os.open(directory, _DIR_FLAGS)
    try:
        cleaned = clean_stale(directory, check_mode, dir_fd=dir_fd)
        if os.path.lexists(archive):
            if not os.path.exists(checksum_path(archive)):
                raise SnapshotArchiveError(
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
            write_all(fd, chunk)

        results = run_pipeline(commands, sink)
        _check(results, commands, "archiving %s" % source)
        os.fchmod(fd, 0o640)
        os.fsync(fd)
        written = digest.hexdigest()
        actual = fd_sha256(fd)
        if actual != written:
            raise SnapshotArchiveError(
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
            raise SnapshotArchiveError("archive %s appeared while it was being written: left alone" % archive) from None
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
        raise SnapshotArchiveError("restore destination %s is not a directory" % destination)
    if os.listdir(destination) and not force:
        raise SnapshotArchiveError(
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
