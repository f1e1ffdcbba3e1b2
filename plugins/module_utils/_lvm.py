# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM reports: the argument lists of ``lvs``/``vgs``/``pvs`` and how their JSON is read.

Standard library only, Python 3.8. As community.general's ``_lvm.py`` does, the report arguments
every command shares (``--reportformat json``, sizes in bytes without suffix, ``lv_time`` in a fixed
format whatever lvm.conf says) are written once, with one argument builder per command
(``lvs_argv``, ``vgs_argv``, ``pvs_argv``); ``read_report`` runs one and returns its rows.
The row predicates (``is_snapshot``, ``is_invalid``, ...) read LVM's attribute strings.

Used by the lvm_snapshot family (``_lvm_snapshot_*``), storage_health (``_health``,
``_freshness``) and tier_device_info (``_device_info``, what the hot tier role reads).
"""

from __future__ import annotations

import datetime
import json

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

# The UTC timestamp in this collection's snapshot names (<prefix><origin>_<YYYYmmddTHHMMSSZ>).
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
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
PV_FIELDS = ("pv_name", "vg_name", "pv_size", "pv_free")
# lv_time as we ask LVM to print it (the default of report/time_format, set explicitly so that a
# changed lvm.conf cannot break the parser).
LVM_TIME_CONFIG = 'report {time_format="%Y-%m-%d %T %z"}'
LV_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# What every report command is given: JSON, sizes in bytes as plain numbers.
REPORT_ARGS = ("--reportformat", "json", "--units", "b", "--nosuffix")
# LVM prints its words in the C locale (the "not found" tests depend on it).
LVM_ENVIRON = {"LC_ALL": "C", "LANG": "C"}


class LvmError(JtsError):
    """An LVM command failed or printed a report that cannot be read; ``details`` for the result.

    The lvm_snapshot family calls it ``SnapshotError`` (the same class).
    """


SnapshotError = LvmError


def lvs_argv(lvs, target, fields=LV_FIELDS):
    """``lvs`` of ``target`` (a VG, or VG/LV) with ``fields``; ``lv_time`` in LV_TIME_FORMAT."""
    return [lvs, *REPORT_ARGS, "--config", LVM_TIME_CONFIG, "-o", ",".join(fields), target]


def vgs_argv(vgs, target, fields=VG_FIELDS):
    """``vgs`` of the VG ``target`` with ``fields``."""
    return [vgs, *REPORT_ARGS, "-o", ",".join(fields), target]


def pvs_argv(pvs, target=None, fields=PV_FIELDS):
    """``pvs`` of ``target`` (a device; every PV when None) with ``fields``."""
    return [pvs, *REPORT_ARGS, "-o", ",".join(fields), *([target] if target else [])]


def parse_report(text, kind):
    """Rows of kind ``lv``, ``vg`` or ``pv`` from LVM's ``--reportformat json`` output (a list of dicts)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LvmError("cannot parse LVM's JSON report: %s" % exc) from None
    rows = []
    for section in data.get("report") or []:
        rows.extend(section.get(kind) or [])
    return rows


def command_error(what, cmd, rc, out, err, **details):
    """The LvmError of a failed command: "<what> failed (rc N): <its words>", with its output and argv."""
    return LvmError(
        "%s failed (rc %d): %s" % (what, rc, (err or out).strip()),
        rc=rc,
        stdout=out,
        stderr=err,
        cmd=cmd,
        **details,
    )


def read_report(run, argv, kind, what, **details):
    """Run the report ``argv`` with ``run(cmd) -> (rc, out, err)`` and return its ``kind`` rows.

    A non-zero exit raises LvmError "<what> failed (rc N): <stderr>" with the command and output.
    """
    rc, out, err = run(argv)
    if rc != 0:
        raise command_error(what, argv, rc, out, err, **details)
    return parse_report(out, kind)


def parse_lv_time(value):
    """Epoch seconds for ``2026-11-23 01:02:03 +0000``; None when empty or not in that format."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.strptime(value.strip(), LV_TIME_FORMAT)
    except ValueError:
        return None
    return parsed.timestamp()


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
