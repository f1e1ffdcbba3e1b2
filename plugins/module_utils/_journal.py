# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An append-only JSON-lines journal, flushed to disk before the step it records is acted on.

Each line is one JSON object with an ``op``. Paths are stored as ``os.fsdecode`` strings and
written with ``ensure_ascii``, so names with bytes that are not UTF-8 survive the round trip
(they become ``\\udcXX`` escapes and ``os.fsencode`` turns them back into the same bytes). The
file lives in a root-only directory reached without following symlinks (``_tree``).

A line cut short by a crash is ignored when reading (and reported as ``damaged``); the next
append starts on a new line, so the record after it is kept whole. Used by tier_migrate (its
records: ``_migrate_journal``) and pg_partition_archive.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, append_private, read_private


class JournalError(JtsError):
    """The journal cannot be read or written; the message names the file."""


def encode_path(path):
    return os.fsdecode(path)


def decode_path(text):
    return os.fsencode(text)


class Journal:
    """Append records with one fsync per batch; read them back.

    The journal's directory must belong to this user and be writable by it alone; it is reached
    without following symlinks (see ``_tree.open_private_dir``).
    """

    def __init__(self, path):
        self.path = path

    def append(self, records):
        """Append ``records`` (dicts) and flush them to disk before returning."""
        if not records:
            return
        now = round(time.time(), 3)
        lines = []
        for record in records:
            rec = dict(record)
            rec.setdefault("time", now)
            lines.append(json.dumps(rec, ensure_ascii=True, sort_keys=True))
        data = ("\n".join(lines) + "\n").encode("ascii")
        try:
            append_private(self.path, data)
        except UnsafePath as exc:
            raise JournalError("journal %s refused: %s" % (_show(self.path), exc)) from exc
        except OSError as exc:
            raise JournalError("cannot write journal %s: %s" % (_show(self.path), exc.strerror or exc)) from exc

    def read(self):
        """Return (records, damaged_line_count). A missing journal reads as empty."""
        records = []
        damaged = 0
        try:
            data = read_private(self.path)
        except FileNotFoundError:
            return [], 0
        except UnsafePath as exc:
            raise JournalError("journal %s refused: %s" % (_show(self.path), exc)) from exc
        except OSError as exc:
            raise JournalError("cannot read journal %s: %s" % (_show(self.path), exc.strerror or exc)) from exc
        for raw in data.split(b"\n"):
            raw = raw.strip()
            if not raw:
                continue
            try:
                rec = json.loads(raw.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                damaged += 1
                continue
            if isinstance(rec, dict) and "op" in rec:
                records.append(rec)
            else:
                damaged += 1
        return records, damaged


def _show(path):
    return os.fsdecode(path)
