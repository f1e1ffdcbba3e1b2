# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directories a role owns, made and set without being steered by a symlink.

The tier roles give their mount points and sub-directories to service users (``postgres`` owns
``/data/nvme/postgres``). ``ansible.builtin.file`` follows a symlink it finds at the path, so a
service user who replaced ``/data/nvme/postgres/logs`` with a symlink to ``/etc`` had the next
``site.yml`` run make ``/etc`` its own. Here each path is reached from ``/`` one component at a
time with ``openat(..., O_NOFOLLOW | O_DIRECTORY)``; a missing directory is made with ``mkdirat``
and then opened the same way, and owner and mode are set through the opened descriptor
(``fchown``, ``fchmod``), so what is changed is the directory the walk reached.

A symlink on the way is followed only when nobody but root can have placed it: the link belongs
to root and so does its directory, which no group or other may write (an administrator's
``/data -> /srv/data``). Any other symlink, or a non-directory, refuses the whole list before
anything is changed.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import DIR_FLAGS

MAX_SYMLINKS = 40
# Mode of a missing parent of a listed directory (ansible.builtin.file makes them the same way).
PARENT_MODE = 0o755


class DirectoryError(JtsError):
    """A listed directory cannot be made or set safely; nothing was changed."""


def parse_mode(value, path):
    """An octal mode given as ``"0750"``, ``"750"`` or an int already in octal (``0o750``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        text = str(value).strip()
        try:
            mode = int(text, 8)
        except ValueError:
            raise DirectoryError(
                "mode %r of %s is not an octal mode such as 0750" % (value, path), directory=path
            ) from None
    if not 0 <= mode <= 0o7777:
        raise DirectoryError("mode %r of %s is out of range (0000 to 7777)" % (value, path), directory=path)
    return mode


def _lookup(name, database, kind):
    """uid or gid of ``name`` (a name or a number); None when it does not exist (yet)."""
    text = str(name)
    if text.isdigit():
        return int(text)
    try:
        entry = database(text)
    except KeyError:
        return None
    return entry.pw_uid if kind == "user" else entry.gr_gid


def normalise(entries):
    """The entries as dicts with an absolute path, names, and an int mode; duplicates refused."""
    seen = {}
    wanted = []
    for entry in entries:
        path = os.path.normpath(str(entry.get("path") or ""))
        if not path.startswith("/"):
            raise DirectoryError("path %r is not absolute" % entry.get("path"), directory=entry.get("path"))
        item = {
            "path": path,
            "owner": str(entry.get("owner") if entry.get("owner") is not None else "root"),
            "group": str(entry.get("group") if entry.get("group") is not None else "root"),
            "mode": parse_mode(entry.get("mode", "0755"), path),
        }
        if path in seen and seen[path] != item:
            raise DirectoryError("%s is listed twice with different owner, group or mode" % path, directory=path)
        if path not in seen:
            seen[path] = item
            wanted.append(item)
    return wanted


def _trusted_link(parent_fd, name):
    """True for a symlink only root can have placed: root's, in a directory only root may write."""
    link = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    parent = os.fstat(parent_fd)
    return stat.S_ISLNK(link.st_mode) and link.st_uid == 0 and parent.st_uid == 0 and not parent.st_mode & 0o022


def _components(path):
    return [part for part in path.split("/") if part and part != "."]


class Walker:
    """Opens absolute paths one component at a time, never through an untrusted symlink."""

    def __init__(self, create=False):
        self.create = create

    def open(self, path, make_last=None):
        """A descriptor of directory ``path``, or None when it (or a parent) is missing.

        With ``create``, missing parents are made root's with PARENT_MODE; ``make_last(fd, name)``
        makes the last component. Raises DirectoryError for a symlink or a non-directory.
        """
        fd = os.open("/", DIR_FLAGS)
        pending = _components(path)
        hops = 0
        try:
            while pending:
                name = pending.pop(0)
                try:
                    child = os.open(name, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not self.create:
                        os.close(fd)
                        return None
                    if pending:
                        self._mkdir(fd, name, PARENT_MODE)
                    else:
                        make_last(fd, name)
                    child = self._open_made(fd, name, path)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if not _trusted_link(fd, name):
                        raise self._refuse(fd, name, path) from None
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        raise DirectoryError("%s: too many symlinks on the way" % path, directory=path) from None
                    target = os.readlink(name, dir_fd=fd)
                    pending = _components(target) + pending
                    if target.startswith("/"):
                        os.close(fd)
                        fd = os.open("/", DIR_FLAGS)
                    continue
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _mkdir(fd, name, mode):
        try:
            os.mkdir(name, mode, dir_fd=fd)
        except FileExistsError:
            pass

    def _open_made(self, fd, name, path):
        try:
            return os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                # swapped for a symlink between mkdirat and openat
                raise self._refuse(fd, name, path) from None
            raise

    @staticmethod
    def _refuse(fd, name, path):
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            what = (
                "a symlink (uid %d) in a directory that a user other than root can write, or that is not root's"
                % st.st_uid
            )
        else:
            what = "not a directory"
        return DirectoryError(
            "Refusing %s: its component %r is %s. A symlink there may have been planted to make this run "
            "change another directory; nothing was changed. Replace it with a real directory (or point the "
            "inventory at the real path)." % (path, name, what),
            directory=path,
        )


def _state(st, names):
    uid, gid = st.st_uid, st.st_gid
    return {
        "owner": names.user(uid),
        "group": names.group(gid),
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "uid": uid,
        "gid": gid,
    }


class _Names:
    """uid/gid to name, for the report."""

    @staticmethod
    def user(uid):
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    @staticmethod
    def group(gid):
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)


