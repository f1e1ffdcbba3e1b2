# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tier's data and the check's settings, validated: the input side of storage health.

``TIER_SPEC``/``MOUNT_SPEC`` state a tier's options once (the ``storage_health`` module's
argument_spec is made of them); ``build_tier``/``build_config`` check the same data when it comes
from ``jts-storage-check``'s JSON config, turn thresholds into numbers and keep the cross-field
rules, refusing bad input with a message naming the tier and key. Also the severities, exit codes
and defaults every other ``_health_*`` file uses. Used by ``_health`` (the checker), ``_health_cli``,
``_sinks``, the ``storage_health`` module and the other ``_health_*`` files.
"""

from __future__ import annotations

import os
import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import FreshnessError, build_freshness
from ansible_collections.jts.tiered_storage.plugins.module_utils._mount_options import split_options as _split_options
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import (  # noqa: F401 - re-exported
    EXIT_CODES,
    SEVERITY_RANK,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    parse_percent,
    parse_size_or_percent,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import parse_bool as _parse_bool

FAIL_ON = ("never", "warning", "unknown", "critical")
DEFAULT_WARNING = 80.0
DEFAULT_CRITICAL = 90.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_PROBE_TIMEOUT = 3.0
NFS_PORT = 2049

_TIER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

# The one statement of a tier's options: the storage_health module's argument_spec uses these
# dicts as they are, and the command's JSON config (no argument_spec there) is checked against
# the same keys and defaults by build_tier. Cross-field rules (warning below critical, something
# to check) are build_tier's alone.
MOUNT_SPEC = dict(
    path=dict(type="path", required=True),
    fstype=dict(type="str"),
    options=dict(type="list", elements="str", default=[]),
    source=dict(type="str"),
)
TIER_SPEC = dict(
    name=dict(type="str", required=True),
    mounts=dict(type="list", elements="dict", default=[], options=MOUNT_SPEC),
    paths=dict(type="list", elements="path", default=[]),
    warning=dict(type="raw", default=80),
    critical=dict(type="raw", default=90),
    free_warning=dict(type="str"),
    free_critical=dict(type="str"),
    inode_warning=dict(type="raw", default=80),
    inode_critical=dict(type="raw", default=90),
    vg=dict(type="str"),
    vg_free_warning=dict(type="str"),
    vg_free_critical=dict(type="str"),
    snapshot_warning=dict(type="raw", default=80),
    snapshot_critical=dict(type="raw", default=90),
    nas_server=dict(type="str"),
    nas_port=dict(type="int", default=2049),
    btrfs_stats=dict(type="bool", default=True),
    btrfs_error_severity=dict(type="str", choices=["warning", "critical"], default="warning"),
)
TIER_KEYS = frozenset(TIER_SPEC)
MOUNT_KEYS = frozenset(MOUNT_SPEC)


class HealthError(JtsError, ValueError):
    """Bad tier data or settings; the message names the tier and the key."""


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


def _given(value):
    return value is not None and value != ""


def _percent(tier, key, value, default):
    if not _given(value):
        return default
    try:
        return parse_percent(value, "tier %s: %s" % (tier, key))
    except UnitError as exc:
        raise HealthError(str(exc)) from None


def _free(tier, key, value):
    """``None`` or ``("bytes", n)`` / ``("percent", p)`` for a minimum free space."""
    if not _given(value):
        return None
    try:
        return parse_size_or_percent(value, "tier %s: %s" % (tier, key))
    except UnitError as exc:
        raise HealthError(str(exc)) from None


def _pair(tier, what, warning, critical):
    if warning is not None and critical is not None and warning > critical:
        raise HealthError(
            "tier %s: %s_warning (%s) must not be above %s_critical (%s)" % (tier, what, warning, what, critical)
            if what
            else "tier %s: warning (%s%%) must not be above critical (%s%%)" % (tier, warning, critical)
        )


def _free_pair(tier, prefix, warning, critical):
    """A minimum free: the warning level must be at least the critical one (when comparable)."""
    if warning is None or critical is None or warning[0] != critical[0]:
        return
    if warning[1] < critical[1]:
        raise HealthError(
            "tier %s: %sfree_warning (%s) must not be below %sfree_critical (%s): warning comes first"
            % (tier, prefix, warning[1], prefix, critical[1])
        )


def split_options(value, what="options"):
    """``'a,b=1'`` or ``['a', 'b=1']`` -> ``['a', 'b=1']``."""
    try:
        return _split_options(value, what)
    except ValueError as exc:
        raise HealthError(str(exc)) from exc


def _abs_path(tier, key, value):
    if not isinstance(value, str) or not value.startswith("/"):
        raise HealthError("tier %s: %s: %r is not an absolute path" % (tier, key, value))
    return os.path.normpath(value)


def build_tier(raw):
    """Validate one tier's data and return it with numeric thresholds."""
    if not isinstance(raw, dict):
        raise HealthError("each tier must be a dict, got %r" % (raw,))
    name = raw.get("name")
    if not isinstance(name, str) or not _TIER_NAME_RE.match(name):
        raise HealthError("tier name %r must be letters, digits, '.', '_' or '-'" % (name,))
    unknown = sorted(k for k, v in raw.items() if k not in TIER_KEYS and v is not None)
    if unknown:
        raise HealthError("tier %s: unknown key(s) %s" % (name, ", ".join(unknown)))
    tier = {"name": name}
    tier["warning"] = _percent(name, "warning", raw.get("warning"), DEFAULT_WARNING)
    tier["critical"] = _percent(name, "critical", raw.get("critical"), DEFAULT_CRITICAL)
    _pair(name, "", tier["warning"], tier["critical"])
    tier["inode_warning"] = _percent(name, "inode_warning", raw.get("inode_warning"), DEFAULT_WARNING)
    tier["inode_critical"] = _percent(name, "inode_critical", raw.get("inode_critical"), DEFAULT_CRITICAL)
    _pair(name, "inode", tier["inode_warning"], tier["inode_critical"])
    tier["free_warning"] = _free(name, "free_warning", raw.get("free_warning"))
    tier["free_critical"] = _free(name, "free_critical", raw.get("free_critical"))
    _free_pair(name, "", tier["free_warning"], tier["free_critical"])
    tier["snapshot_warning"] = _percent(name, "snapshot_warning", raw.get("snapshot_warning"), DEFAULT_WARNING)
    tier["snapshot_critical"] = _percent(name, "snapshot_critical", raw.get("snapshot_critical"), DEFAULT_CRITICAL)
    _pair(name, "snapshot", tier["snapshot_warning"], tier["snapshot_critical"])
    vg = raw.get("vg")
    if _given(vg) and (not isinstance(vg, str) or not re.match(r"^[a-zA-Z0-9+_.-]+$", vg)):
        raise HealthError("tier %s: vg: %r is not a volume group name" % (name, vg))
    tier["vg"] = vg if _given(vg) else None
    tier["vg_free_warning"] = _free(name, "vg_free_warning", raw.get("vg_free_warning"))
    tier["vg_free_critical"] = _free(name, "vg_free_critical", raw.get("vg_free_critical"))
    _free_pair(name, "vg_", tier["vg_free_warning"], tier["vg_free_critical"])
    server = raw.get("nas_server")
    if _given(server) and (not isinstance(server, str) or any(c.isspace() for c in server)):
        raise HealthError("tier %s: nas_server: %r is not a host name or address" % (name, server))
    tier["nas_server"] = server if _given(server) else None
    port = raw.get("nas_port")
    if not _given(port):
        port = NFS_PORT
    if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
        raise HealthError("tier %s: nas_port: %r is not a TCP port" % (name, port))
    tier["nas_port"] = int(port)
    btrfs = raw.get("btrfs_stats")
    tier["btrfs_stats"] = True if btrfs is None else parse_bool(btrfs, "tier %s: btrfs_stats" % name)
    severity = raw.get("btrfs_error_severity") or "warning"
    if severity not in ("warning", "critical"):
        raise HealthError("tier %s: btrfs_error_severity: %r is not warning or critical" % (name, severity))
    tier["btrfs_error_severity"] = severity
    mounts = []
    for index, entry in enumerate(raw.get("mounts") or []):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise HealthError("tier %s: mounts[%d] must be a path or a dict with path" % (name, index))
        extra = sorted(k for k, v in entry.items() if k not in MOUNT_KEYS and v is not None)
        if extra:
            raise HealthError("tier %s: mounts[%d]: unknown key(s) %s" % (name, index, ", ".join(extra)))
        mounts.append(
            {
                "path": _abs_path(name, "mounts[%d].path" % index, entry.get("path")),
                "fstype": entry.get("fstype") or None,
                "options": split_options(entry.get("options"), "tier %s: mounts[%d].options" % (name, index)),
                "source": entry.get("source") or None,
            }
        )
    tier["mounts"] = mounts
    paths = raw.get("paths") or []
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
        raise HealthError("tier %s: paths must be a list of absolute paths" % name)
    tier["paths"] = [_abs_path(name, "paths[%d]" % i, p) for i, p in enumerate(paths)]
    if not tier["mounts"] and not tier["paths"] and not tier["vg"] and not tier["nas_server"]:
        raise HealthError("tier %s: nothing to check (give mounts, paths, vg or nas_server)" % name)
    return tier


