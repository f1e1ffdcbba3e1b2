# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM snapshot sets: parse LVM's JSON reports, plan sets and retention, run lvcreate/lvremove.

Standard library only, importable on Python 3.8. The pure functions (``parse_report``,
``snapshot_info``, ``plan_set``, ``plan_prune``, ...) take LVM's report rows (dicts of strings,
exactly as ``lvs --reportformat json --units b --nosuffix`` prints them) and decide; the
``SnapshotManager`` class runs the commands through ``module.run_command`` with argument lists.

Ownership: a snapshot belongs to a set of this collection only when LVM says it is a snapshot
(``lv_attr[0]`` is ``s`` or ``S``), its ``origin`` is one of the LVs in scope and its name is
exactly ``<prefix><origin>_<YYYYmmddTHHMMSSZ>``. Anything else is someone else's and is never
removed by retention.
"""

from __future__ import annotations

import datetime
import json
import math
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    format_bytes,
    parse_age,
    parse_size_or_percent,
)

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TIMESTAMP_RE = r"(\d{8}T\d{6}Z)"
_NAME_RE = re.compile(r"^[a-zA-Z0-9+_.-]+$")
# LVM reserves these name prefixes and infixes for its own sub-LVs (lvm2 lib/misc/lvm-string.c).
_RESERVED_PREFIXES = ("snapshot", "pvmove")
_RESERVED_INFIXES = (
    "_cdata",
    "_cmeta",
    "_corig",
    "_iorig",
    "_imeta",
    "_mimage",
    "_mlog",
    "_pmspare",
    "_rimage",
    "_rmeta",
    "_tdata",
    "_tmeta",
    "_vdata",
    "_vorigin",
    "_wcorig",
)
NAME_MAX = 127
# Volume types (lv_attr[0]) that can be the origin of a classic (COW) snapshot.
_ORIGIN_TYPES = "-oOrRmMC"
LV_FIELDS = (
    "lv_name",
    "vg_name",
    "lv_attr",
    "lv_size",
    "origin",
    "origin_size",
    "data_percent",
    "lv_time",
    "lv_snapshot_invalid",
)
VG_FIELDS = ("vg_name", "vg_size", "vg_free", "vg_extent_size", "vg_extent_count", "vg_free_count")
# lv_time as we ask LVM to print it (the default of report/time_format, set explicitly so that a
# changed lvm.conf cannot break the parser).
LVM_TIME_CONFIG = 'report {time_format="%Y-%m-%d %T %z"}'
_LV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# The tail of what lvconvert --merge prints when the origin is open and the merge must wait.
_DEFERRED_MARKERS = ("next activation", "Delaying merge", "origin is open")


class SnapshotError(Exception):
    """A user-facing error; ``details`` go into the module's failure result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------


def parse_report(text, kind):
    """Rows of kind ``lv`` or ``vg`` from LVM's ``--reportformat json`` output (a list of dicts)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError("cannot parse LVM's JSON report: %s" % exc) from None
    rows = []
    for section in data.get("report") or []:
        rows.extend(section.get(kind) or [])
    return rows


def parse_lv_time(value):
    """Epoch seconds for ``2026-11-23 01:02:03 +0000``; None when empty or not in that format."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.strptime(value.strip(), _LV_TIME_FORMAT)
    except ValueError:
        return None
    return parsed.timestamp()


def iso8601(epoch):
    """``2026-11-23T01:02:03Z`` for an epoch (UTC), None for None."""
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value, default=0):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_snapshot(row):
    return (row.get("lv_attr") or " ")[0] in "sS"


def is_merging(row):
    return (row.get("lv_attr") or " ")[0] == "S"


def is_invalid(row):
    """True when LVM marks the snapshot invalid (it filled up): ``lv_attr[4]`` I/S or lv_snapshot_invalid set.

    LVM 2.03 prints ``lv_snapshot_invalid`` as ``snapshot invalid`` for an invalid snapshot, an
    empty string for a valid one and ``unknown`` for an LV that is not a snapshot (captured on the
    lab VM: tests/unit/plugins/modules/fixtures/lvm_snapshot/lvs_vg_jts_lab.json).
    """
    attr = row.get("lv_attr") or ""
    if is_snapshot(row) and len(attr) > 4 and attr[4] in "IS":
        return True
    # "1" with report/binary_values_as_numeric=1 in lvm.conf
    return (row.get("lv_snapshot_invalid") or "").strip().lower() in ("snapshot invalid", "invalid", "1")


