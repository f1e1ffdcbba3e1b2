# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring an archived partition back: verify its dump, restore it, compare, re-attach.

Users: pg_partition_archive (``state: restored``), playbooks/pg_partition_restore.yml.

What the partition held comes from the journal's ``archive`` record (rows, content checksum,
SHA-256 of the dump, bounds). When the journal has none (a rebuilt host) and the dump is named,
the ``<dump>.json`` and ``<dump>.sha256`` files beside it are used instead, and the result says so.

1. The dump's SHA-256 must equal the recorded one (read in a child with a time-out: the dump may
   be on the NAS by now); nothing is restored otherwise.
2. ``pg_restore --single-transaction --exit-on-error`` into the source database: the table comes
   back whole, with its indexes, constraints, owner and privileges, or not at all.
3. The restored table's row count and checksum must equal the recorded ones; otherwise it is left
   detached, never attached, and the run fails.
4. ``ATTACH PARTITION`` with the recorded bounds, and a ``restore`` record in the journal.

A partition already attached with the same bounds is left as it is (a second run changes
nothing); a table of that name that is detached (an interrupted restore) is verified and attached.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _pg_partitions as sql
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_ops import (
    ArchiveFailed,
    PartitionOps,
    bounds_text,
    read_journal,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_cli import PgError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_dumpfile import hash_path, parse_sha256_file
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import parse_age

SIDECAR_LIMIT = 1 << 20


def read_small(path):
    """The text of a small file (its last component not followed if a link)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return os.read(fd, SIDECAR_LIMIT).decode("utf-8", "replace")
    finally:
        os.close(fd)


def in_child(func, path, timeout):
    """``func(path)`` in a forked child killed after ``timeout`` seconds (the dump may be on a dead NAS)."""
    try:
        return call_with_timeout(func, (path,), timeout=timeout)
    except ProbeTimeout:
        raise ArchiveFailed(
            "%s did not answer within %ss (a dead NAS mount?); nothing was restored" % (path, timeout)
        ) from None
    except (OSError, RuntimeError) as exc:
        raise ArchiveFailed(
            "cannot read %s: %s; nothing was restored" % (path, getattr(exc, "strerror", None) or exc)
        ) from None


def find_record(journal, port, database, wanted, dump, timeout):
    """The ``archive`` record of partition ``wanted`` and where it came from (the journal, or the
    files beside ``dump``); ArchiveFailed when there is none or it is ambiguous."""
    records, _damaged = read_journal(journal)
    matches = [
        r
        for r in records
        if r.get("op") == "archive"
        and r.get("port") == port
        and r.get("database") == database
        and wanted in (r.get("partition"), r.get("partition_name"))
        and (not dump or os.path.basename(r.get("dump", "")) == os.path.basename(dump))
    ]
    named = sorted({r.get("partition") for r in matches})
    if len(named) > 1:
        raise ArchiveFailed(
            "partition %s is ambiguous in the journal (%s); give its schema-qualified name; nothing was restored"
            % (wanted, ", ".join(named))
        )
    if matches:
        return matches[-1], "journal"
    if not dump:
        raise ArchiveFailed(
            "the journal %s has no archive of partition %s in database %s; name the dump with the option dump "
            "(its .json and .sha256 files must be beside it)" % (journal.path, wanted, database)
        )
    try:
        record = json.loads(in_child(read_small, dump + ".json", timeout))
        listed = parse_sha256_file(in_child(read_small, dump + ".sha256", timeout))
    except ValueError as exc:
        raise ArchiveFailed("the files beside %s cannot be read: %s; nothing was restored" % (dump, exc)) from None
    if listed != record.get("sha256"):
        raise ArchiveFailed("%s.sha256 and %s.json disagree about the dump's hash; nothing was restored" % (dump, dump))
    if wanted not in (record.get("partition"), record.get("partition_name")):
        raise ArchiveFailed(
            "%s holds partition %s, not %s; nothing was restored" % (dump, record.get("partition"), wanted)
        )
    return record, "files beside the dump"


class Restorer(PartitionOps):
    """Restore ``params['partition']`` from its dump (``params['dump']`` or the journal's path)."""

    def __init__(self, cli, journal, params, check_mode=False):
        super().__init__(cli, journal, params["port"], check_mode)
        self.params = params
        self.timeout = params.get("command_timeout") or 21600

    def run(self):
        record, source = find_record(
            self.journal, self.port, self.database, self.params["partition"], self.params.get("dump"), self.timeout
        )
        item = {
            "ts": record["table_schema"],
            "tn": record["table_name"],
            "ps": record["partition_schema"],
            "pn": record["partition_name"],
            "lo": record.get("lo"),
            "hi": record.get("hi"),
        }
        path = self.params.get("dump") or record["dump"]
        result = {
            "changed": False,
            "partition": record["partition"],
            "table": record["table"],
            "bounds": bounds_text(item["lo"], item["hi"]),
            "dump": path,
            "sha256": record["sha256"],
            "rows": record["rows"],
            "checksum": record["checksum"],
            "verified_against": source,
        }
        found = self.state(item)
        if found["exists"]:
            if found["parent"] and not found["pending"]:
                same_table = (found["parent"]["schema"], found["parent"]["name"]) == (item["ts"], item["tn"])
                if same_table and sql.parse_bound(found["bound"]) == (item["lo"], item["hi"]):
                    result["msg"] = "%s is attached to %s %s already" % (
                        record["partition"],
                        record["table"],
                        result["bounds"],
                    )
                    return result
                raise ArchiveFailed(
                    "%s exists, attached to %s.%s %s; it was not touched"
                    % (record["partition"], found["parent"]["schema"], found["parent"]["name"], found["bound"])
                )
            if found["pending"]:
                raise ArchiveFailed(
                    "%s exists with a detach pending; finish it (ALTER TABLE ... DETACH PARTITION ... FINALIZE) "
                    "first; nothing was restored" % record["partition"]
                )
            result["restored_from_dump"] = False
        else:
            sha256, size = in_child(hash_path, path, self.timeout)
            if sha256 != record["sha256"]:
                raise ArchiveFailed(
                    "dump %s has sha256 %s, not the sha256 recorded in the %s (%s); nothing was restored"
                    % (path, sha256, source, record["sha256"])
                )
            result["bytes"] = size
            result["restored_from_dump"] = True
            if self.check_mode:
                result.update(
                    changed=True,
                    msg="would restore %s from %s (sha256 verified) and attach it" % (record["partition"], path),
                )
                return result
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                self.cli.restore(fd, self.database, what="pg_restore of %s into %s" % (path, self.database))
            except PgError as exc:
                raise ArchiveFailed("%s; nothing was restored (one transaction)" % exc, result) from None
            finally:
                os.close(fd)
        if self.check_mode:
            result.update(changed=True, msg="would verify the table %s and attach it" % record["partition"])
            return result
        result["changed"] = True
        try:
            checksum = self.checksum(item)
        except PgError as exc:
            raise ArchiveFailed("%s; %s is left detached" % (exc, record["partition"]), result) from None
        if checksum != record["checksum"]:
            raise ArchiveFailed(
                "%s restored from %s has rows:h0:h1 %s, the archive recorded %s; it is left detached, not attached"
                % (record["partition"], path, checksum, record["checksum"]),
                result,
            )
        try:
            self.attach(item)
        except PgError as exc:
            raise ArchiveFailed(
                "%s was restored and verified, but %s; it is a table of its own, detached from %s"
                % (record["partition"], exc, record["table"]),
                result,
            ) from None
        hold = parse_age(self.params.get("restore_hold") or "0", "restore_hold")
        self.journal.append(
            [
                self.record(
                    item,
                    "restore",
                    dump=path,
                    sha256=record["sha256"],
                    rows=record["rows"],
                    hold_until=time.time() + hold,
                )
            ]
        )
        result["msg"] = "restored %s (%d rows) from %s and attached it to %s %s" % (
            record["partition"],
            record["rows"],
            path,
            record["table"],
            result["bounds"],
        )
        return result


__all__ = ["Restorer"]
