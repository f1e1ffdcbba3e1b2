# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Partition dumps on the warm tier: written under a temporary name, flushed, hashed, renamed.

Users: ``_pg_archive`` (pg_partition_archive).

A dump directory (``<dump_dir>/<database>/<schema>.<table>``) is private: every component is
reached from ``/`` without following symlinks, missing ones are made 0700, and the last one must
belong to this user and be writable by it alone (``_tree.open_private_dir``). A dump is written by
pg_dump into ``.<name>.<random>.partial`` that this process opened (``O_EXCL | O_NOFOLLOW``), flushed
(``fsync``), dropped from the page cache and read back for its SHA-256, then renamed to ``<name>``
without replacing anything and the directory flushed. Two small files go beside it the same way:
``<name>.sha256`` (``sha256sum -c`` format) and ``<name>.json`` (what was archived, so a dump that
moved to the NAS still says what it holds).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets

from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    open_private_dir,
    rename_noreplace_at,
    write_all,
)

PARTIAL_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.partial$")
CHUNK = 1 << 20


def hash_fd(fd):
    """(sha256 hex, size) of an open file, read from offset 0 (after dropping it from the page cache)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    digest = hashlib.sha256()
    offset = 0
    while True:
        chunk = os.pread(fd, CHUNK, offset)
        if not chunk:
            return digest.hexdigest(), offset
        digest.update(chunk)
        offset += len(chunk)


def hash_path(path):
    """(sha256 hex, size) of the file at ``path`` (its last component not followed if a link)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return list(hash_fd(fd))
    finally:
        os.close(fd)


def sha256_line(sha256, name):
    return "%s  %s\n" % (sha256, name)


def parse_sha256_file(text):
    """The hash of a one-line ``sha256sum`` file (``HEX  NAME``)."""
    first = text.strip().split()
    if not first or not re.match(r"^[0-9a-f]{64}$", first[0]):
        raise ValueError("not a sha256sum line: %r" % text[:100])
    return first[0]


class DumpDir:
    """One private dump directory, open for the run; use as a context manager."""

    def __init__(self, path):
        self.path = path
        self.fd = open_private_dir(path)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def join(self, name):
        return os.path.join(self.path, name)

    def clean_partials(self):
        """Remove temporary files that killed runs left (the caller holds the run lock)."""
        removed = []
        for name in sorted(os.listdir(self.fd)):
            if PARTIAL_RE.match(name):
                os.unlink(name, dir_fd=self.fd)
                removed.append(self.join(name))
        if removed:
            os.fsync(self.fd)
        return removed

    def write(self, name, produce):
        """Create ``name`` from ``produce(fd)`` (which writes into the open temporary file);
        return (sha256, size) as read back from the disk. Nothing is left behind on failure."""
        tmp = ".%s.%s.partial" % (name, secrets.token_hex(4))
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
        try:
            try:
                produce(fd)
                os.fsync(fd)
                sha256, size = hash_fd(fd)
            finally:
                os.close(fd)
            rename_noreplace_at(self.fd, tmp, self.fd, name)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=self.fd)
            except FileNotFoundError:
                pass
            raise
        os.fsync(self.fd)
        return sha256, size

    def write_bytes(self, name, data):
        return self.write(name, lambda fd: write_all(fd, data))

    def write_dump_sidecars(self, name, sha256, metadata):
        """``<name>.sha256`` and ``<name>.json`` beside the dump."""
        self.write_bytes(name + ".sha256", sha256_line(sha256, name).encode("utf-8"))
        self.write_bytes(name + ".json", (json.dumps(metadata, sort_keys=True, indent=1) + "\n").encode("utf-8"))

    def open_read(self, name):
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)

    def remove_dump(self, name):
        """Remove a dump and its two side files (those that exist); return the paths removed."""
        removed = []
        for each in (name + ".json", name + ".sha256", name):
            try:
                os.unlink(each, dir_fd=self.fd)
                removed.append(self.join(each))
            except FileNotFoundError:
                pass
        os.fsync(self.fd)
        return removed


__all__ = ["DumpDir", "hash_fd", "hash_path", "parse_sha256_file", "sha256_line"]
