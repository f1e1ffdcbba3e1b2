# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Archives of a directory tree (a mounted snapshot): ``tar | zstd`` with a SHA-256 file.

Standard library only, Python 3.8. ``tar`` and ``zstd`` run as a pipeline of argument lists
(``subprocess.Popen``, never a shell); Python reads zstd's output, hashes it while writing it
to a temporary name next to the archive, flushes it, reads it back from the disk and checks the
hash, lists the archive (``zstd -dc | tar -t``) and only then gives it its final name and writes
``<archive>.sha256`` in ``sha256sum`` format. A failure at any point removes the temporary file
and leaves every earlier archive as it was.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    finally:
        os.close(fd)
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


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_checksum(archive, digest):
    directory = os.path.dirname(archive)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(archive), suffix=".sha256.partial", dir=directory)
    try:
        os.write(fd, ("%s  %s\n" % (digest, os.path.basename(archive))).encode())
        os.fchmod(fd, 0o640)
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, checksum_path(archive))
    except OSError:
        if fd is not None:
            os.close(fd)
        os.unlink(tmp)
        raise


def list_archive(archive, zstd_bin, tar_bin):
    """Decompress and list the archive (checks zstd's frame checksums and tar's structure); entries."""
    entries = [0]

    def count(chunk):
        entries[0] += chunk.count(b"\n")

    commands = [[zstd_bin, "-q", "-d", "-c", archive], [tar_bin, "--list", "--file=-"]]
    _check(run_pipeline(commands, count), commands, "listing %s" % archive)
    return entries[0]


def verify(archive, zstd_bin, tar_bin, expected=None):
    """Check the archive against its checksum file (or ``expected``) and list it; return details."""
    if not os.path.isfile(archive):
        raise ArchiveError("archive %s does not exist" % archive)
    expected = expected or read_checksum(archive)
    actual = file_sha256(archive)
    if actual != expected:
        raise ArchiveError(
            "archive %s does not match its checksum: sha256 %s, expected %s" % (archive, actual, expected)
        )
    entries = list_archive(archive, zstd_bin, tar_bin)
    return {"archive": archive, "sha256": actual, "size_bytes": os.path.getsize(archive), "entries": entries}


def create(source, archive, zstd_bin, tar_bin, level=3, threads=0, one_file_system=True, check_mode=False):
    """Archive ``source`` into ``archive`` (``.tar.zst``) with ``archive.sha256``, verified.

    An archive that exists with a matching checksum is left alone (``changed`` False); one that
    exists without a checksum file, or that does not match it, is an error (never overwritten).
    """
    if not archive.endswith(SUFFIX):
        raise ArchiveError("archive %s must end in %s" % (archive, SUFFIX))
    if not os.path.isdir(source):
        raise ArchiveError("source %s is not a directory" % source)
    directory = os.path.dirname(archive)
    if not os.path.isdir(directory):
        raise ArchiveError("the directory of the archive, %s, does not exist" % directory)
    if os.path.lexists(archive):
        if not os.path.exists(checksum_path(archive)):
            raise ArchiveError(
                "archive %s exists without its checksum file %s: refusing to overwrite it"
                % (archive, checksum_path(archive))
            )
        result = verify(archive, zstd_bin, tar_bin)
        result.update(changed=False, msg="archive %s exists and verifies" % archive)
        return result
    if check_mode:
        return {"archive": archive, "changed": True, "msg": "would archive %s into %s" % (source, archive)}
    tar_cmd = [tar_bin] + TAR_CREATE + (["--one-file-system"] if one_file_system else []) + ["--directory", source, "."]
    zstd_cmd = [zstd_bin, "-q", "-%d" % level, "-T%d" % threads, "-c"]
    if level > 19:
        zstd_cmd.insert(1, "--ultra")
    commands = [tar_cmd, zstd_cmd]
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(archive), suffix=".partial", dir=directory)
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
        os.close(fd)
        fd = None
        written = digest.hexdigest()
        result = verify(tmp, zstd_bin, tar_bin, expected=written)
        if os.path.lexists(archive):  # pragma: no cover - a concurrent writer; never overwrite
            raise ArchiveError("archive %s appeared while it was being written: left alone" % archive)
        os.rename(tmp, archive)
        tmp = None
        _write_checksum(archive, written)
        _fsync_dir(directory)
    except BaseException:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    result.update(
        archive=archive,
        checksum_file=checksum_path(archive),
        changed=True,
        msg="archived %s into %s (%d entries, sha256 %s, verified)" % (source, archive, result["entries"], written),
    )
    return result


def restore(archive, destination, zstd_bin, tar_bin, force=False, check_mode=False):
    """Verify the archive, then extract it into ``destination`` (which must be empty unless ``force``)."""
    result = verify(archive, zstd_bin, tar_bin)
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
    result.update(changed=True, msg="restored %s into %s (%d entries)" % (archive, destination, result["entries"]))
    return result
