# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nas_archive's probes: the NAS, the destination mount and the sources, before anything is done.

Standard library only, importable on Python 3.8. ``ProbeSteps`` is a part of ``Archiver``
(``_nas_archive_run``): a NAS that does not answer, a destination that is not mounted or does not
answer is missing: ``Skipped`` (nothing done) or, with ``missing: fail``, a ``NasArchiveError``; a destination on the wrong filesystem, a missing or
unmounted source is a ``NasArchiveError``. The mount table is read from the kernel (never touching
the NAS); every stat runs in a timed child (``_timeout.call_with_timeout``).
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import mount_of, read_mounts
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import NasArchiveError, num
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_fs import _locate, _source_info
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import absent
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    call_with_timeout,
    tcp_probe,
)


class ProbeSteps:
    """The probes of ``Archiver``: ``probe()`` before the lock is taken."""

    def _mounts(self):
        if self.mounts is None:
            self.mounts = read_mounts()
        return self.mounts

    # ---------------------------------------------------------------- probes

    def _away(self, reason, missing="destination_mount"):
        """The NAS, the destination or a mirror's source is missing: ``Skipped`` (``missing: skip``) or a NasArchiveError."""
        return absent(self.p, reason, missing, NasArchiveError)

    def probe(self):
        """NAS reachable, destination mounted and answering, else Skipped; sources present, else NasArchiveError."""
        p = self.p
        if p.nas_host:
            ok, reason = (self.tcp_fn or tcp_probe)(p.nas_host, p.nas_port, p.probe_timeout)
            if not ok:
                raise self._away("NAS %s is not reachable (%s); nothing was done" % (p.nas_host, reason), "nas_host")
        entry = None
        if p.dest_mount:
            # The kernel's mount table: reading it never touches the (maybe dead) NFS server.
            want = os.fsencode(p.dest_mount)
            for m in self._mounts():
                if m["mount_point"] == want:
                    entry = m
            if entry is None:
                raise self._away("%s is not mounted (the NAS is away?); nothing was done" % p.dest_mount)
            if p.dest_fstype and not entry["fstype"].startswith(p.dest_fstype):
                raise NasArchiveError(
                    "destination_fstype: %s is %s, expected %s; nothing was done"
                    % (p.dest_mount, entry["fstype"], p.dest_fstype)
                )
        try:
            where = call_with_timeout(_locate, (p.dest, p.dest_mount), p.probe_timeout)
        except ProbeTimeout as exc:
            raise self._away(
                "%s did not answer within %ss (a stalled NFS mount?); nothing was done"
                % (p.dest_mount or p.dest, num(p.probe_timeout))
            ) from exc
        except (OSError, RuntimeError) as exc:
            raise self._away(
                "%s: %s; nothing was done" % (p.dest_mount or p.dest, getattr(exc, "strerror", None) or exc)
            ) from exc
        if where["exists"] and not where["is_dir"]:
            raise NasArchiveError("destination %s exists and is not a directory; nothing was done" % p.dest)
        if p.dest_mount:
            holder = mount_of(os.fsencode(where["real"]), self._mounts())
            if holder is None or holder["mount_point"] != os.fsencode(where["mount_real"]):
                raise NasArchiveError(
                    "destination %s is not on the filesystem mounted at %s (destination_mount); nothing was done"
                    % (p.dest, p.dest_mount)
                )
        elif p.require_mounted and where["st_dev"] == where["root_dev"]:
            raise self._away(
                "destination %s is on the root filesystem, not on a mounted NAS (not mounted?); nothing was done "
                "(set destination_mount, or require_mounted: false to allow a local destination)" % p.dest
            )
        self.dest_exists = where["exists"]
        self._probe_sources()

    def _probe_sources(self):
        p = self.p
        for src in p.sources:
            try:
                kind, has_entries, real = call_with_timeout(_source_info, (src,), p.probe_timeout)
            except ProbeTimeout as exc:
                raise NasArchiveError(
                    "source %s did not answer within %ss; nothing was done" % (src, num(p.probe_timeout))
                ) from exc
            except FileNotFoundError as exc:
                if p.ignore_missing_sources and p.mode == "snapshot":
                    self.result["missing_sources"].append(src)
                    continue
                reason = "source %s does not exist (not mounted?); nothing was done" % src
                if p.mode == "mirror":  # the one source is the missing end: ``missing`` decides
                    raise self._away(reason, "source") from exc
                raise NasArchiveError(reason) from exc
            except (OSError, RuntimeError) as exc:
                raise NasArchiveError(
                    "source %s: %s; nothing was done" % (src, getattr(exc, "strerror", None) or exc)
                ) from exc
            if kind == "other":
                raise NasArchiveError("source %s is neither a directory nor a regular file; nothing was done" % src)
            if p.source_mount:
                holder = mount_of(os.fsencode(real), self._mounts())
                if holder is None or holder["mount_point"] != os.fsencode(os.path.realpath(p.source_mount)):
                    raise NasArchiveError(
                        "source %s is not on the filesystem mounted at %s (source_mount): the source looks "
                        "unmounted; nothing was done" % (src, p.source_mount)
                    )
            if kind == "dir":
                self.dirs.add(src)
            self.present.append((src, has_entries))
        if not self.present:
            raise NasArchiveError("none of the sources exists (%s); nothing was done" % ", ".join(p.sources))
        if self.result["missing_sources"]:
            self.warnings.append("sources not found and left out: %s" % ", ".join(self.result["missing_sources"]))

    # ---------------------------------------------------------------- rsync
