# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copying a base backup's WAL: the segments from its start to its stop, without following links.

Standard library only, Python 3.8. Used by ``_consistency.PgHolder`` (lvm_snapshot's
``consistency`` with ``method: postgresql`` and ``wal_dest``) after ``_pg_backup``'s stop.
"""

from __future__ import annotations

import os
import re
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError

_WAL_RE = re.compile(r"^[0-9A-F]{24}$")
_COPY_CHUNK = 1 << 20


def wal_range(names, start_wal, stop_wal):
    """The WAL segment names from ``start_wal`` to ``stop_wal`` (same timeline), sorted."""
    if not (_WAL_RE.match(start_wal or "") and _WAL_RE.match(stop_wal or "")):
        raise PgError("cannot tell the WAL range of the backup (start %r, stop %r)" % (start_wal, stop_wal))
    if start_wal[:8] != stop_wal[:8]:
        raise PgError("the backup's WAL spans timelines %s to %s: refused" % (start_wal[:8], stop_wal[:8]))
    return sorted(n for n in names if _WAL_RE.match(n) and n[:8] == start_wal[:8] and start_wal <= n <= stop_wal)


def copy_wal(data_directory, start_wal, stop_wal, dest_dir):
    """Copy the WAL segments start..stop from ``<data_directory>/pg_wal`` into ``dest_dir``.

    ``pg_wal`` may be PostgreSQL's own symlink to another volume (followed); the segment files in
    it and the files written are opened with ``O_NOFOLLOW`` relative to their directories; a file
    that exists in ``dest_dir`` is refused (never overwritten). Each copy is fsynced, then the
    directory. Returns the names copied. Raises PgError (files written so far are removed).
    """
    try:
        src_fd = os.open(os.path.join(data_directory, "pg_wal"), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise PgError("cannot open %s/pg_wal: %s" % (data_directory, exc.strerror)) from None
    written = []
    try:
        try:
            dst_fd = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            raise PgError("cannot open the WAL destination %s: %s" % (dest_dir, exc.strerror)) from None
        try:
            names = wal_range(os.listdir(src_fd), start_wal, stop_wal)
            if not names or names[0] != start_wal or names[-1] != stop_wal:
                raise PgError(
                    "the WAL of the backup (%s to %s) is no longer complete in %s/pg_wal (found %s)"
                    % (start_wal, stop_wal, data_directory, ", ".join(names) or "none")
                )
            for name in names:
                _copy_one(src_fd, dst_fd, name)
                written.append(name)
            os.fsync(dst_fd)
        except BaseException:
            for name in written:
                try:
                    os.unlink(name, dir_fd=dst_fd)
                except OSError:
                    pass
            raise
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return written


def _copy_one(src_dir_fd, dst_dir_fd, name):
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_dir_fd)
    except OSError as exc:
        raise PgError("cannot open WAL file %s: %s" % (name, exc.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            raise PgError("WAL file %s is not a regular file: refused" % name)
        try:
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir_fd)
        except OSError as exc:
            raise PgError("cannot create the WAL copy %s: %s" % (name, exc.strerror)) from None
        try:
            while True:
                chunk = os.read(src, _COPY_CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view) :]
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
