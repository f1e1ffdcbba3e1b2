# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths below a root, reached without following symbolic links.

A root process that works in trees other users can write to must not be steered elsewhere by a
symlink planted between two of its steps. ``Tree`` opens its root once and reaches every
directory below it one component at a time with ``openat(..., O_NOFOLLOW | O_DIRECTORY)``; every
operation on a file is then made relative to a directory descriptor (``dir_fd=``), so a parent
swapped for a symlink after the walk changes nothing. ``open_private_dir`` does the same from
``/`` for the places where locks and state live, and refuses a directory another user controls.

Standard library only, Python 3.8. Paths are bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import threading
from collections import OrderedDict

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CACHED_DIRS = 256


class UnsafePath(Exception):
    """A path below a root is a symlink, not a directory, or controlled by another user."""


def _components(rel):
    return [part for part in rel.split(b"/") if part and part != b"."]


def _open_child(parent_fd, name, shown):
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath("%s is a symlink or not a directory; not followed" % _show(shown)) from exc
        raise


def _show(path):
    return path.decode("utf-8", "backslashreplace") if isinstance(path, bytes) else path


def open_dir_from_root(path):
    """A descriptor of the directory ``path`` (absolute, str or bytes), opened from ``/`` one component at a time.

    No symlink is followed and nothing is made: a symlink or a non-directory on the way, a ``..``
    component or a relative path raises ``UnsafePath`` naming the path so far; a missing component
    raises ``FileNotFoundError``.
    """
    path = os.fsencode(path)
    if not path.startswith(b"/"):
        raise UnsafePath("%s is not an absolute path" % _show(path))
    names = _components(path)
    if b".." in names:
        raise UnsafePath("%s contains '..'" % _show(path))
    fd = os.open(b"/", DIR_FLAGS)
    done = b""
    try:
        for name in names:
            done += b"/" + name
            child = _open_child(fd, name, done)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_dir(path, mode=0o700, create=True):
    """Open ``path`` (creating missing parts with ``mode``) for state only this user may change.

    Every component is opened without following symlinks; the directory itself must belong to
    the effective user and be writable by nobody else. Returns a directory descriptor.
    """
    path = os.fsencode(path)
    if not path.startswith(b"/"):
        raise UnsafePath("%s is not an absolute path" % _show(path))
    fd = os.open(b"/", DIR_FLAGS)
    done = b""
    try:
        for name in _components(path):
            done += b"/" + name
            try:
                child = _open_child(fd, name, done)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    pass
                child = _open_child(fd, name, done)
            os.close(fd)
            fd = child
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise UnsafePath(
                "%s belongs to uid %d with mode %04o; it must belong to uid %d and be writable by it alone "
                "(remove it or fix its owner and mode)"
                % (_show(path), st.st_uid, stat.S_IMODE(st.st_mode), os.geteuid())
            )
        return fd
    except BaseException:
        os.close(fd)
        raise


def _private_file(path, flags):
    directory, name = os.path.split(os.fsencode(path))
    dir_fd = open_private_dir(directory or b".")
    try:
        existed = True
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            existed = False
        if not existed:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            os.fsync(dir_fd)
        return fd
    finally:
        os.close(dir_fd)