def is_open(row):
    attr = row.get("lv_attr") or ""
    return len(attr) > 5 and attr[5] == "o"


def snapshot_name(prefix, origin, now):
    """``<prefix><origin>_<UTC timestamp>`` for ``now`` (an epoch)."""
    stamp = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)
    return "%s%s_%s" % (prefix, origin, stamp)


def owned(row, prefix, origins=None):
    """True when the row is a snapshot of this collection's set (prefix, origin and name shape)."""
    if not is_snapshot(row):
        return False
    origin = row.get("origin") or ""
    if not origin or (origins is not None and origin not in origins):
        return False
    pattern = "^" + re.escape(prefix + origin + "_") + _TIMESTAMP_RE + "$"
    return re.match(pattern, row.get("lv_name") or "") is not None


def snapshot_info(row, prefix=None, now=None):
    """The public description of one snapshot row (what ``state=list`` returns)."""
    epoch = parse_lv_time(row.get("lv_time"))
    info = {
        "name": row.get("lv_name"),
        "vg": row.get("vg_name"),
        "path": "/dev/%s/%s" % (row.get("vg_name"), row.get("lv_name")),
        "origin": row.get("origin") or None,
        "lv_attr": row.get("lv_attr"),
        "size_bytes": _int(row.get("lv_size")),
        "origin_size_bytes": _int(row.get("origin_size")),
        "data_percent": _float(row.get("data_percent")),
        "valid": not is_invalid(row),
        "merging": is_merging(row),
        "created": iso8601(epoch),
        "created_epoch": int(epoch) if epoch is not None else None,
        "lv_time": row.get("lv_time") or None,
    }
    if now is not None and epoch is not None:
        info["age_seconds"] = int(now - epoch)
    if prefix is not None:
        info["managed"] = owned(row, prefix)
    return info


# ----------------------------------------------------------------------------------------------
# Validation and planning
# ----------------------------------------------------------------------------------------------


def validate_lv_name(name, what):
    """Raise SnapshotError when ``name`` cannot be an LVM LV name."""
    if not name or not _NAME_RE.match(name):
        raise SnapshotError("%s: %r is not a valid LVM name (letters, digits and + _ . - only)" % (what, name))
    if name.startswith("-"):
        raise SnapshotError("%s: %r must not start with '-'" % (what, name))
    if name in (".", ".."):
        raise SnapshotError("%s: %r is not a valid LVM name" % (what, name))
    if len(name) > NAME_MAX:
        raise SnapshotError("%s: %r is longer than %d characters" % (what, name, NAME_MAX))


def validate_prefix(prefix):
    """The prefix must make valid, non-reserved LVM names."""
    if not prefix:
        raise SnapshotError("prefix must not be empty: it is what tells this collection's snapshots apart")
    validate_lv_name(prefix, "prefix")
    for reserved in _RESERVED_PREFIXES:
        if prefix.startswith(reserved):
            raise SnapshotError("prefix: %r starts with %r, which LVM reserves" % (prefix, reserved))
    for infix in _RESERVED_INFIXES:
        if infix in prefix:
            raise SnapshotError("prefix: %r contains %r, which LVM reserves" % (prefix, infix))


def parse_origins(origins, need_size):
    """Check the ``origins`` option: LV names unique and valid, sizes parsed (``None`` when absent)."""
    parsed = []
    seen = set()
    for entry in origins:
        lv = entry.get("lv")
        validate_lv_name(lv, "origins")
        if lv in seen:
            raise SnapshotError("origins: %s is listed twice" % lv)
        seen.add(lv)
        size = entry.get("size")
        if size in (None, ""):
            if need_size:
                raise SnapshotError("origins[%s].size is required with state=present (e.g. 5G or 10%%)" % lv)
            parsed.append({"lv": lv, "size": None})
            continue
        try:
            kind, value = parse_size_or_percent(size, "origins[%s].size" % lv)
        except UnitError as exc:
            raise SnapshotError(str(exc)) from None
        if value <= 0:
            raise SnapshotError("origins[%s].size: %r must be more than zero" % (lv, size))
        parsed.append({"lv": lv, "size": (kind, value)})
    return parsed