def _ids(item, check_mode):
    uid = _lookup(item["owner"], pwd.getpwnam, "user")
    gid = _lookup(item["group"], grp.getgrnam, "group")
    if not check_mode:
        if uid is None:
            raise DirectoryError(
                "user %s (owner of %s) does not exist" % (item["owner"], item["path"]), directory=item["path"]
            )
        if gid is None:
            raise DirectoryError(
                "group %s (group of %s) does not exist" % (item["group"], item["path"]), directory=item["path"]
            )
    return uid, gid


def plan(entries, check_mode=True):
    """What each directory needs, read without changing anything. Raises DirectoryError."""
    names = _Names()
    walker = Walker(create=False)
    results = []
    for item in normalise(entries):
        uid, gid = _ids(item, check_mode)
        fd = walker.open(item["path"])
        after = {"owner": item["owner"], "group": item["group"], "mode": "%04o" % item["mode"]}
        if fd is None:
            results.append({"path": item["path"], "state": "create", "before": None, "after": after})
            continue
        try:
            before = _state(os.fstat(fd), names)
        finally:
            os.close(fd)
        changes = []
        if uid is None or before["uid"] != uid:
            changes.append("owner")
        if gid is None or before["gid"] != gid:
            changes.append("group")
        if before["mode"] != after["mode"]:
            changes.append("mode")
        for key in ("uid", "gid"):
            del before[key]
        results.append(
            {
                "path": item["path"],
                "state": "change" if changes else "ok",
                "changes": changes,
                "before": before,
                "after": after,
            }
        )
    return results


def apply(entries):
    """Make and set every directory that ``plan`` says needs it; returns plan's list."""
    results = plan(entries, check_mode=False)
    wanted = {item["path"]: item for item in normalise(entries)}
    walker = Walker(create=True)
    for result in results:
        if result["state"] == "ok":
            continue
        item = wanted[result["path"]]
        uid, gid = _ids(item, check_mode=False)
        fd = walker.open(item["path"], make_last=lambda parent, name: Walker._mkdir(parent, name, 0o700))
        try:
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            if stat.S_IMODE(st.st_mode) != item["mode"]:
                os.fchmod(fd, item["mode"])
        finally:
            os.close(fd)
    return results


def diff(results):
    """Ansible's diff of the directories that change: one ``path owner:group mode`` line each."""

    def line(path, state):
        if state is None:
            return "%s (absent)\n" % path
        return "%s %s:%s %s\n" % (path, state["owner"], state["group"], state["mode"])

    changed = [r for r in results if r["state"] != "ok"]
    return {
        "before": "".join(line(r["path"], r["before"]) for r in changed),
        "after": "".join(line(r["path"], r["after"]) for r in changed),
    }


def _outcome(entries, check_mode):
    """The module's result, or the refusal as data (it crosses a pipe from the child)."""
    try:
        results = plan(entries, check_mode=True) if check_mode else apply(entries)
    except DirectoryError as exc:
        return {"error": exc.msg, "details": exc.details}
    changed = sum(1 for r in results if r["state"] != "ok")
    return {
        "changed": changed > 0,
        "directories": results,
        "diff": diff(results),
        "msg": "%d of %d directories %s"
        % (changed, len(results), "to make or change" if check_mode else "made or changed"),
    }


def run(entries, check_mode, timeout=0):
    """plan (check mode) or apply, under ``timeout`` seconds in a child process when it is > 0."""
    if timeout and timeout > 0:
        try:
            outcome = call_with_timeout(_outcome, (entries, check_mode), timeout=timeout)
        except ProbeTimeout:
            raise DirectoryError(
                "the directories were not done within %g s (a NAS that stopped answering?): %s"
                % (timeout, ", ".join(str(e.get("path")) for e in entries)),
            ) from None
    else:
        outcome = _outcome(entries, check_mode)
    if "error" in outcome:
        raise DirectoryError(outcome["error"], **outcome["details"])
    return outcome
