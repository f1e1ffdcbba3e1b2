# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One description of a host's storage layout, from the tier roles' variables only.

A user describes a host once, with the variables of hot_tier, warm_tier and cold_tier. The
nightly run (lifecycle role) and the tuning role derive what they need from that description:
the mounts the health step checks, the VG and LVs the backup step snapshots, the sources and
destinations of the moves and archives, the mounts the weekly trim visits. ``storage_layout``
reads the tier variables the play defines and fills the others from the tier roles' own
``defaults/main.yml``, so the defaults are said once, in those files, and a play that runs only
the lifecycle role (lifecycle.yml from a controller) derives the same layout as site.yml.
"""

from __future__ import annotations

import functools
import os

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import split_options

TIER_ROLES = ("hot_tier", "warm_tier", "cold_tier")
_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")
# The warm tier's directories the nightly run writes into (warm_tier_directories creates them).
WARM_BACKUPS = "daily-backups"
WARM_LOGS = "logs"
WARM_TEMP = "temp-processing"


@functools.lru_cache(maxsize=None)
def tier_defaults(roles_dir=_ROLES_DIR):
    """The tier roles' defaults, read from their ``defaults/main.yml`` (plain values, no Jinja).

    Read once per controller process: every derived lifecycle default asks for the layout, and
    the files do not change during a run. Callers copy before they change anything.
    """
    values = {}
    for role in TIER_ROLES:
        path = os.path.join(roles_dir, role, "defaults", "main.yml")
        try:
            with open(path) as handle:
                values.update(yaml.safe_load(handle) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleFilterError(
                "storage_layout: cannot read the defaults of %s (%s): %s" % (role, path, exc)
            ) from exc
    return values


def _options(value, what):
    try:
        return split_options(value, what)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _abs(value, what):
    if not isinstance(value, str) or not value.startswith("/"):
        raise AnsibleFilterError("%s must be an absolute path (got %r)" % (what, value))
    return value.rstrip("/") or "/"


def _items(value, what, keys):
    if not isinstance(value, list):
        raise AnsibleFilterError("%s must be a list (got %r)" % (what, value))
    for index, item in enumerate(value):
        missing = [key for key in keys if not isinstance(item, dict) or key not in item]
        if missing:
            raise AnsibleFilterError("%s[%d] lacks %s (got %r)" % (what, index, ", ".join(missing), item))
    return value


def _hot(v):
    mode = v["hot_tier_mode"]
    if mode not in ("lvm", "directory"):
        raise AnsibleFilterError("hot_tier_mode must be lvm or directory (got %r)" % (mode,))
    hot = {"mode": mode, "vg": None, "root": None, "mounts": [], "snapshots": [], "logs": []}
    if mode == "lvm":
        hot["vg"] = v["hot_tier_vg"]
        for vol in _items(v["hot_tier_volumes"], "hot_tier_volumes", ("name", "mount", "fstype")):
            what = "hot_tier_volumes[%s]" % vol["name"]
            mount = _abs(vol["mount"], what + ".mount")
            hot["mounts"].append(
                {
                    "name": vol["name"],
                    "path": mount,
                    "fstype": vol["fstype"],
                    "options": _options(vol.get("mount_opts"), what + ".mount_opts"),
                }
            )
            if vol.get("snapshot_size"):
                hot["snapshots"].append({"lv": vol["name"], "size": str(vol["snapshot_size"])})
            if WARM_LOGS in (vol.get("subdirs") or []):
                hot["logs"].append({"name": vol["name"], "path": mount + "/" + WARM_LOGS})
    else:
        root = _abs(v["hot_tier_directory_root"], "hot_tier_directory_root")
        hot["root"] = root
        for item in _items(v["hot_tier_directories"], "hot_tier_directories", ("name",)):
            if WARM_LOGS in (item.get("subdirs") or []):
                hot["logs"].append({"name": item["name"], "path": "%s/%s/%s" % (root, item["name"], WARM_LOGS)})
    return hot


def _warm(v):
    mount = _abs(v["warm_tier_mount"], "warm_tier_mount")
    return {
        "mount": mount,
        "fstype": "btrfs",
        "label": v["warm_tier_label"],
        "options": _options(v["warm_tier_mount_opts"], "warm_tier_mount_opts"),
        "backups": mount + "/" + WARM_BACKUPS,
        "logs": mount + "/" + WARM_LOGS,
        "temp": mount + "/" + WARM_TEMP,
    }


def _cold(v):
    mount = _abs(v["cold_tier_mount"], "cold_tier_mount")
    options = [
        *_options(v["cold_tier_mount_opts"], "cold_tier_mount_opts"),
        "vers=%s" % v["cold_tier_nfs_version"],
        *_options(v["cold_tier_boot_opts"], "cold_tier_boot_opts"),
    ]
    root = str(v["cold_tier_root"]).strip("/")
    return {
        "server": v["cold_tier_server"],
        "export": v["cold_tier_export"],
        "port": int(v["cold_tier_probe_port"]),
        "mount": mount,
        "fstype": "nfs",
        "options": options,
        "root": mount + "/" + root if root else mount,
    }


def storage_layout(tier_vars, roles_dir=None):
    """``{hot_tier_*, warm_tier_*, cold_tier_*}`` (those the play defines) -> the layout.

    Returns ``{"hot": {...}, "warm": {...}, "cold": {...}}``: the hot tier's mode, VG, mounts
    (LVM mode: one per LV with its fstype and options), directory root (directory mode), the LVs
    with a ``snapshot_size`` and the ``logs`` sub-directories; the warm tier's mount, options
    and the directories the nightly run uses; the NAS server, export, port, mount, its complete
    options and the root of the collection's tree on it.
    """
    if not isinstance(tier_vars, dict):
        raise AnsibleFilterError("storage_layout expects a dict of tier variables (got %r)" % (tier_vars,))
    values = dict(tier_defaults(roles_dir or _ROLES_DIR))
    values.update({k: v for k, v in tier_vars.items() if k.startswith(tuple(r + "_" for r in TIER_ROLES))})
    return {"hot": _hot(values), "warm": _warm(values), "cold": _cold(values)}


def layout_health_tiers(layout, warning=80, critical=90, vg_free_warning="3%", vg_free_critical="1%"):
    """The storage_health ``tiers`` for a layout: every mount with the options it should show."""
    hot, warm, cold = layout["hot"], layout["warm"], layout["cold"]
    levels = {"warning": warning, "critical": critical}
    if hot["mode"] == "lvm":
        hot_tier = dict(
            name="hot",
            vg=hot["vg"],
            vg_free_warning=vg_free_warning,
            vg_free_critical=vg_free_critical,
            mounts=[{k: m[k] for k in ("path", "fstype", "options")} for m in hot["mounts"]],
            **levels,
        )
    else:
        hot_tier = dict(name="hot", paths=[hot["root"]], **levels)
    return [
        hot_tier,
        dict(
            name="warm",
            mounts=[{"path": warm["mount"], "fstype": warm["fstype"], "options": warm["options"]}],
            **levels,
        ),
        dict(
            name="cold",
            nas_server=cold["server"],
            nas_port=cold["port"],
            mounts=[
                {
                    "path": cold["mount"],
                    "fstype": cold["fstype"],
                    "source": "%s:%s" % (cold["server"], cold["export"]),
                    "options": cold["options"],
                }
            ],
            **levels,
        ),
    ]


# Rotated system logs (syslog.1, kern.log.2.gz, messages-20261101, dpkg.log.3.gz): a log that is
# still the live file of a daemon is never among them, so a move cannot take a file someone still
# writes to. The live *.log files are logrotate's to rotate.
SYSTEM_LOG_INCLUDE = [
    "*.[0-9]",
    "*.[0-9].gz",
    "*.[0-9][0-9]",
    "*.[0-9][0-9].gz",
    "*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*",
]
# journald's files are its own; the lifecycle's own logs stay where they are written.
SYSTEM_LOG_EXCLUDE = ["journal", "*.journal", "*.journal~"]


def layout_migrate_moves(layout, log_age="7d", backup_age="30d", system_logs="/var/log"):
    """The tier_migrate runs of a layout: rotated system logs and service logs hot -> warm, daily backups warm -> cold."""
    warm, cold = layout["warm"], layout["cold"]
    moves = []
    if system_logs:
        moves.append(
            {
                "name": "system logs",
                "source": _abs(system_logs, "lifecycle_migrate_system_log_dir"),
                "destination": "%s/system" % warm["logs"],
                "destination_mount": warm["mount"],
                "older_than": log_age,
                "compression": "zstd",
                "include": list(SYSTEM_LOG_INCLUDE),
                "exclude": list(SYSTEM_LOG_EXCLUDE),
            }
        )
    moves += [
        {
            "name": "%s logs" % item["name"],
            "source": item["path"],
            "destination": "%s/%s" % (warm["logs"], item["name"]),
            "destination_mount": warm["mount"],
            "older_than": log_age,
            "compression": "zstd",
        }
        for item in layout["hot"]["logs"]
    ]
    moves.append(
        {
            "name": "daily backups",
            "source": warm["backups"],
            "destination": cold["root"] + "/archives/database",
            "destination_mount": cold["mount"],
            "older_than": backup_age,
            "compression": "none",
            # snapshot_archive's temporary name where a filesystem has no unnamed files: never data
            "exclude": [".*.partial"],
        }
    )
    return moves


class FilterModule:
    def filters(self):
        return {
            "storage_layout": storage_layout,
            "layout_health_tiers": layout_health_tiers,
            "layout_migrate_moves": layout_migrate_moves,
        }
