# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention of the backup archives (``<lv>/<lv>_<UTC stamp>.tar.zst`` + ``.sha256``).

Standard library only, Python 3.8. Used by the module backup_retention (the capacity for a new
archive, used by backup_capacity, is ``_backup_capacity``'s).

* ``plan``: the archives of one LV in, the names kept and removed out (pure). The counts are
  nas_archive's snapshot retention (``_retention.select_retention``: keep_last, newest of each day, ISO week,
  month), plus a maximum age; the newest archive with a valid checksum file is never removed, a
  volume without one loses nothing, archives named after the clock are kept and not counted.
* ``Pruner``: the directory is reached from ``/`` one component at a time without following a
  symlink (``O_NOFOLLOW``), must be on the filesystem mounted at the required mount (the kernel's
  mount table, read without touching the NAS, then a statvfs under a time-out), and every
  listing and removal runs in a forked child under a time-out (a NAS that stops answering fails
  the run, it never hangs it); a file is removed relative to its directory's descriptor
  (``unlinkat``), only when it is still the regular file that was listed.
"""

from __future__ import annotations

import datetime
import os
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._backup_retention_dir import (
    STAMP_FORMAT,
    RetentionError,
    _mount_dev,
    parse_archive_name,
    remove_file,
    scan_volume,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._mounts import mount_of, read_mounts
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import future_stamps, select_retention
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import (
    ProbeTimeout,
    call_with_timeout,
    tcp_probe,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_age

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


class Policy:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _abs(value, what):
    if not isinstance(value, str) or not value.startswith("/"):
        raise RetentionError("%s must be an absolute path (got %r)" % (what, value))
    path = os.path.normpath(value)
    if path.startswith("//"):
        path = path[1:]
    return path


def inside(path, root):
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def build_policy(params):
    """Check backup_retention's parameters; return a Policy. Raises RetentionError."""
    path = _abs(params["path"], "path")
    mount = _abs(params["mount"], "mount")
    if path == "/":
        raise RetentionError("path / is refused")
    if not inside(path, mount):
        raise RetentionError("path %s is not below mount %s" % (path, mount))
    volumes = list(params.get("volumes") or [])
    for name in volumes:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise RetentionError("volumes: %r is not one directory name" % (name,))
    if len(set(volumes)) != len(volumes):
        raise RetentionError("volumes lists a name twice: %s" % volumes)
    for key in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "max_clock_jump_days"):
        if params[key] < 0:
            raise RetentionError("%s must not be negative (got %d)" % (key, params[key]))
    for key in ("probe_timeout", "remove_timeout"):
        if params[key] <= 0:
            raise RetentionError("%s must be positive (got %s)" % (key, params[key]))
    max_age = None
    if params.get("max_age") not in (None, ""):
        try:
            max_age = parse_age(params["max_age"], "max_age")
        except UnitError as exc:
            raise RetentionError(str(exc)) from exc
        if max_age <= 0:
            raise RetentionError("max_age must be longer than 0 (leave it empty for no age limit)")
    return Policy(
        path=path,
        mount=mount,
        volumes=volumes,
        keep_last=params["keep_last"],
        keep_daily=params["keep_daily"],
        keep_weekly=params["keep_weekly"],
        keep_monthly=params["keep_monthly"],
        max_age=max_age,
        max_clock_jump_days=params["max_clock_jump_days"],
        nas_host=params.get("nas_host") or None,
        nas_port=params["nas_port"],
        probe_timeout=float(params["probe_timeout"]),
        remove_timeout=float(params["remove_timeout"]),
    )


# --------------------------------------------------------------------------- retention (pure)


def plan(archives, policy, now):
    """Decide for one volume's ``archives`` (dicts: name, stamp, good) at ``now`` (naive UTC).

    Returns ``(keep, remove, warnings)``: names kept, names removed (oldest first), messages.
    * with every count at 0 and no max_age nothing is removed (retention off);
    * the counts as nas_archive's snapshot retention (``_retention.select_retention``);
    * max_age removes what is older, whatever the counts keep;
    * the newest archive with a valid checksum file is always kept, and a volume that has none
      loses nothing (a night of broken archives must not end the good ones);
    * archives named after ``now`` (a clock that was ahead, or is now behind) are kept, not counted;
    * with max_age, a newest archive older than max_clock_jump_days days (a clock that jumped
      ahead?) stops the age limit for the volume.
    """
    by_stamp = {}
    for item in archives:
        by_stamp.setdefault(item["stamp"], []).append(item)
    stamps = set(by_stamp)
    names = sorted(item["name"] for item in archives)
    warnings = []
    if not stamps:
        return names, [], warnings
    counts = (policy.keep_last, policy.keep_daily, policy.keep_weekly, policy.keep_monthly)
    if not any(counts) and policy.max_age is None:
        return names, [], warnings
    good = sorted(item["stamp"] for item in archives if item["good"])
    if not good:
        warnings.append("no archive has a valid checksum file; nothing of it is pruned")
        return names, [], warnings
    newest_good = good[-1]
    future = set(future_stamps(stamps, now))
    keep = select_retention(stamps, *counts, protect={newest_good}, now=now) if any(counts) else set(stamps)
    if policy.max_age is not None:
        limit = now - datetime.timedelta(seconds=policy.max_age)
        newest = max(stamps - future) if stamps - future else None
        jump = policy.max_clock_jump_days
        if newest is not None and jump and now - newest > datetime.timedelta(days=jump):
            warnings.append(
                "the newest archive (%s) is more than max_clock_jump_days %d days old: a clock that jumped "
                "ahead? The age limit is not applied" % (newest.strftime(STAMP_FORMAT), jump)
            )
        else:
            keep = {s for s in keep if s >= limit}
    keep |= future
    keep.add(newest_good)
    kept = sorted(item["name"] for s in keep for item in by_stamp[s])
    removed = [item["name"] for s in sorted(stamps - keep) for item in sorted(by_stamp[s], key=lambda i: i["name"])]
    return kept, removed, warnings


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


