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
``/data -> /srv/data``), and every directory the walk passed before it is root's and writable by
root alone, or root's with the sticky bit (``/tmp``). Past a directory a user owns or may write,
the user can rename root's directories, and the links in them, into the path (systemd's "unsafe
transition" in ``chase()``), so no symlink is trusted there. Any other symlink, or a
non-directory, refuses the whole list before anything is changed; a symlink that appears between
the plan and the change refuses the rest and says what was already made or changed.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import errno
import grp
import math
import os
import pwd
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._directory_input import (
    DirectoryError,
    components,
    is_number,
    normalise,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import DIR_FLAGS

MAX_SYMLINKS = 40
# Mode of a missing parent of a listed directory; its owner and group are the module's (root:root).
PARENT_MODE = 0o755


def _lookup(name, database, kind):
    """uid or gid of ``name`` (a name or a number); None when it does not exist (yet)."""
    if is_number(name):
        return int(name)
    try:
        entry = database(name)
    except KeyError:
        return None
    return entry.pw_uid if kind == "user" else entry.gr_gid


def _trusted_link(parent_fd, name):
    """True for a symlink only root can have placed: root's, in a directory only root may write."""
    link = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    parent = os.fstat(parent_fd)
    return stat.S_ISLNK(link.st_mode) and link.st_uid == 0 and parent.st_uid == 0 and not parent.st_mode & 0o022


def _others_control(st):
    """True when a user other than root can rename what is in this directory."""
    if st.st_uid != 0:
        return True
    return bool(st.st_mode & 0o022) and not st.st_mode & stat.S_ISVTX


def _join(where):
    return "/" + "/".join(where)


def _step(where, name):
    """The walked components after entering ``name`` (``..`` goes up; ``/..`` is ``/``)."""
    if name == "..":
        return where[:-1]
    return [*where, name]


class Walker:
    """Opens absolute paths one component at a time, never through an untrusted symlink.

    ``made`` lists the missing parents it made (``create``); ``missing`` the directories that do
    not exist on the way to the last path opened without ``create`` (the last one included).
    """

    def __init__(self, create=False, parent_ids=None):
        self.create = create
        self.parent_ids = parent_ids
        self.made = []
        self.missing = []

    def open(self, path, make_last=None):
        """A descriptor of directory ``path``, or None when it (or a parent) is missing.

        With ``create``, missing parents are made with PARENT_MODE and ``parent_ids``;
        ``make_last(fd, name)`` makes the last component. Raises DirectoryError for a symlink or a
        non-directory.
        """
        fd = os.open("/", DIR_FLAGS)
        where = []
        unsafe = "/" if _others_control(os.fstat(fd)) else None
        pending = components(path)
        hops = 0
        self.missing = []
        try:
            while pending:
                name = pending.pop(0)
                try:
                    child = os.open(name, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not self.create:
                        self.missing = self._would_make(where, [name, *pending])
                        os.close(fd)
                        return None
                    child = self._make(fd, name, path, where, last=not pending, make_last=make_last)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if unsafe is not None or not _trusted_link(fd, name):
                        raise self._refuse(fd, name, path, unsafe) from None
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        raise DirectoryError("%s: too many symlinks on the way" % path, directory=path) from None
                    target = os.readlink(name, dir_fd=fd)
                    pending = components(target) + pending
                    if target.startswith("/"):
                        os.close(fd)
                        fd = os.open("/", DIR_FLAGS)
                        where = []
                    continue
                os.close(fd)
                fd = child
                where = _step(where, name)
                if unsafe is None and _others_control(os.fstat(fd)):
                    unsafe = _join(where)
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _would_make(where, names):
        missing = []
        for name in names:
            where = _step(where, name)
            missing.append(_join(where))
        return missing

    def _make(self, fd, name, path, where, last, make_last):
        """Make ``name`` in ``fd`` and open it; a parent is set to PARENT_MODE and ``parent_ids``."""
        if last:
            make_last(fd, name)
            return self._open_made(fd, name, path)
        made = self._mkdir(fd, name, PARENT_MODE)
        if made:
            self.made.append(_join(_step(where, name)))
        child = self._open_made(fd, name, path)
        if made:
            try:
                st = os.fstat(child)
                if (st.st_uid, st.st_gid) != self.parent_ids:
                    os.fchown(child, *self.parent_ids)
                if stat.S_IMODE(st.st_mode) != PARENT_MODE:
                    os.fchmod(child, PARENT_MODE)
            except BaseException:
                os.close(child)
                raise
        return child

    @staticmethod
    def _mkdir(fd, name, mode):
        """True when ``name`` was made here, False when it was there already."""
        try:
            os.mkdir(name, mode, dir_fd=fd)
        except FileExistsError:
            return False
        return True

    def _open_made(self, fd, name, path):
        try:
            return os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                # swapped for a symlink between mkdirat and openat
                raise self._refuse(fd, name, path, None) from None
            raise

    @staticmethod
    def _refuse(fd, name, path, unsafe):
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            if unsafe is not None:
                what = (
                    "a symlink (uid %d) below %s, a directory that is not root's or that a user other than "
                    "root can write (that user can move root's directories and links into the path)"
                    % (st.st_uid, unsafe)
                )
            else:
                what = (
                    "a symlink (uid %d) in a directory that a user other than root can write, or that is not "
                    "root's" % st.st_uid
                )
        else:
            what = "not a directory"
        return DirectoryError(
            "Refusing %s: its component %r is %s. A symlink there may have been planted to make this run "
            "change another directory. Replace it with a real directory (or point the inventory at the real "
            "path)." % (path, name, what),
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


def _parent_state():
    """Owner, group and mode of a missing parent: the module's user and group (root:root), 0755."""
    return {"owner": _Names.user(os.geteuid()), "group": _Names.group(os.getegid()), "mode": "%04o" % PARENT_MODE}


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


def _system_error(exc, path, doing):
    """An OSError as a DirectoryError that names the listed directory (and the component, if any)."""
    where = exc.filename if isinstance(exc.filename, str) else None
    at = " (at its component %r)" % where if where and where != path else ""
    return DirectoryError("cannot %s %s: %s%s" % (doing, path, exc.strerror or exc, at), directory=path)


def plan(entries, check_mode=True, parents=None):
    """What each directory needs, read without changing anything. Raises DirectoryError.

    The missing parents that the change would make (listed directories aside) are appended to
    ``parents`` when it is a list.
    """
    names = _Names()
    walker = Walker(create=False)
    wanted = normalise(entries)
    listed = {item["path"] for item in wanted}
    results = []
    for item in wanted:
        uid, gid = _ids(item, check_mode)
        try:
            fd = walker.open(item["path"])
        except OSError as exc:
            raise _system_error(exc, item["path"], "read") from None
        after = {"owner": item["owner"], "group": item["group"], "mode": "%04o" % item["mode"]}
        if fd is None:
            if parents is not None:
                parents.extend(p for p in walker.missing[:-1] if p not in listed and p not in parents)
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


def _set(walker, item, done):
    """Make ``item`` if missing and set its owner and mode through its descriptor; record in ``done``."""
    path = item["path"]
    uid, gid = _ids(item, check_mode=False)

    def make_last(parent, name):
        if Walker._mkdir(parent, name, 0o700):
            _record(done, path)

    try:
        fd = walker.open(path, make_last=make_last)
    except OSError as exc:
        raise _system_error(exc, path, "reach or make") from None
    doing = "read"
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (uid, gid):
            doing = "give to %s:%s" % (item["owner"], item["group"])
            os.fchown(fd, uid, gid)
            _record(done, path)
        if stat.S_IMODE(st.st_mode) != item["mode"]:
            doing = "set mode %04o on" % item["mode"]
            os.fchmod(fd, item["mode"])
            _record(done, path)
    except OSError as exc:
        raise _system_error(exc, path, doing) from None
    finally:
        os.close(fd)


def _record(done, path):
    if path not in done:
        done.append(path)


def apply(entries, parents=None, done=None):
    """Make and set every directory that ``plan`` says needs it; returns plan's list.

    ``done`` (a list) receives each directory made or changed as it happens, missing parents
    included; ``parents`` the missing parents that were made.
    """
    done = [] if done is None else done
    results = plan(entries, check_mode=False)
    wanted = {item["path"]: item for item in normalise(entries)}
    walker = Walker(create=True, parent_ids=(os.geteuid(), os.getegid()))
    walker.made = done
    for result in results:
        if result["state"] != "ok":
            _set(walker, wanted[result["path"]], done)
    if parents is not None:
        parents.extend(p for p in done if p not in wanted)
    return results


def diff(results, parents=(), parent_state=None):
    """Ansible's diff of the directories that change: one ``path owner:group mode`` line each.

    The missing parents made on the way come last, with ``parent_state``.
    """

    def line(path, state):
        if state is None:
            return "%s (absent)\n" % path
        return "%s %s:%s %s\n" % (path, state["owner"], state["group"], state["mode"])

    changed = [(r["path"], r["before"], r["after"]) for r in results if r["state"] != "ok"]
    changed += [(path, None, parent_state) for path in parents]
    return {
        "before": "".join(line(path, before) for path, before, _ in changed),
        "after": "".join(line(path, after) for path, _, after in changed),
    }


def _with_progress(exc, done):
    """The refusal, saying what was made or changed before it (the run stops at the first)."""
    details = dict(exc.details)
    if not done:
        return DirectoryError("%s Nothing was changed." % exc.msg.rstrip(), **details)
    details.update(changed=True, made_or_changed=list(done))
    return DirectoryError(
        "%s Directories made or changed before this: %s." % (exc.msg.rstrip(), ", ".join(done)), **details
    )


def _outcome(entries, check_mode):
    """The module's result, or the refusal as data (it crosses a pipe from the child)."""
    parents = []
    done = []
    try:
        results = plan(entries, True, parents) if check_mode else apply(entries, parents, done)
    except DirectoryError as exc:
        failure = _with_progress(exc, done)
        return {"error": failure.msg, "details": failure.details}
    changed = sum(1 for r in results if r["state"] != "ok")
    msg = "%d of %d directories %s" % (changed, len(results), "to make or change" if check_mode else "made or changed")
    if parents:
        msg += ", and %d missing parent%s %s" % (
            len(parents),
            "" if len(parents) == 1 else "s",
            "to make" if check_mode else "made",
        )
    return {
        "changed": changed > 0 or bool(parents),
        "directories": results,
        "parents": parents,
        "diff": diff(results, parents, _parent_state()),
        "msg": msg,
    }


def _timeout(value):
    """``value`` as seconds: 0 for no limit; a negative, infinite or NaN one refused."""
    try:
        seconds = float(value or 0)
    except (TypeError, ValueError):
        seconds = float("nan")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise DirectoryError("timeout %r is not a number of seconds (0 for no limit, or more)" % (value,))
    return seconds


def run(entries, check_mode, timeout=0):
    """plan (check mode) or apply, under ``timeout`` seconds in a child process when it is > 0."""
    timeout = _timeout(timeout)
    paths = ", ".join(item["path"] for item in normalise(entries))  # refuses bad input before any change
    if timeout > 0:
        try:
            outcome = call_with_timeout(_outcome, (entries, check_mode), timeout=timeout)
        except ProbeTimeout:
            raise DirectoryError(
                "the directories were not done within %g s (a NAS that stopped answering?): %s" % (timeout, paths),
            ) from None
        except (RuntimeError, OSError) as exc:
            raise DirectoryError(
                "the child process that did the directories ended without an answer (%s): %s. Some of them may "
                "have been made or changed." % (exc, paths),
            ) from None
    else:
        outcome = _outcome(entries, check_mode)
    if "error" in outcome:
        raise DirectoryError(outcome["error"], **outcome["details"])
    return outcome