def parse_bool(value, what):
    """``_units.parse_bool``, refusing with a HealthError."""
    try:
        return _parse_bool(value, what)
    except UnitError as exc:
        raise HealthError(str(exc)) from None


def _number(settings, key, default, minimum=0.1):
    value = settings.get(key)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HealthError("%s: %r is not a number of seconds" % (key, value)) from None
    if isinstance(value, bool) or number < minimum:
        raise HealthError("%s: %r must be at least %s seconds" % (key, value, minimum))
    return number


def build_config(settings):
    """Validate the settings (module parameters or the command's JSON config)."""
    if not isinstance(settings, dict):
        raise HealthError("the configuration must be a JSON object with a 'tiers' list")
    raw_tiers = settings.get("tiers")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise HealthError("tiers: give a non-empty list of tiers")
    tiers = [build_tier(raw) for raw in raw_tiers]
    names = [t["name"] for t in tiers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HealthError("tiers: duplicate tier name(s) %s" % ", ".join(duplicates))
    timeout = _number(settings, "timeout", DEFAULT_TIMEOUT)
    probe = _number(settings, "probe_timeout", DEFAULT_PROBE_TIMEOUT)
    fail_on = settings.get("fail_on") or "never"
    if fail_on not in FAIL_ON:
        raise HealthError("fail_on: %r is not one of %s" % (fail_on, ", ".join(FAIL_ON)))
    try:
        freshness = build_freshness(settings.get("freshness"))
    except FreshnessError as exc:
        raise HealthError(str(exc)) from None
    if freshness["checks"] and "freshness" in names:
        raise HealthError("tiers: 'freshness' names the freshness checks in alerts and reports; rename that tier")
    return {
        "tiers": tiers,
        "timeout": timeout,
        "probe_timeout": min(probe, timeout),
        "fail_on": fail_on,
        "freshness": freshness,
    }
