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


def _given(p, name):
    """The value of an optional parameter, None when it is not set (or empty)."""
    value = p.get(name)
    return None if value in (None, "") else value


def _unit(p, name, parse):
    value = _given(p, name)
    return None if value is None else parse(value, name)


def build_policy(params):
    """Turn the module's parameters into a Policy; raise MigrateError naming the bad value.

    The argument_spec has already checked types and choices and filled in defaults; here are only
    the units (ages, sizes, percentages), absolute paths and the rules that join two options.
    A parameter that is not set stays None (a direct caller passes what it needs).
    """
    p = params
    try:
        source = _abs(p.get("source"), "source")
        dest = _abs(p.get("destination"), "destination")
        older_than = _unit(p, "older_than", parse_age)
        settle = parse_age(p.get("settle_time") or 0, "settle_time")
        min_size = _unit(p, "min_size", parse_size)
        max_size = _unit(p, "max_size", parse_size)
        max_bytes = _unit(p, "max_bytes", parse_size)
        min_free = parse_size_or_percent(p.get("min_free") or "0", "min_free")
        batch_bytes = _unit(p, "batch_bytes", parse_size)
    except UnitError as exc:
        raise MigrateError(str(exc)) from exc
    codec = p.get("compression")
    level = p.get("compression_level")
    if level is not None and codec in ("zstd", "gzip"):
        low, high = ZSTD_LEVELS if codec == "zstd" else GZIP_LEVELS
        if not low <= int(level) <= high:
            raise MigrateError("compression_level: %r is outside %d..%d for %s" % (level, low, high, codec))
    if min_size is not None and max_size is not None and min_size > max_size:
        raise MigrateError("min_size %r is larger than max_size %r" % (p.get("min_size"), p.get("max_size")))
    max_files = p.get("max_files")
    if max_files is not None and int(max_files) < 0:
        raise MigrateError("max_files: %r is negative" % (max_files,))
    journal = p.get("journal")
    journal_default = not journal
    journal = _abs(journal, "journal") if journal else os.path.join(dest, STATE_DIR, b"journal.jsonl")
    lock_dir = _given(p, "lock_dir")
    return Policy(
        source=source,
        dest=dest,
        older_than=older_than,
        age_stamp=p.get("age_stamp"),
        settle=settle,
        include=[os.fsencode(x) for x in (p.get("include") or [])],
        exclude=[os.fsencode(x) for x in (p.get("exclude") or [])],
        min_size=min_size,
        max_size=max_size,
        max_files=int(max_files) if max_files else None,
        max_bytes=max_bytes or None,
        codec=codec,
        level=int(level) if level is not None else None,
        mode=p.get("mode"),
        require_mounted=p.get("require_mounted"),
        source_mount=_abs(p["source_mount"], "source_mount") if p.get("source_mount") else None,
        dest_mount=_abs(p["destination_mount"], "destination_mount") if p.get("destination_mount") else None,
        source_fstype=p.get("source_fstype") or None,
        dest_fstype=p.get("destination_fstype") or None,
        min_free=min_free,
        check_space=p.get("check_space"),
        journal=journal,
        journal_default=journal_default,
        run_id=p.get("run_id") or None,
        one_filesystem=p.get("one_filesystem"),
        probe_timeout=p.get("probe_timeout"),
        lock_dir=os.fsdecode(lock_dir) if lock_dir is not None else None,
        drop_metadata=p.get("drop_unsupported_metadata"),
        batch_files=p.get("batch_files"),
        batch_bytes=batch_bytes,
        missing=p.get("missing") or "fail",
        create_destination=bool(p.get("create_destination")),
    )


def dest_codec_for(rel, codec):
    """The codec used for this file: none for names that are already compressed."""
    if codec != "none" and rel.lower().endswith(ALREADY_COMPRESSED):
        return "none"
    return codec