def vg_row(rows, vg):
    for row in rows:
        if row.get("vg_name") == vg:
            return row
    raise SnapshotError("VG %s not found" % vg, vg=vg)


def plan_set(vg, origins, lv_rows, vg_info, prefix, now):
    """Plan a snapshot set: one entry per origin with its name and extents; all or nothing.

    Raises SnapshotError naming the VG/LV for an unknown origin, an origin that cannot have a
    snapshot, a name that exists already, or when the VG has too little free space for the
    whole set (with the bytes missing).
    """
    by_name = dict((row.get("lv_name"), row) for row in lv_rows)
    extent = _int(vg_info.get("vg_extent_size"))
    free_extents = _int(vg_info.get("vg_free_count"))
    if extent <= 0:
        raise SnapshotError("VG %s: LVM reported no extent size" % vg, vg=vg)
    plan = []
    for entry in origins:
        lv = entry["lv"]
        row = by_name.get(lv)
        if row is None:
            raise SnapshotError("LV %s/%s not found: no such origin" % (vg, lv), vg=vg, lv=lv)
        lv_type = (row.get("lv_attr") or " ")[0]
        if lv_type not in _ORIGIN_TYPES:
            raise SnapshotError(
                "LV %s/%s cannot be a snapshot origin (lv_attr %s: snapshots, thin and internal LVs are refused)"
                % (vg, lv, row.get("lv_attr")),
                vg=vg,
                lv=lv,
            )
        origin_bytes = _int(row.get("lv_size"))
        kind, value = entry["size"]
        wanted = math.ceil(origin_bytes * value / 100.0) if kind == "percent" else int(value)
        extents = max(1, math.ceil(wanted / float(extent)))
        name = snapshot_name(prefix, lv, now)
        validate_lv_name(name, "snapshot name for %s/%s" % (vg, lv))
        if name in by_name:
            raise SnapshotError(
                "LV %s/%s already exists: a set with this prefix was taken in this second" % (vg, name), vg=vg, lv=name
            )
        plan.append(
            {
                "name": name,
                "vg": vg,
                "origin": lv,
                "path": "/dev/%s/%s" % (vg, name),
                "extents": extents,
                "size_bytes": extents * extent,
                "timestamp": name[-len("YYYYmmddTHHMMSSZ") :],
            }
        )
    needed = sum(item["extents"] for item in plan)
    room = {
        "vg_free_bytes": free_extents * extent,
        "needed_bytes": needed * extent,
        "missing_bytes": max(0, (needed - free_extents) * extent),
    }
    if needed > free_extents:
        raise SnapshotError(
            "VG %s has %s free (%d extents of %s); the snapshot set (%s) needs %s: %s missing; no snapshot created"
            % (
                vg,
                format_bytes(room["vg_free_bytes"]),
                free_extents,
                format_bytes(extent),
                ", ".join("%s %s" % (item["origin"], format_bytes(item["size_bytes"])) for item in plan),
                format_bytes(room["needed_bytes"]),
                format_bytes(room["missing_bytes"]),
            ),
            vg=vg,
            **room,
        )
    return plan, room