class Pruner:
    """One backup_retention run; ``run()`` returns the result or raises RetentionError / Skipped."""

    def __init__(self, policy, check_mode=False, now=None, mounts=None, timed=call_with_timeout, tcp_fn=tcp_probe):
        self.p = policy
        self.check_mode = check_mode
        self.now = now
        self.mounts = mounts
        self.timed = timed
        self.tcp_fn = tcp_fn
        self.result = {
            "backup_dir": policy.path,
            "changed": False,
            "skipped": False,
            "kept": [],
            "removed": [],
            "removed_files": 0,
            "removed_bytes": 0,
            "ignored": [],
            "warnings": [],
        }

    def _timed(self, func, args, timeout, what):
        try:
            return self.timed(func, args, timeout)
        except ProbeTimeout as exc:
            raise RetentionError(
                "%s did not return within %ss (the filesystem stopped answering?); %d file(s) removed before"
                % (what, timeout, self.result["removed_files"])
            ) from exc
        except OSError as exc:
            raise RetentionError("%s failed: %s" % (what, exc.strerror or exc)) from exc
        except RuntimeError as exc:
            # the child re-raised something else (RetentionError is not an OSError): its message
            raise RetentionError("%s: %s" % (what, str(exc).replace("RetentionError: ", "", 1))) from exc

    def probe(self):
        """NAS reachable, the mount in the mount table and answering, else Skipped; returns its st_dev."""
        p = self.p
        if p.nas_host:
            ok, reason = self.tcp_fn(p.nas_host, p.nas_port, min(p.probe_timeout, 10.0))
            if not ok:
                raise Skipped("NAS %s is not reachable (%s); nothing pruned" % (p.nas_host, reason))
        mounts = self.mounts if self.mounts is not None else read_mounts()
        want = os.fsencode(p.mount)
        if not any(m["mount_point"] == want for m in mounts):
            raise Skipped("%s is not mounted; nothing pruned" % p.mount)
        holder = mount_of(os.fsencode(p.path), mounts)
        if holder is None or holder["mount_point"] != want:
            raise RetentionError(
                "%s is on the filesystem mounted at %s, not on %s (mount); nothing pruned"
                % (p.path, os.fsdecode(holder["mount_point"]) if holder else "?", p.mount)
            )
        try:
            info = self.timed(_mount_dev, (p.mount,), p.probe_timeout)
        except ProbeTimeout as exc:
            raise Skipped(
                "%s did not answer within %ss (a stalled NFS mount?); nothing pruned" % (p.mount, p.probe_timeout)
            ) from exc
        except (OSError, RuntimeError) as exc:
            raise Skipped("%s: %s; nothing pruned" % (p.mount, getattr(exc, "strerror", None) or exc)) from exc
        return info["dev"]

    def run(self):
        p, r = self.p, self.result
        dev = self.probe()
        now = self.now or _utc_now()
        for volume in p.volumes:
            directory = os.path.join(p.path, volume)
            listing = self._timed(scan_volume, (directory, volume, dev), p.probe_timeout, "listing %s" % directory)
            r["ignored"] += [os.path.join(volume, n) for n in listing["ignored"]]
            for name in listing["ignored"]:
                r["warnings"].append("%s/%s is not a regular file: ignored, never followed" % (directory, name))
            if not listing["archives"]:
                continue
            archives = []
            for item in listing["archives"]:
                item = dict(item, stamp=parse_archive_name(item["name"], volume))
                archives.append(item)
            kept, removed, warnings = plan(archives, p, now)
            r["warnings"] += ["%s: %s" % (volume, w) for w in warnings]
            r["kept"] += [os.path.join(volume, n) for n in kept]
            by_name = {item["name"]: item for item in archives}
            for name in removed:
                item = by_name[name]
                files = [name] + ([item["checksum"]] if item["checksum"] else [])
                if self.check_mode:
                    r["changed"] = True
                    r["removed"].append(os.path.join(volume, name))
                    r["removed_files"] += len(files)
                    r["removed_bytes"] += item["size"] + item["checksum_size"]
                    continue
                for fname in files:
                    # the archive first: a checksum file without its archive names nothing
                    gone = self._timed(
                        remove_file, (directory, fname, dev), p.remove_timeout, "removing %s/%s" % (directory, fname)
                    )
                    if gone is not None:
                        r["changed"] = True
                        r["removed_files"] += 1
                        r["removed_bytes"] += gone
                r["removed"].append(os.path.join(volume, name))
        verb = "would remove" if self.check_mode else "removed"
        r["msg"] = "%s %d archive(s) (%d file(s), %d bytes) below %s; kept %d" % (
            verb,
            len(r["removed"]),
            r["removed_files"],
            r["removed_bytes"],
            p.path,
            len(r["kept"]),
        )
        return r

    def diff(self):
        r = self.result
        before = sorted(r["kept"] + r["removed"])
        return {
            "before_header": self.p.path,
            "after_header": self.p.path,
            "before": "".join(n + "\n" for n in before),
            "after": "".join(n + "\n" for n in sorted(r["kept"])),
        }
