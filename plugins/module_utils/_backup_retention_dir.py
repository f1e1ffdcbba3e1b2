# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup archives' directory: the archives' names, their checksum files, listed and removed safely.

Standard library only, Python 3.8. Used by ``_backup_retention`` (``plan`` and ``Pruner``):

* ``RetentionError``: a refusal or failure of backup_retention;
* ``parse_archive_name``: the stamp in ``<lv>_<YYYYmmddTHHMMSSZ>.tar.zst``; ``checksum_names``:
  a ``.sha256`` file is one ``sha256sum`` line for its archive;
* ``open_dir`` reaches a directory from ``/`` one component at a time without following a
  symlink (``O_NOFOLLOW``); ``scan_volume`` lists one LV's archives and checksum files;
  ``remove_file`` removes a file relative to its directory's descriptor (``unlinkat``), only when
  it is still the regular file that was listed; each checks the directory is still on the
  required mount's device (``_mount_dev``). The Pruner runs each in a timed child.
"""

from __future__ import annotations

import datetime
import os
import re
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import statvfs_in_process
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, open_dir_from_root

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # lvm_snapshot's timestamp, which the backup step puts in the name
ARCHIVE_SUFFIX = ".tar.zst"
CHECKSUM_SUFFIX = ".sha256"
CHECKSUM_READ = 4096
_STAMP = r"(\d{8}T\d{6}Z)"
_SHA_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class RetentionError(JtsError):
    """A refusal or failure; the message says what was (not) done."""


# --------------------------------------------------------------------------- names and checks


def parse_archive_name(name, volume):
    """The UTC datetime (naive) in ``<volume>_<YYYYmmddTHHMMSSZ>.tar.zst``, or None for any other name."""
    match = re.match(r"^%s_%s%s$" % (re.escape(volume), _STAMP, re.escape(ARCHIVE_SUFFIX)), name)
    if not match:
        return None
    try:
        return datetime.datetime.strptime(match.group(1), STAMP_FORMAT)
    except ValueError:
        return None


def checksum_names(text, name):
    """True when ``text`` (a ``.sha256`` file) is one ``sha256sum`` line for ``name``."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if len(lines) != 1:
        return False
    match = _SHA_LINE.match(lines[0])
    return bool(match) and match.group(2) == name


# --------------------------------------------------------------------------- the directory, safely


def open_dir(path):
    """Open the absolute ``path`` from ``/`` one component at a time, never following a symlink."""
    try:
        return open_dir_from_root(path)
    except UnsafePath as exc:
        raise RetentionError(str(exc)) from exc


def _check_device(fd, path, mount_dev):
    if os.fstat(fd).st_dev != mount_dev:
        raise RetentionError(
            "%s is not on the filesystem of its mount (another filesystem is mounted on it or below the mount); "
            "nothing pruned" % path
        )


def scan_volume(directory, volume, mount_dev):
    """List the archives of ``volume`` in ``directory`` (runs in a timed child; JSON in and out).

    Returns ``{"exists": bool, "archives": [{name, size, checksum, checksum_size, good}], "ignored": [names]}``.
    Names that are not archives are left alone; an archive name that is not a regular file (a
    symlink, a directory) is ignored and reported.
    """
    try:
        fd = open_dir(directory)
    except FileNotFoundError:
        return {"exists": False, "archives": [], "ignored": []}
    try:
        _check_device(fd, directory, mount_dev)
        archives, ignored = [], []
        entries = set(os.listdir(fd))
        for name in sorted(entries):
            if parse_archive_name(name, volume) is None:
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                ignored.append(name)
                continue
            item = {"name": name, "size": st.st_size, "checksum": None, "checksum_size": 0, "good": False}
            sha = name + CHECKSUM_SUFFIX
            if sha in entries:
                cst = os.stat(sha, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISREG(cst.st_mode):
                    item["checksum"] = sha
                    item["checksum_size"] = cst.st_size
                    cfd = os.open(sha, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
                    try:
                        text = os.read(cfd, CHECKSUM_READ).decode("utf-8", "replace")
                    finally:
                        os.close(cfd)
                    item["good"] = st.st_size > 0 and checksum_names(text, name)
            archives.append(item)
        return {"exists": True, "archives": archives, "ignored": ignored}
    finally:
        os.close(fd)


def remove_file(directory, name, mount_dev):
    """Remove the regular file ``name`` of ``directory`` (unlinkat on the directory's descriptor).

    Returns the bytes removed, or None when the name is gone or no longer a regular file (left alone).
    """
    fd = open_dir(directory)
    try:
        _check_device(fd, directory, mount_dev)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        os.unlink(name, dir_fd=fd)
        return st.st_size
    finally:
        os.close(fd)


def _mount_dev(mount):
    st = statvfs_in_process(mount)
    return {"dev": os.stat(mount).st_dev, "blocks": st["f_blocks"]}