def plan_prune(vg, lv_rows, prefix, origins, keep, max_age, now):
    """Decide which of this collection's snapshots to remove.

    Per origin, newest first by ``lv_time``: invalid snapshots are always removed (and each is a
    finding); a merging snapshot is never touched; of the valid ones, those beyond the newest
    ``keep`` and those older than ``max_age`` seconds are removed. A snapshot whose ``lv_time``
    cannot be read is kept and reported. Returns (remove, kept, findings, foreign) where
    ``foreign`` counts snapshots in scope of the origins that are not ours (left alone).
    """
    remove, kept, findings = [], [], []
    groups = {}
    foreign = 0
    for row in lv_rows:
        if not is_snapshot(row):
            continue
        if not owned(row, prefix, origins):
            if origins is None or row.get("origin") in origins:
                foreign += 1
            continue
        groups.setdefault(row.get("origin"), []).append(row)
    for origin in sorted(groups):
        rows = sorted(
            groups[origin],
            key=lambda r: (parse_lv_time(r.get("lv_time")) or 0, r.get("lv_name")),
            reverse=True,
        )
        valid_seen = 0
        for row in rows:
            info = snapshot_info(row, now=now)
            epoch = parse_lv_time(row.get("lv_time"))
            if is_merging(row):
                info["reason"] = "merging into its origin: left alone"
                kept.append(info)
                continue
            if is_invalid(row):
                info["reason"] = "invalid (filled up: its copy-on-write space ran out)"
                remove.append(info)
                findings.append(
                    {
                        "severity": "critical",
                        "vg": vg,
                        "lv": row.get("lv_name"),
                        "origin": origin,
                        "message": "snapshot %s/%s of %s filled up and became invalid; it is removed"
                        % (vg, row.get("lv_name"), origin),
                    }
                )
                continue
            if epoch is None:
                info["reason"] = "creation time %r unreadable: kept" % row.get("lv_time")
                kept.append(info)
                findings.append(
                    {
                        "severity": "warning",
                        "vg": vg,
                        "lv": row.get("lv_name"),
                        "origin": origin,
                        "message": "snapshot %s/%s has no readable lv_time (%r); retention skips it"
                        % (vg, row.get("lv_name"), row.get("lv_time")),
                    }
                )
                continue
            valid_seen += 1
            if keep is not None and valid_seen > keep:
                info["reason"] = "beyond the newest %d of %s" % (keep, origin)
                remove.append(info)
            elif max_age is not None and now - epoch > max_age:
                info["reason"] = "older than %ds (created %s)" % (int(max_age), info["created"])
                remove.append(info)
            else:
                info["reason"] = "kept"
                kept.append(info)
    return remove, kept, findings, foreign


def merge_deferred(output, origin_row):
    """True when lvconvert said the merge waits for the next activation (the origin is open)."""
    if any(marker in output for marker in _DEFERRED_MARKERS):
        return True
    return origin_row is not None and is_open(origin_row)


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


