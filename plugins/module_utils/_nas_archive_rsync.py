# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's rsync: the argument list of one pass, running it under a time-out, its output.

Standard library only, importable on Python 3.8. Used by the run (``_nas_archive_run``:
``Archiver.rsync``); the pure parts are tested with tables
(tests/unit/plugins/module_utils/test_nas_archive_rsync.py):

* ``source_args``/``rsync_argv``: the argument list of one rsync pass;
* ``run_timed``: rsync in its own process group, killed (the whole group) after a time-out;
* ``parse_rsync_output``: ``--out-format='%i %l %n'`` lines and the ``--stats`` block out;
  ``is_change``, ``is_content_difference``, ``*_entries_from_stats``: what those lines mean.
"""

from __future__ import annotations

import re

from ansible_collections.jts.tiered_storage.plugins.module_utils import _process
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import NasArchiveError
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import num as _num

OUT_FORMAT = "--out-format=%i %l %n"
# rsync exit codes: 24 = source files vanished during the transfer (a live tree); 25 = --max-delete hit.
RC_VANISHED = 24
RC_MAX_DELETE = 25

# %i is 11 characters: update type, file type, then 9 attribute letters, dots, plus signs or spaces.
_ITEM_RE = re.compile(r"^([<>ch.][fdLDS][\w.+? ]{9}) +(-?\d[\d,.]*) (.+)$")
_DELETING_RE = re.compile(r"^\*deleting +(?:(-?\d[\d,.]*) )?(.+)$")
_STAT_KEYS = {
    "Number of files": "total_entries",
    "Number of created files": "created_entries",
    "Number of deleted files": "deleted_entries",
    "Number of regular files transferred": "files_transferred",
    "Total file size": "total_bytes",
    "Total transferred file size": "bytes_transferred",
    "Literal data": "literal_bytes",
    "Matched data": "matched_bytes",
    "Total bytes sent": "bytes_sent",
    "Total bytes received": "bytes_received",
}


class RsyncTimeout(NasArchiveError):
    """rsync did not finish within rsync_timeout and was killed."""


# --------------------------------------------------------------------------- rsync under a time-out
def run_timed(argv, timeout, keep_fds=()):
    """Run rsync (C locale) in its own process group; return (rc, stdout, stderr).

    After ``timeout`` seconds the whole group gets SIGKILL (NFS waits are killable) and RsyncTimeout
    is raised; we wait at most a few seconds more for the pipes, never for the mount. rsync dies with
    the module (a killed module must not leave it writing), and ``keep_fds`` (the run's lock) are
    inherited, so while any rsync process lives no other run can take the destination.
    """
    try:
        return _process.run_timed(argv, timeout, own_group=True, keep_fds=keep_fds, die_with_parent=True, grace=5)
    except _process.ProcessTimeout as exc:
        raise RsyncTimeout(
            "rsync did not finish within rsync_timeout %ss and was killed (a NAS that stopped answering, or a "
            "transfer larger than the time allows): %s" % (_num(timeout), tail(exc.stderr)),
            timed_out=True,
        ) from None


# --------------------------------------------------------------------------- arguments


def source_args(relative, sources, dirs):
    """rsync's source arguments: one directory as its contents (``src/``), a file as itself; several
    sources as they are (with ``--relative`` their full paths are kept under the destination)."""
    if relative:
        return list(sources)
    src = sources[0]
    return [src.rstrip("/") + "/"] if src in dirs else [src]


def rsync_argv(policy, rsync_bin, src_args, dest, extra=(), dry_run=False):
    """The argument list of one rsync pass: options, ``extra``, ``--``, sources, then ``dest/``."""
    argv = [rsync_bin, "--archive", "--stats", OUT_FORMAT]
    if policy.hard_links:
        argv.append("--hard-links")
    if policy.acls:
        argv.append("--acls")
    if policy.xattrs:
        argv.append("--xattrs")
    if policy.numeric_ids:
        argv.append("--numeric-ids")
    if not policy.preserve_owner:
        argv += ["--no-owner", "--no-group"]
    if policy.one_file_system:
        argv.append("--one-file-system")
    if policy.relative:
        argv.append("--relative")
    if policy.partial_dir:
        # Also in dry runs: a relative partial dir adds rsync's own rule protecting it from --delete.
        argv.append("--partial-dir=" + policy.partial_dir)
    for pattern in policy.exclude:
        argv.append("--exclude=" + pattern)
    argv += list(extra)
    if dry_run:
        argv.append("--dry-run")
    argv.append("--")
    argv += list(src_args)
    argv.append(dest.rstrip("/") + "/")
    return argv


# --------------------------------------------------------------------------- rsync output


def _int(text):
    """An rsync number: ``1,234,567`` (3.1+ with its default --human-readable), ``1.234.567`` (some locales)."""
    digits = re.sub(r"[^0-9]", "", text)
    return int(digits) if digits else 0


def parse_rsync_output(text):
    """Parse rsync's ``--out-format='%i %l %n'`` lines and its ``--stats`` block.

    Returns ``{"items": [(itemize, size, name)], "deleted": [name], "stats": {key: int}}``. Names are
    as rsync prints them (relative to the transfer root; ``--relative`` names lose a leading ``/``).
    Lines that are neither (``created directory``, ``sent ... bytes``, warnings) are ignored.
    """
    items, deleted, stats = [], [], {}
    for line in (text or "").splitlines():
        line = line.rstrip("\r")
        match = _DELETING_RE.match(line)
        if match:
            deleted.append(match.group(2))
            continue
        match = _ITEM_RE.match(line)
        if match:
            items.append((match.group(1), _int(match.group(2)), match.group(3).lstrip("/")))
            continue
        key, sep, value = line.partition(":")
        name = _STAT_KEYS.get(key.strip()) if sep else None
        if name:
            words = value.strip().split(" ")
            stats[name] = _int(words[0]) if words else 0
    return {"items": items, "deleted": deleted, "stats": stats}


def is_change(itemize):
    """True for an itemized line that changes something (created, sent, linked or attributes changed)."""
    if itemize[0] in "<>ch*":
        return True
    # ".f..t......": nothing sent, some attribute changes; ".d         " (all dots/spaces): no change.
    return any(ch not in ". " for ch in itemize[2:])


def is_content_difference(itemize):
    """For a ``--checksum --dry-run`` pass: the entry would be (re)sent, created, linked or deleted."""
    return itemize[0] in "<>ch*"


def dest_entries_from_stats(stats):
    """Entries the destination holds among those rsync compared: total - created + deleted, minus ``.``."""
    total = stats.get("total_entries", 0)
    created = stats.get("created_entries", 0)
    deleted = stats.get("deleted_entries", 0)
    return max(total - created + deleted - 1, 0)


def source_entries_from_stats(stats):
    """Entries in the source's file list, minus the transfer root ``.``."""
    return max(stats.get("total_entries", 0) - 1, 0)


def tail(text, lines=5):
    return " | ".join((text or "").strip().splitlines()[-lines:])
