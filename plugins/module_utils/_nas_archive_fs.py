# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's calls on the destination and the sources, each run in a timed child.

Standard library only, importable on Python 3.8. Every call that could block on a dead hard NFS
mount (stat, listdir, mkdir, rename, symlink, removal) is one function here, run by the archiver in
a forked child with a time-out (``Archiver._fs``, ``_timeout.call_with_timeout``); each returns
what pickles (lists, bools). Used by ``_nas_archive_run``, ``_nas_archive_probe``,
``_nas_archive_mirror``, ``_nas_archive_snapshot``, ``_nas_archive_snapshot_guard`` and
``_nas_archive_retention``.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import LATEST, LATEST_TMP


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