def append_private(path, data):
    """Append ``data`` (a whole number of lines) to a file in a private directory and flush it.

    A line left half-written by a crash or a full disk is ended first, so the new record never
    merges into it.
    """
    fd = _private_file(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd, data):
    """Write every byte of ``data`` to ``fd`` (one ``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace_private(directory, name, data):
    """Replace ``name`` in the private ``directory`` (made 0700 when missing) atomically.

    A new file beside it (``O_EXCL``, ``O_NOFOLLOW``, 0600), fsync, rename over the old one, fsync
    of the directory: a crash leaves the old file or the new one, never a mix; the temporary file
    is removed when anything fails.
    """
    dir_fd = open_private_dir(directory, mode=0o700, create=True)
    tmp = ".%s.%d.tmp" % (name, os.getpid())
    try:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    finally:
        os.close(dir_fd)


def read_private(path):
    """The content of a file in a private directory (FileNotFoundError when there is none)."""
    fd = _private_file(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def truncate_private(path):
    """Empty a file in a private directory, if it exists."""
    try:
        fd = _private_file(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


class _Dir:
    __slots__ = ("cached", "fd", "refs")

    def __init__(self, fd):
        self.fd = fd
        self.refs = 0
        self.cached = True


class Tree:
    """A directory tree whose root is opened once; sub-directories are reached with O_NOFOLLOW.

    ``acquire(rel_dir)`` returns a handle whose ``fd`` stays open until ``release``; handles are
    shared and cached (least recently used first out, never while in use), and safe to use from
    two threads. ``mirror`` (another Tree) gives directories this one creates the owner and mode
    of the same directory there.
    """

    def __init__(self, root, mirror=None, keep_owner=None):
        self.root = os.fsencode(root)
        self.mirror = mirror
        self.keep_owner = os.geteuid() == 0 if keep_owner is None else keep_owner
        self._lock = threading.RLock()
        self._cache = OrderedDict()
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._root = _Dir(root_fd)
        self._root.refs = 1  # never evicted

    @property
    def fd(self):
        return self._root.fd

    def close(self):
        with self._lock:
            for handle in self._cache.values():
                handle.cached = False
                if handle.refs == 0:
                    os.close(handle.fd)
            self._cache.clear()
            if self._root.fd >= 0:
                os.close(self._root.fd)
                self._root.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def path(self, rel):
        return os.path.join(self.root, rel) if rel else self.root

    # -- directories
    def acquire(self, rel_dir, create=False):
        """A handle on directory ``rel_dir`` (b"" for the root); raise UnsafePath, FileNotFoundError."""
        parts = _components(rel_dir)
        key = b"/".join(parts)
        with self._lock:
            if not key:
                self._root.refs += 1
                return self._root
            handle = self._cache.get(key)
            if handle is not None:
                self._cache.move_to_end(key)
                handle.refs += 1
                return handle
            # Start from the deepest cached ancestor.
            depth = len(parts) - 1
            base = None
            while depth > 0:
                base = self._cache.get(b"/".join(parts[:depth]))
                if base is not None:
                    break
                depth -= 1
            base = base or self._root
            fd = os.dup(base.fd)
        try:
            for i in range(depth, len(parts)):
                child_rel = b"/".join(parts[: i + 1])
                try:
                    child = _open_child(fd, parts[i], self.path(child_rel))
                except FileNotFoundError:
                    if not create:
                        raise
                    child = self._make(fd, parts[i], child_rel)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        with self._lock:
            handle = self._cache.get(key)
            if handle is not None:  # another thread got there first
                os.close(fd)
            else:
                handle = _Dir(fd)
                self._cache[key] = handle
                self._evict()
            handle.refs += 1
            return handle

    def release(self, handle):
        with self._lock:
            handle.refs -= 1
            if handle.refs == 0 and not handle.cached:
                os.close(handle.fd)

    def _evict(self):
        while len(self._cache) > CACHED_DIRS:
            for key, handle in self._cache.items():
                if handle.refs == 0:
                    del self._cache[key]
                    os.close(handle.fd)
                    break
            else:
                return

    def _make(self, parent_fd, name, rel):
        """mkdir ``name`` in ``parent_fd`` with the mirror's owner and mode (0755 without one)."""
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
            made = True
        except FileExistsError:
            made = False
        fd = _open_child(parent_fd, name, self.path(rel))
        if made:
            try:
                st = self.mirror.lstat(rel) if self.mirror is not None else None
            except (OSError, UnsafePath):
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                if self.keep_owner:
                    os.fchown(fd, st.st_uid, st.st_gid)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
            else:
                os.fchmod(fd, 0o755)  # a plain directory, like mkdir -p
        return fd

    # -- entries
    def lstat(self, rel):
        """lstat of ``rel`` below the root, its parents reached without following links."""
        parent, name = split(rel)
        if not name:
            return os.fstat(self._root.fd)
        handle = self.acquire(parent)
        try:
            return os.lstat(name, dir_fd=handle.fd)
        finally:
            self.release(handle)

    def open_file(self, rel, flags, mode=0o600):
        """Open file ``rel`` below the root (O_NOFOLLOW added); the caller closes the fd."""
        parent, name = split(rel)
        handle = self.acquire(parent)
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=handle.fd)
        finally:
            self.release(handle)

    def exists(self, rel):
        try:
            self.lstat(rel)
            return True
        except FileNotFoundError:
            return False


_RENAME_NOREPLACE = 1
_LIBC = []


def _renameat2():
    if not _LIBC:
        try:
            func = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).renameat2
        except (OSError, AttributeError):
            func = None
        _LIBC.append(func)
    return _LIBC[0]


def rename_noreplace_at(src_dir_fd, src_name, dst_dir_fd, dst_name):
    """Rename ``src_name`` to ``dst_name`` (each relative to its directory descriptor) unless the
    target exists (FileExistsError), atomically: renameat2(RENAME_NOREPLACE), or link + unlink
    where the kernel or filesystem lacks it (NFS), which is just as safe. Neither follows links."""
    func = _renameat2()
    if func is not None:
        if func(src_dir_fd, os.fsencode(src_name), dst_dir_fd, os.fsencode(dst_name), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), dst_name)
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), dst_name)
    os.link(src_name, dst_name, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)
    os.unlink(src_name, dir_fd=src_dir_fd)


def split(rel):
    """(parent, name) of a relative path."""
    parent, _sep, name = rel.rstrip(b"/").rpartition(b"/")
    return parent, name


__all__ = [
    "Tree",
    "UnsafePath",
    "append_private",
    "open_private_dir",
    "read_private",
    "rename_noreplace_at",
    "split",
    "truncate_private",
]
