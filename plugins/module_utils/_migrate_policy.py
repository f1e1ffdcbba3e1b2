# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's policy: the module's parameters turned into one run's settings.

Only unit parsing (ages, sizes, percentages), absolute paths and the rules that join two options
live here; types, choices and defaults are the module's argument_spec's. Also the names a run
writes on disk (temporary files, the state directory) and the codec each file gets. Used by
``_migrate`` (migrate), ``_migrate_undo`` and the selection.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import DEFAULT_LOCK_DIR
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_codec import CODECS
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    MigrateError,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    parse_age,
    parse_size,
    parse_size_or_percent,
)

TMP_PREFIX = b".jts-migrate-"
TMP_SUFFIX = b".tmp"
STATE_DIR = b".jts-migrate"
REPORT_LIMIT = 1000
ALREADY_COMPRESSED = (b".gz", b".zst", b".xz", b".bz2", b".lz4", b".7z", b".zip", b".tgz")
ZSTD_LEVELS = (1, 22)
GZIP_LEVELS = (1, 9)


class Policy:
    """The validated parameters of one run."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _abs(value, name):
    if not value:
        raise MigrateError("%s is required" % name)
    if not os.path.isabs(value):
        raise MigrateError("%s: %r is not an absolute path" % (name, value))
    return os.path.normpath(os.fsencode(value))


def build_policy(params):
    """Validate module parameters into a Policy; raise MigrateError naming the bad value."""
    p = params
    try:
        source = _abs(p.get("source"), "source")
        dest = _abs(p.get("destination"), "destination")
        older_than = parse_age(p.get("older_than", "7d"), "older_than")
        settle = parse_age(p.get("settle_time", "10m") or 0, "settle_time")
        min_size = parse_size(p["min_size"], "min_size") if p.get("min_size") not in (None, "") else None
        max_size = parse_size(p["max_size"], "max_size") if p.get("max_size") not in (None, "") else None
        max_bytes = parse_size(p["max_bytes"], "max_bytes") if p.get("max_bytes") not in (None, "") else None
        min_free = parse_size_or_percent(p.get("min_free") or "0", "min_free")
        batch_bytes = parse_size(p.get("batch_bytes") or "256M", "batch_bytes")
    except UnitError as exc:
        raise MigrateError(str(exc)) from exc
    codec = p.get("compression") or "none"
    if codec not in CODECS:
        raise MigrateError("compression: %r is not one of %s" % (codec, ", ".join(CODECS)))
    level = p.get("compression_level")
    if level is not None and codec != "none":
        low, high = ZSTD_LEVELS if codec == "zstd" else GZIP_LEVELS
        if not low <= int(level) <= high:
            raise MigrateError("compression_level: %r is outside %d..%d for %s" % (level, low, high, codec))
    if min_size is not None and max_size is not None and min_size > max_size:
        raise MigrateError("min_size %r is larger than max_size %r" % (p.get("min_size"), p.get("max_size")))
    max_files = p.get("max_files")
    if max_files is not None and int(max_files) < 0:
        raise MigrateError("max_files: %r is negative" % (max_files,))
    age_stamp = p.get("age_stamp") or "mtime"
    if age_stamp not in ("mtime", "atime", "ctime"):
        raise MigrateError("age_stamp: %r is not one of mtime, atime, ctime" % (age_stamp,))
    mode = p.get("mode") or "move"
    if mode not in ("move", "copy"):
        raise MigrateError("mode: %r is not one of move, copy" % (mode,))
    journal = p.get("journal")
    journal_default = not journal
    journal = _abs(journal, "journal") if journal else os.path.join(dest, STATE_DIR, b"journal.jsonl")
    return Policy(
        source=source,
        dest=dest,
        older_than=older_than,
        age_stamp=age_stamp,
        settle=settle,
        include=[os.fsencode(x) for x in (p.get("include") or [])],
        exclude=[os.fsencode(x) for x in (p.get("exclude") or [])],
        min_size=min_size,
        max_size=max_size,
        max_files=int(max_files) if max_files else None,
        max_bytes=max_bytes or None,
        codec=codec,
        level=int(level) if level is not None else None,
        mode=mode,
        require_mounted=bool(p.get("require_mounted", True)),
        source_mount=_abs(p["source_mount"], "source_mount") if p.get("source_mount") else None,
        dest_mount=_abs(p["destination_mount"], "destination_mount") if p.get("destination_mount") else None,
        source_fstype=p.get("source_fstype") or None,
        dest_fstype=p.get("destination_fstype") or None,
        min_free=min_free,
        check_space=bool(p.get("check_space", True)),
        journal=journal,
        journal_default=journal_default,
        run_id=p.get("run_id") or None,
        one_filesystem=bool(p.get("one_filesystem", True)),
        probe_timeout=float(p.get("probe_timeout") or 10),
        lock_dir=os.fsdecode(p.get("lock_dir") or DEFAULT_LOCK_DIR),
        drop_metadata=bool(p.get("drop_unsupported_metadata", False)),
        batch_files=int(p.get("batch_files") or 1000),
        batch_bytes=batch_bytes,
    )


def dest_codec_for(rel, codec):
    """The codec used for this file: none for names that are already compressed."""
    if codec != "none" and rel.lower().endswith(ALREADY_COMPRESSED):
        return "none"
    return codec
