# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a tier's device holds, read once before the roles change anything.

The hot and warm tier roles refuse to format a device or LV that holds data. They need, from the
host: the signatures ``wipefs`` finds on the device, its size, whether it is a PV and of which VG,
the VG's extents, its logical volumes and their signatures, and, where ``wipefs`` finds nothing,
whether the content is blank: a few MiBs (the first and the last, the one at 64 MiB where btrfs
keeps its second superblock, and seven spread over the device) compared with zeros. Read here in
one module call instead of a task per command and per sample; the roles keep the decisions.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import (
    is_snapshot,
    lvs_argv,
    parse_report,
    pvs_argv,
    vgs_argv,
)

MIB = 1 << 20
# btrfs' second superblock; also past most partition tables and RAID/LUKS headers.
SECOND_SUPERBLOCK = 64 * MIB
LV_FIELDS = ("lv_name", "lv_size", "lv_attr", "origin")
SPREAD = 8  # samples at k/8 of the device, k = 1..7, aligned down to 4 KiB


class DeviceInfoError(JtsError):
    """A read failed (wipefs, an LVM report, a sample): the device's state is unknown."""


def sample_offsets(size):
    """Offsets of the MiBs compared with zeros on a device of ``size`` bytes, each wholly inside it."""
    chunk = min(MIB, size)
    if chunk <= 0:
        return []
    offsets = {0, SECOND_SUPERBLOCK, size - chunk}
    offsets.update(size * k // SPREAD // 4096 * 4096 for k in range(1, SPREAD))
    return sorted(off for off in offsets if 0 <= off <= size - chunk)


def nonzero_offsets(path, size):
    """The offsets of ``sample_offsets(size)`` whose MiB holds a byte that is not zero."""
    chunk = min(MIB, size)
    zeros = bytes(chunk)
    found = []
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for offset in sample_offsets(size):
            data = b""
            while len(data) < chunk:
                piece = os.pread(fd, chunk - len(data), offset + len(data))
                if not piece:
                    raise DeviceInfoError(
                        "%s ended at %d bytes, before the %d bytes its size says" % (path, offset + len(data), size),
                        device=path,
                    )
                data += piece
            if data != zeros:
                found.append(offset)
    finally:
        os.close(fd)
    return found


def size_of(path):
    """Size in bytes of a block device (or a file standing for one)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def parse_wipefs(text):
    """The signatures of ``wipefs --json`` output (nothing when it printed nothing)."""
    if not (text or "").strip():
        return []
    try:
        return json.loads(text).get("signatures") or []
    except (ValueError, AttributeError) as exc:
        raise DeviceInfoError("cannot read wipefs' JSON output: %s" % exc) from None


def types_by_device(signatures):
    """``{device name: [types]}``; wipefs names each device by the last component of its path."""
    found = {}
    for sig in signatures:
        found.setdefault(sig.get("device", ""), []).append(sig.get("type") or "unknown")
    return found


class DeviceReader:
    """Reads a device, and optionally its VG and LVs, with ``run(argv) -> (rc, out, err)``."""

    def __init__(self, run, tools, dev_dir="/dev"):
        self.run = run
        self.tools = tools  # name -> path of wipefs, pvs, vgs, lvs
        self.dev_dir = dev_dir  # an LV is <dev_dir>/<vg>/<lv>

    def _wipefs(self, paths):
        argv = [self.tools["wipefs"], "--json", *paths]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise DeviceInfoError("wipefs failed (rc %d): %s" % (rc, (err or out).strip()), cmd=argv, rc=rc)
        return parse_wipefs(out)

    def _report(self, argv, kind, absent=None):
        """The rows of an LVM report; None for "volume group <absent> not found" and nothing else: any other
        failure (a lock, a metadata error) leaves the VG's LVs unknown, and an unknown LV must never be
        taken for an empty one that may be formatted."""
        rc, out, err = self.run(argv)
        if rc == 0:
            return parse_report(out, kind)
        said = [line.strip() for line in (err or "").splitlines() if line.strip()]
        not_found = {'Volume group "%s" not found' % absent, "Cannot process volume group %s" % absent}
        if absent and said and set(said) <= not_found and said[0] in not_found:
            return None
        raise DeviceInfoError(
            "%s failed (rc %d): %s; the volume group's state is unknown, so nothing is decided"
            % (os.path.basename(argv[0]), rc, "; ".join(said) or (out or "").strip() or "no message"),
            cmd=argv,
            rc=rc,
        )

    def read(self, device, vg=None, volumes=()):
        if not os.path.exists(device):
            return {"device": {"path": device, "exists": False}}
        signatures = self._wipefs([device])
        info = {
            "device": {"path": device, "exists": True, "size": size_of(device), "signatures": signatures},
            "vg": None,
            "lvs": {},
            "lv_signatures": {},
            "nonzero": {},
        }
        probes = []
        if vg:
            self._read_lvm(info, device, vg, volumes, probes)
        elif not signatures:
            probes.append((device, info["device"]["size"]))
        for path, size in probes:
            offsets = nonzero_offsets(path, size)
            if offsets:
                info["nonzero"][path] = offsets
        return info

    def _read_lvm(self, info, device, vg, volumes, probes):
        dev = info["device"]
        rc, out, err = self.run(pvs_argv(self.tools["pvs"], device, fields=("pv_name", "vg_name")))
        rows = parse_report(out, "pv") if rc == 0 else []
        dev.update(pvs_rc=rc, pvs_error=err.strip() if rc else "", vg=(rows[0].get("vg_name") or "") if rows else "")
        fields = ("vg_name", "vg_extent_size", "vg_extent_count", "vg_free_count")
        vg_rows = self._report(vgs_argv(self.tools["vgs"], vg, fields=fields), "vg", absent=vg)
        if vg_rows is not None:
            row = next((r for r in vg_rows if r.get("vg_name") == vg), None)
            if row is None:  # rc 0 says it exists: a report without it is not "absent"
                raise DeviceInfoError("vgs reported no row for %s; the volume group's state is unknown" % vg, vg=vg)
            try:
                info["vg"] = {key: int(row[key]) for key in ("vg_extent_size", "vg_extent_count", "vg_free_count")}
                lv_rows = self._report(lvs_argv(self.tools["lvs"], vg, fields=LV_FIELDS), "lv")
                info["lvs"] = {
                    r["lv_name"]: int(r["lv_size"]) for r in lv_rows if not (r.get("origin") or is_snapshot(r))
                }
            except (KeyError, ValueError) as exc:
                raise DeviceInfoError("cannot read the LVM report of %s: %r" % (vg, exc), vg=vg) from None
        if not dev["signatures"] and dev["vg"] != vg:
            probes.append((device, dev["size"]))
        listed = [name for name in volumes if name in info["lvs"]]
        if listed:
            paths = [os.path.join(self.dev_dir, vg, name) for name in listed]
            info["lv_signatures"] = types_by_device(self._wipefs(paths))
            probes.extend(
                (os.path.join(self.dev_dir, vg, name), info["lvs"][name])
                for name in listed
                if name not in info["lv_signatures"]
            )