class SnapshotManager:
    """Runs LVM through ``module.run_command`` (argument lists, ``LC_ALL=C``)."""

    def __init__(self, module, now, popen=None):
        self.module = module
        self.popen = popen  # subprocess.Popen for psql and the freeze watchdog (unit tests replace it)
        self.now = now
        self.check_mode = module.check_mode
        self._bins = {}

    def _bin(self, name):
        if name not in self._bins:
            self._bins[name] = self.module.get_bin_path(name, required=True)
        return self._bins[name]

    def run(self, cmd):
        return self.module.run_command(cmd, environ_update={"LC_ALL": "C", "LANG": "C"})

    def _checked(self, cmd, what, **details):
        rc, out, err = self.run(cmd)
        if rc != 0:
            raise SnapshotError(
                "%s failed (rc %d): %s" % (what, rc, (err or out).strip()),
                rc=rc,
                stdout=out,
                stderr=err,
                cmd=cmd,
                **details,
            )
        return out

    # -- reports -------------------------------------------------------------------------------

    def vg_info(self, vg):
        cmd = [
            self._bin("vgs"),
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            ",".join(VG_FIELDS),
            vg,
        ]
        rc, out, err = self.run(cmd)
        if rc != 0:
            if "not found" in (err or "") or "not found" in (out or ""):
                raise SnapshotError("VG %s not found" % vg, vg=vg, rc=rc, stderr=err, cmd=cmd)
            raise SnapshotError(
                "vgs for VG %s failed (rc %d): %s" % (vg, rc, (err or out).strip()), vg=vg, rc=rc, stderr=err, cmd=cmd
            )
        return vg_row(parse_report(out, "vg"), vg)

    def lv_rows(self, vg):
        cmd = [
            self._bin("lvs"),
            "--reportformat",
            "json",
            "--units",
            "b",
            "--nosuffix",
            "--config",
            LVM_TIME_CONFIG,
            "-o",
            ",".join(LV_FIELDS),
            vg,
        ]
        out = self._checked(cmd, "lvs for VG %s" % vg, vg=vg)
        return parse_report(out, "lv")

    # -- hooks ---------------------------------------------------------------------------------

    def run_hook(self, which, argv, timeout):
        """Run a hook with a time-out (coreutils ``timeout``); raise SnapshotError when it fails."""
        cmd = [self._bin("timeout"), "--kill-after=10", str(timeout), *argv]
        rc, out, err = self.run(cmd)
        record = {"cmd": list(argv), "rc": rc, "stdout": out, "stderr": err}
        if rc in (124, 137):
            raise SnapshotError(
                "%s %s did not finish within %ds and was stopped" % (which, argv[0], timeout), hook=record
            )
        if rc != 0:
            raise SnapshotError("%s %s failed (rc %d): %s" % (which, argv[0], rc, (err or out).strip()), hook=record)
        return record

    # -- states --------------------------------------------------------------------------------

    def present(self, vg, origins, prefix, pre_hook, post_hook, hook_timeout, consistency=()):
        vg_info = self.vg_info(vg)
        rows = self.lv_rows(vg)
        plan, room = plan_set(vg, origins, rows, vg_info, prefix, self.now)
        result = dict(room, changed=True, created=plan, vg=vg)
        groups = list(consistency or [])
        if self.check_mode:
            states = _consistency.planned(groups, [item["origin"] for item in plan])
            _attach(result, plan, states)
            result["msg"] = "would create %d snapshot(s) in VG %s: %s" % (
                len(plan),
                vg,
                ", ".join(item["name"] for item in plan),
            )
            return result
        # the holders (tools found, os_user known) before the pre-hook, so that a post-hook always follows it
        try:
            holders = [(group, self.holder(group)) for group in groups if group["method"] != "none"]
        except _consistency.ConsistencyError as exc:
            raise SnapshotError("%s; no snapshot created" % exc, **dict(result, changed=False, created=[])) from None
        hooks = {}
        result["hooks"] = hooks
        if pre_hook:
            try:
                hooks["pre"] = self.run_hook("pre_hook", pre_hook, hook_timeout)
            except SnapshotError as exc:
                hooks["pre"] = exc.details.pop("hook")
                exc.msg += "; no snapshot created"
                exc.details.update(result, changed=False, created=[])
                raise exc
        created = []
        failure = None
        stage_failed = False
        held = []
        states = _consistency.planned([g for g in groups if g["method"] == "none"], [item["origin"] for item in plan])
        findings = []
        with _consistency.SignalGuard() as guard:
            try:
                for group, holder in holders:
                    holder.acquire()
                    held.append((group, holder))
            except (_consistency.ConsistencyError, _consistency.Interrupted) as exc:
                failure = SnapshotError("%s; no snapshot created" % exc)
                stage_failed = True
            if failure is None:
                try:
                    for item in plan:
                        failure = self._create(vg, item)
                        if failure is not None:
                            break
                        created.append(item)
                except _consistency.Interrupted as exc:
                    failure = SnapshotError("%s while the snapshots were created" % exc)
            guard.block()
            for group, holder in held:
                state, finding = holder.release(failure is None)
                states.update(
                    _consistency.per_origin(state, group["origins"], lambda lv, vg=vg: "/dev/%s/%s" % (vg, lv))
                )
                if finding:
                    findings.append(
                        {
                            "severity": "warning",
                            "vg": vg,
                            "lv": ",".join(group["origins"]),
                            "origin": group["origins"][0],
                            "message": "consistency (%s) of %s: %s; the snapshot is crash-consistent only"
                            % (group["method"], ", ".join(group["origins"]), finding)
                            if state["mode"] == "crash"
                            else "consistency (%s) of %s: %s" % (group["method"], ", ".join(group["origins"]), finding),
                        }
                    )
        if guard.pending is not None and failure is None:
            failure = SnapshotError("interrupted by signal %d while the consistency was released" % guard.pending)
        _attach(result, plan, states)
        result["findings"] = findings
        rolled_back, left = [], []
        if failure is not None and created:
            rolled_back, left = self._remove_all(vg, created)
            failure.msg += "; rolled back the %d snapshot(s) created in this call" % len(rolled_back)
            if left:
                failure.msg += "; could NOT remove %s" % ", ".join(x["name"] for x in left)
        elif failure is not None and not stage_failed:
            failure.msg += "; rolled back the 0 snapshot(s) created in this call"
        if post_hook:
            try:
                hooks["post"] = self.run_hook("post_hook", post_hook, hook_timeout)
            except SnapshotError as exc:
                hooks["post"] = exc.details.pop("hook")
                if failure is None:
                    exc.details.update(result, created=created)
                    exc.msg += "; the snapshots were created and are kept: %s" % ", ".join(x["name"] for x in created)
                    raise exc
                failure.msg += "; and " + exc.msg
        if failure is not None:
            failure.details.update(
                result,
                created=left,
                rolled_back=rolled_back,
                changed=bool(left),
            )
            raise failure
        result["msg"] = "created %d snapshot(s) in VG %s" % (len(created), vg)
        return result

    def _create(self, vg, item):
        """lvcreate one snapshot; return a SnapshotError on failure, None on success."""
        cmd = [
            self._bin("lvcreate"),
            "--snapshot",
            "--name",
            item["name"],
            "--extents",
            str(item["extents"]),
            "%s/%s" % (vg, item["origin"]),
        ]
        rc, out, err = self.run(cmd)
        if rc != 0:
            return SnapshotError(
                "lvcreate of %s/%s (snapshot of %s) failed (rc %d): %s"
                % (vg, item["name"], item["origin"], rc, (err or out).strip()),
                rc=rc,
                stdout=out,
                stderr=err,
                cmd=cmd,
            )
        return None

    def holder(self, group):
        """The object that brings ``group`` to a consistent state and releases it."""
        if group["method"] == "postgresql":
            psql = group.get("psql") or self._bin("psql")
            return _consistency.PgHolder(group, psql, popen=self.popen)
        return _consistency.FreezeHolder(group, self.run, self._bin("fsfreeze"), popen=self.popen)

    def _remove_all(self, vg, items):
        """lvremove each item; return (removed, left) and never raise."""
        removed, left = [], []
        for item in items:
            rc, out, err = self.run([self._bin("lvremove"), "--force", "%s/%s" % (vg, item["name"])])
            if rc == 0:
                removed.append(item)
            else:
                failed = dict(item, error=(err or out).strip(), rc=rc)
                left.append(failed)
        return removed, left

    def pruned(self, vg, origins, prefix, keep, max_age):
        self.vg_info(vg)
        rows = self.lv_rows(vg)
        scope = None if not origins else set(entry["lv"] for entry in origins)
        remove, kept, findings, foreign = plan_prune(vg, rows, prefix, scope, keep, max_age, self.now)
        result = {"vg": vg, "kept": kept, "findings": findings, "foreign_skipped": foreign, "changed": bool(remove)}
        if self.check_mode:
            result["removed"] = remove
            result["msg"] = "would remove %d snapshot(s) in VG %s" % (len(remove), vg)
            return result
        removed, left = self._remove_all(vg, remove)
        result["removed"] = removed
        result["changed"] = bool(removed)
        if left:
            raise SnapshotError(
                "could not remove %s"
                % "; ".join("%s/%s (rc %d): %s" % (vg, x["name"], x["rc"], x["error"]) for x in left),
                not_removed=left,
                **result,
            )
        result["msg"] = "removed %d snapshot(s) in VG %s" % (len(removed), vg)
        return result

    def _named(self, vg, names, prefix, rows):
        by_name = dict((row.get("lv_name"), row) for row in rows)
        found, missing = [], []
        for name in names:
            validate_lv_name(name, "names")
            row = by_name.get(name)
            if row is None:
                missing.append(name)
                continue
            if not is_snapshot(row):
                raise SnapshotError("LV %s/%s is not a snapshot: refused" % (vg, name), vg=vg, lv=name)
            if not owned(row, prefix):
                raise SnapshotError(
                    "LV %s/%s is not a snapshot of this collection (prefix %r, origin %s): refused"
                    % (vg, name, prefix, row.get("origin")),
                    vg=vg,
                    lv=name,
                )
            found.append(row)
        return found, missing, by_name

    def absent(self, vg, names, prefix):
        self.vg_info(vg)
        found, missing, _ = self._named(vg, names, prefix, self.lv_rows(vg))
        items = [snapshot_info(row, now=self.now) for row in found]
        result = {"vg": vg, "changed": bool(items), "not_found": missing}
        if self.check_mode:
            result["removed"] = items
            return result
        removed, left = self._remove_all(vg, items)
        result["removed"] = removed
        result["changed"] = bool(removed)
        if left:
            raise SnapshotError(
                "could not remove %s"
                % "; ".join("%s/%s (rc %d): %s" % (vg, x["name"], x["rc"], x["error"]) for x in left),
                not_removed=left,
                **result,
            )
        return result

    def merged(self, vg, names, prefix):
        self.vg_info(vg)
        found, missing, by_name = self._named(vg, names, prefix, self.lv_rows(vg))
        if missing:
            raise SnapshotError("snapshot %s not found in VG %s" % (", ".join(missing), vg), vg=vg, lv=missing[0])
        origins = {}
        for row in found:
            if is_invalid(row):
                raise SnapshotError(
                    "snapshot %s/%s is invalid (it filled up): it cannot be merged" % (vg, row["lv_name"]),
                    vg=vg,
                    lv=row["lv_name"],
                )
            if row.get("origin") in origins:
                raise SnapshotError(
                    "snapshots %s and %s both belong to %s/%s: only one can be merged"
                    % (origins[row["origin"]], row["lv_name"], vg, row["origin"]),
                    vg=vg,
                    lv=row["origin"],
                )
            origins[row.get("origin")] = row["lv_name"]
        merges = []
        for row in found:
            origin_row = by_name.get(row.get("origin"))
            entry = {
                "name": row["lv_name"],
                "origin": row.get("origin"),
                "deferred": is_open(origin_row or {}),
                "started": False,
            }
            if is_merging(row):
                entry["deferred"] = True
                entry["message"] = "%s/%s is already merging into %s; it completes at the next activation of %s/%s" % (
                    vg,
                    row["lv_name"],
                    row.get("origin"),
                    vg,
                    row.get("origin"),
                )
                merges.append(entry)
                continue
            entry["started"] = True
            if not self.check_mode:
                cmd = [self._bin("lvconvert"), "--merge", "%s/%s" % (vg, row["lv_name"])]
                out = self._checked(cmd, "lvconvert --merge of %s/%s" % (vg, row["lv_name"]), vg=vg, lv=row["lv_name"])
                entry["deferred"] = merge_deferred(out, origin_row)
            entry["message"] = _merge_message(vg, row, entry["deferred"], self.check_mode)
            merges.append(entry)
        changed = any(entry["started"] for entry in merges)
        return {
            "vg": vg,
            "changed": changed,
            "merges": merges,
            "merge_deferred": any(entry["deferred"] for entry in merges),
            "msg": "; ".join(entry["message"] for entry in merges),
        }

    def listed(self, vg, origins, prefix):
        self.vg_info(vg)
        scope = None if not origins else set(entry["lv"] for entry in origins)
        snaps = []
        for row in self.lv_rows(vg):
            if not is_snapshot(row) or (scope is not None and row.get("origin") not in scope):
                continue
            snaps.append(snapshot_info(row, prefix=prefix, now=self.now))
        snaps.sort(key=lambda s: (s["origin"] or "", s["created_epoch"] or 0, s["name"]))
        invalid = [s for s in snaps if not s["valid"]]
        findings = [
            {
                "severity": "critical",
                "vg": vg,
                "lv": s["name"],
                "origin": s["origin"],
                "message": "snapshot %s/%s of %s is invalid (filled up)" % (vg, s["name"], s["origin"]),
            }
            for s in invalid
        ]
        return {"vg": vg, "changed": False, "snapshots": snaps, "findings": findings}


def _attach(result, plan, states):
    """Give each planned snapshot its ``consistency`` and the result the per-origin map."""
    for item in plan:
        item["consistency"] = states.get(item["origin"]) or _consistency.empty_state(
            "none", "crash", _consistency.NO_METHOD
        )
    result["consistency"] = dict((item["origin"], item["consistency"]) for item in plan)


def _merge_message(vg, row, deferred, check_mode):
    origin = "%s/%s" % (vg, row.get("origin"))
    snap = "%s/%s" % (vg, row["lv_name"])
    verb = "would merge" if check_mode else "merging"
    if deferred:
        return (
            "%s %s into %s: %s is open (mounted or in use), so the merge completes only at the next activation "
            "of %s (unmount it and run lvchange -an then -ay %s, or reboot)"
            % (verb, snap, origin, origin, origin, origin)
        )
    if check_mode:
        return "would merge %s into %s now (the origin is not open)" % (snap, origin)
    return "merged %s into %s: done, the snapshot is gone" % (snap, origin)


def parse_max_age(value):
    if value in (None, ""):
        return None
    try:
        return parse_age(value, "max_age")
    except UnitError as exc:
        raise SnapshotError(str(exc)) from None
